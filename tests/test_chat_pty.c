/*
 * Chat on a real terminal: the llama2 program ($LLAMA2_BIN) runs in a
 * pseudo-terminal (forkpty), its standard error in a pipe, and the test types
 * into it as a user would: Enter, text, Ctrl-C (the terminal turns it into
 * SIGINT) and Ctrl-D (end of input at an empty line).
 *
 * - Ctrl-D or Ctrl-C at an empty prompt ends the chat with status 0 and one
 *   line on standard error saying why.
 * - Ctrl-C (the keystroke, then the signal sent with kill) in the middle of
 *   a reply ends that reply and brings the prompt back; the chat goes on.
 *   The replies come from a random model that never writes EOS and is slow
 *   enough that a reply lasts seconds, so only the interrupt can end it
 *   before the context fills (which would end the chat instead).
 * - The same when the SIGINT lands on a thread other than main: the
 *   process's signal goes to any thread that does not hold it back (the
 *   pool's, or those a BLAS library starts before main).
 * - A conversation of two turns with capped replies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "write/checkpoint_writer.h"
#include "llama2.h"
#include "support.h"

static char tmp_dir[4096];
static char slow_model[4200]; /* random weights: no EOS, a few hundred tokens a second */
static char model[4200], tokenizer[4200];

static int setup(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "%s/llama2-pty-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_dir)) return -1;
    snprintf(slow_model, sizeof slow_model, "%s/slow.bin", tmp_dir);
    llama2_config c = l2_random_model_config(256, 512, 6, 8, 8, 512, 1024, 1, 1, 0);
    llama2_error err;
    if (l2_write_random_model(slow_model, &c, 3, 0, &err) != LLAMA2_OK) {
        fprintf(stderr, "test_chat_pty: %s\n", err.message);
        return -1;
    }
    snprintf(model, sizeof model, "%s", test_model_path("stories260K.bin"));
    snprintf(tokenizer, sizeof tokenizer, "%s", test_model_path("tok512.bin"));
    return 0;
}

/* Skips the running test unless the model files it names are there (a
 * test on the random model needs only the tokenizer). */
static void need(int model_too) {
    if (model_too) test_require_model("stories260K.bin");
    test_require_model("tok512.bin");
}

static int teardown(void **state) {
    (void)state;
    unlink(slow_model);
    rmdir(tmp_dir);
    return 0;
}

/* ------------------------------------------------------------ a program on a terminal */

