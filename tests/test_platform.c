/*
 * What every operating system must give alike (src/platform/platform.h), through the
 * library and the real programs ($LLAMA2_BIN and the tools beside it):
 *   - file names with spaces and letters beyond ASCII, in arguments, for
 *     models, tokenizers, prompt files and outputs, and in messages;
 *   - a model file larger than 4 GiB (sparse, made here): mapped whole,
 *     its last bytes read where they are, and its size said exactly when it
 *     is one byte too long, so that no size is cut to 32 bits;
 *   - chat input with CR LF line ends: on Windows a line end, as the C
 *     library's text mode reads it there (and llama2.c with it); elsewhere
 *     the CR is the user's text, as llama2.c reads it;
 *   - Ctrl-C in chat, at the prompt and in the middle of a reply, through
 *     pipes (SIGINT; on Windows the console's Ctrl-C event);
 *   - standard output byte for byte, no CR added before LF.
 * Tests whose model files are absent are skipped by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint_format.h"
#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "model/model.h"
#include "child.h"
#include "platform/platform.h"
#include "support.h"

static char dir[4096];

static int group_setup(void **state) { return test_tmp_dir_create(dir, sizeof dir, "test-platform"); }

static int group_teardown(void **state) {
    test_tmp_dir_remove(dir);
    return 0;
}

static int test_setup(void **state) { return test_dir_entries(dir, 1) < 0 ? -1 : 0; }

/* Runs argv (NULL-terminated) with `input` on standard input (NULL: none). */
static int run(test_run *r, const char *input, char *const *argv) {
    return test_run_program(argv, NULL, input, input ? strlen(input) : 0, r);
}

static void copy_file(const char *from, const char *to) {
    size_t n = 0;
    char *data = test_read_file(from, &n);
    assert_non_null(data);
    test_write_file(to, data, n, 0644);
    free(data);
}

/* ------------------------------------------------------ file names */

/* The same story from files whose names hold spaces, accents and CJK, and
 * a quantized copy written to such a name; messages name them exactly. */
static void test_names_beyond_ascii(void **state) {
    const char *model = test_require_model("stories260K.bin");
    const char *tokenizer = test_require_model("tok512.bin");
    char folder[4200], m[4300], t[4300], prompt[4300], q[4300], missing[4300];
    snprintf(folder, sizeof folder, "%s", test_path_in(dir, "a folder \xc3\xbc \xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"));
    assert_int_equal(l2_make_folder(folder), 0);
    snprintf(m, sizeof m, "%s", test_path_in(folder, "model \xc3\xbc.bin"));
    snprintf(t, sizeof t, "%s", test_path_in(folder, "tok \xc3\xa9.bin"));
    snprintf(prompt, sizeof prompt, "%s", test_path_in(folder, "prompt \xe6\x97\xa5.txt"));
    snprintf(q, sizeof q, "%s", test_path_in(folder, "q \xc3\x9f.bin"));
    snprintf(missing, sizeof missing, "%s", test_path_in(folder, "missing \xc3\xbc.bin"));
    copy_file(model, m);
    copy_file(tokenizer, t);
    test_write_file(prompt, "Once upon a time\n", 17, 0644);

    test_run plain, named;
    char *a[] = {(char *)test_llama2_bin(), (char *)model, "-z", (char *)tokenizer, "-t", "0", "-n", "40",
                 "--no-timer", "-i", "Once upon a time", NULL};
    char *b[] = {(char *)test_llama2_bin(), m, "-z", t, "-t", "0", "-n", "40", "--no-timer", "-f", prompt, NULL};
    assert_int_equal(run(&plain, NULL, a), 0);
    assert_int_equal(run(&named, NULL, b), 0);
    assert_true(plain.out_len > 40);
    assert_int_equal(named.out_len, plain.out_len);
    assert_memory_equal(named.out, plain.out, plain.out_len);
    test_run_free(&plain);
    test_run_free(&named);

    /* The library opens them too. */
    llama2_model *opened = NULL;
    llama2_error err = {0};
    assert_int_equal(llama2_model_open(m, NULL, &opened, &err), LLAMA2_OK);
    llama2_model_close(opened);
    llama2_tokenizer *tok = NULL;
    assert_int_equal(llama2_tokenizer_open(t, 512, &tok, &err), LLAMA2_OK);
    llama2_tokenizer_close(tok);

    /* A tool writes to such a name, and refuses to write over it. */
    test_run r;
    char *quantize[] = {(char *)test_require_tool("llama2-quantize"), m, q, NULL};
    assert_int_equal(run(&r, NULL, quantize), 0);
    test_run_free(&r);
    assert_int_equal(llama2_model_open(q, NULL, &opened, &err), LLAMA2_OK);
    assert_int_equal(llama2_model_config(opened)->file_version, 2);
    llama2_model_close(opened);
    assert_int_equal(run(&r, NULL, quantize), 1);
    char want[8192];
    snprintf(want, sizeof want, "llama2-quantize: %s: already exists (--force replaces it)\n", q);
    assert_string_equal(r.err, want);
    test_run_free(&r);

    /* The name comes back in the message as it was given. */
    char *c[] = {(char *)test_llama2_bin(), missing, "-z", t, NULL};
    assert_int_equal(run(&r, NULL, c), 1);
    snprintf(want, sizeof want, "llama2: %s: cannot open: No such file or directory\n", missing);
    assert_string_equal(r.err, want);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(folder),
                        "model \xc3\xbc.bin prompt \xe6\x97\xa5.txt q \xc3\x9f.bin tok \xc3\xa9.bin");
}

