/*
 * No program destroys a file (src/write/output_file.h): an output that is the
 * input (the same path, a hard link, a symbolic link, another spelling) is
 * refused; an existing output is replaced only with --force; and a failure
 * (a bad input, a full disk, a signal) leaves neither a partial output nor
 * a temporary file, and an old output untouched.
 *
 * First the programs (llama2-quantize, llama2-genmodel, llama2-convert), with
 * their exact messages; then l2_output itself, with an O_TMPFILE file and with the
 * named temporary file used where O_TMPFILE is missing. The input model is
 * a small random one: no model file is needed. What only POSIX systems have
 * (other signals than Ctrl-C, file size limits, O_TMPFILE, fork) is tested
 * there and skipped by name on Windows, where Ctrl-C is the console's.
 *
 * llama2-convert --to hf writes a folder: there, the existing output is a
 * folder that holds anything (refused without --force; with it, the files
 * of the same names are replaced and the others kept), and each file of it
 * follows the rules above.
 */
#define _GNU_SOURCE /* O_TMPFILE, for the POSIX-only tests */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "write/output_file.h"
#include "child.h"
#include "platform/platform.h"
#include "support.h"

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* ------------------------------------------------------------ helpers */

static char dir[1024];

static const char *in_dir(const char *name) { return test_path_in(dir, name); }

static int group_setup(void **state) { return test_tmp_dir_create(dir, sizeof dir, "test-output"); }

static int group_teardown(void **state) {
    test_tmp_dir_remove(dir);
    return 0;
}

/* Each test starts from an empty folder holding one small fp32 model,
 * m.bin. */
static int test_setup(void **state) {
    test_dir_entries(dir, 1);
    llama2_config c = l2_random_model_config(64, 172, 2, 8, 4, 512, 64, 1, 0, 0);
    llama2_error err = {0};
    return l2_write_random_model(in_dir("m.bin"), &c, 1, 0, &err) == LLAMA2_OK ? 0 : -1;
}

static void write_text(const char *path, const char *text) { test_write_file(path, text, strlen(text), 0644); }

static void assert_file_text(const char *path, const char *text) {
    char *data = test_read_file(path, NULL);
    assert_non_null(data);
    assert_string_equal(data, text);
    free(data);
}

/* A checksum of a file, to see that it did not change. */
static uint64_t file_hash(const char *path) {
    size_t n = 0;
    unsigned char *data = (unsigned char *)test_read_file(path, &n);
    assert_non_null(data);
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++) h = (h ^ data[i]) * 1099511628211u;
    free(data);
    return h ^ n;
}

/* Runs a program (NULL-terminated arguments after argv0); its standard
 * error in r. */
static int run(test_run *r, const char *argv0, ...) {
    char *argv[24];
    int k = 0;
    argv[k++] = (char *)argv0;
    va_list ap;
    va_start(ap, argv0);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && k < 23) argv[k++] = (char *)a;
    va_end(ap);
    argv[k] = NULL;
    return test_run_program(argv, NULL, NULL, 0, r);
}

