/*
 * What make test does before its tests, on a fresh machine:
 *   - tests/setup.sh: the missing packages of the groups asked for, checked
 *     for this machine's architecture, installed with apt-get as root or
 *     through sudo -n, or the exact command printed and status 2. Run here
 *     against stand-ins for dpkg, dpkg-query, id, sudo and apt-get (a folder
 *     put first on PATH), so nothing is installed;
 *   - tools/models.sh: model files copied from $SHARED_MODELS, downloaded
 *     from a web server (one started here, on 127.0.0.1), checked by SHA-256,
 *     made with llama2-quantize, or reported missing; never a partial file;
 *   - make BLAS=1 without OpenBLAS: the package to install, and a stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "platform/platform.h"
#include "support.h"

/* ------------------------------------------------------------ helpers */

static char dir[1024];

static const char *in_dir(const char *name) { return test_path_in(dir, name); }

static int group_setup(void **state) { return test_tmp_dir_create(dir, sizeof dir, "test-setup"); }

static int group_teardown(void **state) {
    test_tmp_dir_remove(dir);
    return 0;
}

static int test_setup(void **state) {
    test_tmp_dir_remove(dir);
    return mkdir(dir, 0700);
}

static void write_text(const char *path, const char *text) { test_write_file(path, text, strlen(text), 0644); }

/* Runs `/usr/bin/env ASSIGNMENTS... /bin/sh SCRIPT ARGS...`: the arguments
 * up to a NULL, the assignments first (each holds '='). */
static int run_script(test_run *r, ...) {
    char *argv[48];
    int k = 0;
    argv[k++] = "/usr/bin/env";
    va_list ap;
    va_start(ap, r);
    const char *a;
    int script_seen = 0;
    while ((a = va_arg(ap, const char *)) != NULL && k < 46) {
        if (!script_seen && !strchr(a, '=')) {
            argv[k++] = "/bin/sh";
            script_seen = 1;
        }
        argv[k++] = (char *)a;
    }
    va_end(ap);
    argv[k] = NULL;
    return test_run_program(argv, NULL, NULL, 0, r);
}

/* ------------------------------------------------------- tests/setup.sh */

/* Stand-ins, in <dir>/bin, for the programs setup.sh asks. The installed
 * packages are the lines "<package> <architecture>" of <dir>/db; apt-get
 * writes its arguments to <dir>/apt.log and, for install, adds each package
 * for amd64 (unless $FAKE_APT_FAILS). id -u says $FAKE_UID; sudo -n works
 * when $FAKE_SUDO is yes. */
static void make_stand_ins(int with_dpkg) {
    assert_int_equal(mkdir(in_dir("bin"), 0700), 0);
    static const char *const real[] = {"awk", "grep", "dirname", "env", "sed", "cat", "true"};
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        char from[64], to[4200];
        snprintf(from, sizeof from, "/usr/bin/%s", real[i]);
        if (access(from, X_OK) != 0) snprintf(from, sizeof from, "/bin/%s", real[i]);
        snprintf(to, sizeof to, "%s/bin/%s", dir, real[i]);
        assert_int_equal(symlink(from, to), 0);
    }
    char script[8192];
    if (with_dpkg) {
        test_write_file(in_dir("bin/dpkg"), "#!/bin/sh\n[ \"$1\" = --print-architecture ] && echo amd64\n", 57, 0755);
        snprintf(script, sizeof script,
                 "#!/bin/sh\n"
                 "# dpkg-query -W -f=FORMAT PACKAGE\n"
                 "found=1\n"
                 "while read -r p a; do\n"
                 "    [ \"$p\" = \"$3\" ] && { echo \"install ok installed $a\"; found=0; }\n"
                 "done < '%s/db'\n"
                 "exit $found\n",
                 dir);
        test_write_file(in_dir("bin/dpkg-query"), script, strlen(script), 0755);
    }
    test_write_file(in_dir("bin/id"), "#!/bin/sh\necho \"$FAKE_UID\"\n", 27, 0755);
    snprintf(script, sizeof script,
             "#!/bin/sh\n"
             "[ \"$FAKE_SUDO\" = yes ] || exit 1\n"
             "[ \"$1\" = -n ] && shift\n"
             "echo sudo >> '%s/apt.log'\n"
             "exec \"$@\"\n",
             dir);
    test_write_file(in_dir("bin/sudo"), script, strlen(script), 0755);
    snprintf(script, sizeof script,
             "#!/bin/sh\n"
             "echo \"apt-get $*\" >> '%s/apt.log'\n"
             "[ -n \"$FAKE_APT_FAILS\" ] && exit 100\n"
             "[ \"$1\" = install ] || exit 0\n"
             "for p in \"$@\"; do case $p in -*|install) ;; *) echo \"$p amd64\" >> '%s/db' ;; esac; done\n",
             dir, dir);
    test_write_file(in_dir("bin/apt-get"), script, strlen(script), 0755);
    write_text(in_dir("packages.txt"), "# a list\n[build]   # the compiler\ngcc\nmake  # and make\n\n"
                                       "[test]\nlibcmocka-dev\nca-certificates\n[other]\nnot-asked-for\n");
}