typedef struct terminal {
    pid_t pid;
    int master;   /* the terminal: what the program writes, and our keystrokes */
    int err_fd;   /* its standard error */
    char out[1 << 18];
    size_t n_out;
    char err[4096];
    size_t n_err;
} terminal;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void start(terminal *t, const char *const *args) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)test_llama2_bin();
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int err_pipe[2];
    assert_int_equal(pipe(err_pipe), 0);
    memset(t, 0, sizeof *t);
    t->pid = forkpty(&t->master, NULL, NULL, NULL);
    assert_true(t->pid >= 0);
    if (t->pid == 0) {
        dup2(err_pipe[1], 2);
        close(err_pipe[0]);
        close(err_pipe[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(err_pipe[1]);
    t->err_fd = err_pipe[0];
}

/* Reads what is there within `seconds`; returns 0 when both ends closed. */
static int pump(terminal *t, double seconds) {
    if (t->master < 0 && t->err_fd < 0) return 0;
    struct pollfd fds[2] = {{t->master, POLLIN, 0}, {t->err_fd, POLLIN, 0}};
    int r = poll(fds, 2, (int)(seconds * 1000));
    if (r < 0 && errno == EINTR) return 1;
    if (r <= 0) return 1;
    if (t->master >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(t->master, t->out + t->n_out, sizeof t->out - 1 - t->n_out);
        if (n <= 0) { /* EIO once the program has closed the terminal */
            close(t->master);
            t->master = -1;
        } else {
            t->n_out += (size_t)n;
            t->out[t->n_out] = '\0';
        }
    }
    if (t->err_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(t->err_fd, t->err + t->n_err, sizeof t->err - 1 - t->n_err);
        if (n <= 0) {
            close(t->err_fd);
            t->err_fd = -1;
        } else {
            t->n_err += (size_t)n;
            t->err[t->n_err] = '\0';
        }
    }
    return t->master >= 0 || t->err_fd >= 0;
}

/* Waits until `text` appears in the output after `from`; returns the offset
 * just past it. Fails the test after `seconds`. */
static size_t expect(terminal *t, const char *text, size_t from, double seconds) {
    const double deadline = now() + seconds;
    for (;;) {
        const char *hit = from <= t->n_out ? strstr(t->out + from, text) : NULL;
        if (hit) return (size_t)(hit - t->out) + strlen(text);
        if (now() > deadline || t->master < 0)
            fail_msg("no '%s' after byte %zu within %.0f s; output: '%s'; stderr: '%s'", text, from, seconds,
                     t->out + (from < t->n_out ? from : t->n_out), t->err);
        pump(t, 0.1);
    }
}

/* Waits until at least `more` bytes beyond `from` have arrived. */
static void expect_bytes(terminal *t, size_t from, size_t more, double seconds) {
    const double deadline = now() + seconds;
    while (t->n_out < from + more) {
        if (now() > deadline || t->master < 0) fail_msg("the reply did not go on: '%s'", t->out + from);
        pump(t, 0.1);
    }
}

static void type(terminal *t, const char *keys) {
    ssize_t n = write(t->master, keys, strlen(keys));
    assert_int_equal(n, (ssize_t)strlen(keys));
}

/* Waits for the program to end (killing it after `seconds`); returns its
 * exit status, or 128 + the signal. */
static int finish(terminal *t, double seconds) {
    const double deadline = now() + seconds;
    int status = 0;
    for (;;) {
        pid_t done = waitpid(t->pid, &status, WNOHANG);
        if (done == t->pid) break;
        if (now() > deadline) {
            kill(t->pid, SIGKILL);
            waitpid(t->pid, &status, 0);
            fail_msg("the program did not end; output: '%s'", t->out);
        }
        pump(t, 0.05);
    }
    while (pump(t, 0.2)) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ------------------------------------------------------------ the sessions */

#define PROMPT "Enter system prompt (optional): "

/* Starts a chat, answers the system prompt with `system` (and Enter) and
 * waits for the first "User: "; returns the offset after it. */
static size_t start_chat(terminal *t, const char *const *args, const char *system) {
    start(t, args);
    size_t at = expect(t, PROMPT, 0, 30);
    type(t, system);
    type(t, "\r");
    return expect(t, "User: ", at, 30);
}

static void test_ctrl_d_at_prompt(void **state) {
    (void)state;
    need(1);
    terminal t;
    const char *args[] = {model, "-z", tokenizer, "-m", "chat", "--no-timer", NULL};
    start_chat(&t, args, "");
    type(&t, "\x04");
    assert_int_equal(finish(&t, 30), 0);
    assert_string_equal(t.err, "llama2: chat ended: end of input\n");
}

static void test_ctrl_c_at_prompt(void **state) {
    (void)state;
    need(1);
    /* At the system prompt, then at a user prompt after a reply. */
    terminal t;
    const char *args[] = {model, "-z", tokenizer, "-m", "chat", "--no-timer", NULL};
    start(&t, args);
    expect(&t, PROMPT, 0, 30);
    type(&t, "\x03");
    assert_int_equal(finish(&t, 30), 0);
    assert_string_equal(t.err, "llama2: chat ended: Ctrl-C at the prompt\n");

    const char *capped[] = {model, "-z", tokenizer, "-m", "chat", "--no-timer", "--reply-tokens", "5", "-t", "0", NULL};
    size_t at = start_chat(&t, capped, "");
    type(&t, "Tell me a story.\r");
    at = expect(&t, "Assistant: ", at, 30);
    expect(&t, "User: ", at, 30);
    type(&t, "\x03");
    assert_int_equal(finish(&t, 30), 0);
    assert_string_equal(t.err, "llama2: chat ended: Ctrl-C at the prompt\n");
}

static void test_ctrl_c_mid_reply(void **state) {
    (void)state;
    need(0);
    terminal t;
    const char *args[] = {slow_model, "-z", tokenizer, "-m", "chat", "--no-timer", "-t", "0", "--threads", "1", NULL};
    size_t at = start_chat(&t, args, "");

    /* The keystroke. */
    type(&t, "hi\r");
    at = expect(&t, "Assistant: ", at, 30);
    expect_bytes(&t, at, 20, 30);
    type(&t, "\x03");
    at = expect(&t, "User: ", t.n_out, 10);

    /* The signal itself, in the second reply. */
    type(&t, "again\r");
    at = expect(&t, "Assistant: ", at, 30);
    expect_bytes(&t, at, 20, 30);
    kill(t.pid, SIGINT);
    at = expect(&t, "User: ", t.n_out, 10);

    type(&t, "\x04");
    assert_int_equal(finish(&t, 30), 0);
    assert_string_equal(t.err, "llama2: chat ended: end of input\n");
}

/* Checks that every thread of the program but its main one blocks SIGINT
 * (SigBlk in /proc/PID/task/TID/status); fails the test when it has none. */
static void expect_other_threads_block_sigint(const terminal *t) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task", (long)t->pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int others = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long id = strtol(e->d_name, NULL, 10);
        if (id <= 0 || id == (long)t->pid) continue;
        char status[128], line[256];
        snprintf(status, sizeof status, "/proc/%ld/task/%ld/status", (long)t->pid, id);
        FILE *f = fopen(status, "r");
        if (!f) continue; /* ended meanwhile */
        unsigned long long blocked = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "SigBlk: %llx", &blocked) == 1) break;
        fclose(f);
        if (!(blocked >> (SIGINT - 1) & 1)) fail_msg("thread %ld of the program takes SIGINT", id);
        others++;
    }
    closedir(d);
    if (!others) fail_msg("the program has no thread but its main one");
}

