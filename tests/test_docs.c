/*
 * Documentation that cannot drift from the code:
 *   - the README's usage block is exactly what `llama2 --help` prints;
 *   - every folder (and every folder of src/) is named in the README's
 *     layout table, and every path the table names exists;
 *   - every folder of src/, common/ and server/ has a README.md whose table names
 *     each of its files (by name, a pattern such as `backend*.c`, or, for a
 *     header, through the .c file of the same name), and nothing else;
 *   - every program of tools/ is in the README's tools table;
 *   - every program of that table, and llama2, has a man page in man/ (and
 *     every page a program), which groff renders without a warning, whose
 *     version is the library's, and whose options are those of the
 *     program's --help;
 *   - every option of `llama2-server --help` is in the README's Server
 *     section (skipped where the server is not built).
 * The repository is $LLAMA2_SOURCE (default: the working directory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama2.h"
#include "platform/platform.h"
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
    char **names = NULL;
    int count = test_dir_names(test_source_path(rel), &names);
    if (count < 0) fail_msg("cannot read %s", test_source_path(rel));
    for (int i = 0; i < count; i++) {
        if (names[i][0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", rel, names[i]);
        l2_path_kind kind = l2_path_lookup(test_source_path(path), NULL, NULL);
        assert_true(kind != L2_PATH_NONE);
        if (kind == L2_PATH_FOLDER) {
            n = list_files(path, files, n, max);
        } else if (n < max) {
            snprintf(files[n++], 256, "%.255s", path);
        }
    }
    test_free_strings(names);
    return n;
}

/* fnmatch(pattern, path, FNM_PATHNAME) for the patterns of the tables: '*'
 * (any run of characters but '/') and '?' (one). Windows has no fnmatch. */
static int glob_match(const char *pattern, const char *path) {
    for (; *pattern; pattern++, path++) {
        if (*pattern == '*') {
            for (const char *p = path;; p++) {
                if (glob_match(pattern + 1, p)) return 1;
                if (*p == '\0' || *p == '/') return 0;
            }
        }
        if (*path == '\0' || *path == '/' ? *pattern != *path : *pattern != '?' && *pattern != *path) return 0;
    }
    return *path == '\0';
}

