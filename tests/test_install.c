/*
 * The library as an embedder gets it: `make install` into a staging folder
 * ($LLAMA2_STAGE, the DESTDIR; $LLAMA2_PREFIX inside it, default
 * /usr/local), then
 *   - the shared and the static library export exactly the LLAMA2_API
 *     functions of the installed header, and nothing else;
 *   - the shared library's soname and links, llama2.pc's version and flags;
 *   - the examples (examples/generate.c, examples/chat.c) compiled with the
 *     flags of pkg-config alone, linked dynamically and statically, and run:
 *     the generation example's greedy text is llama2.c's; the chat example's
 *     replies are those of the conversation evaluated afresh (the second
 *     reuses the cached positions of the first turn), and its first is the
 *     llama2 program's;
 *   - every installed program has its man page, and `make uninstall`
 *     removes all that was installed and nothing else;
 *   - docs/API.md's two recipes, an install in $HOME/.local and a staged
 *     one, run as written give the llama2 program's text.
 * The compiler is $LLAMA2_CC (default cc); the models come from
 * $LLAMA2_MODELS, and a test without them is skipped by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llama2.h"
#include "support.h"

static char stage[1024];   /* the DESTDIR */
static char prefix[256];   /* where the install is meant to be */
static char root[1300];    /* where it is staged: stage + prefix */
static char tmp_dir[1024]; /* the examples' programs */

/* ------------------------------------------------------------ helpers */

/* Runs `command` with /bin/sh, input as its standard input (NULL: none);
 * returns its standard output (malloc'd) and its exit status in *status. */
static char *sh(const char *command, const char *input, int *status) {
    char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
    test_run r;
    *status = test_run_program(argv, NULL, input, input ? strlen(input) : 0, &r);
    if (*status != 0) fprintf(stderr, "%s", r.err ? r.err : "");
    char *out = r.out;
    r.out = NULL;
    test_run_free(&r);
    return out;
}

/* The same, failing the test unless the command succeeds. */
static char *sh_input_ok(const char *command, const char *input) {
    int status;
    char *out = sh(command, input, &status);
    if (status != 0) fail_msg("`%s` exited with status %d", command, status);
    return out;
}