/* -------------------------------------------------- a file over 4 GiB */

/* A version 1 model of two 2 GiB matrices (the embedding and a classifier
 * of its own: 4,198,400 x 128 floats each), all zeros but a marker in the
 * first and the last float of the file's tensors. */
static llama2_config big_config(void) {
    return l2_random_model_config(128, 128, 1, 2, 2, 4198400, 16, 0, 1, 0);
}

static void write_big(const char *path, uint64_t extra) {
    llama2_config c = big_config();
    unsigned char header[L2_V1_HEADER_BYTES];
    size_t header_bytes = l2_header_encode(&c, header), total = 0;
    assert_true(l2_checkpoint_bytes(&c, 1, &total));
    const float first = 0.25f, last = 1234.5f;
    test_file_part parts[] = {
        {0, header, header_bytes},
        {header_bytes, &first, sizeof first},
        {total - sizeof last, &last, sizeof last},
    };
    assert_int_equal(test_write_sparse(path, total + extra, parts, 3), 0);
}

static void test_model_over_4_gib(void **state) {
    llama2_config c = big_config();
    size_t total = 0;
    assert_true(l2_checkpoint_bytes(&c, 1, &total));
    assert_true((uint64_t)total > ((uint64_t)1 << 32));
    char path[4300];
    snprintf(path, sizeof path, "%s", test_path_in(dir, "big \xc3\xbc.bin"));
    write_big(path, 0);
    int64_t size = 0;
    assert_int_equal(l2_path_lookup(path, NULL, &size), L2_PATH_FILE);
    assert_true((uint64_t)size == (uint64_t)total);

    /* Mapped whole: the classifier's last float is the file's last bytes. */
    llama2_model *m = NULL;
    llama2_error err = {0};
    if (llama2_model_open(path, NULL, &m, &err) != LLAMA2_OK) fail_msg("%s", err.message);
    const llama2_config *got = llama2_model_config(m);
    assert_int_equal(got->vocab_size, c.vocab_size);
    assert_int_equal(got->shared_classifier, 0);
    const float *classifier = l2_model_f32(m, L2_TENSOR_CLASSIFIER, 0);
    assert_true(classifier[(size_t)c.vocab_size * (size_t)c.dim - 1] == 1234.5f);
    llama2_model_close(m);

    /* One byte more: refused, with the whole size in the message, by the
     * library and by the program. */
    test_remove(path);
    write_big(path, 1);
    char want[512];
    snprintf(want, sizeof want, "1 unexpected bytes after the last tensor (the header implies %zu bytes)", total);
    assert_int_equal(llama2_model_open(path, NULL, &m, &err), LLAMA2_E_FORMAT);
    assert_string_equal(err.message, want);
    test_run r;
    char *argv[] = {(char *)test_llama2_bin(), path, NULL};
    assert_int_equal(run(&r, NULL, argv), 1);
    char line[8192];
    snprintf(line, sizeof line, "llama2: %s: %s\n", path, want);
    assert_string_equal(r.err, line);
    test_run_free(&r);
    test_remove(path);
}

/* ------------------------------------------------------- CR LF input */

