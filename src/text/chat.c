/*
 * Chat on a terminal, as llama2.c's chat(): a system prompt and user turns
 * read through the caller, each turn written in a chat template
 * (chat_template.c) and run through the model, then the assistant's reply.
 * Earlier turns stay in the context; each turn adds only its own tokens.
 *
 * With the Llama 2 template every byte is llama2.c's. llama2.c samples after
 * every position, prompt ones included: at a temperature above 0 that draws
 * a random number, and a sampled EOS prints a newline. It ends a reply by
 * feeding EOS back and showing the token sampled after it. All of this is
 * kept, so a seed gives llama2.c's text; prompt blocks therefore ask the
 * model for the logits of every position (a sampled BOS is shown and the
 * reply goes on, as in llama2.c). The other templates sample only replies,
 * end a reply at EOS, BOS or the template's end of message, as
 * llama2-server does, and hide special tokens.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "sampler_stages.h"
#include "platform/checks.h"

typedef struct chat {
    llama2_session *session;
    const llama2_tokenizer *tokenizer;
    llama2_sampler *sampler;
    const llama2_io *io;
    const llama2_chat_options *options;
    llama2_text_stream *stream;
    llama2_error *err;
    llama2_status failure; /* of a step inside a reply */
    int llama2c;      /* the Llama 2 template: llama2.c's bytes and quirks */
    int n_user_stops; /* stop strings 1..n_user_stops are the caller's, the rest the template's */
    int steps, context;
    int pos;          /* positions fed */
    int token, next;  /* the last token fed, and the one sampled after it */
    llama2_stats st;

    /* How the last reply ended, for the next turn to close it. */
    int pending;      /* a sampled token not fed yet (-1: none) */
    int reply_ended;  /* the model wrote the template's end of message */

    /* A prompt block in llama2.c's way: a sample after every position. */
    int n_positions;
} chat;

/* Hands text to the caller; returns non-zero when the caller says stop. */
static int put(const chat *c, const char *text, size_t len) {
    return len > 0 && c->io && c->io->write ? c->io->write(c->io->user, text, len) : 0;
}

static int put_str(const chat *c, const char *text) { return put(c, text, strlen(text)); }

static void sample_prompt_position(void *user, int index, float *logits) {
    chat *c = user;
    int next = llama2_sampler_sample(c->sampler, logits);
    if (index == c->n_positions - 1) c->next = next;
    if (next == LLAMA2_TOKEN_EOS) put_str(c, "\n");
}

/* One line of input, after showing `label`; NULL at the end of input. */
static char *ask(const chat *c, const char *label) {
    put_str(c, label);
    char *line = NULL;
    if (!c->io || !c->io->read_line || !c->io->read_line(c->io->user, &line)) {
        free(line);
        return NULL;
    }
    return line;
}

/* The ids of one turn: the end of the previous reply, the system prompt on
 * the first turn, the user's text and the opening of the reply. */
static llama2_status render_turn(chat *c, const char *system, const char *user, int first, int **ids, int *n_ids) {
    l2_chat_builder b;
    l2_chat_builder_init(&b, c->tokenizer, c->options->chat_template, c->pos == 0, c->err);
    if (!first) {
        if (c->pending >= 0) l2_chat_add_token(&b, c->pending);
        l2_chat_close_reply(&b, c->reply_ended);
    }
    if (system && system[0]) l2_chat_add_message(&b, L2_ROLE_SYSTEM, system);
    l2_chat_add_message(&b, L2_ROLE_USER, user);
    l2_chat_add_reply_start(&b);
    return l2_chat_builder_finish(&b, ids, n_ids);
}

/* Runs a turn's ids; *cut: the step limit left no room for all of them. */
static llama2_status run_turn(chat *c, const int *ids, int n_ids, int *cut) {
    int n = n_ids < c->steps - c->pos ? n_ids : c->steps - c->pos;
    *cut = n < n_ids;
    for (int i = 0; i < n; i++) llama2_sampler_accept(c->sampler, ids[i]);
    double t = llama2_time_seconds();
    llama2_status s;
    if (c->llama2c) {
        c->n_positions = n;
        s = llama2_session_eval_all(c->session, ids, n, c->pos, sample_prompt_position, c, c->err);
    } else {
        float *logits;
        s = llama2_session_eval(c->session, ids, n, c->pos, &logits, c->err);
        if (s == LLAMA2_OK && !*cut) {
            c->next = llama2_sampler_sample(c->sampler, logits);
            c->st.generated_tokens++;
        }
    }
    c->st.prompt_tokens += n;
    c->st.prompt_seconds += llama2_time_seconds() - t;
    c->pos += n;
    c->token = ids[n - 1];
    return s;
}