/* setup.sh on the test list for the groups build and test. */
static int run_setup(test_run *r, const char *uid, const char *sudo, const char *apt_fails) {
    char path[4200], fake_uid[32], fake_sudo[32], fails[32];
    snprintf(path, sizeof path, "PATH=%s/bin", dir);
    snprintf(fake_uid, sizeof fake_uid, "FAKE_UID=%s", uid);
    snprintf(fake_sudo, sizeof fake_sudo, "FAKE_SUDO=%s", sudo);
    snprintf(fails, sizeof fails, "FAKE_APT_FAILS=%s", apt_fails);
    return run_script(r, path, fake_uid, fake_sudo, fails, test_source_path("tests/setup.sh"), "--list",
                      in_dir("packages.txt"), "build", "test", NULL);
}

static char *apt_log(void) {
    char *log = test_read_file(in_dir("apt.log"), NULL);
    return log ? log : strdup("");
}

/* Everything there (ca-certificates for all architectures): nothing to do. */
static void test_setup_nothing_missing(void **state) {
    make_stand_ins(1);
    write_text(in_dir("db"), "gcc amd64\nmake amd64\nlibcmocka-dev amd64\nca-certificates all\n");
    test_run r;
    assert_int_equal(run_setup(&r, "1000", "no", ""), 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    test_run_free(&r);
    char *log = apt_log();
    assert_string_equal(log, "");
    free(log);
}

/* libcmocka-dev for arm64 only is missing for amd64; as root, installed. */
static void test_setup_installs_as_root(void **state) {
    make_stand_ins(1);
    write_text(in_dir("db"), "gcc amd64\nmake amd64\nlibcmocka-dev arm64\nca-certificates all\n");
    test_run r;
    assert_int_equal(run_setup(&r, "0", "no", ""), 0);
    assert_string_equal(r.out, "setup: installing libcmocka-dev\n");
    test_run_free(&r);
    char *log = apt_log();
    assert_string_equal(log, "apt-get update -qq\napt-get install -y -qq --no-install-recommends libcmocka-dev\n");
    free(log);
}

static void test_setup_installs_through_sudo(void **state) {
    make_stand_ins(1);
    write_text(in_dir("db"), "gcc amd64\nlibcmocka-dev arm64\nca-certificates all\n");
    test_run r;
    assert_int_equal(run_setup(&r, "1000", "yes", ""), 0);
    assert_string_equal(r.out, "setup: installing make libcmocka-dev\n");
    test_run_free(&r);
    char *log = apt_log();
    assert_string_equal(log, "sudo\nsudo\napt-get update -qq\nsudo\n"
                             "apt-get install -y -qq --no-install-recommends make libcmocka-dev\n");
    free(log);
}

/* Neither root nor sudo: the command to run, status 2, nothing run. */
static void test_setup_cannot_install(void **state) {
    make_stand_ins(1);
    write_text(in_dir("db"), "gcc amd64\nmake amd64\nlibcmocka-dev arm64\n");
    test_run r;
    assert_int_equal(run_setup(&r, "1000", "no", ""), 2);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "setup: these packages are missing for amd64: libcmocka-dev ca-certificates\n"
                               "setup: install them, then run this again:\n"
                               "  sudo apt-get install --no-install-recommends libcmocka-dev ca-certificates\n");
    test_run_free(&r);
    char *log = apt_log();
    assert_string_equal(log, "");
    free(log);
}

