/*
 * Chat as llama2.c's chat(): turns rendered with the Llama 2 chat template,
 * https://github.com/meta-llama/llama/blob/main/llama/generation.py
 *
 *   first turn:  [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]
 *   later turns: [INST] {user} [/INST]
 *
 * llama2.c samples after every position, prompt ones included: at a
 * temperature above 0 that draws a random number, and a sampled EOS prints a
 * newline. Both are kept, so a seed gives llama2.c's text; prompt blocks
 * therefore ask the model for the logits of every position.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "internal.h"

static char *render_turn(const char *system_prompt, const char *user_prompt) {
    const char *fmt = system_prompt ? "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]" : "[INST] %s [/INST]";
    int len = system_prompt ? snprintf(NULL, 0, fmt, system_prompt, user_prompt) : snprintf(NULL, 0, fmt, user_prompt);
    if (len < 0) return NULL;
    char *text = malloc((size_t)len + 1);
    if (!text) return NULL;
    if (system_prompt)
        snprintf(text, (size_t)len + 1, fmt, system_prompt, user_prompt);
    else
        snprintf(text, (size_t)len + 1, fmt, user_prompt);
    return text;
}

/* State shared with the per-position logits callback of a prompt block. */
typedef struct chat_state {
    llama2_sampler *sampler;
    emitter *out;
    int n_positions; /* positions of the block */
    int next;        /* the sample after the block's last position */
} chat_state;

static void sample_prompt_position(void *user, int index, float *logits) {
    chat_state *cs = user;
    int next = llama2_sampler_sample(cs->sampler, logits);
    if (index == cs->n_positions - 1) cs->next = next;
    if (next == LLAMA2_TOKEN_EOS) emit_text(cs->out, "\n");
}

/* One line of input, after showing `label`; NULL at the end of input. */
static char *ask(const llama2_io *io, emitter *out, const char *label) {
    emit_text(out, label);
    char *line = NULL;
    if (!io || !io->read_line || !io->read_line(io->user, &line)) {
        free(line);
        return NULL;
    }
    return line;
}

llama2_status llama2_chat(llama2_session *session, const llama2_tokenizer *tokenizer, llama2_sampler *sampler,
                          const char *system_prompt, const char *user_prompt, int steps, const llama2_io *io,
                          llama2_stats *stats, llama2_error *err) {
    const llama2_config *c = llama2_model_config(llama2_session_model(session));
    llama2_stats st = {0};
    if (steps < 0) return l2_fail(err, LLAMA2_E_INVALID, "steps must not be negative (%d)", steps);
    steps = l2_clamp_steps(steps, c->seq_len);

    emitter out;
    emitter_init(&out, io, tokenizer);
    chat_state cs = {.sampler = sampler, .out = &out};
    llama2_status s = LLAMA2_OK;
    double t0 = llama2_time_seconds();
    int pos = 0, token = 0, next = 0;
    char *system_line = NULL;

    while (pos < steps && s == LLAMA2_OK) {
        /* A user turn: render, encode and run the prompt as blocks. */
        const char *system = NULL;
        if (pos == 0) {
            system = system_prompt;
            if (!system) system = system_line = ask(io, &out, "Enter system prompt (optional): ");
            if (!system) break;
            if (system[0] == '\0') system = NULL;
        }
        char *user_line = NULL;
        const char *user = pos == 0 && user_prompt ? user_prompt : (user_line = ask(io, &out, "User: "));
        if (!user) break;
        char *rendered = render_turn(system, user);
        free(user_line);
        int *ids = rendered ? malloc(llama2_tokenize_capacity(strlen(rendered)) * sizeof *ids) : NULL;
        int n_ids = 0;
        if (!ids) {
            free(rendered);
            s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a chat turn");
            break;
        }
        s = llama2_tokenize(tokenizer, rendered, 1, 0, ids, &n_ids, err);
        free(rendered);
        if (s == LLAMA2_OK) {
            emit_text(&out, "Assistant: ");
            int n = n_ids < steps - pos ? n_ids : steps - pos;
            cs.n_positions = n;
            double tp = llama2_time_seconds();
            s = llama2_session_eval_all(session, ids, n, pos, sample_prompt_position, &cs, err);
            st.prompt_tokens += n;
            st.prompt_seconds += llama2_time_seconds() - tp;
            pos += n;
            token = ids[n - 1];
            next = cs.next;
            /* A turn cut by the step limit ends the chat like llama2.c. */
            if (n < n_ids) {
                free(ids);
                break;
            }
        }
        free(ids);
        if (s != LLAMA2_OK) break;

        /* The assistant's reply, until an EOS has been fed back in. */
        double tg = llama2_time_seconds();
        if (next != LLAMA2_TOKEN_EOS) emit_token(&out, token, next);
        while (pos < steps) {
            token = next;
            float *logits;
            s = llama2_session_eval(session, &token, 1, pos, &logits, err);
            if (s != LLAMA2_OK) break;
            next = llama2_sampler_sample(sampler, logits);
            st.generated_tokens++;
            pos++;
            if (next != LLAMA2_TOKEN_EOS)
                emit_token(&out, token, next);
            else
                emit_text(&out, "\n");
            if (token == LLAMA2_TOKEN_EOS) break; /* the user speaks next */
        }
        st.generate_seconds += llama2_time_seconds() - tg;
    }
    if (s == LLAMA2_OK) emit_text(&out, "\n");
    free(system_line);
    st.positions = pos;
    st.context_full = pos >= c->seq_len;
    st.seconds_after_first = llama2_time_seconds() - t0;
    if (stats) *stats = st;
    return s;
}