/* The exact standard error of a run: one line. */
static void assert_err(const test_run *r, const char *fmt, ...) {
    char want[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    assert_string_equal(r->err, want);
}

/* ----------------------------------------------- the output is the input */

/* llama2-convert refuses to write over its input too: a llama2.c file, or a
 * Hugging Face folder's weights (with --force as well). */
static void test_convert_refuses_its_input(void **state) {
    const char *tool = test_require_tool("llama2-convert");
    char in[4200], other[4200];
    snprintf(in, sizeof in, "%s", in_dir("m.bin"));
    snprintf(other, sizeof other, "%s/hf/../m.bin", dir);
    assert_int_equal(test_make_link("m.bin", in_dir("soft.bin"), 1), 0);
    uint64_t before = file_hash(in);
    const char *outputs[] = {in, in_dir("soft.bin")};
    for (size_t i = 0; i < 2; i++) {
        test_run r;
        assert_int_equal(run(&r, tool, in, outputs[i], "--version", "1", "--force", NULL), 1);
        assert_err(&r, "llama2-convert: %s: is the input file %s\n", outputs[i], in);
        test_run_free(&r);
    }
    test_run r;
    assert_int_equal(run(&r, tool, in, in_dir("hf"), "--to", "hf", NULL), 0);
    test_run_free(&r);
    char weights[4200];
    snprintf(weights, sizeof weights, "%s", in_dir("hf/model.safetensors"));
    uint64_t weights_before = file_hash(weights);
    assert_int_equal(run(&r, tool, in_dir("hf"), weights, "--force", NULL), 1);
    assert_err(&r, "llama2-convert: %s: is the input file %s\n", weights, weights);
    test_run_free(&r);
    /* m.bin is no input of the folder's conversion: with --force, replaced
     * (by a new file: another inode). */
    l2_file_id old_id, new_id;
    assert_int_equal(l2_path_lookup(in, &old_id, NULL), L2_PATH_FILE);
    assert_int_equal(run(&r, tool, in_dir("hf"), other, "--force", NULL), 0);
    test_run_free(&r);
    assert_int_equal(l2_path_lookup(in, &new_id, NULL), L2_PATH_FILE);
    assert_true(old_id.index != new_id.index);
    assert_true(file_hash(weights) == weights_before);
    assert_true(file_hash(in) == before); /* the round trip gives the same bytes */
    assert_string_equal(test_dir_listing(dir), "hf m.bin soft.bin");
}


/* The quantizer refuses to write over its input, through every spelling of
 * it, with --force too; the input stays as it was. */
static void test_quantize_refuses_its_input(void **state) {
    const char *tool = test_require_tool("llama2-quantize");
    char in[4200];
    snprintf(in, sizeof in, "%s", in_dir("m.bin"));
    assert_int_equal(test_make_link(in, in_dir("hard.bin"), 0), 0);
    int soft = test_symlink("m.bin", in_dir("soft.bin"));
    assert_int_equal(l2_make_folder(in_dir("sub")), 0);
    uint64_t before = file_hash(in);
    char other[4200], hard[4200], link[4200];
    snprintf(other, sizeof other, "%s/sub/../m.bin", dir);
    snprintf(hard, sizeof hard, "%s", in_dir("hard.bin"));
    snprintf(link, sizeof link, "%s", in_dir("soft.bin"));
    const char *outputs[] = {in, hard, other, link};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0] - !soft; i++) {
        for (int force = 0; force <= 1; force++) {
            test_run r;
            assert_int_equal(run(&r, tool, in, outputs[i], force ? "--force" : NULL, NULL), 1);
            assert_err(&r, "llama2-quantize: %s: is the input file %s\n", outputs[i], in);
            assert_int_equal(r.out_len, 0);
            test_run_free(&r);
        }
    }
    assert_true(file_hash(in) == before);
    assert_string_equal(test_dir_listing(dir), soft ? "hard.bin m.bin soft.bin sub" : "hard.bin m.bin sub");
}

/* --------------------------------------------------- an existing output */

static void test_quantize_keeps_an_existing_output(void **state) {
    const char *tool = test_require_tool("llama2-quantize");
    char in[4200], out[4200];
    snprintf(in, sizeof in, "%s", in_dir("m.bin"));
    snprintf(out, sizeof out, "%s", in_dir("q.bin"));
    write_text(out, "old contents");
    test_run r;
    assert_int_equal(run(&r, tool, in, out, NULL), 1);
    assert_err(&r, "llama2-quantize: %s: already exists (--force replaces it)\n", out);
    test_run_free(&r);
    assert_file_text(out, "old contents");
    assert_string_equal(test_dir_listing(dir), "m.bin q.bin");

    /* With --force it is replaced by the whole new file. */
    assert_int_equal(run(&r, tool, in, out, "--force", NULL), 0);
    test_run_free(&r);
    llama2_model *m = NULL;
    assert_int_equal(llama2_model_open(out, NULL, &m, NULL), LLAMA2_OK);
    assert_int_equal(llama2_model_config(m)->file_version, 2);
    llama2_model_close(m);
    assert_string_equal(test_dir_listing(dir), "m.bin q.bin");
}