static void test_crlf_chat_input(void **state) {
    const char *model = test_require_model("stories260K.bin");
    const char *tokenizer = test_require_model("tok512.bin");
    char *argv[] = {(char *)test_llama2_bin(), (char *)model, "-z", (char *)tokenizer, "-m", "chat", "-t", "0",
                    "-n", "100", "--no-timer", NULL};
    test_run lf, crlf;
    assert_int_equal(run(&lf, "You are kind.\nHello\n", argv), 0);
    assert_int_equal(run(&crlf, "You are kind.\r\nHello\r\n", argv), 0);
    assert_non_null(strstr(lf.out, "Assistant: "));
    assert_null(strchr(lf.out, '\r'));
    int same = crlf.out_len == lf.out_len && memcmp(crlf.out, lf.out, lf.out_len) == 0;
    if (test_crlf_is_newline)
        assert_true(same);
    else
        assert_false(same); /* the CR is part of each line, as llama2.c reads it */
    assert_string_equal(crlf.err, "llama2: chat ended: the step limit is reached (-n 100)\n");
    test_run_free(&lf);
    test_run_free(&crlf);
}

/* ---------------------------------------------------- Ctrl-C in chat */

/* Waits until the child's output holds `text` after offset `from`; returns
 * the offset after it. */
static size_t expect(l2_child *c, const char *text, size_t from, double seconds) {
    int64_t end = l2_monotonic_ns() + (int64_t)(seconds * 1e9);
    for (;;) {
        size_t len = 0;
        char *out = l2_child_output(c, &len);
        assert_non_null(out);
        const char *at = from <= len ? strstr(out + from, text) : NULL;
        size_t after = at ? (size_t)(at - out) + strlen(text) : 0;
        free(out);
        if (at) return after;
        if (l2_monotonic_ns() > end || !l2_child_running(c)) fail_msg("no \"%s\" in the output", text);
        test_sleep_ms(5);
    }
}

static l2_child *start_chat(char *const *argv) {
    l2_child *c = NULL;
    unsigned flags = L2_CHILD_CAPTURE | L2_CHILD_INTERRUPTIBLE | L2_CHILD_KEEP_INPUT;
    assert_int_equal(l2_child_start(argv, NULL, NULL, 0, flags, &c), 0);
    return c;
}

static void finish(l2_child *c, const char *want_err) {
    char *err = NULL;
    int status = l2_child_wait(c, NULL, NULL, &err, NULL);
    assert_int_equal(status, 0);
    assert_string_equal(err, want_err);
    free(err);
}

static void test_ctrl_c_at_the_prompt(void **state) {
    const char *model = test_require_model("stories260K.bin");
    const char *tokenizer = test_require_model("tok512.bin");
    char *argv[] = {(char *)test_llama2_bin(), (char *)model, "-z", (char *)tokenizer, "-m", "chat", "-y", "",
                    "--no-timer", NULL};
    l2_child *c = start_chat(argv);
    expect(c, "User: ", 0, 60);
    assert_int_equal(l2_child_interrupt(c), 0);
    finish(c, "llama2: chat ended: Ctrl-C at the prompt\n");
}

/* A random model never writes EOS: only Ctrl-C ends its reply early. */
static void test_ctrl_c_mid_reply(void **state) {
    const char *tokenizer = test_require_model("tok512.bin");
    char slow[4300];
    snprintf(slow, sizeof slow, "%s", test_path_in(dir, "slow.bin"));
    llama2_config config = l2_random_model_config(256, 512, 6, 8, 8, 512, 1024, 1, 1, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(slow, &config, 3, 0, &err), LLAMA2_OK);
    char *argv[] = {(char *)test_llama2_bin(), slow, "-z", (char *)tokenizer, "-m", "chat", "-y", "", "-t", "0",
                    "--threads", "1", "--no-timer", NULL};
    l2_child *c = start_chat(argv);
    size_t at = expect(c, "User: ", 0, 60);
    assert_int_equal(l2_child_send(c, "hi\n", 3), 0);
    at = expect(c, "Assistant: ", at, 60);
    /* Well into the reply, then Ctrl-C: the prompt comes back. */
    size_t len = 0;
    do {
        free(l2_child_output(c, &len));
        test_sleep_ms(5);
    } while (len < at + 20 && l2_child_running(c));
    assert_int_equal(l2_child_interrupt(c), 0);
    expect(c, "User: ", at, 30);
    l2_child_end_input(c);
    finish(c, "llama2: chat ended: end of input\n");
}

/* The level 3 cache: on Linux, every instance of cpu0's size (sysfs), at
 * least one; where the machine says nothing of it, 0. */
