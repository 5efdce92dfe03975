/*
 * Documentation that cannot drift from the code:
 *   - the README's usage block is exactly what `llama2 --help` prints;
 *   - every file under src/ is named in the README's layout table (by its
 *     path, a pattern such as `src/backend*.c`, or, for a header, through
 *     the .c file of the same name), and every path the table names exists;
 *   - every program of tools/ is in the README's tools table.
 * The repository is $LLAMA2_SOURCE (default: the working directory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support.h"

/* ------------------------------------------------------------ helpers */

static char *read_readme(void) {
    char *text = test_read_file(test_source_path("README.md"), NULL);
    if (!text) fail_msg("cannot read %s", test_source_path("README.md"));
    return text;
}

/* The README's section under "## <title>", up to the next "## " heading,
 * in a malloc'd string. */
static char *section(const char *readme, const char *title) {
    char heading[128];
    snprintf(heading, sizeof heading, "\n## %s\n", title);
    const char *start = strstr(readme, heading);
    if (!start) fail_msg("the README has no section \"## %s\"", title);
    start += strlen(heading);
    const char *end = strstr(start, "\n## ");
    size_t len = end ? (size_t)(end - start) : strlen(start);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, start, len);
    s[len] = '\0';
    return s;
}

/* The backticked words of the first column of a Markdown table's rows. */
static int first_column_names(const char *table, char names[][256], int max) {
    int n = 0;
    for (const char *line = table; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (line[0] != '|') continue;
        const char *cell_end = strchr(line + 1, '|');
        const char *line_end = strchr(line, '\n');
        if (!cell_end || (line_end && cell_end > line_end)) continue;
        for (const char *p = line + 1; p < cell_end && n < max;) {
            const char *open = memchr(p, '`', (size_t)(cell_end - p));
            if (!open) break;
            const char *close = memchr(open + 1, '`', (size_t)(cell_end - open - 1));
            if (!close) break;
            snprintf(names[n++], 256, "%.*s", (int)(close - open - 1), open + 1);
            p = close + 1;
        }
    }
    return n;
}

/* Every file below the folder `rel` of the repository, as paths from its
 * root. */
static int list_files(const char *rel, char files[][256], int n, int max) {
    DIR *d = opendir(test_source_path(rel));
    if (!d) fail_msg("cannot read %s", test_source_path(rel));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", rel, e->d_name);
        struct stat st;
        assert_int_equal(stat(test_source_path(path), &st), 0);
        if (S_ISDIR(st.st_mode)) {
            n = list_files(path, files, n, max);
        } else if (n < max) {
            snprintf(files[n++], 256, "%.255s", path);
        }
    }
    closedir(d);
    return n;
}

static int matches_any(const char *file, char names[][256], int n) {
    for (int i = 0; i < n; i++)
        if (fnmatch(names[i], file, FNM_PATHNAME) == 0) return 1;
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_readme_usage_is_help(void **state) {
    (void)state;
    char *readme = read_readme();
    char *usage = section(readme, "Usage");
    /* The first fenced block of the section. */
    const char *open = strstr(usage, "```\n");
    assert_non_null(open);
    open += 4;
    const char *close = strstr(open, "```\n");
    assert_non_null(close);
    char *argv[] = {(char *)test_llama2_bin(), "--help", NULL};
    test_run r;
    assert_int_equal(test_run_program(argv, NULL, NULL, 0, &r), 0);
    size_t len = (size_t)(close - open);
    if (r.out_len != len || memcmp(r.out, open, len) != 0) {
        size_t i = 0;
        while (i < len && i < r.out_len && r.out[i] == open[i]) i++;
        const char *line = i > 0 ? open + i : open;
        while (line > open && line[-1] != '\n') line--;
        fail_msg("the README's usage block and `llama2 --help` differ from byte %zu, in the line\n  README: %.*s\n"
                 "  --help: %.*s",
                 i, (int)strcspn(line, "\n"), line, (int)strcspn(r.out + (line - open), "\n"),
                 r.out + (line - open));
    }
    test_run_free(&r);
    free(usage);
    free(readme);
}

static void test_layout_names_every_source_file(void **state) {
    (void)state;
    char *readme = read_readme();
    char *layout = section(readme, "Layout");
    static char names[256][256], files[512][256];
    int n_names = first_column_names(layout, names, 256);
    int n_files = list_files("src", files, 0, 512);
    assert_true(n_names > 0 && n_files > 0);
    int missing = 0;
    for (int i = 0; i < n_files; i++) {
        if (matches_any(files[i], names, n_names)) continue;
        /* A header goes with the .c file of its name, when there is one. */
        size_t len = strlen(files[i]);
        if (len > 2 && strcmp(files[i] + len - 2, ".h") == 0) {
            char c_file[256];
            snprintf(c_file, sizeof c_file, "%.*s.c", (int)(len - 2), files[i]);
            struct stat st;
            if (stat(test_source_path(c_file), &st) == 0 && matches_any(c_file, names, n_names)) continue;
        }
        print_message("the README's layout table does not name %s\n", files[i]);
        missing++;
    }
    /* And every path it names is there. */
    for (int i = 0; i < n_names; i++) {
        int found = 0;
        for (int f = 0; f < n_files && !found; f++) found = fnmatch(names[i], files[f], FNM_PATHNAME) == 0;
        struct stat st;
        if (!found && stat(test_source_path(names[i]), &st) != 0) {
            print_message("the README's layout table names %s, which is not there\n", names[i]);
            missing++;
        }
    }
    free(layout);
    free(readme);
    assert_int_equal(missing, 0);
}

static void test_tools_table_names_every_tool(void **state) {
    (void)state;
    char *readme = read_readme();
    char *tools = section(readme, "Tools");
    static char names[64][256], files[256][256];
    int n_names = first_column_names(tools, names, 64);
    int n_files = list_files("tools", files, 0, 256);
    int missing = 0;
    for (int i = 0; i < n_files; i++) {
        /* tools/NAME.c is the program llama2-NAME; tools/bench_*.c are parts
         * of llama2-bench, tools/tool_*.c of every tool (as the Makefile has
         * it). */
        const char *name = files[i] + strlen("tools/");
        size_t len = strlen(name);
        if (len < 3 || strcmp(name + len - 2, ".c") != 0 || strncmp(name, "bench_", 6) == 0 ||
            strncmp(name, "tool_", 5) == 0)
            continue;
        char program[256];
        snprintf(program, sizeof program, "llama2-%.*s", (int)(len - 2), name);
        if (matches_any(program, names, n_names)) continue;
        print_message("the README's tools table does not name %s (%s)\n", program, files[i]);
        missing++;
    }
    free(tools);
    free(readme);
    assert_int_equal(missing, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_usage_is_help),
        cmocka_unit_test(test_layout_names_every_source_file),
        cmocka_unit_test(test_tools_table_names_every_tool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