static void test_genmodel_keeps_an_existing_output(void **state) {
    const char *tool = test_require_tool("llama2-genmodel");
    char out[4200];
    snprintf(out, sizeof out, "%s", in_dir("g.bin"));
    write_text(out, "old contents");
    test_run r;
    assert_int_equal(run(&r, tool, out, "--preset", "stories15M", "--layers", "1", "--seq-len", "8", NULL), 1);
    assert_err(&r, "llama2-genmodel: %s: already exists (--force replaces it)\n", out);
    test_run_free(&r);
    assert_file_text(out, "old contents");
    assert_int_equal(run(&r, tool, out, "--dim", "8", "--hidden", "8", "--layers", "1", "--heads", "2", "--vocab",
                         "8", "--seq-len", "8", "--force", NULL),
                     0);
    test_run_free(&r);
    llama2_model *m = NULL;
    assert_int_equal(llama2_model_open(out, NULL, &m, NULL), LLAMA2_OK);
    llama2_model_close(m);
    assert_string_equal(test_dir_listing(dir), "g.bin m.bin");
}

static void test_convert_keeps_an_existing_output(void **state) {
    const char *tool = test_require_tool("llama2-convert");
    char in[4200], out[4200], hf[4200];
    snprintf(in, sizeof in, "%s", in_dir("m.bin"));
    snprintf(out, sizeof out, "%s", in_dir("v1.bin"));
    snprintf(hf, sizeof hf, "%s", in_dir("hf"));
    write_text(out, "old contents");
    test_run r;
    assert_int_equal(run(&r, tool, in, out, "--version", "1", NULL), 1);
    assert_err(&r, "llama2-convert: %s: already exists (--force replaces it)\n", out);
    test_run_free(&r);
    assert_file_text(out, "old contents");
    assert_int_equal(run(&r, tool, in, out, "--version", "1", "--force", NULL), 0);
    test_run_free(&r);
    llama2_model *m = NULL;
    assert_int_equal(llama2_model_open(out, NULL, &m, NULL), LLAMA2_OK);
    assert_int_equal(llama2_model_config(m)->file_version, 1);
    llama2_model_close(m);

    /* A folder: empty, it is no output yet; holding anything, it is one. */
    assert_int_equal(l2_make_folder(hf), 0);
    assert_int_equal(run(&r, tool, in, hf, "--to", "hf", NULL), 0);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(hf), "config.json model.safetensors");
    write_text(in_dir("hf/config.json"), "{}");
    write_text(in_dir("hf/notes.txt"), "notes");
    assert_int_equal(run(&r, tool, in, hf, "--to", "hf", NULL), 1);
    assert_err(&r, "llama2-convert: %s: already exists and is not empty (--force writes into it)\n", hf);
    test_run_free(&r);
    assert_file_text(in_dir("hf/config.json"), "{}");
    assert_int_equal(run(&r, tool, in, hf, "--to", "hf", "--force", NULL), 0);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(hf), "config.json model.safetensors notes.txt");
    assert_file_text(in_dir("hf/notes.txt"), "notes");
    char *config = test_read_file(in_dir("hf/config.json"), NULL);
    assert_non_null(strstr(config, "\"LlamaForCausalLM\""));
    free(config);
    assert_string_equal(test_dir_listing(dir), "hf m.bin v1.bin");
}

/* ------------------------------------------------------------ failures */

/* A bad input: no output, no temporary file, an old output untouched. */
static void test_quantize_bad_input_leaves_nothing(void **state) {
    const char *tool = test_require_tool("llama2-quantize");
    char bad[4200], out[4200];
    snprintf(bad, sizeof bad, "%s", in_dir("bad.bin"));
    snprintf(out, sizeof out, "%s", in_dir("q.bin"));
    write_text(bad, "not a checkpoint at all, just text");
    test_run r;
    assert_int_equal(run(&r, tool, bad, out, NULL), 1);
    assert_true(strncmp(r.err, "llama2-quantize: ", 17) == 0 && strstr(r.err, bad));
    test_run_free(&r);
    assert_string_equal(test_dir_listing(dir), "bad.bin m.bin");
    write_text(out, "old contents");
    assert_int_equal(run(&r, tool, bad, out, "--force", NULL), 1);
    test_run_free(&r);
    assert_file_text(out, "old contents");
    assert_string_equal(test_dir_listing(dir), "bad.bin m.bin q.bin");
}

/* llama2-convert with a bad input: no file, and no folder made. */
static void test_convert_bad_input_leaves_nothing(void **state) {
    const char *tool = test_require_tool("llama2-convert");
    char bad[4200];
    snprintf(bad, sizeof bad, "%s", in_dir("bad.bin"));
    write_text(bad, "not a checkpoint at all, just text");
    test_run r;
    assert_int_equal(run(&r, tool, bad, in_dir("hf"), "--to", "hf", NULL), 1);
    assert_true(strncmp(r.err, "llama2-convert: ", 16) == 0 && strstr(r.err, bad));
    test_run_free(&r);
    assert_int_equal(run(&r, tool, bad, in_dir("v1.bin"), "--version", "1", NULL), 1);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(dir), "bad.bin m.bin");
}

