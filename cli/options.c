/* The table-driven command-line parser (options.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int cli_fail(char *msg, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < size && msg[i] != '\0'; i++)
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7F) msg[i] = '?';
    return 2;
}

void cli_print_error(const char *program, const char *culprit, const char *message) {
    char line[1024];
    if (culprit)
        cli_fail(line, sizeof line, "%s: %s: %s", program, culprit, message);
    else
        cli_fail(line, sizeof line, "%s: %s", program, message);
    fprintf(stderr, "%s\n", line);
}

int cli_open_model(const char *checkpoint, int no_mmap, int context_length, llama2_model **model, const char **culprit,
                   llama2_error *err) {
    llama2_model_options options = {.no_mmap = no_mmap};
    if (llama2_model_open(checkpoint, &options, model, err) != LLAMA2_OK) {
        *culprit = checkpoint;
        return 1;
    }
    const int seq_len = llama2_model_config(*model)->seq_len;
    if (context_length > seq_len) {
        snprintf(err->message, sizeof err->message, "the model's context is %d positions, got %d", seq_len,
                 context_length);
        llama2_model_close(*model);
        *model = NULL;
        *culprit = "--ctx";
        return 2;
    }
    return 0;
}

int cli_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_parse_int(const char *s, int lo, int hi, int *out) {
    long v;
    if (!cli_parse_long(s, lo, hi, &v)) return 0;
    *out = (int)v;
    return 1;
}

static const cli_option *find_option(const cli_option *table, size_t n, const char *arg, const char **inline_value,
                                     size_t *name_len) {
    *inline_value = NULL;
    if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0' && arg[2] == '\0') {
        for (size_t i = 0; i < n; i++)
            if (table[i].short_name == arg[1]) return &table[i];
        return NULL;
    }
    if (arg[0] != '-' || arg[1] != '-') return NULL;
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    *name_len = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t i = 0; i < n; i++)
        if (strlen(table[i].long_name) == *name_len && strncmp(table[i].long_name, name, *name_len) == 0) {
            if (eq) *inline_value = eq + 1;
            return &table[i];
        }
    return NULL;
}

int cli_parse_options(int argc, char **argv, const cli_option *table, size_t n_options, cli_apply_fn apply,
                      void *user, const char **checkpoint, char *msg, size_t size) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (*checkpoint) return cli_fail(msg, size, "%s: unexpected argument (the checkpoint is %s)", arg, *checkpoint);
            *checkpoint = arg;
            continue;
        }
        const char *inline_value;
        size_t name_len = 0;
        const cli_option *o = find_option(table, n_options, arg, &inline_value, &name_len);
        if (!o) return cli_fail(msg, size, "%s: unknown option (see --help)", arg);
        char flag[64]; /* as typed, without any "=value" */
        snprintf(flag, sizeof flag, "%.*s", arg[1] != '-' ? 2 : (int)(name_len + 2), arg);
        const char *value = NULL;
        if (o->takes_value) {
            if (inline_value)
                value = inline_value;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return cli_fail(msg, size, "%s: missing value", flag);
        } else if (inline_value) {
            return cli_fail(msg, size, "%s: takes no value", flag);
        }
        int rc = apply(user, o, flag, value, msg, size);
        if (rc) return rc;
    }
    return 0;
}
