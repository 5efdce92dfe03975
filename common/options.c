/* The table-driven command-line parser (options.h). */
#include <stdio.h>
#include <string.h>

#include "options.h"

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

int cli_parsed(const char *program, int status, const char *msg, int help, const char *usage, int version,
               void (*print_version)(void)) {
    if (status != 0) {
        cli_print_error(program, NULL, msg);
        return status;
    }
    if (help) {
        fputs(usage, stdout);
        return 0;
    }
    if (version) {
        print_version();
        return 0;
    }
    return -1;
}