/* Starts argv (its output thrown away, where Ctrl-C reaches it), waits
 * until it is seen writing a file of the folder, then stops it with `stop`;
 * returns how it ended. Fails the test when it was never seen writing. */
static int stop_mid_write(char *const argv[], void (*stop)(l2_child *c)) {
    l2_child *c = NULL;
    assert_int_equal(l2_child_start(argv, NULL, NULL, 0, L2_CHILD_INTERRUPTIBLE, &c), 0);
    int writing = test_child_writing(c, dir, "m.bin");
    stop(c);
    int status = l2_child_wait(c, NULL, NULL, NULL, NULL);
    if (!writing) fail_msg("%s was never seen writing", argv[0]);
    return status;
}

/* llama2-genmodel stopped while it writes a large model (about 420 MB: far
 * more than is written by then): it ends with `status`, leaving nothing. */
static void genmodel_stopped_mid_write(void (*stop)(l2_child *c), int status) {
    const char *tool = test_require_tool("llama2-genmodel");
    char out[4200];
    snprintf(out, sizeof out, "%s", in_dir("big.bin"));
    char *argv[] = {(char *)tool, out, "--preset", "stories110M", NULL};
    assert_int_equal(stop_mid_write(argv, stop), status);
    assert_string_equal(test_dir_listing(dir), "m.bin");
}

static void ctrl_c(l2_child *c) { l2_child_interrupt(c); }

/* Ctrl-C (SIGINT; on Windows the console's Ctrl-C) mid-write: the program
 * ends as Ctrl-C ends it. */
static void test_sigint_mid_write_leaves_nothing(void **state) { genmodel_stopped_mid_write(ctrl_c, 128 + 2); }

/* Ctrl-C while llama2-convert writes a Hugging Face folder (from a model
 * of about 60 MB): it ends by it, and the folder it made holds nothing. */
static void test_convert_sigint_mid_write_leaves_nothing(void **state) {
    const char *tool = test_require_tool("llama2-convert");
    char in[4200], hf[4200];
    snprintf(in, sizeof in, "%s", in_dir("m.bin"));
    snprintf(hf, sizeof hf, "%s", in_dir("hf"));
    llama2_config c = l2_random_model_config(288, 768, 6, 6, 6, 32000, 256, 1, 1, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(in, &c, 2, L2_OUTPUT_FORCE, &err), LLAMA2_OK);
    char *argv[] = {(char *)tool, in, hf, "--to", "hf", NULL};
    assert_int_equal(stop_mid_write(argv, ctrl_c), 128 + 2);
    assert_int_equal(test_dir_entries(hf, 0), 0);
    assert_string_equal(test_dir_listing(dir), "hf m.bin");
}

/* ------------------------------------------------------ l2_output itself */

static const unsigned flag_modes[2] = {0, L2_OUTPUT_NAMED_TEMP};

static int folder_has_tmpfile(void);

/* A finished output has the bytes written and its name only; while open,
 * only a named temporary file is seen, hidden. */
static void test_output_commit(void **state) {
    for (int m = 0; m < 2; m++) {
        unsigned flags = flag_modes[m];
        l2_output out;
        llama2_error err = {0};
        assert_int_equal(l2_output_open(&out, in_dir("o.bin"), NULL, flags, &err), LLAMA2_OK);
        if (flags & L2_OUTPUT_NAMED_TEMP || !folder_has_tmpfile()) {
            const char *names = test_dir_listing(dir);
            assert_true(strncmp(names, ".o.bin.tmp-", 11) == 0);
            assert_non_null(strstr(names, " m.bin"));
        } else {
            assert_string_equal(test_dir_listing(dir), "m.bin");
        }
        assert_int_equal(l2_output_write(&out, "hel", 3, &err), LLAMA2_OK);
        assert_int_equal(l2_output_write_at(&out, "lo", 2, 3, &err), LLAMA2_OK);
        assert_int_equal(l2_output_commit(&out, &err), LLAMA2_OK);
        assert_null(out.file);
        assert_file_text(in_dir("o.bin"), "hello");
        assert_string_equal(test_dir_listing(dir), "m.bin o.bin");
        test_remove(in_dir("o.bin"));
    }
}