static char *sh_ok(const char *fmt, ...) {
    char command[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(command, sizeof command, fmt, ap);
    va_end(ap);
    return sh_input_ok(command, NULL);
}

static const char *compiler(void) { return getenv("LLAMA2_CC") ? getenv("LLAMA2_CC") : "cc"; }

/* The names of the functions the installed header marks LLAMA2_API, each
 * followed by a newline, sorted. */
static char *public_functions(void) {
    return sh_ok("sed -n 's/^LLAMA2_API [^(]*[^a-z0-9_]\\(llama2_[a-z0-9_]*\\)(.*/\\1/p' '%s/include/llama2.h' | sort",
                 root);
}

/* Every defined global symbol `nm_command` lists is a public function, and
 * every public function is among them. */
static void check_exports(const char *nm_command) {
    char *exported = sh_ok("%s | awk 'NF == 3 && $2 != \"U\" && $2 != \"w\" && $2 != \"v\" {print $3}' | sort -u",
                           nm_command);
    char *expected = public_functions();
    assert_true(strlen(expected) > 0);
    for (char *line = exported, *end; *line; line = end + 1) {
        end = strchr(line, '\n');
        if (!end) break;
        *end = '\0';
        if (strncmp(line, "llama2_", 7) != 0) fail_msg("exported, not llama2_: %s (%s)", line, nm_command);
        *end = '\n';
    }
    assert_string_equal(exported, expected);
    free(exported);
    free(expected);
}

/* The path of file `name` of the stage's prefix, in a rotating buffer. */
static const char *staged(const char *name) {
    static char buf[4][2048];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", root, name);
    return p;
}

/* Compiles examples/<name>.c with the flags of pkg-config alone, into
 * tmp_dir/<name>-static or -shared. */
static const char *build_example(const char *name, int static_link) {
    static char program[4400];
    char source[256];
    snprintf(source, sizeof source, "examples/%s.c", name);
    snprintf(program, sizeof program, "%s/%s-%s", tmp_dir, name, static_link ? "static" : "shared");
    free(sh_ok("%s -std=c11 -O2 -Wall -Wextra -Werror $(pkg-config --cflags llama2) -o '%s' '%s' %s"
               "$(pkg-config %s--libs llama2)",
               compiler(), program, test_source_path(source), static_link ? "-static " : "",
               static_link ? "--static " : ""));
    return program;
}

static int setup(void **state) {
    (void)state;
    const char *s = getenv("LLAMA2_STAGE");
    if (!s || !*s) {
        fprintf(stderr, "LLAMA2_STAGE is not set (make test-install sets it)\n");
        return -1;
    }
    snprintf(stage, sizeof stage, "%s", s);
    snprintf(prefix, sizeof prefix, "%s", getenv("LLAMA2_PREFIX") ? getenv("LLAMA2_PREFIX") : "/usr/local");
    snprintf(root, sizeof root, "%s%s", stage, prefix);
    if (test_tmp_dir_create(tmp_dir, sizeof tmp_dir, "install") != 0) return -1;
    /* pkg-config sees the staged llama2.pc only, and puts the stage before
     * the folders it names, as a package build's would. */
    char pc[4400];
    snprintf(pc, sizeof pc, "%s/lib/pkgconfig", root);
    setenv("PKG_CONFIG_LIBDIR", pc, 1);
    unsetenv("PKG_CONFIG_PATH");
    setenv("PKG_CONFIG_SYSROOT_DIR", stage, 1);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_tmp_dir_remove(tmp_dir);
    return 0;
}

/* ------------------------------------------------------------ the libraries */

static void test_shared_library_exports_only_the_api(void **state) {
    (void)state;
    char command[4600];
    snprintf(command, sizeof command, "nm -D --defined-only '%s'", staged("lib/libllama2.so"));
    check_exports(command);
}

static void test_static_library_exports_only_the_api(void **state) {
    (void)state;
    char command[4600];
    snprintf(command, sizeof command, "nm -g --defined-only '%s'", staged("lib/libllama2.a"));
    check_exports(command);
}

static void test_soname_and_links(void **state) {
    (void)state;
    char so[64], so_major[64];
    snprintf(so, sizeof so, "libllama2.so.%s", LLAMA2_VERSION);
    snprintf(so_major, sizeof so_major, "libllama2.so.%.*s", (int)strcspn(LLAMA2_VERSION, "."), LLAMA2_VERSION);
    char target[256];
    ssize_t n = readlink(staged("lib/libllama2.so"), target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, so_major);
    char path[128];
    snprintf(path, sizeof path, "lib/%s", so_major);
    n = readlink(staged(path), target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, so);
    char *soname = sh_ok("readelf -d '%s' | sed -n 's/.*(SONAME).*\\[\\(.*\\)\\]/\\1/p'", staged("lib/libllama2.so"));
    char expected[128];
    snprintf(expected, sizeof expected, "%s\n", so_major);
    assert_string_equal(soname, expected);
    free(soname);
}

static void test_pkg_config(void **state) {
    (void)state;
    char *version = sh_ok("pkg-config --modversion llama2");
    assert_string_equal(version, LLAMA2_VERSION "\n");
    free(version);
    char *cflags = sh_ok("pkg-config --cflags llama2");
    char expected[4600];
    snprintf(expected, sizeof expected, "-I%s \n", staged("include"));
    assert_string_equal(cflags, expected);
    free(cflags);
    char *libs = sh_ok("pkg-config --libs llama2");
    snprintf(expected, sizeof expected, "-L%s -lllama2 \n", staged("lib"));
    assert_string_equal(libs, expected);
    free(libs);
}

/* ------------------------------------------------------------ the examples */

/* Runs an example built against the staged libraries. */
static char *run_example(const char *program, const char *args, const char *input) {
    char command[16384];
    snprintf(command, sizeof command, "LD_LIBRARY_PATH='%s' '%s' %s", staged("lib"), program, args);
    return sh_input_ok(command, input);
}

/* Whether the program loads libllama2.so at run time. */
static int links_shared_library(const char *program) {
    char command[4600];
    snprintf(command, sizeof command, "readelf -d '%s' | grep -c 'NEEDED.*\\[libllama2\\.so' || true", program);
    char *count = sh_input_ok(command, NULL);
    int n = atoi(count);
    free(count);
    return n > 0;
}

static void check_generate(int static_link) {
    test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
    const char *program = build_example("generate", static_link);
    assert_int_equal(links_shared_library(program), !static_link);
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s' 'Once upon a time' 64", test_model_path("stories260K.bin"),
             test_model_path("tok512.bin"));
    char *out = run_example(program, args, NULL);
    char *expected = test_read_file(test_golden_path("run_260K_t0_n64_i-once.expected.txt"), NULL);
    assert_non_null(expected);
    assert_string_equal(out, expected);
    free(out);
    free(expected);
}