/* A pool of two threads: its threads block SIGINT, so that Ctrl-C (sent to
 * the process) is taken by the main thread, at the prompt and in a reply. */
static void test_ctrl_c_with_a_pool(void **state) {
    (void)state;
    need(0);
    terminal t;
    const char *args[] = {slow_model, "-z", tokenizer, "-m", "chat", "--no-timer", "-t", "0", "--threads", "2", NULL};
    size_t at = start_chat(&t, args, "");
    type(&t, "hi\r");
    at = expect(&t, "Assistant: ", at, 30);
    expect_bytes(&t, at, 20, 30);
    expect_other_threads_block_sigint(&t);
    kill(t.pid, SIGINT);
    at = expect(&t, "User: ", t.n_out, 10);
    kill(t.pid, SIGINT);
    assert_int_equal(finish(&t, 30), 0);
    assert_string_equal(t.err, "llama2: chat ended: Ctrl-C at the prompt\n");
}

static int count(const char *haystack, const char *needle) {
    int n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_conversation(void **state) {
    (void)state;
    need(1);
    terminal t;
    const char *args[] = {model, "-z", tokenizer, "-m", "chat", "--no-timer", "--reply-tokens", "8",
                          "--chat-template", "zephyr", "-t", "0", NULL};
    size_t at = start_chat(&t, args, "You tell stories.");
    type(&t, "A cat.\r");
    at = expect(&t, "Assistant: ", at, 30);
    at = expect(&t, "User: ", at, 30);
    type(&t, "And then?\r");
    at = expect(&t, "Assistant: ", at, 30);
    at = expect(&t, "User: ", at, 30);
    type(&t, "\x04");
    assert_int_equal(finish(&t, 30), 0);
    assert_string_equal(t.err, "llama2: chat ended: end of input\n");
    /* The typed lines echo; the model's special tokens never show. */
    assert_non_null(strstr(t.out, "A cat."));
    assert_int_equal(count(t.out, "Assistant: "), 2);
    assert_null(strstr(t.out, "</s>"));
}

/* The text of a run's replies, one after another, each from "Assistant: "
 * to the next "User: " (the terminal's CRs left out). */
static void replies_of(const char *out, char *text, size_t size) {
    size_t n = 0;
    for (const char *p = strstr(out, "Assistant: "); p; p = strstr(p, "Assistant: ")) {
        p += strlen("Assistant: ");
        const char *end = strstr(p, "User: ");
        if (!end) end = p + strlen(p);
        for (; p < end && n + 1 < size; p++)
            if (*p != '\r') text[n++] = *p;
    }
    text[n] = '\0';
}

/* The same chat with standard input from a pipe (no terminal, no editor). */
static void piped_replies(const char *const *args, const char *input, char *text, size_t size) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)test_llama2_bin();
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    test_run r;
    assert_int_equal(test_run_program(argv, NULL, input, strlen(input), &r), 0);
    replies_of(r.out, text, size);
    test_run_free(&r);
}

