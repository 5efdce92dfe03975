/* The llama2 program: parse the command line, open the model and tokenizer,
 * run generation or chat, and turn every error into one line on stderr.
 * Exit status: 0 success, 1 a bad file or a failure, 2 bad usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "line_edit.h"
#include "llama2.h"
#include "messages.h"
#include "open.h"
#include "options.h"
#include "platform/platform.h"
#ifdef LLAMA2_HAVE_SCHEMA
#include "schema/json_schema.h"
#endif

/* Chat and Ctrl-C: while a chat runs, Ctrl-C does not end the program
 * (l2_interrupt_catch): a write in main takes one that came and says stop
 * (the reply ends), and a read at the prompt waits for input or Ctrl-C, so
 * that a Ctrl-C that comes just before the wait still ends it. */

/* What the callbacks share with main. */
typedef struct terminal {
    const char *warning;       /* printed on stderr before the first output, unless an error comes first */
    int chat;                  /* Ctrl-C is caught here */
    int interrupted_at_prompt; /* the chat ended by Ctrl-C at the prompt */
    int sigint_at_last_write;  /* the last write took a Ctrl-C: if a read follows, it came at the prompt */
    char *in;                  /* input read but not yet returned as lines */
    size_t in_len, in_cap;
    int in_eof;
    int in_reply;              /* the text written is a reply's ("Assistant: " came last) */
    cli_line_editor *editor;   /* libedit at a terminal, or NULL */
    char label[256];           /* what was written since the last newline: the prompt an editor shows again */
    size_t label_len;
} terminal;

#define REPLY_LABEL "Assistant: "

/* Takes a Ctrl-C that came, if one did. */
static int take_sigint(const terminal *t) { return t->chat && l2_interrupt_take(); }

static void print_warning(terminal *t) {
    if (!t->warning) return;
    fprintf(stderr, "%s\n", t->warning);
    t->warning = NULL;
}

/* Keeps the text of the line being written, for an editor to show again as
 * its prompt. */
static void keep_label(terminal *t, const char *text, size_t len) {
    for (size_t i = len; i > 0; i--)
        if (text[i - 1] == '\n') {
            t->label_len = 0;
            text += i;
            len -= i;
            break;
        }
    if (len > sizeof t->label - 1 - t->label_len) len = sizeof t->label - 1 - t->label_len;
    memcpy(t->label + t->label_len, text, len);
    t->label_len += len;
    t->label[t->label_len] = '\0';
}

/* Straight to standard output, unbuffered. The library stops a reply at a
 * non-zero return, and ignores it for the prompt's label ("User: "), which
 * is always written last before a read: a Ctrl-C taken there belongs to the
 * prompt. A Ctrl-C taken in a reply ends it before the text of the token
 * sampled after it is shown. */
static int write_stdout(void *user, const char *text, size_t len) {
    terminal *t = user;
    print_warning(t);
    t->sigint_at_last_write = take_sigint(t);
    if (t->sigint_at_last_write && t->in_reply) {
        t->in_reply = 0;
        return 1;
    }
    l2_stdout_write(text, len);
    keep_label(t, text, len);
    if (len == strlen(REPLY_LABEL) && memcmp(text, REPLY_LABEL, len) == 0) t->in_reply = 1;
    return t->sigint_at_last_write;
}

/* A line from the editor, which shows the label written before it again
 * (from the start of the line) with the text being edited. */
static int read_edited_line(terminal *t, char **line) {
    l2_stdout_write("\r", 1);
    int r = cli_line_editor_read(t->editor, t->label, line);
    if (r < 0) t->interrupted_at_prompt = 1;
    if (r > 0) t->label_len = 0; /* the newline typed ended the line */
    return r > 0;
}

/* The next line of standard input, without its newline; 0 at the end of
 * input or at Ctrl-C. Read with l2_stdin_read, not stdio, so that Ctrl-C
 * ends the wait. */