static int matches_any(const char *file, char names[][256], int n) {
    for (int i = 0; i < n; i++)
        if (glob_match(names[i], file)) return 1;
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

/* The files of folder `rel` that a table (first column) does not name and
 * the names it gives that are not there, each printed; returns their count.
 * A header goes with the .c file of its name, when there is one. */
static int table_misses(const char *what, const char *table, const char *rel, int recurse) {
    static char names[256][256], files[512][256];
    int n_names = first_column_names(table, names, 256);
    int n_files = list_files(rel, files, 0, 512);
    int missing = 0;
    for (int i = 0; i < n_files; i++) {
        const char *name = files[i] + strlen(rel) + 1;
        if (!recurse && strchr(name, '/')) continue;
        if (strcmp(name, "README.md") == 0 || matches_any(name, names, n_names)) continue;
        size_t len = strlen(name);
        if (len > 2 && strcmp(name + len - 2, ".h") == 0) {
            char c_file[256];
            snprintf(c_file, sizeof c_file, "%.*s.c", (int)(len - 2), name);
            if (matches_any(c_file, names, n_names)) continue;
        }
        print_message("%s does not name %s\n", what, files[i]);
        missing++;
    }
    for (int i = 0; i < n_names; i++) {
        int found = 0;
        for (int f = 0; f < n_files && !found; f++) found = glob_match(names[i], files[f] + strlen(rel) + 1);
        if (!found) {
            print_message("%s names %s, which is not in %s\n", what, names[i], rel);
            missing++;
        }
    }
    return missing;
}

/* The README's layout table names every folder of the repository and of
 * src/ (and nothing that is not there). */
static void test_layout_names_every_folder(void **state) {
    (void)state;
    char *readme = read_readme();
    char *layout = section(readme, "Layout");
    static char names[64][256];
    int n_names = first_column_names(layout, names, 64);
    assert_true(n_names > 0);
    int missing = 0;
    const char *tops[] = {"", "src/"};
    for (int t = 0; t < 2; t++) {
        char **entries = NULL;
        int count = test_dir_names(test_source_path(t == 0 ? "." : "src"), &entries);
        assert_true(count > 0);
        for (int i = 0; i < count; i++) {
            char folder[256];
            snprintf(folder, sizeof folder, "%s%s", tops[t], entries[i]);
            if (entries[i][0] == '.' || strcmp(folder, "src") == 0 || strcmp(folder, "build") == 0 ||
                strcmp(folder, "models") == 0 || strcmp(folder, "node_modules") == 0 ||
                strcmp(folder, "bench-models") == 0 || strcmp(folder, "fuzz-corpus") == 0 ||
                l2_path_lookup(test_source_path(folder), NULL, NULL) != L2_PATH_FOLDER)
                continue;
            char named[260];
            snprintf(named, sizeof named, "%s/", folder);
            int found = 0;
            for (int n = 0; n < n_names && !found; n++) found = strcmp(names[n], named) == 0;
            if (!found) {
                print_message("the README's layout table does not name %s\n", named);
                missing++;
            }
        }
        test_free_strings(entries);
    }
    for (int n = 0; n < n_names; n++)
        if (l2_path_lookup(test_source_path(names[n]), NULL, NULL) == L2_PATH_NONE) {
            print_message("the README's layout table names %s, which is not there\n", names[n]);
            missing++;
        }
    free(layout);
    free(readme);
    assert_int_equal(missing, 0);
}

/* Every folder of src/, common/ and server/ opens with a README.md whose table
 * names each of its files (by name, a pattern such as `backend*.c`, or,
 * for a header, through the .c file of the same name). */
static void test_folder_readmes_name_every_file(void **state) {
    (void)state;
    char **entries = NULL;
    int count = test_dir_names(test_source_path("src"), &entries);
    assert_true(count > 0);
    int missing = 0, folders = 0;
    for (int i = 0; i <= count + 1; i++) {
        char folder[256], readme_path[300];
        if (i == count) snprintf(folder, sizeof folder, "server");
        else if (i == count + 1) snprintf(folder, sizeof folder, "common");
        else if (entries[i][0] == '.') continue;
        else snprintf(folder, sizeof folder, "src/%s", entries[i]);
        if (l2_path_lookup(test_source_path(folder), NULL, NULL) != L2_PATH_FOLDER) continue;
        snprintf(readme_path, sizeof readme_path, "%s/README.md", folder);
        char *text = test_read_file(test_source_path(readme_path), NULL);
        if (!text) {
            print_message("%s has no README.md\n", folder);
            missing++;
            continue;
        }
        char what[320];
        snprintf(what, sizeof what, "%s's table", readme_path);
        missing += table_misses(what, text, folder, 0);
        free(text);
        folders++;
    }
    test_free_strings(entries);
    assert_true(folders >= 7);
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
         * of llama2-bench (as the Makefile has it). */
        const char *name = files[i] + strlen("tools/");
        size_t len = strlen(name);
        if (len < 3 || strcmp(name + len - 2, ".c") != 0 || strncmp(name, "bench_", 6) == 0)
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

/* ---------------------------------------------------------------- man pages */

/* The programs: llama2 and those of the README's tools table. */
static int programs(char names[][256], int max) {
    char *readme = read_readme();
    char *tools = section(readme, "Tools");
    snprintf(names[0], 256, "llama2");
    int n = 1 + first_column_names(tools, names + 1, max - 1);
    free(tools);
    free(readme);
    return n;
}

static void test_every_program_has_a_man_page(void **state) {
    (void)state;
    static char names[64][256], pages[64][256];
    int n_names = programs(names, 64);
    int n_pages = list_files("man", pages, 0, 64);
    int wrong = 0;
    for (int i = 0; i < n_names; i++) {
        char page[300];
        snprintf(page, sizeof page, "man/%.200s.1", names[i]);
        if (l2_path_lookup(test_source_path(page), NULL, NULL) == L2_PATH_FILE) continue;
        print_message("%s has no man page %s\n", names[i], page);
        wrong++;
    }
    for (int i = 0; i < n_pages; i++) {
        int found = 0;
        for (int j = 0; j < n_names && !found; j++) {
            char page[300];
            snprintf(page, sizeof page, "man/%.200s.1", names[j]);
            found = strcmp(page, pages[i]) == 0;
        }
        if (found) continue;
        print_message("%s is not the page of a program of the README's tools table\n", pages[i]);
        wrong++;
    }
    assert_int_equal(wrong, 0);
}

/* The option names at the start of `line` ("-t, --temperature <float>",
 * "--to hf"), each appended to list as " name"; separators are spaces and
 * commas, and the first word that is not an option ends them. */
static void line_options(const char *line, char *list, size_t size) {
    for (const char *p = line;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p != '-') return;
        size_t len = strspn(p, "-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        size_t used = strlen(list);
        snprintf(list + used, size - used, " %.*s", (int)len, p);
        p += len;
    }
}

/* The options --help lists: those that begin its indented lines. */
static void help_options(const char *help, char *list, size_t size) {
    list[0] = '\0';
    for (const char *line = help; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != '\0')) {
        size_t indent = strspn(line, " ");
        if (indent == 0 || line[indent] != '-') continue;
        char copy[512];
        snprintf(copy, sizeof copy, "%.*s", (int)strcspn(line, "\n"), line);
        line_options(copy, list, size);
    }
}

/* The options a man page lists: the tags of its .TP paragraphs, with the
 * font changes, quotes and escaped hyphens taken out. */
static void man_options(const char *page, char *list, size_t size) {
    list[0] = '\0';
    for (const char *tp = strstr(page, "\n.TP\n"); tp; tp = strstr(tp + 1, "\n.TP\n")) {
        const char *tag = tp + 5;
        if (strncmp(tag, ".BR ", 4) == 0) tag += 4;
        else if (strncmp(tag, ".B ", 3) == 0) tag += 3;
        else continue;
        char plain[512];
        size_t n = 0;
        for (const char *p = tag; *p && *p != '\n' && n + 1 < sizeof plain; p++) {
            if (p[0] == '\\' && p[1] == 'f' && p[2]) {
                p += 2;
            } else if (p[0] == '\\' && p[1] == '-') {
                plain[n++] = '-';
                p++;
            } else if (*p != '"') {
                plain[n++] = *p;
            }
        }
        plain[n] = '\0';
        line_options(plain, list, size);
    }
}

/* The words of a list, sorted, each once, one a line. */
static char *sorted_words(const char *list) {
    char copy[4096], *words[256];
    int n = 0;
    snprintf(copy, sizeof copy, "%s", list);
    for (char *w = strtok(copy, " "); w && n < 256; w = strtok(NULL, " ")) words[n++] = w;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(words[j - 1], words[j]) > 0; j--) {
            char *t = words[j];
            words[j] = words[j - 1];
            words[j - 1] = t;
        }
    char *out = calloc(1, 4096 + 256);
    assert_non_null(out);
    for (int i = 0; i < n; i++) {
        if (i > 0 && strcmp(words[i], words[i - 1]) == 0) continue;
        strcat(out, words[i]);
        strcat(out, "\n");
    }
    return out;
}

