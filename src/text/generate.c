/*
 * Text generation as llama2.c's generate(): the prompt is echoed, then
 * tokens are sampled until `steps` positions (BOS included) have run or BOS
 * is sampled (with a BPE tokenizer: one of its end tokens, <|end_of_text|>
 * or <|eot_id|>); besides, a stop string or the caller can end it. The
 * prompt itself runs through the model in blocks.
 */
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"
#include "sampler_stages.h"

/* Whether sampling `token` ends the text: llama2.c stops at BOS, which
 * delimits its training sequences; Llama 3 at its end tokens. */
static int ends_text(const llama2_tokenizer *tokenizer, int token) {
    if (llama2_tokenizer_get_kind(tokenizer) == LLAMA2_TOKENIZER_BPE) return llama2_tokenizer_is_end(tokenizer, token);
    return token == LLAMA2_TOKEN_BOS;
}

/* Hands text to the caller; returns non-zero when the caller says stop. */
static int put(const llama2_io *io, const char *text, size_t len) {
    return len > 0 && io && io->write ? io->write(io->user, text, len) : 0;
}

llama2_status llama2_generate(llama2_session *session, const llama2_tokenizer *tokenizer, llama2_sampler *sampler,
                              const char *prompt, const llama2_generate_options *options, const llama2_io *io,
                              llama2_stats *stats, llama2_error *err) {
    const int context = llama2_session_context_length(session);
    llama2_stats st = {0};
    int steps = options ? options->steps : 256;
    if (steps < 0) return l2_fail(err, LLAMA2_E_INVALID, "steps must not be negative (%d)", steps);
    steps = l2_clamp_steps(steps, context);
    if (!prompt) prompt = "";

    llama2_text_stream *stream = NULL;
    llama2_text_stream_options text_options = {.show_special = 1}; /* llama2.c prints every piece */
    if (options) {
        text_options.stop = options->stop;
        text_options.n_stop = options->n_stop;
    }
    llama2_status s = llama2_text_stream_create(tokenizer, &text_options, &stream, err);
    if (s != LLAMA2_OK) return s;

    size_t text_len = strlen(prompt);
    int *ids = malloc(llama2_tokenize_capacity(text_len) * sizeof *ids);
    int n_prompt = 0;
    s = ids ? llama2_tokenize(tokenizer, prompt, 1, 0, ids, &n_prompt, err)
            : l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a %zu-byte prompt", text_len);
    if (s == LLAMA2_OK && n_prompt > context)
        s = l2_fail(err, LLAMA2_E_CONTEXT, "the prompt is %d tokens, the context window holds %d", n_prompt, context);
    if (s != LLAMA2_OK) {
        free(ids);
        llama2_text_stream_destroy(stream);
        return s;
    }

    double t0 = llama2_time_seconds();
    float *logits = NULL;
    const char *text;
    size_t len;
    st.stop = steps == context ? LLAMA2_STOP_CONTEXT : LLAMA2_STOP_LENGTH;
    int stopped = 0;

    /* The prompt: positions 0..n_feed-1 in one call (the session cuts it
     * into blocks), then each token that follows a position echoed as
     * llama2.c prints it. */
    int n_feed = n_prompt < steps ? n_prompt : steps;
    for (int i = 0; i < n_feed; i++) llama2_sampler_accept(sampler, ids[i]);
    if (n_feed > 0) s = llama2_session_eval(session, ids, n_feed, 0, &logits, err);
    for (int i = 0; s == LLAMA2_OK && i < n_feed && i + 1 < n_prompt; i++) {
        if (ends_text(tokenizer, ids[i + 1])) {
            st.stop = LLAMA2_STOP_TOKEN;
            stopped = 1;
            break;
        }
        llama2_text_stream_echo(stream, ids[i], ids[i + 1], &text, &len);
        if (put(io, text, len)) {
            st.stop = LLAMA2_STOP_CALLER;
            stopped = 1;
            break;
        }
    }
    st.prompt_tokens = n_feed;
    st.positions = n_feed;
    double t1 = llama2_time_seconds();
    st.prompt_seconds = t1 - t0;

    /* Sampling: the last prompt position's logits give the first token. */
    if (s == LLAMA2_OK && !stopped && n_feed == n_prompt) {
        int token = ids[n_prompt - 1];
        const int eos_ends = l2_sampler_has_grammar(sampler); /* a grammar ends its text with EOS */
        for (int pos = n_prompt;; pos++) {
            int next = llama2_sampler_sample(sampler, logits);
            if (l2_sampler_out_of_memory(sampler)) {
                s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the grammar");
                break;
            }
            st.generated_tokens++;
            if (ends_text(tokenizer, next) || (eos_ends && llama2_tokenizer_is_end(tokenizer, next))) {
                st.stop = LLAMA2_STOP_TOKEN;
                break;
            }
            int found = llama2_text_stream_push(stream, token, next, &text, &len);
            int caller_stops = put(io, text, len);
            if (found || caller_stops) {
                st.stop = found ? LLAMA2_STOP_STRING : LLAMA2_STOP_CALLER;
                break;
            }
            token = next;
            if (pos >= steps) break;
            s = llama2_session_eval(session, &token, 1, pos, &logits, err);
            if (s != LLAMA2_OK) break;
            llama2_sampler_accept(sampler, token);
            st.positions++;
        }
    }
    llama2_text_stream_finish(stream, &text, &len);
    put(io, text, len);
    put(io, "\n", 1);
    double t2 = llama2_time_seconds();
    st.generate_seconds = t2 - t1;
    st.seconds_after_first = t2 - t0;
    if (stats) *stats = st;
    free(ids);
    llama2_text_stream_destroy(stream);
    return s;
}