/* Feeds the last sample back and samples the next token. */
static llama2_status step(chat *c) {
    float *logits;
    c->token = c->next;
    llama2_status s = llama2_session_eval(c->session, &c->token, 1, c->pos, &logits, c->err);
    if (s != LLAMA2_OK) return c->failure = s;
    llama2_sampler_accept(c->sampler, c->token);
    c->next = llama2_sampler_sample(c->sampler, logits);
    c->st.generated_tokens++;
    c->pos++;
    return LLAMA2_OK;
}

/* What ended a reply. */
typedef enum reply_end { REPLY_DONE, REPLY_CUT, REPLY_STEPS, REPLY_FAILED } reply_end;

/* Shows the text of `next` decoded after `token`: REPLY_DONE when a stop
 * string ends the reply, REPLY_CUT when the caller does, else -1. */
static int show(chat *c, const char *bytes, size_t n, int piece) {
    const char *text;
    size_t len;
    int found = piece ? llama2_text_stream_push(c->stream, c->token, c->next, &text, &len)
                      : l2_text_stream_push_bytes(c->stream, bytes, n, 1, &text, &len);
    int caller_stops = put(c, text, len);
    if (found) {
        c->pending = c->next;
        c->reply_ended = found > c->n_user_stops;
        return REPLY_DONE;
    }
    if (caller_stops) {
        c->pending = c->next;
        c->reply_ended = 0;
        return REPLY_CUT;
    }
    return -1;
}

/* The reply cap: after n tokens of this reply. */
static int capped(chat *c, int n) {
    if (c->options->reply_tokens <= 0 || n < c->options->reply_tokens) return 0;
    c->pending = c->next;
    c->reply_ended = 0;
    return 1;
}

/* llama2.c's reply: a token is shown as it is sampled; a sampled EOS shows
 * a newline, is fed back, and the token sampled after it is shown too. */
static reply_end reply_llama2c(chat *c) {
    int r;
    if (c->next != LLAMA2_TOKEN_EOS && (r = show(c, NULL, 0, 1)) >= 0) return (reply_end)r;
    if (capped(c, 1)) return REPLY_CUT;
    for (int n = 2; c->pos < c->steps; n++) {
        if (step(c) != LLAMA2_OK) return REPLY_FAILED;
        r = c->next != LLAMA2_TOKEN_EOS ? show(c, NULL, 0, 1) : show(c, "\n", 1, 0);
        if (c->token == LLAMA2_TOKEN_EOS) { /* the user speaks next */
            c->pending = -1;
            c->reply_ended = 1;
            return REPLY_DONE;
        }
        if (r >= 0) return (reply_end)r;
        if (capped(c, n)) return REPLY_CUT;
    }
    return REPLY_STEPS;
}

/* A reply until EOS, which is left for the next turn to feed (in the
 * templates whose messages end with it), or BOS, which is not fed; the
 * template's own end of message is a stop string. These are the tokens that
 * end a reply in llama2-server too. */
static reply_end reply_clean(chat *c) {
    const llama2_chat_template t = c->options->chat_template;
    for (int n = 1;; n++) {
        /* A new text begins (llama2.c's stories start with BOS): the reply is
         * over, as in the server. */
        if (llama2_tokenizer_get_kind(c->tokenizer) != LLAMA2_TOKENIZER_BPE && c->next == LLAMA2_TOKEN_BOS) {
            c->pending = -1;
            c->reply_ended = 0; /* the next turn writes the template's end of message */
            return REPLY_DONE;
        }
        if (llama2_tokenizer_is_end(c->tokenizer, c->next)) {
            int eos_ends = t == LLAMA2_TEMPLATE_LLAMA2 || t == LLAMA2_TEMPLATE_ZEPHYR || t == LLAMA2_TEMPLATE_LLAMA3;
            c->pending = eos_ends ? c->next : -1;
            c->reply_ended = eos_ends;
            return REPLY_DONE;
        }
        int r = show(c, NULL, 0, 1);
        if (r >= 0) return (reply_end)r;
        if (capped(c, n)) return REPLY_CUT;
        if (c->pos >= c->steps) return REPLY_STEPS;
        if (step(c) != LLAMA2_OK) return REPLY_FAILED;
    }
}

