/* The tools' command-line helpers (tool_args.h). */
#include "tool_args.h"

#include <string.h>

#include "messages.h"
#include "numbers.h"
#include "platform/platform.h"

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
    if (a[0] == '-' && a[1] != '\0') return cli_usage_error(program, "unknown option '%s'", a);
    if (*n_paths >= 2) return cli_usage_error(program, "unexpected argument '%s'", a);
    paths[(*n_paths)++] = a;
    return 0;
}

int tool_int_value(const char *program, const char *flag, const char *value, int lo, int hi, const char *what,
                   int *out) {
    char msg[512];
    if (cli_int_value(flag, value, lo, hi, what, out, msg, sizeof msg) == 0) return 0;
    return cli_usage_error(program, "%s", msg);
}

long long tool_file_size(const char *path) {
    int64_t size = -1;
    l2_path_lookup(path, NULL, &size);
    return size;
}