/* One man page rendered by groff, without warnings. */
static void test_man_page_renders(void **state) {
    const char *name = *state;
    test_require_posix("groff, through /bin/sh");
    char page_path[300], command[4400];
    snprintf(page_path, sizeof page_path, "man/%s.1", name);
    snprintf(command, sizeof command, "groff -man -Tutf8 -ww -z '%s'", test_source_path(page_path));
    char *groff[] = {"/bin/sh", "-c", command, NULL};
    test_run r;
    assert_int_equal(test_run_program(groff, NULL, NULL, 0, &r), 0);
    if (r.err_len > 0) fail_msg("groff warns about %s:\n%s", page_path, r.err);
    test_run_free(&r);
}

/* One man page: the library's version, and the program's options (the
 * program is skipped by name when it is not built). */
static void test_man_page(void **state) {
    const char *name = *state;
    char page_path[300];
    snprintf(page_path, sizeof page_path, "man/%s.1", name);
    char *page = test_read_file(test_source_path(page_path), NULL);
    if (!page) fail_msg("cannot read %s", test_source_path(page_path));
    test_run r;

    if (!strstr(page, "\"llama2 " LLAMA2_VERSION "\""))
        fail_msg("%s: its .TH line does not name version %s", page_path, LLAMA2_VERSION);

    const char *program = strcmp(name, "llama2") == 0 ? test_llama2_bin() : test_require_tool(name);
    char *help[] = {(char *)program, "--help", NULL};
    assert_int_equal(test_run_program(help, NULL, NULL, 0, &r), 0);
    static char from_help[4096], from_page[4096];
    help_options(r.out, from_help, sizeof from_help);
    man_options(page, from_page, sizeof from_page);
    test_run_free(&r);
    char *a = sorted_words(from_help), *b = sorted_words(from_page);
    assert_true(strlen(a) > 0);
    if (strcmp(a, b) != 0) fail_msg("%s --help lists the options\n%sand %s\n%s", name, a, page_path, b);
    free(a);
    free(b);
    free(page);
}