static void test_generate_example_shared(void **state) {
    (void)state;
    check_generate(0);
}

static void test_generate_example_static(void **state) {
    (void)state;
    check_generate(1);
}

static const char *const turns[] = {"Tell me a story about a cat.", "What happened next?"};

/* The reply to `conversation` in `tmpl`, evaluated from position 0 in a
 * fresh session: greedy, at most 256 tokens or the end of the context,
 * ending at EOS. */
static char *fresh_reply(llama2_chat_template tmpl, const llama2_chat_message *conversation, int n) {
    llama2_error err;
    llama2_model *model;
    llama2_tokenizer *tok;
    llama2_session *session;
    llama2_sampler *sampler;
    llama2_text_stream *stream;
    assert_int_equal(llama2_model_open(test_model_path("stories260K.bin"), NULL, &model, &err), LLAMA2_OK);
    assert_int_equal(llama2_tokenizer_open(test_model_path("tok512.bin"), 512, &tok, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_create(model, NULL, &session, &err), LLAMA2_OK);
    assert_int_equal(llama2_sampler_create(512, &(llama2_sampler_options){0}, &sampler, &err), LLAMA2_OK);
    assert_int_equal(llama2_text_stream_create(tok, NULL, &stream, &err), LLAMA2_OK);
    int *ids, n_ids;
    assert_int_equal(llama2_chat_encode(tok, tmpl, conversation, n, 1, &ids, &n_ids, &err), LLAMA2_OK);
    float *logits;
    assert_int_equal(llama2_session_eval(session, ids, n_ids, 0, &logits, &err), LLAMA2_OK);
    size_t cap = 1 << 16, len = 0;
    char *reply = calloc(cap, 1);
    int prev = ids[n_ids - 1];
    const int context = llama2_session_context_length(session);
    for (int i = 0, pos = n_ids; i < 256 && pos < context; i++, pos++) {
        int next = llama2_sampler_sample(sampler, logits);
        if (next == LLAMA2_TOKEN_EOS) break;
        const char *text;
        size_t n_text;
        llama2_text_stream_push(stream, prev, next, &text, &n_text);
        assert_true(len + n_text < cap);
        memcpy(reply + len, text, n_text);
        len += n_text;
        assert_int_equal(llama2_session_eval(session, &next, 1, pos, &logits, &err), LLAMA2_OK);
        prev = next;
    }
    free(ids);
    llama2_text_stream_destroy(stream);
    llama2_sampler_destroy(sampler);
    llama2_session_destroy(session);
    llama2_tokenizer_close(tok);
    llama2_model_close(model);
    return reply;
}

/* The chat example's two replies to `turns` in template `name`, greedy:
 * its output split after the first reply, whose text is expected_first. */
static char *chat_example(int static_link, const char *name, const char *expected_first, char **second) {
    test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
    const char *program = build_example("chat", static_link);
    assert_int_equal(links_shared_library(program), !static_link);
    char args[4096], input[512];
    snprintf(args, sizeof args, "'%s' '%s' %s 0", test_model_path("stories260K.bin"), test_model_path("tok512.bin"),
             name);
    snprintf(input, sizeof input, "%s\n%s\n", turns[0], turns[1]);
    char *out = run_example(program, args, input);
    /* A reply may hold newlines: it is the text of expected_first. */
    size_t first_len = strlen(expected_first);
    assert_true(first_len > 0);
    if (strncmp(out, expected_first, first_len) != 0 || out[first_len] != '\n')
        fail_msg("the chat example's first reply is not\n%s\n--- it wrote:\n%s", expected_first, out);
    *second = out + first_len + 1;
    size_t second_len = strlen(*second);
    assert_true(second_len > 1 && (*second)[second_len - 1] == '\n');
    (*second)[second_len - 1] = '\0';
    return out;
}

/* In the Llama 2 template, where the reply as the example re-encodes it
 * (" {text}") is not the tokens it sampled: the second turn rewinds the
 * cached positions to where they differ. Both replies must be those of the
 * conversation evaluated afresh. */
static void check_chat(int static_link) {
    test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
    const llama2_chat_message conversation[3] = {{"user", turns[0]}, {"assistant", NULL}, {"user", turns[1]}};
    llama2_chat_message c[3] = {conversation[0], conversation[1], conversation[2]};
    char *first = fresh_reply(LLAMA2_TEMPLATE_LLAMA2, c, 1), *second;
    char *out = chat_example(static_link, "llama2", first, &second);
    c[1].content = first;
    char *expected = fresh_reply(LLAMA2_TEMPLATE_LLAMA2, c, 3);
    assert_true(strlen(expected) > 0);
    assert_string_equal(second, expected);
    free(expected);
    free(first);
    free(out);
}

static void test_chat_example_shared(void **state) {
    (void)state;
    check_chat(0);
}

static void test_chat_example_static(void **state) {
    (void)state;
    check_chat(1);
}

/* The example's first reply in the Zephyr template is the llama2 program's
 * (which builds its turns with the library's internal chat builder). */
static void test_chat_example_is_the_program(void **state) {
    (void)state;
    test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
    char input[512];
    snprintf(input, sizeof input, "\n%s\n", turns[0]);
    char *argv[] = {(char *)test_llama2_bin(), (char *)test_model_path("stories260K.bin"), "-z",
                    (char *)test_model_path("tok512.bin"), "-m", "chat", "--chat-template", "zephyr", "-t", "0",
                    "--reply-tokens", "256", "--no-timer", NULL};
    test_run r;
    assert_int_equal(test_run_program(argv, NULL, input, strlen(input), &r), 0);
    const char *start = strstr(r.out, "Assistant: ");
    assert_non_null(start);
    start += strlen("Assistant: ");
    const char *end = strstr(start, "\nUser: ");
    assert_non_null(end);
    char *first = strndup(start, (size_t)(end - start)), *second;
    test_run_free(&r);
    free(chat_example(0, "zephyr", first, &second));
    free(first);
}

/* ------------------------------------------------------------ programs, uninstall */

static void test_programs_and_man_pages(void **state) {
    (void)state;
    char *programs = sh_ok("ls '%s'", staged("bin"));
    char page[300];
    assert_non_null(strstr(programs, "llama2\n"));
    assert_non_null(strstr(programs, "llama2-quantize\n"));
    for (char *name = programs, *end; (end = strchr(name, '\n')) != NULL; name = end + 1) {
        *end = '\0';
        snprintf(page, sizeof page, "share/man/man1/%.200s.1", name);
        struct stat st;
        if (stat(staged(page), &st) != 0) fail_msg("%s is installed without its man page %s", name, page);
    }
    free(programs);
    char *version = sh_ok("'%s' --version", staged("bin/llama2"));
    assert_non_null(strstr(version, "llama2 " LLAMA2_VERSION "\n"));
    free(version);
}

/* `make uninstall` on a copy of the stage: nothing it installed is left, and
 * a file it did not install stays. */
static void test_uninstall(void **state) {
    (void)state;
    char copy[4400];
    snprintf(copy, sizeof copy, "%s/stage", tmp_dir);
    free(sh_ok("cp -a '%s' '%s' && echo mine >'%s%s/lib/other.txt'", stage, copy, copy, prefix));
    free(sh_ok("env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR "
               "%s -s -C '%s' uninstall DESTDIR='%s' PREFIX='%s' >/dev/null",
               getenv("MAKE") ? getenv("MAKE") : "make", test_source_path("."), copy, prefix));
    char *left = sh_ok("cd '%s' && find . ! -type d | sort", copy);
    char expected[4600];
    snprintf(expected, sizeof expected, ".%s/lib/other.txt\n", prefix);
    assert_string_equal(left, expected);
    free(left);
}

/* ------------------------------------------------------ docs/API.md's recipes */

/* Replaces every `from` in *text (malloc'd) with `to`. */
static void replace_all(char **text, const char *from, const char *to) {
    size_t n = 0;
    for (const char *p = strstr(*text, from); p; p = strstr(p + strlen(from), from)) n++;
    char *out = malloc(strlen(*text) + n * strlen(to) + 1);
    assert_non_null(out);
    char *o = out;
    const char *p = *text;
    for (const char *hit; (hit = strstr(p, from)) != NULL; p = hit + strlen(from)) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, to, strlen(to));
        o += strlen(to);
    }
    strcpy(o, p);
    free(*text);
    *text = out;
}