static int read_stdin_line(void *user, char **line) {
    terminal *t = user;
    t->in_reply = 0;
    if (t->sigint_at_last_write) {
        t->interrupted_at_prompt = 1;
        return 0;
    }
    if (t->editor) return read_edited_line(t, line);
    for (;;) {
        char *newline = t->in ? memchr(t->in, '\n', t->in_len) : NULL;
        if (newline || (t->in_eof && t->in_len > 0)) {
            size_t len = newline ? (size_t)(newline - t->in) : t->in_len;
            *line = malloc(len + 1);
            if (!*line) return 0;
            memcpy(*line, t->in, len);
            (*line)[len] = '\0';
            size_t used = newline ? len + 1 : len;
            memmove(t->in, t->in + used, t->in_len - used);
            t->in_len -= used;
            return 1;
        }
        if (t->in_eof) return 0;
        if (t->in_len + 4096 > t->in_cap) {
            size_t cap = t->in_cap ? t->in_cap * 2 : 8192;
            char *bigger = realloc(t->in, cap);
            if (!bigger) return 0;
            t->in = bigger;
            t->in_cap = cap;
        }
        if (take_sigint(t)) {
            t->interrupted_at_prompt = 1;
            return 0;
        }
        long n = l2_stdin_read(t->in + t->in_len, t->in_cap - t->in_len);
        if (n == L2_READ_INTERRUPTED) continue; /* taken above, next time round */
        if (n <= 0)
            t->in_eof = 1;
        else
            t->in_len += (size_t)n;
    }
}

static void print_stats(const cli_args *a, const llama2_stats *st, int threads) {
    if (!a->no_timer && st->positions > 1 && st->seconds_after_first > 0)
        fprintf(stderr, "achieved tok/s: %f\n", (double)st->positions / st->seconds_after_first);
    if (a->verbose)
        fprintf(stderr,
                "llama2-stats prompt_tokens=%d prompt_tok_per_s=%.2f generated_tokens=%d generate_tok_per_s=%.2f "
                "threads=%d peak_rss_kib=%ld\n",
                st->prompt_tokens, st->prompt_seconds > 0 ? st->prompt_tokens / st->prompt_seconds : 0.0,
                st->generated_tokens, st->generate_seconds > 0 ? st->generated_tokens / st->generate_seconds : 0.0,
                threads, l2_peak_rss_kib());
}

/* One line on stderr: control bytes in a file name or message become '?'. */
static void print_error(const char *culprit, const char *message) { cli_print_error("llama2", culprit, message); }

/* A seed that differs between runs in the same second and between processes
 * started at once: the nanosecond clock and the process id, mixed by
 * splitmix64's finaliser so that nearby inputs give unrelated seeds. */
static uint64_t fresh_seed(void) {
    uint64_t z = (uint64_t)l2_wall_clock_ns();
    z ^= (uint64_t)l2_process_id() << 40;
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z ? z : 1;
}

static void print_version(void) {
    printf("llama2 %s\nbackends:", LLAMA2_VERSION);
    for (int i = 0; llama2_backend_name(i); i++) printf(" %s", llama2_backend_name(i));
    printf("\nkernels: %s (chosen on this CPU)\n", llama2_kernels_name());
}

/* --verbose: the model, the kernels and the seed, one line each. */
static void print_verbose(const cli_args *a, const llama2_model *model, int context_length) {
    const llama2_config *c = llama2_model_config(model);
    const char *path = a->checkpoint;
    int64_t bytes = -1;
    l2_path_lookup(path, NULL, &bytes);
    fprintf(stderr,
            "llama2-model format=\"%s\" dim=%d hidden_dim=%d layers=%d heads=%d kv_heads=%d vocab=%d context=%d "
            "seq_len=%d group_size=%d parameters=%.0f file_bytes=%lld\n",
            llama2_model_format(model), c->dim, c->hidden_dim,
            c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, context_length, c->seq_len, c->group_size,
            cli_parameter_count(c), (long long)bytes);
    fprintf(stderr, "llama2-kernels level=%s table=%s\n", llama2_kernels_name(), llama2_model_kernels_name(model));
    fprintf(stderr, "llama2-seed seed=%llu\n", (unsigned long long)a->seed);
}