/* With libedit: the left arrow moves the cursor within the line ("Tm",
 * left, "o" is "Tom"), and the up arrow brings the last line back. */
static void test_line_editing(void **state) {
    (void)state;
    need(1);
#ifndef LLAMA2_WITH_LIBEDIT
    print_message("skipped: llama2 is built without libedit (libedit-dev)\n");
    skip();
#endif
    const char *args[] = {model, "-z", tokenizer, "-m", "chat", "--no-timer", "--reply-tokens", "16",
                          "--chat-template", "none", "-t", "0", NULL};
    terminal t;
    size_t at = start_chat(&t, args, "");
    type(&t, "Tm\x1b[Do\r");
    at = expect(&t, "Assistant: ", at, 30);
    at = expect(&t, "User: ", at, 30);
    type(&t, "\x1b[A\r");
    at = expect(&t, "Assistant: ", at, 30);
    at = expect(&t, "User: ", at, 30);
    type(&t, "\x04");
    assert_int_equal(finish(&t, 30), 0);
    assert_string_equal(t.err, "llama2: chat ended: end of input\n");
    char edited[4096], typed[4096], wrong[4096];
    replies_of(t.out, edited, sizeof edited);
    piped_replies(args, "\nTom\nTom\n", typed, sizeof typed);
    piped_replies(args, "\nTmo\nTmo\n", wrong, sizeof wrong);
    assert_string_not_equal(typed, wrong); /* the replies tell the lines apart */
    assert_string_equal(edited, typed);
}

/* Ctrl-C in a reply: not one more token is shown. The program is stopped,
 * what it wrote read, then it gets SIGINT and goes on: the token it was
 * computing is not shown. With --verbose it says how many tokens it
 * sampled (G); the reply shown is that of --reply-tokens G - 1. */
static void test_no_token_after_ctrl_c(void **state) {
    (void)state;
    need(0);
    const char *args[] = {slow_model, "-z", tokenizer, "-m", "chat", "--no-timer", "-t", "0", "--threads", "1",
                          "--chat-template", "none", "--verbose", NULL};
    terminal t;
    size_t at = start_chat(&t, args, "");
    type(&t, "hi\r");
    at = expect(&t, "Assistant: ", at, 30);
    expect_bytes(&t, at, 20, 30);
    kill(t.pid, SIGSTOP);
    while (pump(&t, 0.3) && t.master >= 0) {
        struct pollfd p = {t.master, POLLIN, 0};
        if (poll(&p, 1, 300) == 0) break;
    }
    kill(t.pid, SIGINT);
    kill(t.pid, SIGCONT);
    at = expect(&t, "User: ", t.n_out, 10);
    type(&t, "\x04");
    assert_int_equal(finish(&t, 30), 0);
    const char *stats = strstr(t.err, "generated_tokens=");
    assert_non_null(stats);
    int generated = atoi(stats + strlen("generated_tokens="));
    assert_true(generated > 1);
    char shown[16384], capped[16384], cap[32];
    replies_of(t.out, shown, sizeof shown);
    snprintf(cap, sizeof cap, "%d", generated - 1);
    const char *capped_args[] = {slow_model, "-z", tokenizer, "-m", "chat", "--no-timer", "-t", "0",
                                 "--chat-template", "none", "--reply-tokens", cap, NULL};
    piped_replies(capped_args, "\nhi\n", capped, sizeof capped);
    assert_string_equal(shown, capped);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctrl_d_at_prompt),
        cmocka_unit_test(test_ctrl_c_at_prompt),
        cmocka_unit_test(test_ctrl_c_mid_reply),
        cmocka_unit_test(test_ctrl_c_with_a_pool),
        cmocka_unit_test(test_conversation),
        cmocka_unit_test(test_line_editing),
        cmocka_unit_test(test_no_token_after_ctrl_c),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