static void test_server_options_in_readme(void **state) {
    (void)state;
    const char *server = test_require_tool("llama2-server");
    char *argv[] = {(char *)server, "--help", NULL};
    test_run r;
    assert_int_equal(test_run_program(argv, NULL, NULL, 0, &r), 0);
    char *readme = read_readme();
    char *section_text = section(readme, "Server");
    int missing = 0;
    for (const char *p = r.out; (p = strstr(p, "--")) != NULL;) {
        size_t n = 2 + strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
        char option[64];
        snprintf(option, sizeof option, "%.*s", (int)n, p);
        p += n;
        if (n <= 2 || strcmp(option, "--help") == 0 || strcmp(option, "--version") == 0) continue;
        if (!strstr(section_text, option)) {
            print_message("the README's Server section does not name %s\n", option);
            missing++;
        }
    }
    test_run_free(&r);
    free(section_text);
    free(readme);
    assert_int_equal(missing, 0);
}

int main(void) {
    static struct CMUnitTest tests[3 + 2 + 2 * 64] = {
        cmocka_unit_test(test_readme_usage_is_help),
        cmocka_unit_test(test_layout_names_every_folder),
        cmocka_unit_test(test_folder_readmes_name_every_file),
        cmocka_unit_test(test_tools_table_names_every_tool),
        cmocka_unit_test(test_every_program_has_a_man_page),
        cmocka_unit_test(test_server_options_in_readme),
    };
    /* Two tests a man page, named after it. */
    static char names[64][256], test_names[2 * 64][300];
    char *readme = test_read_file(test_source_path("README.md"), NULL);
    int n_tests = 5, n_names = readme && strstr(readme, "\n## Tools\n") ? programs(names, 64) : 0;
    free(readme);
    for (int i = 0; i < n_names; i++) {
        snprintf(test_names[2 * i], sizeof test_names[0], "test_man_page(%.200s)", names[i]);
        tests[n_tests++] = (struct CMUnitTest){test_names[2 * i], test_man_page, NULL, NULL, names[i]};
        snprintf(test_names[2 * i + 1], sizeof test_names[0], "test_man_page_renders(%.200s)", names[i]);
        tests[n_tests++] = (struct CMUnitTest){test_names[2 * i + 1], test_man_page_renders, NULL, NULL, names[i]};
    }
    return _cmocka_run_group_tests("test_docs", tests, (size_t)n_tests, NULL, NULL);
}