/* The whole of a prompt file ("-": standard input), without one final
 * newline, into *text; 0 with a message in msg on failure. `what` names
 * the text in that message. */
static int read_text_file(const char *path, const char *what, char **text, char *msg, size_t msg_size) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : l2_fopen(path, "rb");
    if (!f) {
        snprintf(msg, msg_size, "cannot open: %s", strerror(errno));
        return 0;
    }
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) break;
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int failed = !buf || ferror(f);
    int saved = errno;
    if (f != stdin) fclose(f);
    if (failed) {
        snprintf(msg, msg_size, "%s", buf ? strerror(saved) : "out of memory");
        free(buf);
        return 0;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        snprintf(msg, msg_size, "the %s holds a NUL byte (at offset %zu)", what, strlen(buf));
        free(buf);
        return 0;
    }
    if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
    *text = buf;
    return 1;
}

/* The grammar the options give (none: *grammar stays NULL). Returns 0 with
 * *culprit, *rc and err set on failure: 2 for a bad grammar or schema. */
static int load_grammar(const cli_args *a, llama2_grammar **grammar, const char **culprit, int *rc,
                        llama2_error *err) {
    if (a->grammar_from == CLI_GRAMMAR_NONE) return 1;
    const int from_file = a->grammar_from == CLI_GRAMMAR_FILE || a->grammar_from == CLI_GRAMMAR_SCHEMA_FILE;
    const int schema = a->grammar_from == CLI_GRAMMAR_SCHEMA || a->grammar_from == CLI_GRAMMAR_SCHEMA_FILE;
    char *text = NULL;
    *culprit = from_file ? a->grammar : a->grammar_flag;
    *rc = 1;
    if (from_file && !read_text_file(a->grammar, schema ? "schema" : "grammar", &text, err->message,
                                     sizeof err->message))
        return 0;
    const char *t = from_file ? text : a->grammar;
    llama2_status s;
#ifdef LLAMA2_HAVE_SCHEMA
    s = schema ? l2_json_schema_grammar(t, strlen(t), grammar, err) : llama2_grammar_parse(t, strlen(t), grammar, err);
#else
    if (schema) {
        free(text);
        *culprit = a->grammar_flag;
        *rc = 2;
        snprintf(err->message, sizeof err->message,
                 "this llama2 was built without JSON Schema support (jansson, libjansson-dev, was not installed)");
        return 0;
    }
    s = llama2_grammar_parse(t, strlen(t), grammar, err);
#endif
    free(text);
    if (s != LLAMA2_OK) {
        *rc = s == LLAMA2_E_INVALID ? 2 : 1;
        return 0;
    }
    *culprit = NULL;
    *rc = 1;
    return 1;
}

static void print_chat_end(const llama2_stats *st, const terminal *t, int steps, int context) {
    switch (st->stop) {
    case LLAMA2_STOP_INPUT:
        fprintf(stderr, "llama2: chat ended: %s\n", t->interrupted_at_prompt ? "Ctrl-C at the prompt" : "end of input");
        return;
    case LLAMA2_STOP_CONTEXT:
        fprintf(stderr, "llama2: chat ended: the context window is full (%d positions)\n", context);
        return;
    default:
        fprintf(stderr, "llama2: chat ended: the step limit is reached (-n %d)\n", steps);
        return;
    }
}