static void test_output_abort(void **state) {
    for (int m = 0; m < 2; m++) {
        l2_output out;
        assert_int_equal(l2_output_open(&out, in_dir("o.bin"), NULL, flag_modes[m], NULL), LLAMA2_OK);
        assert_int_equal(l2_output_write(&out, "hello", 5, NULL), LLAMA2_OK);
        l2_output_abort(&out);
        assert_string_equal(test_dir_listing(dir), "m.bin");
    }
}

/* A file that appears while the output is written is not replaced. */
static void test_output_no_clobber_at_commit(void **state) {
    for (int m = 0; m < 2; m++) {
        for (int force = 0; force <= 1; force++) {
            unsigned flags = flag_modes[m] | (force ? L2_OUTPUT_FORCE : 0);
            l2_output out;
            llama2_error err = {0};
            assert_int_equal(l2_output_open(&out, in_dir("o.bin"), NULL, flags, &err), LLAMA2_OK);
            assert_int_equal(l2_output_write(&out, "new", 3, &err), LLAMA2_OK);
            write_text(in_dir("o.bin"), "appeared meanwhile");
            llama2_status s = l2_output_commit(&out, &err);
            if (force) {
                assert_int_equal(s, LLAMA2_OK);
                assert_file_text(in_dir("o.bin"), "new");
            } else {
                assert_int_equal(s, LLAMA2_E_IO);
                assert_string_equal(err.message, "already exists (--force replaces it)");
                assert_file_text(in_dir("o.bin"), "appeared meanwhile");
            }
            assert_string_equal(test_dir_listing(dir), "m.bin o.bin");
            test_remove(in_dir("o.bin"));
        }
    }
}

static void test_output_refusals(void **state) {
    const char *inputs[] = {in_dir("x.bin"), in_dir("m.bin"), NULL};
    l2_output out;
    llama2_error err = {0};
    char want[4300];
    snprintf(want, sizeof want, "is the input file %s", inputs[1]);
    assert_int_equal(l2_output_open(&out, inputs[1], inputs, L2_OUTPUT_FORCE, &err), LLAMA2_E_IO);
    assert_string_equal(err.message, want);
    int soft = test_symlink("m.bin", in_dir("soft.bin"));
    if (soft) {
        assert_int_equal(l2_output_open(&out, in_dir("soft.bin"), inputs, L2_OUTPUT_FORCE, &err), LLAMA2_E_IO);
        assert_string_equal(err.message, want);
        assert_null(out.file);
        assert_int_equal(l2_output_open(&out, in_dir("soft.bin"), NULL, 0, &err), LLAMA2_E_IO);
        assert_string_equal(err.message, "already exists (--force replaces it)");
    }
    assert_int_equal(l2_output_open(&out, dir, NULL, L2_OUTPUT_FORCE, &err), LLAMA2_E_IO);
    assert_string_equal(err.message, "is a folder");
    for (int m = 0; m < 2; m++) {
        assert_int_equal(l2_output_open(&out, in_dir("none/o.bin"), NULL, flag_modes[m], &err), LLAMA2_E_IO);
        assert_string_equal(err.message, "cannot create: No such file or directory");
    }
    /* A dangling symbolic link is an existing name. */
    int dangling = test_symlink("nowhere.bin", in_dir("dangling.bin"));
    if (dangling) {
        assert_int_equal(l2_output_open(&out, in_dir("dangling.bin"), NULL, 0, &err), LLAMA2_E_IO);
        assert_string_equal(err.message, "already exists (--force replaces it)");
    }
    assert_int_equal(l2_output_open(&out, NULL, NULL, 0, &err), LLAMA2_E_INVALID);
    assert_string_equal(test_dir_listing(dir), soft && dangling ? "dangling.bin m.bin soft.bin"
                                               : soft           ? "m.bin soft.bin"
                                               : dangling       ? "dangling.bin m.bin"
                                                                : "m.bin");

    assert_true(l2_output_failure("already exists (--force replaces it)"));
    assert_true(l2_output_failure("write failed: No space left on device"));
    assert_true(l2_output_failure("interrupted by a signal"));
    assert_false(l2_output_failure("cannot open: No such file or directory"));
    assert_false(l2_output_failure("bad header: dim is 0, must be positive"));
}

