/* The tools' command-line helpers (tool_args.h). */
#include "tool_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/platform.h"

int tool_usage_error(const char *program, const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, fmt, arg);
    fputs(" (try --help)\n", stderr);
    return 2;
}

int tool_option_value(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *a = argv[*i];
    const size_t len = strlen(name);
    if (strncmp(a, name, len) != 0) return 0;
    if (a[len] == '=') {
        *value = a + len + 1;
    } else if (a[len] == '\0') {
        *value = *i + 1 < argc ? argv[++*i] : NULL;
    } else {
        return 0;
    }
    return 1;
}

int tool_file_argument(const char *program, const char *a, const char *paths[2], int *n_paths) {
    if (a[0] == '-' && a[1] != '\0') return tool_usage_error(program, "unknown option '%s'", a);
    if (*n_paths >= 2) return tool_usage_error(program, "unexpected argument '%s'", a);
    paths[(*n_paths)++] = a;
    return 0;
}

int tool_parse_int(const char *s, int min, int max) {
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < min || v > max) return -1;
    return (int)v;
}

long long tool_file_size(const char *path) {
    int64_t size = -1;
    l2_path_lookup(path, NULL, &size);
    return size;
}
