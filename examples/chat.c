/*
 * A streaming chat on the llama2 library, written the way a server would
 * answer a conversation: the whole conversation is encoded in the model's
 * chat template at each turn, only the tokens the session has not cached
 * yet are evaluated, and the reply is streamed through a text stream,
 * which turns token ids into printable text and ends it at a stop string.
 *
 *   cc chat.c -o chat $(pkg-config --cflags --libs llama2)
 *   ./chat tinyllama.bin tinyllama-tok.bin zephyr 0.7
 *
 * Arguments: MODEL TOKENIZER [TEMPLATE [TEMPERATURE [SEED]]], the template
 * one of llama2 (the default), chatml, zephyr, none; temperature 0 (the
 * default) always takes the most likely token. Each line of standard input
 * is a user turn; each reply is printed as it is sampled, then a newline.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llama2.h>

#define MAX_TURNS 64
#define MAX_REPLY_TOKENS 256

typedef struct chat {
    llama2_session *session;
    const llama2_tokenizer *tokenizer;
    llama2_sampler *sampler;
    llama2_text_stream *stream;
    llama2_chat_template tmpl;
    int *cached;  /* the tokens of the session's positions 0 .. n_cached-1 */
    int n_cached;
    llama2_chat_message messages[2 * MAX_TURNS];
    int n_messages;
} chat;

/* Text of the reply being written: shown at once, and kept for the history. */
static void show(char **reply, size_t *reply_len, const char *text, size_t len) {
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    char *grown = realloc(*reply, *reply_len + len + 1);
    if (!grown) return;
    memcpy(grown + *reply_len, text, len);
    *reply_len += len;
    grown[*reply_len] = '\0';
    *reply = grown;
}

/* Evaluates `token` at the next position and remembers it as cached. */
static llama2_status feed(chat *c, int token, float **logits, llama2_error *err) {
    llama2_status s = llama2_session_eval(c->session, &token, 1, c->n_cached, logits, err);
    if (s != LLAMA2_OK) return s;
    c->cached[c->n_cached++] = token;
    llama2_sampler_accept(c->sampler, token); /* for the penalties, when they are on */
    return LLAMA2_OK;
}

/* Answers the conversation in c->messages; the reply text goes to *reply. */
static llama2_status answer(chat *c, char **reply, llama2_error *err) {
    int *ids = NULL, n_ids = 0;
    llama2_status s = llama2_chat_encode(c->tokenizer, c->tmpl, c->messages, c->n_messages, 1, &ids, &n_ids, err);
    if (s != LLAMA2_OK) return s;
    const int context = llama2_session_context_length(c->session);
    if (n_ids >= context) { /* no room left for a reply */
        free(ids);
        err->status = LLAMA2_E_CONTEXT;
        snprintf(err->message, sizeof err->message, "the conversation no longer fits the context");
        return LLAMA2_E_CONTEXT;
    }

    /* The positions already cached with the same tokens are kept; the rest
     * of the conversation (at least its last token, for the logits) runs
     * as one block. Positions past it are simply overwritten later. */
    int keep = 0;
    while (keep < c->n_cached && keep < n_ids - 1 && c->cached[keep] == ids[keep]) keep++;
    float *logits = NULL;
    s = llama2_session_eval(c->session, ids + keep, n_ids - keep, keep, &logits, err);
    if (s == LLAMA2_OK) {
        memcpy(c->cached + keep, ids + keep, (size_t)(n_ids - keep) * sizeof *ids);
        c->n_cached = n_ids;
        for (int i = keep; i < n_ids; i++) llama2_sampler_accept(c->sampler, ids[i]);
    }
    int prev = ids[n_ids - 1];
    free(ids);

    size_t reply_len = 0;
    const char *text;
    size_t len;
    for (int n = 0; s == LLAMA2_OK && n < MAX_REPLY_TOKENS && c->n_cached < context; n++) {
        int next = llama2_sampler_sample(c->sampler, logits);
        if (next == LLAMA2_TOKEN_EOS) break;
        int stopped = llama2_text_stream_push(c->stream, prev, next, &text, &len);
        show(reply, &reply_len, text, len);
        if (stopped) break;
        s = feed(c, next, &logits, err);
        prev = next;
    }
    llama2_text_stream_finish(c->stream, &text, &len); /* what a stop string that never came held back */
    show(reply, &reply_len, text, len);
    if (!*reply) *reply = calloc(1, 1);
    return s;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER [TEMPLATE [TEMPERATURE [SEED]]]\n", argv[0]);
        return 2;
    }
    chat c = {0};
    if (argc > 3 && !llama2_chat_template_from_name(argv[3], &c.tmpl)) {
        fprintf(stderr, "chat: unknown template %s\n", argv[3]);
        return 2;
    }
    llama2_sampler_options sampling = llama2_sampler_defaults();
    sampling.temperature = argc > 4 ? strtof(argv[4], NULL) : 0.0f;
    sampling.seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 42;

    llama2_error err = {0};
    llama2_model *model = NULL;
    llama2_tokenizer *tokenizer = NULL;
    llama2_threadpool *pool = NULL;
    const char *const *stops = llama2_chat_template_stops(c.tmpl);
    int n_stops = 0;
    while (stops[n_stops]) n_stops++;
    llama2_text_stream_options text = {.stop = stops, .n_stop = n_stops};

    if (llama2_model_open(argv[1], NULL, &model, &err) == LLAMA2_OK &&
        llama2_tokenizer_open(argv[2], llama2_model_config(model)->vocab_size, &tokenizer, &err) == LLAMA2_OK &&
        llama2_threadpool_create(0, &pool, &err) == LLAMA2_OK &&
        llama2_session_create(model, &(llama2_session_options){.pool = pool}, &c.session, &err) == LLAMA2_OK &&
        llama2_sampler_create(llama2_model_config(model)->vocab_size, &sampling, &c.sampler, &err) == LLAMA2_OK &&
        llama2_text_stream_create(tokenizer, &text, &c.stream, &err) == LLAMA2_OK) {
        c.tokenizer = tokenizer;
        c.cached = malloc((size_t)llama2_session_context_length(c.session) * sizeof *c.cached);
        char line[4096];
        while (c.cached && c.n_messages < 2 * MAX_TURNS && fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\n")] = '\0';
            c.messages[c.n_messages++] = (llama2_chat_message){"user", strdup(line)};
            char *reply = NULL;
            llama2_status s = answer(&c, &reply, &err);
            putchar('\n');
            c.messages[c.n_messages++] = (llama2_chat_message){"assistant", reply};
            if (s != LLAMA2_OK) break;
        }
    }

    for (int i = 0; i < c.n_messages; i++) free((char *)c.messages[i].content);
    free(c.cached);
    llama2_text_stream_destroy(c.stream);
    llama2_sampler_destroy(c.sampler);
    llama2_session_destroy(c.session);
    llama2_threadpool_destroy(pool);
    llama2_tokenizer_close(tokenizer);
    llama2_model_close(model);
    if (err.status != LLAMA2_OK) {
        fprintf(stderr, "chat: %s\n", err.message);
        return 1;
    }
    return 0;
}