/* ------------------------------------------------------- POSIX only */

#ifdef _WIN32
/* Windows has no signal but the console's Ctrl-C (tested above), no limit
 * on the size of written files, no unnamed files and no fork: these tests
 * are POSIX's, skipped by name here. */
static int folder_has_tmpfile(void) { return 0; }
#define POSIX_ONLY(name, why) \
    static void name(void **state) { test_require_posix(why); }
POSIX_ONLY(test_full_disk_leaves_nothing, "a file size limit (ulimit -f)")
POSIX_ONLY(test_convert_full_disk_leaves_nothing, "a file size limit (ulimit -f)")
POSIX_ONLY(test_genmodel_full_disk_leaves_nothing, "a file size limit (ulimit -f)")
POSIX_ONLY(test_sigterm_mid_write_leaves_nothing, "SIGTERM")
POSIX_ONLY(test_sigkill_mid_write_leaves_nothing, "SIGKILL and O_TMPFILE")
POSIX_ONLY(test_quantize_sigkill_mid_write_leaves_nothing, "SIGKILL and O_TMPFILE")
POSIX_ONLY(test_convert_sigkill_mid_write_leaves_nothing, "SIGKILL and O_TMPFILE")
POSIX_ONLY(test_output_mode, "file modes and the umask")
POSIX_ONLY(test_named_temp_removed_on_signals, "signals held back in a forked child")
#else
/* A full disk, as the file size limit gives it (ulimit -f, in 512-byte
 * blocks: 100 of them are well short of the output); the input is left as
 * it was. */
static void test_full_disk_leaves_nothing(void **state) {
    const char *tool = test_require_tool("llama2-quantize");
    char in[4200], out[4200], script[12000];
    snprintf(in, sizeof in, "%s", in_dir("m.bin"));
    snprintf(out, sizeof out, "%s", in_dir("q.bin"));
    size_t in_len, now_len;
    char *input = test_read_file(in, &in_len);
    assert_non_null(input);
    for (int force = 0; force <= 1; force++) {
        if (force) write_text(out, "old contents");
        /* SIGXFSZ ignored: the write fails with EFBIG and the program says so. */
        snprintf(script, sizeof script, "ulimit -f 100 && trap '' XFSZ && exec '%s' '%s' '%s' %s", tool, in, out,
                 force ? "--force" : "");
        test_run r;
        assert_int_equal(run(&r, "/bin/sh", "-c", script, NULL), 1);
        assert_err(&r, "llama2-quantize: %s: write failed: File too large\n", out);
        test_run_free(&r);
        assert_string_equal(test_dir_listing(dir), force ? "m.bin q.bin" : "m.bin");
        if (force) assert_file_text(out, "old contents");
    }
    /* SIGXFSZ at its default: the program is killed by it. */
    unlink(out);
    snprintf(script, sizeof script, "ulimit -c 0 && ulimit -f 100 && exec '%s' '%s' '%s'", tool, in, out);
    test_run r;
    assert_int_equal(run(&r, "/bin/sh", "-c", script, NULL), 128 + SIGXFSZ);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(dir), "m.bin");
    char *now = test_read_file(in, &now_len);
    assert_true(now && now_len == in_len && memcmp(now, input, in_len) == 0);
    free(now);
    free(input);
}

/* llama2-genmodel on a full disk: one line, no file. */
static void test_genmodel_full_disk_leaves_nothing(void **state) {
    const char *tool = test_require_tool("llama2-genmodel");
    char out[4200], script[12000];
    snprintf(out, sizeof out, "%s", in_dir("big.bin"));
    snprintf(script, sizeof script, "ulimit -f 100 && trap '' XFSZ && exec '%s' '%s' --preset stories110M", tool, out);
    test_run r;
    assert_int_equal(run(&r, "/bin/sh", "-c", script, NULL), 1);
    assert_err(&r, "llama2-genmodel: %s: write failed: File too large\n", out);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(dir), "m.bin");
}

/* llama2-convert on a full disk: a file, and a Hugging Face folder (made for
 * the output, then gone again; or existing, then as it was). */