static void test_l3_cache_bytes(void **state) {
    (void)state;
    const size_t total = l2_l3_cache_bytes();
#if defined(__linux__)
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    char text[64] = "";
    if (!f || !fgets(text, sizeof text, f)) {
        if (f) fclose(f);
        print_message("skipped: this machine's sysfs describes no level 3 cache\n");
        skip();
    }
    fclose(f);
    char *end;
    size_t one = (size_t)strtoull(text, &end, 10);
    if (*end == 'K') one <<= 10;
    if (*end == 'M') one <<= 20;
    assert_true(one > 0);
    assert_true(total >= one);
    assert_int_equal(total % one, 0);
#else
    print_message("skipped: the level 3 cache is checked against Linux's sysfs (got %zu bytes here)\n", total);
    skip();
#endif
}

#if defined(__linux__)
/* A field of the mapping that holds p, in KiB (/proc/self/smaps: "Rss",
 * "AnonHugePages"); -1 where it cannot be read. */
static long smaps_kib_at(const void *p, const char *field) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0;
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':') {
            kib = strtol(line + strlen(field) + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}
#endif

/* A block of 4 MiB or more (repacked weights, the KV cache): zero-filled,
 * on a 2 MiB boundary but on Windows, and on Linux in transparent huge
 * pages where the kernel grants them (a skip by name where it does not). */
static void test_large_blocks_on_huge_pages(void **state) {
    (void)state;
    const size_t size = (size_t)8 << 20;
    unsigned char *p = l2_aligned_zeroed(size);
    assert_non_null(p);
    for (size_t i = 0; i < size; i += 4093) assert_int_equal(p[i], 0);
#if !defined(_WIN32)
    assert_int_equal((uintptr_t)p % ((size_t)2 << 20), 0);
#endif
#if defined(__linux__)
    const long kib = smaps_kib_at(p, "AnonHugePages");
    l2_aligned_free(p);
    if (kib <= 0) {
        print_message("skipped: the kernel gave this block no transparent huge page (AnonHugePages %ld)\n", kib);
        skip();
    }
#else
    l2_aligned_free(p);
#endif
}

/* l2_mapping_release: the released pages leave the process's resident
 * memory (Linux's smaps says so) and read back as the file's bytes; the
 * pages around the range stay. */
static void test_mapping_release(void **state) {
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/mapped.bin", dir);
    const size_t size = (size_t)1 << 20;
    unsigned char *bytes = malloc(size);
    assert_non_null(bytes);
    for (size_t i = 0; i < size; i++) bytes[i] = (unsigned char)(i * 7 + i / 4096);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
    l2_file *file;
    uint64_t file_size;
    llama2_error err;
    assert_int_equal(l2_file_open(path, &file, &file_size, &err), LLAMA2_OK);
    void *map;
    assert_int_equal(l2_file_map(file, size, &map, &err), LLAMA2_OK);
    const volatile unsigned char *m = map;
    unsigned sum = 0;
    for (size_t i = 0; i < size; i += 512) sum += m[i];
    (void)sum;
    /* Not on page boundaries: only the whole pages inside go. */
    l2_mapping_release(map, 100000, 600000);
    long resident = -1;
#if defined(__linux__)
    resident = smaps_kib_at(map, "Rss");
#endif
    assert_memory_equal(map, bytes, size);
    l2_unmap(map, size);
    l2_file_close(file);
    free(bytes);
    if (resident < 0) {
        print_message("skipped: the resident size of a mapping is read from Linux's /proc/self/smaps\n");
        skip();
    }
    /* 1024 KiB touched, the 580 KiB of whole 4 KiB pages inside the range
     * released (512 KiB with 64 KiB pages). */
    assert_true(resident <= (long)(size >> 10) - 500);
    assert_true(resident >= (long)(size >> 10) - 600);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_names_beyond_ascii, test_setup),
        cmocka_unit_test_setup(test_model_over_4_gib, test_setup),
        cmocka_unit_test_setup(test_crlf_chat_input, test_setup),
        cmocka_unit_test_setup(test_ctrl_c_at_the_prompt, test_setup),
        cmocka_unit_test_setup(test_ctrl_c_mid_reply, test_setup),
        cmocka_unit_test_setup(test_l3_cache_bytes, test_setup),
        cmocka_unit_test(test_large_blocks_on_huge_pages),
        cmocka_unit_test_setup(test_mapping_release, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
