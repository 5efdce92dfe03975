/* The llama2 program: parse the command line, open the model and tokenizer,
 * run generation or chat, and turn every error into one line on stderr.
 * Exit status: 0 success, 1 a bad file or a failure, 2 bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

#include "args.h"
#include "llama2.h"

static void write_stdout(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static int read_stdin_line(void *user, char **line) {
    (void)user;
    size_t cap = 0;
    ssize_t n = getline(line, &cap, stdin);
    if (n < 0) return 0;
    if (n > 0 && (*line)[n - 1] == '\n') (*line)[--n] = '\0';
    return 1;
}

static long peak_rss_kib(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
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
                threads, peak_rss_kib());
}

/* One line on stderr: control bytes in a file name or message become '?'. */
static void print_error(const char *culprit, const char *message) {
    char line[1024];
    int n = culprit ? snprintf(line, sizeof line, "llama2: %s: %s", culprit, message)
                    : snprintf(line, sizeof line, "llama2: %s", message);
    if (n < 0) return;
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) *p = '?';
    fprintf(stderr, "%s\n", line);
}

/* --threads, or by default every online processor, except for models so
 * small (stories260K) that handing work to a second thread costs more than
 * it saves. */
static int default_threads(const cli_args *a, const llama2_config *c) {
    if (a->threads > 0) return a->threads;
    double params = (double)c->n_layers * c->dim * (2.0 * c->dim + 3.0 * c->hidden_dim) + (double)c->vocab_size * c->dim;
    return params < 1e6 ? 1 : 0;
}

int main(int argc, char **argv) {
    cli_args a;
    char msg[512];
    if (cli_parse(argc, argv, &a, msg, sizeof msg) != 0) {
        print_error(NULL, msg);
        return 2;
    }
    if (a.help) {
        fputs(cli_usage(), stdout);
        return 0;
    }
    if (a.version) {
        printf("llama2 %s\n", LLAMA2_VERSION);
        return 0;
    }

    llama2_error err = {0};
    llama2_model *model = NULL;
    llama2_tokenizer *tokenizer = NULL;
    llama2_sampler *sampler = NULL;
    llama2_threadpool *pool = NULL;
    llama2_session *session = NULL;
    int rc = 1;
    const char *culprit = NULL; /* what an error is about: a file or a flag */

    llama2_model_options mopts = {.no_mmap = a.no_mmap};
    if (llama2_model_open(a.checkpoint, &mopts, &model, &err) != LLAMA2_OK) {
        culprit = a.checkpoint;
        goto done;
    }
    const llama2_config *config = llama2_model_config(model);
    if (llama2_tokenizer_open(a.tokenizer, config->vocab_size, &tokenizer, &err) != LLAMA2_OK) {
        culprit = a.tokenizer;
        goto done;
    }
    uint64_t seed = a.seed ? a.seed : (uint64_t)time(NULL);
    if (llama2_sampler_create(config->vocab_size, a.temperature, a.topp, seed, &sampler, &err) != LLAMA2_OK ||
        llama2_threadpool_create(default_threads(&a, config), &pool, &err) != LLAMA2_OK) {
        culprit = "setup";
        goto done;
    }
    llama2_session_options sopts = {.pool = pool, .batch_size = a.batch, .backend = a.backend};
    llama2_status created = llama2_session_create(model, &sopts, &session, &err);
    if (created != LLAMA2_OK) {
        culprit = created == LLAMA2_E_UNSUPPORTED ? "--backend" : a.checkpoint;
        rc = created == LLAMA2_E_UNSUPPORTED ? 2 : 1;
        goto done;
    }

    llama2_io io = {.write = write_stdout, .read_line = read_stdin_line};
    llama2_stats st;
    llama2_status s;
    if (a.mode == CLI_CHAT)
        s = llama2_chat(session, tokenizer, sampler, a.system_prompt, a.prompt, a.steps, &io, &st, &err);
    else
        s = llama2_generate(session, tokenizer, sampler, a.prompt, a.steps, &io, &st, &err);
    if (s != LLAMA2_OK) {
        /* A bad file format found while running is the tokenizer's: it
         * lacks BOS, the " " piece or the byte tokens the text needs. */
        culprit = s == LLAMA2_E_CONTEXT ? "-i" : s == LLAMA2_E_FORMAT ? a.tokenizer : "generation";
        rc = s == LLAMA2_E_CONTEXT ? 2 : 1;
        goto done;
    }
    if (a.mode == CLI_CHAT && st.context_full)
        fprintf(stderr, "llama2: the context window is full (%d positions): the chat ends here\n", config->seq_len);
    print_stats(&a, &st, llama2_threadpool_size(pool));
    rc = 0;

done:
    if (culprit) print_error(culprit, err.message);
    llama2_session_destroy(session);
    llama2_threadpool_destroy(pool);
    llama2_sampler_destroy(sampler);
    llama2_tokenizer_close(tokenizer);
    llama2_model_close(model);
    return rc;
}