static void test_convert_full_disk_leaves_nothing(void **state) {
    const char *tool = test_require_tool("llama2-convert");
    char in[4200], out[4200], hf[4200], script[12000];
    snprintf(in, sizeof in, "%s", in_dir("m.bin"));
    snprintf(out, sizeof out, "%s", in_dir("v1.bin"));
    snprintf(hf, sizeof hf, "%s", in_dir("hf"));
    const uint64_t input_hash = file_hash(in);
    snprintf(script, sizeof script, "ulimit -f 100 && trap '' XFSZ && exec '%s' '%s' '%s' --version 1", tool, in, out);
    test_run r;
    assert_int_equal(run(&r, "/bin/sh", "-c", script, NULL), 1);
    assert_err(&r, "llama2-convert: %s: write failed: File too large\n", out);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(dir), "m.bin");
    for (int existing = 0; existing <= 1; existing++) {
        if (existing) {
            assert_int_equal(mkdir(hf, 0700), 0);
            write_text(in_dir("hf/config.json"), "{}");
        }
        snprintf(script, sizeof script, "ulimit -f 100 && trap '' XFSZ && exec '%s' '%s' '%s' --to hf %s", tool, in,
                 hf, existing ? "--force" : "");
        assert_int_equal(run(&r, "/bin/sh", "-c", script, NULL), 1);
        assert_err(&r, "llama2-convert: %s/model.safetensors: write failed: File too large\n", hf);
        test_run_free(&r);
        assert_string_equal(test_dir_listing(dir), existing ? "hf m.bin" : "m.bin");
        if (existing) {
            assert_string_equal(test_dir_listing(hf), "config.json");
            assert_file_text(in_dir("hf/config.json"), "{}");
        }
    }
    assert_true(file_hash(in) == input_hash);
}

static int signal_to_send;

static void send_signal(l2_child *c) { kill((pid_t)l2_child_id(c), signal_to_send); }

/* A signal other than Ctrl-C mid-write: the program ends by that signal. */
static void signal_mid_write(int sig) {
    signal_to_send = sig;
    genmodel_stopped_mid_write(send_signal, 128 + sig);
}

static void test_sigterm_mid_write_leaves_nothing(void **state) { signal_mid_write(SIGTERM); }

/* Whether this folder's file system gives O_TMPFILE files. */
static int folder_has_tmpfile(void) {
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    return fd >= 0 && access("/proc/self/fd", X_OK) == 0;
#else
    return 0;
#endif
}

/* SIGKILL cannot be caught: only an unnamed file leaves nothing. */
static void test_sigkill_mid_write_leaves_nothing(void **state) {
    if (!folder_has_tmpfile()) {
        print_message("skipped: no O_TMPFILE in %s (a named temporary file would stay)\n", dir);
        skip();
    }
    signal_mid_write(SIGKILL);
}

/* SIGKILL while `tool` writes from a model of about 60 MB (in.bin, made
 * here: long enough to write that the program is caught at it) to out_name
 * (a file, or a folder with --to hf): nothing at the destination (a folder
 * the program made stays, empty), the input as it was. */
static void killed_mid_write(const char *name, const char *out_name, const char *const *options) {
    const char *tool = test_require_tool(name);
    if (!folder_has_tmpfile()) {
        print_message("skipped: no O_TMPFILE in %s (a named temporary file would stay)\n", dir);
        skip();
    }
    char in[4200], out[4200];
    snprintf(in, sizeof in, "%s", in_dir("in.bin"));
    snprintf(out, sizeof out, "%s", in_dir(out_name));
    llama2_config c = l2_random_model_config(288, 768, 6, 6, 6, 32000, 256, 1, 1, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(in, &c, 2, L2_OUTPUT_FORCE, &err), LLAMA2_OK);
    const uint64_t input_hash = file_hash(in);
    char *argv[8] = {(char *)tool, in, out};
    for (int i = 0; options[i] && i < 4; i++) argv[3 + i] = (char *)options[i];
    signal_to_send = SIGKILL;
    l2_child *child = NULL;
    assert_int_equal(l2_child_start(argv, NULL, NULL, 0, 0, &child), 0);
    int writing = test_child_writing(child, dir, "in.bin");
    send_signal(child);
    int status = l2_child_wait(child, NULL, NULL, NULL, NULL);
    if (!writing) fail_msg("%s was never seen writing", name);
    assert_int_equal(status, 128 + SIGKILL);
    struct stat st;
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
        assert_string_equal(test_dir_listing(out), "");
        assert_string_equal(test_dir_listing(dir), "hf in.bin m.bin");
    } else {
        assert_string_equal(test_dir_listing(dir), "in.bin m.bin");
    }
    assert_true(file_hash(in) == input_hash);
}