static llama2_status chat_loop(chat *c) {
    const llama2_chat_options *o = c->options;
    llama2_status s = LLAMA2_OK;
    char *system_line = NULL;
    c->st.stop = LLAMA2_STOP_INPUT;
    for (int turn = 0; s == LLAMA2_OK; turn++) {
        if (c->pos >= c->steps) {
            c->st.stop = c->steps == c->context ? LLAMA2_STOP_CONTEXT : LLAMA2_STOP_LENGTH;
            break;
        }
        /* A user turn: render, encode and run the prompt as blocks. */
        const char *system = NULL;
        if (turn == 0) {
            system = o->system_prompt;
            if (!system) system = system_line = ask(c, "Enter system prompt (optional): ");
            if (!system) break;
        }
        char *user_line = NULL;
        const char *user = turn == 0 && o->user_prompt ? o->user_prompt : (user_line = ask(c, "User: "));
        if (!user) break;
        int *ids = NULL, n_ids = 0, cut = 0;
        s = render_turn(c, system, user, turn == 0, &ids, &n_ids);
        free(user_line);
        if (s == LLAMA2_OK) {
            put_str(c, "Assistant: ");
            s = run_turn(c, ids, n_ids, &cut);
        }
        free(ids);
        if (s != LLAMA2_OK) break;
        if (cut) continue; /* the step limit ends the chat, as llama2.c */

        double t = llama2_time_seconds();
        reply_end end = c->llama2c ? reply_llama2c(c) : reply_clean(c);
        c->st.generate_seconds += llama2_time_seconds() - t;
        const char *text;
        size_t len;
        llama2_text_stream_finish(c->stream, &text, &len);
        put(c, text, len);
        if (end == REPLY_FAILED) s = c->failure;
        if (end == REPLY_FAILED || end == REPLY_STEPS) continue;
        /* llama2.c's EOS already wrote the newline that ends the reply. */
        if (!(c->llama2c && c->pending < 0)) put_str(c, "\n");
    }
    free(system_line);
    return s;
}

llama2_status llama2_chat(llama2_session *session, const llama2_tokenizer *tokenizer, llama2_sampler *sampler,
                          const llama2_chat_options *options, const llama2_io *io, llama2_stats *stats,
                          llama2_error *err) {
    const llama2_chat_options defaults = {0};
    const llama2_chat_options *o = options ? options : &defaults;
    if (o->steps < 0) return l2_fail(err, LLAMA2_E_INVALID, "steps must not be negative (%d)", o->steps);
    if (!llama2_chat_template_name(o->chat_template))
        return l2_fail(err, LLAMA2_E_INVALID, "unknown chat template %d", (int)o->chat_template);
    if (o->n_stop < 0 || (o->n_stop > 0 && !o->stop)) return l2_fail(err, LLAMA2_E_INVALID, "%d stop strings", o->n_stop);
    if (l2_sampler_has_grammar(sampler))
        return l2_fail(err, LLAMA2_E_INVALID, "a grammar constrains generation, not chat");

    chat c = {.session = session, .tokenizer = tokenizer, .sampler = sampler, .io = io, .options = o, .err = err, .pending = -1};
    c.context = llama2_session_context_length(session);
    c.steps = l2_clamp_steps(o->steps, c.context);
    c.llama2c = o->chat_template == LLAMA2_TEMPLATE_LLAMA2;
    c.n_user_stops = o->n_stop;

    /* The caller's stop strings, then the template's. */
    const char *const *template_stops = llama2_chat_template_stops(o->chat_template);
    int n_template_stops = 0;
    while (template_stops[n_template_stops]) n_template_stops++;
    const char **stops = malloc(((size_t)o->n_stop + (size_t)n_template_stops + 1) * sizeof *stops);
    if (!stops) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    for (int i = 0; i < o->n_stop; i++) stops[i] = o->stop[i];
    for (int i = 0; i < n_template_stops; i++) stops[o->n_stop + i] = template_stops[i];
    llama2_text_stream_options text_options = {.stop = stops, .n_stop = o->n_stop + n_template_stops,
                                               .show_special = c.llama2c};
    llama2_status s = llama2_text_stream_create(tokenizer, &text_options, &c.stream, err);
    free(stops);
    if (s != LLAMA2_OK) return s;

    s = chat_loop(&c);
    if (s == LLAMA2_OK) put_str(&c, "\n");
    llama2_text_stream_destroy(c.stream);
    c.st.positions = c.pos;
    c.st.seconds_after_first = c.st.prompt_seconds + c.st.generate_seconds;
    if (stats) *stats = c.st;
    return s;
}