static void test_setup_install_fails(void **state) {
    make_stand_ins(1);
    write_text(in_dir("db"), "gcc amd64\nmake amd64\nca-certificates all\n");
    test_run r;
    assert_int_equal(run_setup(&r, "0", "no", "yes"), 2);
    assert_string_equal(r.err, "setup: could not install libcmocka-dev for amd64; install them, then run this again:\n"
                               "  apt-get install --no-install-recommends libcmocka-dev\n");
    test_run_free(&r);
}

/* Not Debian: it names what the groups need and goes on. */
static void test_setup_without_dpkg(void **state) {
    make_stand_ins(0);
    test_run r;
    assert_int_equal(run_setup(&r, "0", "no", ""), 0);
    assert_string_equal(r.out, "setup: no dpkg here (not Debian or Ubuntu); build test need: gcc make libcmocka-dev "
                               "ca-certificates\n");
    test_run_free(&r);
}

/* The real list: every group named, and a package in each. */
static void test_package_list_groups(void **state) {
    make_stand_ins(0);
    test_run r;
    char path[4200];
    snprintf(path, sizeof path, "PATH=%s/bin", dir);
    const char *groups[] = {"build", "download", "test", "ci", "windows"};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        assert_int_equal(run_script(&r, path, test_source_path("tests/setup.sh"), groups[i], NULL), 0);
        char want[64];
        snprintf(want, sizeof want, "%s need: ", groups[i]);
        assert_non_null(strstr(r.out, want));
        assert_true(strlen(strstr(r.out, want)) > strlen(want) + 2);
        test_run_free(&r);
    }
}

/* ------------------------------------------------------ tools/models.sh */

/* A web server on 127.0.0.1 serving the files below `root`, one request at
 * a time, until killed. */
static pid_t serve(const char *root, int *port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(s, 8), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(s, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) {
        close(s);
        return pid;
    }
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char req[4096] = "";
        size_t got = 0;
        while (got < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
            ssize_t n = read(c, req + got, sizeof req - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            req[got] = '\0';
        }
        req[got] = '\0';
        char target[2048] = "";
        sscanf(req, "GET %2047s", target);
        char path[6200];
        snprintf(path, sizeof path, "%s%s", root, target);
        size_t size = 0;
        struct stat st;
        char *body = strstr(target, "..") || stat(path, &st) != 0 || !S_ISREG(st.st_mode) ? NULL
                                                                                          : test_read_file(path, &size);
        char head[256];
        int n = body ? snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n", size)
                     : snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n");
        n += snprintf(head + n, sizeof head - (size_t)n, "Connection: close\r\n\r\n");
        if (write(c, head, (size_t)n) == n && body) {
            for (size_t done = 0; done < size;) {
                ssize_t w = write(c, body + done, size - done);
                if (w <= 0) break;
                done += (size_t)w;
            }
        }
        free(body);
        close(c);
    }
}