static void test_quantize_sigkill_mid_write_leaves_nothing(void **state) {
    killed_mid_write("llama2-quantize", "q.bin", (const char *const[]){NULL});
    const char *const gguf[] = {"--type", "q8_0", "-z", test_require_model("tokenizer.bin"), NULL};
    killed_mid_write("llama2-quantize", "q.gguf", gguf);
}

static void test_convert_sigkill_mid_write_leaves_nothing(void **state) {
    killed_mid_write("llama2-convert", "v1.bin", (const char *const[]){"--format-version", "1", NULL});
    killed_mid_write("llama2-convert", "hf", (const char *const[]){"--to", "hf", NULL});
}

/* A finished output has the usual mode: 0666 less the umask. */
static void test_output_mode(void **state) {
    mode_t mask = umask(022);
    for (int m = 0; m < 2; m++) {
        l2_output out;
        llama2_error err = {0};
        assert_int_equal(l2_output_open(&out, in_dir("o.bin"), NULL, flag_modes[m], &err), LLAMA2_OK);
        assert_int_equal(l2_output_commit(&out, &err), LLAMA2_OK);
        struct stat st;
        assert_int_equal(stat(in_dir("o.bin"), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        unlink(in_dir("o.bin"));
    }
    umask(mask);
}

/* In a child: opens a named-temporary output, writes, raises `sig` (held
 * back while the file exists), then ends the output with commit (or abort):
 * the file goes, and then the signal ends the child. */
static void named_temp_signal(int sig, int commit) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0}; /* SIGQUIT and SIGXFSZ dump core */
        setrlimit(RLIMIT_CORE, &no_core);
        test_default_signals();
        l2_output out;
        llama2_error err = {0};
        if (l2_output_open(&out, in_dir("o.bin"), NULL, L2_OUTPUT_NAMED_TEMP, &err) != LLAMA2_OK) _exit(10);
        if (l2_output_write(&out, "partial", 7, &err) != LLAMA2_OK) _exit(11);
        raise(sig);
        if (!l2_output_interrupted(&out)) _exit(12);
        if (commit) {
            if (l2_output_commit(&out, &err) == LLAMA2_OK) _exit(13);
            _exit(strcmp(err.message, "interrupted by a signal") == 0 ? 14 : 15);
        }
        l2_output_abort(&out);
        _exit(16); /* not reached: the signal ends the child in abort */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFSIGNALED(status))
        fail_msg("the child exited with %d instead of dying by signal %d", WEXITSTATUS(status), sig);
    assert_int_equal(WTERMSIG(status), sig);
    assert_string_equal(test_dir_listing(dir), "m.bin");
}

static void test_named_temp_removed_on_signals(void **state) {
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        named_temp_signal(sigs[i], 0);
        named_temp_signal(sigs[i], 1);
    }
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_quantize_refuses_its_input, test_setup),
        cmocka_unit_test_setup(test_convert_refuses_its_input, test_setup),
        cmocka_unit_test_setup(test_quantize_keeps_an_existing_output, test_setup),
        cmocka_unit_test_setup(test_genmodel_keeps_an_existing_output, test_setup),
        cmocka_unit_test_setup(test_convert_keeps_an_existing_output, test_setup),
        cmocka_unit_test_setup(test_quantize_bad_input_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_convert_bad_input_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_full_disk_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_convert_full_disk_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_genmodel_full_disk_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_sigint_mid_write_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_sigterm_mid_write_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_convert_sigint_mid_write_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_sigkill_mid_write_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_quantize_sigkill_mid_write_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_convert_sigkill_mid_write_leaves_nothing, test_setup),
        cmocka_unit_test_setup(test_output_commit, test_setup),
        cmocka_unit_test_setup(test_output_mode, test_setup),
        cmocka_unit_test_setup(test_output_abort, test_setup),
        cmocka_unit_test_setup(test_output_no_clobber_at_commit, test_setup),
        cmocka_unit_test_setup(test_output_refusals, test_setup),
        cmocka_unit_test_setup(test_named_temp_removed_on_signals, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