/* The lines of the first ```sh block after the line of docs/API.md that
 * holds `after` (malloc'd). */
static char *api_recipe(const char *after) {
    char *doc = test_read_file(test_source_path("docs/API.md"), NULL);
    assert_non_null(doc);
    const char *at = strstr(doc, after);
    assert_non_null(at);
    const char *start = strstr(at, "```sh\n");
    assert_non_null(start);
    start += strlen("```sh\n");
    const char *end = strstr(start, "```");
    assert_non_null(end);
    char *block = malloc((size_t)(end - start) + 1);
    assert_non_null(block);
    memcpy(block, start, (size_t)(end - start));
    block[end - start] = '\0';
    free(doc);
    return block;
}

/* Runs a recipe as written, from the source folder, with HOME in a folder
 * of its own and these changes only: /tmp/stage is a folder of the test's,
 * the program is written there too, make's lines print nothing, cc is the
 * compiler of this build and models/ the test's models. Its output must be
 * the llama2 program's greedy text. */
static void run_recipe(const char *after, const char *folder) {
    test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
    char dir[4400], home[4500], program[4500], models[4400], cc[300], make[300];
    snprintf(dir, sizeof dir, "%s/%s", tmp_dir, folder);
    free(sh_ok("mkdir -p '%s/home' '%s/stage'", dir, dir));
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(program, sizeof program, "%s/generate", dir);
    snprintf(models, sizeof models, "%s/", getenv("LLAMA2_MODELS") ? getenv("LLAMA2_MODELS") : "models");
    snprintf(cc, sizeof cc, "\n%s ", compiler());
    snprintf(make, sizeof make, "\n%s -s ", getenv("MAKE") ? getenv("MAKE") : "make");
    char *script = api_recipe(after);
    char stage_dir[4500];
    snprintf(stage_dir, sizeof stage_dir, "%s/stage", dir);
    char *lines = malloc(strlen(script) + 2);
    assert_non_null(lines);
    lines[0] = '\n';
    strcpy(lines + 1, script);
    free(script);
    replace_all(&lines, "/tmp/stage", stage_dir);
    replace_all(&lines, "\nmake ", make);
    replace_all(&lines, "\ncc ", cc);
    replace_all(&lines, "-o generate", "-o \"$RECIPE_PROGRAM\"");
    replace_all(&lines, "./generate", "\"$RECIPE_PROGRAM\"");
    replace_all(&lines, " models/", " \"$RECIPE_MODELS\"");
    /* make's own lines go to /dev/null: the output is the program's. */
    for (char *p = strstr(lines, make); p; p = strstr(p + 1, make)) {
        char *eol = strchr(p + 1, '\n');
        assert_non_null(eol);
        size_t at = (size_t)(eol - lines);
        char *longer = malloc(strlen(lines) + 16);
        assert_non_null(longer);
        memcpy(longer, lines, at);
        strcpy(longer + at, " >/dev/null");
        strcat(longer, lines + at);
        free(lines);
        lines = longer;
        p = lines + at;
    }
    char command[16384];
    snprintf(command, sizeof command,
             "cd '%s' && env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR -u PKG_CONFIG_PATH -u LD_LIBRARY_PATH "
             "HOME='%s' RECIPE_PROGRAM='%s' RECIPE_MODELS='%s' /bin/sh -e -c '%s'",
             test_source_path("."), home, program, models, lines);
    assert_null(strchr(lines, '\''));
    free(lines);
    char *out = sh_ok("%s", command);
    char *expected = sh_ok("'%s' '%sstories260K.bin' -z '%stok512.bin' -t 0 -n 32 -i 'Once upon a time' --no-timer",
                           test_llama2_bin(), models, models);
    assert_string_equal(out, expected);
    free(out);
    free(expected);
}

static void test_recipe_home(void **state) {
    (void)state;
    run_recipe("In your home folder", "recipe-home");
}

static void test_recipe_staged(void **state) {
    (void)state;
    run_recipe("Staged under a `DESTDIR`", "recipe-staged");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_library_exports_only_the_api),
        cmocka_unit_test(test_static_library_exports_only_the_api),
        cmocka_unit_test(test_soname_and_links),
        cmocka_unit_test(test_pkg_config),
        cmocka_unit_test(test_generate_example_shared),
        cmocka_unit_test(test_generate_example_static),
        cmocka_unit_test(test_chat_example_shared),
        cmocka_unit_test(test_chat_example_static),
        cmocka_unit_test(test_chat_example_is_the_program),
        cmocka_unit_test(test_programs_and_man_pages),
        cmocka_unit_test(test_uninstall),
        cmocka_unit_test(test_recipe_home),
        cmocka_unit_test(test_recipe_staged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
