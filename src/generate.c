/*
 * Text generation as llama2.c's generate(): the prompt is echoed, then
 * tokens are sampled until `steps` positions (BOS included) have run or BOS
 * is sampled. The prompt itself runs through the model in blocks.
 */
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "internal.h"

llama2_status llama2_generate(llama2_session *session, const llama2_tokenizer *tokenizer, llama2_sampler *sampler,
                              const char *prompt, int steps, const llama2_io *io, llama2_stats *stats,
                              llama2_error *err) {
    const llama2_config *c = llama2_model_config(llama2_session_model(session));
    llama2_stats st = {0};
    if (steps < 0) return l2_fail(err, LLAMA2_E_INVALID, "steps must not be negative (%d)", steps);
    steps = l2_clamp_steps(steps, c->seq_len);
    if (!prompt) prompt = "";

    size_t text_len = strlen(prompt);
    int *ids = malloc(llama2_tokenize_capacity(text_len) * sizeof *ids);
    if (!ids) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a %zu-byte prompt", text_len);
    int n_prompt = 0;
    llama2_status s = llama2_tokenize(tokenizer, prompt, 1, 0, ids, &n_prompt, err);
    if (s == LLAMA2_OK && n_prompt > c->seq_len)
        s = l2_fail(err, LLAMA2_E_CONTEXT, "the prompt is %d tokens, the context window holds %d", n_prompt,
                    c->seq_len);
    if (s != LLAMA2_OK) {
        free(ids);
        return s;
    }

    emitter out;
    emitter_init(&out, io, tokenizer);
    double t0 = llama2_time_seconds();
    float *logits = NULL;
    int stopped = 0;

    /* The prompt: positions 0..n_feed-1 in blocks, echoing each token that
     * follows a position as llama2.c prints it. */
    int n_feed = n_prompt < steps ? n_prompt : steps;
    for (int pos = 0; pos < n_feed && !stopped;) {
        int n = n_feed - pos;
        s = llama2_session_eval(session, ids + pos, n, pos, &logits, err);
        if (s != LLAMA2_OK) break;
        for (int i = pos; i < pos + n && i + 1 < n_prompt; i++) {
            if (ids[i + 1] == LLAMA2_TOKEN_BOS) {
                stopped = 1;
                break;
            }
            emit_token(&out, ids[i], ids[i + 1]);
        }
        pos += n;
    }
    st.prompt_tokens = n_feed;
    st.positions = n_feed;
    double t1 = llama2_time_seconds();
    st.prompt_seconds = t1 - t0;

    /* Sampling: the last prompt position's logits give the first token. */
    if (s == LLAMA2_OK && !stopped && n_feed == n_prompt) {
        int token = ids[n_prompt - 1];
        for (int pos = n_prompt;; pos++) {
            int next = llama2_sampler_sample(sampler, logits);
            st.generated_tokens++;
            if (next == LLAMA2_TOKEN_BOS) break;
            emit_token(&out, token, next);
            token = next;
            if (pos >= steps) break;
            s = llama2_session_eval(session, &token, 1, pos, &logits, err);
            if (s != LLAMA2_OK) break;
            st.positions++;
        }
    }
    emit_text(&out, "\n");
    double t2 = llama2_time_seconds();
    st.generate_seconds = t2 - t1;
    st.seconds_after_first = t2 - t0;
    if (stats) *stats = st;
    free(ids);
    return s;
}