static void stop(pid_t pid) {
    kill(pid, SIGTERM);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* models.sh DIR NAMES... with the given shared folder, server and tools. */
static int run_models(test_run *r, const char *shared, int port, const char *tools, const char *names) {
    char shared_env[4200], tiny[128], l2c[128], tools_env[4200], cmd[12000];
    snprintf(shared_env, sizeof shared_env, "SHARED_MODELS=%s", shared);
    snprintf(tiny, sizeof tiny, "TINYLLAMAS_URL=http://127.0.0.1:%d/tinyllamas", port);
    snprintf(l2c, sizeof l2c, "LLAMA2C_URL=http://127.0.0.1:%d/llama2.c", port);
    snprintf(tools_env, sizeof tools_env, "LLAMA2_TOOLS=%s", tools);
    snprintf(cmd, sizeof cmd, "exec sh '%s' '%s' %s", test_source_path("tools/models.sh"), in_dir("models"), names);
    char *argv[] = {"/usr/bin/env", "no_proxy=127.0.0.1", "http_proxy=", shared_env, tiny, l2c, tools_env,
                    "/bin/sh",      "-c",                 cmd,           NULL};
    return test_run_program(argv, NULL, NULL, 0, r);
}

/* Copied from the shared folder, with the usual mode. */
static void test_models_from_shared(void **state) {
    assert_int_equal(mkdir(in_dir("shared"), 0700), 0);
    test_write_file(in_dir("shared/tok512.bin"), "a tokenizer", 11, 0400);
    test_run r;
    mode_t mask = umask(022);
    int status = run_models(&r, in_dir("shared"), 1, in_dir("no-tools"), "tok512.bin");
    umask(mask);
    assert_int_equal(status, 0);
    assert_string_equal(r.err, "");
    test_run_free(&r);
    assert_true(test_same_file(in_dir("models/tok512.bin"), in_dir("shared/tok512.bin")));
    struct stat st;
    assert_int_equal(stat(in_dir("models/tok512.bin"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_string_equal(test_dir_listing(in_dir("models")), "tok512.bin");
}

/* Downloaded when the shared folder lacks them: the real files, checked
 * against their SHA-256. */
static void test_models_downloaded(void **state) {
    const char *tok512 = test_require_model("tok512.bin");
    char tok32k[4200];
    snprintf(tok32k, sizeof tok32k, "%s", test_require_model("tokenizer.bin"));
    assert_int_equal(mkdir(in_dir("web"), 0700), 0);
    assert_int_equal(mkdir(in_dir("web/tinyllamas"), 0700), 0);
    assert_int_equal(mkdir(in_dir("web/tinyllamas/stories260K"), 0700), 0);
    assert_int_equal(mkdir(in_dir("web/llama2.c"), 0700), 0);
    size_t n = 0;
    char *data = test_read_file(tok512, &n);
    test_write_file(in_dir("web/tinyllamas/stories260K/tok512.bin"), data, n, 0644);
    free(data);
    data = test_read_file(tok32k, &n);
    test_write_file(in_dir("web/llama2.c/tokenizer.bin"), data, n, 0644);
    free(data);
    int port;
    pid_t server = serve(in_dir("web"), &port);
    test_run r;
    mode_t mask = umask(022);
    int status = run_models(&r, in_dir("no-shared"), port, in_dir("no-tools"), "tok512.bin tokenizer.bin");
    umask(mask);
    stop(server);
    if (status != 0) print_message("%s%s", r.out, r.err);
    assert_int_equal(status, 0);
    char want[512];
    snprintf(want, sizeof want,
             "models: downloading tok512.bin from http://127.0.0.1:%d/tinyllamas/stories260K/tok512.bin\n"
             "models: downloading tokenizer.bin from http://127.0.0.1:%d/llama2.c/tokenizer.bin\n",
             port, port);
    assert_string_equal(r.out, want);
    test_run_free(&r);
    assert_true(test_same_file(in_dir("models/tok512.bin"), tok512));
    assert_true(test_same_file(in_dir("models/tokenizer.bin"), tok32k));
    struct stat st;
    assert_int_equal(stat(in_dir("models/tokenizer.bin"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_string_equal(test_dir_listing(in_dir("models")), "tok512.bin tokenizer.bin");
}

/* A download with other bytes, or none: not kept, said, status 1. */
static void test_models_bad_download(void **state) {
    assert_int_equal(mkdir(in_dir("web"), 0700), 0);
    assert_int_equal(mkdir(in_dir("web/tinyllamas"), 0700), 0);
    assert_int_equal(mkdir(in_dir("web/tinyllamas/stories260K"), 0700), 0);
    write_text(in_dir("web/tinyllamas/stories260K/stories260K.bin"), "not the model\n");
    int port;
    pid_t server = serve(in_dir("web"), &port);
    test_run r;
    int status = run_models(&r, in_dir("no-shared"), port, in_dir("no-tools"), "stories260K.bin tok512.bin");
    stop(server);
    assert_int_equal(status, 1);
    /* curl's own words for the 404 vary with its version. */
    const char *first = "models: stories260K.bin: not available (not in %s, and the download from "
                        "http://127.0.0.1:%d/tinyllamas/stories260K/stories260K.bin has the SHA-256 "
                        "aa3461f05d5697062bc2e96ee0a04bc0fee9295d30c1dc5f3db46e9b848d70ee, expected "
                        "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696)\n"
                        "models: tok512.bin: not available (not in %s, and the download from "
                        "http://127.0.0.1:%d/tinyllamas/stories260K/tok512.bin failed: curl: (22) ";
    char want[4096];
    snprintf(want, sizeof want, first, in_dir("no-shared"), port, in_dir("no-shared"), port);
    assert_true(strncmp(r.err, want, strlen(want)) == 0);
    assert_non_null(strstr(r.err + strlen(want), "404"));
    char hint[4096];
    snprintf(hint, sizeof hint,
             ")\nmodels: to supply stories260K.bin tok512.bin: copy them into %s, or set TINYLLAMAS_URL to a "
             "server holding stories260K/NAME (now http://127.0.0.1:%d/tinyllamas)\n",
             in_dir("models"), port);
    assert_non_null(strstr(r.err, hint));
    assert_string_equal(strstr(r.err, hint) + strlen(hint), "");
    test_run_free(&r);
    assert_string_equal(test_dir_listing(in_dir("models")), "");
}

/* No shared folder and no network (nothing listens on the port): each line
 * says where it looked, and the closing lines how to supply the files. */
static void test_models_offline(void **state) {
    int port;
    pid_t server = serve(in_dir("nothing"), &port);
    stop(server); /* the port now refuses connections */
    test_run r;
    int status = run_models(&r, in_dir("no-shared"), port, in_dir("no-tools"), "stories260K.bin tokenizer.model");
    assert_int_equal(status, 1);
    char want[8192];
    snprintf(want, sizeof want,
             "models: stories260K.bin: not available (not in %s, and the download from "
             "http://127.0.0.1:%d/tinyllamas/stories260K/stories260K.bin failed: curl: (7) ",
             in_dir("no-shared"), port);
    assert_true(strncmp(r.err, want, strlen(want)) == 0);
    snprintf(want, sizeof want,
             "models: tokenizer.model: not available (not in %s, and the download from "
             "http://127.0.0.1:%d/llama2.c/tokenizer.model failed: curl: (7) ",
             in_dir("no-shared"), port);
    assert_non_null(strstr(r.err, want));
    snprintf(want, sizeof want,
             "models: to supply stories260K.bin: copy them into %s, or set TINYLLAMAS_URL to a server holding "
             "stories260K/NAME (now http://127.0.0.1:%d/tinyllamas)\n"
             "models: to supply tokenizer.model: copy them into %s, or set LLAMA2C_URL to a server holding NAME "
             "(now http://127.0.0.1:%d/llama2.c)\n",
             in_dir("models"), port, in_dir("models"), port);
    assert_non_null(strstr(r.err, want));
    assert_string_equal(strstr(r.err, want) + strlen(want), "");
    test_run_free(&r);
    assert_string_equal(test_dir_listing(in_dir("models")), "");
}

/* The int8 file is made with llama2-quantize; the v1 file needs
 * llama2-convert or the shared folder; the group-size-64 file, the shared
 * folder. */
static void test_models_made_by_tools(void **state) {
    const char *quantize = test_require_tool("llama2-quantize");
    assert_int_equal(mkdir(in_dir("shared"), 0700), 0);
    assert_int_equal(mkdir(in_dir("tools"), 0700), 0);
    assert_int_equal(symlink(quantize, in_dir("tools/llama2-quantize")), 0);
    /* A model of stories260K's shape, random. */
    llama2_config c = l2_random_model_config(64, 172, 2, 8, 4, 512, 64, 1, 0, 0);
    llama2_error err = {0};
    assert_int_equal(l2_write_random_model(in_dir("shared/stories260K.bin"), &c, 3, 0, &err), LLAMA2_OK);
    test_run r;
    int status = run_models(&r, in_dir("shared"), 1, in_dir("tools"),
                            "stories260K_q80_gs4.bin stories260K_v1.bin stories260K_q80.bin");
    assert_int_equal(status, 1);
    char want[8192];
    snprintf(want, sizeof want,
             "models: stories260K_v1.bin: not available (llama2-convert is not built, and it is not in %s)\n"
             "models: stories260K_q80.bin: not available (not in %s)\n",
             in_dir("shared"), in_dir("shared"));
    assert_string_equal(r.err, want);
    test_run_free(&r);
    assert_string_equal(test_dir_listing(in_dir("models")), "stories260K.bin stories260K_q80_gs4.bin");
    llama2_model *m = NULL;
    assert_int_equal(llama2_model_open(in_dir("models/stories260K_q80_gs4.bin"), NULL, &m, &err), LLAMA2_OK);
    assert_int_equal(llama2_model_config(m)->group_size, 4);
    llama2_model_close(m);
}

/* make BLAS=1 where OpenBLAS cannot be linked (here a library that does
 * not exist stands for it) stops before building anything, naming the
 * package; make clean goes on. */
static void test_blas_missing(void **state) {
    (void)state;
    char *make = "/usr/bin/make";
    if (l2_path_lookup(make, NULL, NULL) != L2_PATH_FILE) {
        print_message("skipped: no %s\n", make);
        skip();
    }
    char *argv[] = {make, "--no-print-directory", "-n", "BLAS=1", "CC=cc", "OPENBLAS_LIBS=-lllama2_no_such_blas", "llama2", NULL};
    test_run r;
    assert_int_equal(test_run_program(argv, test_source_path("."), NULL, 0, &r), 2);
    const char *want = ": *** BLAS=1: OpenBLAS is not installed, or cc cannot find cblas.h or link -lllama2_no_such_blas "
                       "(Debian and Ubuntu: apt-get install libopenblas-dev; plain make builds without BLAS).  Stop.\n";
    if (!strstr(r.err, want)) fail_msg("stderr '%s' lacks '%s'", r.err, want);
    assert_string_equal(r.out, "");
    test_run_free(&r);
    char *clean[] = {make, "--no-print-directory", "-n", "BLAS=1", "CC=cc", "OPENBLAS_LIBS=-lllama2_no_such_blas", "clean", NULL};
    assert_int_equal(test_run_program(clean, test_source_path("."), NULL, 0, &r), 0);
    test_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_setup_nothing_missing, test_setup),
        cmocka_unit_test_setup(test_setup_installs_as_root, test_setup),
        cmocka_unit_test_setup(test_setup_installs_through_sudo, test_setup),
        cmocka_unit_test_setup(test_setup_cannot_install, test_setup),
        cmocka_unit_test_setup(test_setup_install_fails, test_setup),
        cmocka_unit_test_setup(test_setup_without_dpkg, test_setup),
        cmocka_unit_test_setup(test_package_list_groups, test_setup),
        cmocka_unit_test_setup(test_models_from_shared, test_setup),
        cmocka_unit_test_setup(test_models_downloaded, test_setup),
        cmocka_unit_test_setup(test_models_bad_download, test_setup),
        cmocka_unit_test_setup(test_models_offline, test_setup),
        cmocka_unit_test_setup(test_models_made_by_tools, test_setup),
        cmocka_unit_test(test_blas_missing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