/* Generation, or chat, with its output and input on the terminal. */
static llama2_status run_mode(const cli_args *a, const cli_opened *run, llama2_sampler *sampler, const char *prompt,
                              int steps, terminal *term, llama2_stats *st, llama2_error *err) {
    llama2_io io = {.user = term, .write = write_stdout, .read_line = read_stdin_line};
    if (a->mode != CLI_CHAT) {
        llama2_generate_options gopts = {.steps = steps, .stop = a->stops, .n_stop = a->n_stops};
        return llama2_generate(run->session, run->tokenizer, sampler, prompt, &gopts, &io, st, err);
    }
    if (l2_interrupt_catch() == 0) {
        term->chat = 1;
        /* Editing needs the Ctrl-C caught: it must not end the program
         * with the terminal in the editor's mode. */
        term->editor = cli_line_editor_open("llama2");
    } else {
        fprintf(stderr, "llama2: warning: Ctrl-C cannot be caught: it ends the program\n");
    }
    llama2_chat_options copts = {.system_prompt = a->system_prompt, .user_prompt = prompt, .steps = steps,
                                 .reply_tokens = a->reply_tokens, .chat_template = a->chat_template,
                                 .stop = a->stops, .n_stop = a->n_stops};
    return llama2_chat(run->session, run->tokenizer, sampler, &copts, &io, st, err);
}

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    cli_args a;
    char msg[512];
    int parsed = cli_parse(argc, argv, &a, msg, sizeof msg);
    if ((parsed = cli_parsed("llama2", parsed, msg, a.help, cli_usage(), a.version, print_version)) >= 0) return parsed;

    llama2_error err = {0};
    cli_opened run = {0};
    llama2_sampler *sampler = NULL;
    char *file_prompt = NULL;
    llama2_grammar *grammar = NULL;
    terminal term = {0};
    int rc = 1;
    const char *culprit = NULL; /* what an error is about: a file or a flag */

    if (a.prompt_file && !read_text_file(a.prompt_file, "prompt", &file_prompt, err.message, sizeof err.message)) {
        culprit = a.prompt_file;
        goto done;
    }
    const char *prompt = a.prompt_file ? file_prompt : a.prompt;

    /* The grammar before the model: a bad one is a usage error, told at once. */
    if (!load_grammar(&a, &grammar, &culprit, &rc, &err)) goto done;
    cli_open_options open = {.program = "llama2", .checkpoint = a.checkpoint, .tokenizer = a.tokenizer,
                             .tokenizer_given = a.tokenizer_given, .no_mmap = a.no_mmap,
                             .context_length = a.context_length, .threads = a.threads, .small_model_threads = 1,
                             .threads_culprit = "setup", .batch = a.batch, .backend = a.backend};
    rc = cli_open(&open, &run, &culprit, &err);
    if (rc != 0) goto done;
    rc = 1;
    const llama2_config *config = llama2_model_config(run.model);
    term.warning = run.tokenizer_warning[0] ? run.tokenizer_warning : NULL;
    const int context = a.context_length ? a.context_length : config->seq_len;
    if (a.seed == 0) a.seed = fresh_seed();
    llama2_sampler_options sampler_options = cli_sampler_options(&a, context);
    if (llama2_sampler_create(config->vocab_size, &sampler_options, &sampler, &err) != LLAMA2_OK ||
        llama2_sampler_set_grammar(sampler, grammar, run.tokenizer, &err) != LLAMA2_OK) {
        culprit = "setup";
        goto done;
    }
    if (a.verbose) print_verbose(&a, run.model, context);

    llama2_stats st;
    const int steps = a.mode == CLI_CHAT && !a.steps_given ? 0 : a.steps;
    llama2_status s = run_mode(&a, &run, sampler, prompt, steps, &term, &st, &err);
    if (s != LLAMA2_OK) {
        /* A bad file format found while running is the tokenizer's: it
         * lacks BOS, the " " piece or the byte tokens the text needs. */
        culprit = s == LLAMA2_E_CONTEXT  ? (a.prompt_file ? "-f" : "-i")
                  : s == LLAMA2_E_FORMAT ? run.tokenizer_source
                                         : "generation";
        rc = s == LLAMA2_E_CONTEXT ? 2 : 1;
        goto done;
    }
    print_warning(&term);
    if (a.mode == CLI_CHAT) print_chat_end(&st, &term, steps, context);
    print_stats(&a, &st, llama2_threadpool_size(run.pool));
    rc = 0;

done:
    if (culprit) print_error(culprit, err.message);
    free(file_prompt);
    free(term.in);
    cli_line_editor_close(term.editor);
    llama2_sampler_destroy(sampler);
    cli_close(&run);
    llama2_grammar_free(grammar);
    return rc;
}
