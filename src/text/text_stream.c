/*
 * The text stream: token ids in, text to show out. A piece goes through the
 * UTF-8 text filter; the filtered text is searched for stop strings. The
 * longest end of the text that could still grow into a stop string is held
 * back, so a stop string spanning several tokens is never partly shown: any
 * stop string found starts inside what was held back, never in text already
 * handed out.
 */
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"

struct llama2_text_stream {
    const llama2_tokenizer *tokenizer;
    llama2_text_filter filter;
    int show_special;
    char **stops;
    size_t *stop_lengths;
    int n_stops;
    char *held;     /* [longest stop] the end of the text not yet handed out */
    size_t n_held;
    char *work;     /* held text, then the new text: what push hands out */
    size_t work_size;
    int stopped;    /* a stop string was found: no text until finish */
};


llama2_status llama2_text_stream_create(const llama2_tokenizer *tokenizer, const llama2_text_stream_options *options,
                                        llama2_text_stream **out, llama2_error *err) {
    *out = NULL;
    const int n_stops = options ? options->n_stop : 0;
    if (n_stops < 0 || (n_stops > 0 && !options->stop))
        return l2_fail(err, LLAMA2_E_INVALID, "%d stop strings", n_stops);
    for (int i = 0; i < n_stops; i++)
        if (!options->stop[i] || options->stop[i][0] == '\0')
            return l2_fail(err, LLAMA2_E_INVALID, "stop string %d is empty", i + 1);
    llama2_text_stream *s = calloc(1, sizeof *s);
    if (!s) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    s->tokenizer = tokenizer;
    s->show_special = options ? options->show_special : 0;
    llama2_text_filter_init(&s->filter);

    /* The longest piece bounds what one push adds. */
    size_t longest_piece = 1, longest_stop = 0;
    const int vocab = llama2_tokenizer_vocab_size(tokenizer);
    for (int t = 0; t < vocab; t++) {
        size_t len;
        llama2_token_piece(tokenizer, 0, t, &len);
        if (len > longest_piece) longest_piece = len;
    }
    s->stops = calloc((size_t)n_stops + 1, sizeof *s->stops);
    s->stop_lengths = calloc((size_t)n_stops + 1, sizeof *s->stop_lengths);
    int ok = s->stops && s->stop_lengths;
    for (int i = 0; ok && i < n_stops; i++) {
        size_t len = strlen(options->stop[i]);
        s->stops[i] = malloc(len + 1);
        if (!s->stops[i]) {
            ok = 0;
            break;
        }
        memcpy(s->stops[i], options->stop[i], len + 1);
        s->stop_lengths[i] = len;
        s->n_stops = i + 1;
        if (len > longest_stop) longest_stop = len;
    }
    /* Held text is shorter than the longest stop string; the filter adds
     * at most a piece and the 4 bytes of a pending character. */
    s->work_size = longest_stop + longest_piece + 4;
    s->held = ok ? malloc(longest_stop + 1) : NULL;
    s->work = ok ? malloc(s->work_size) : NULL;
    if (!s->held || !s->work) {
        llama2_text_stream_destroy(s);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for a text stream");
    }
    *out = s;
    return LLAMA2_OK;
}

void llama2_text_stream_destroy(llama2_text_stream *s) {
    if (!s) return;
    for (int i = 0; i < s->n_stops; i++) free(s->stops[i]);
    free(s->stops);
    free(s->stop_lengths);
    free(s->held);
    free(s->work);
    free(s);
}

/* The first position in text[0..n) where a stop string starts; n if none.
 * *which is the stop string found. */
static size_t find_stop(const llama2_text_stream *s, const char *text, size_t n, int *which) {
    for (size_t at = 0; at < n; at++)
        for (int i = 0; i < s->n_stops; i++) {
            size_t len = s->stop_lengths[i];
            if (len <= n - at && memcmp(text + at, s->stops[i], len) == 0) {
                *which = i;
                return at;
            }
        }
    return n;
}

/* The length of the longest end of text[0..n) that is the start of a stop
 * string (shorter than that string). */
static size_t stop_prefix_at_end(const llama2_text_stream *s, const char *text, size_t n) {
    size_t best = 0;
    for (int i = 0; i < s->n_stops; i++) {
        size_t most = s->stop_lengths[i] - 1 < n ? s->stop_lengths[i] - 1 : n;
        for (size_t len = most; len > best; len--)
            if (memcmp(text + n - len, s->stops[i], len) == 0) {
                best = len;
                break;
            }
    }
    return best;
}

int l2_text_stream_push_bytes(llama2_text_stream *s, const char *bytes, size_t n, int search, const char **text,
                              size_t *len) {
    *text = s->work;
    *len = 0;
    if (s->stopped) return 0;
    size_t total = s->n_held;
    memcpy(s->work, s->held, s->n_held);
    size_t room = s->work_size - 4 - total;
    if (n > room) n = room; /* cannot happen: the buffer holds the longest piece */
    total += llama2_text_filter_push(&s->filter, bytes, n, s->work + total);
    size_t keep = 0;
    if (search) {
        int which = -1;
        size_t at = find_stop(s, s->work, total, &which);
        if (which >= 0) {
            s->stopped = 1;
            s->n_held = 0;
            *len = at;
            return which + 1;
        }
        keep = stop_prefix_at_end(s, s->work, total);
    }
    memcpy(s->held, s->work + total - keep, keep);
    s->n_held = keep;
    *len = total - keep;
    return 0;
}

/* The piece of token after prev, with special tokens hidden unless shown. */
static const char *piece_of(const llama2_text_stream *s, int prev, int token, size_t *n) {
    if (!s->show_special && llama2_tokenizer_is_special(s->tokenizer, token)) { /* llama2.c: <unk>, <s>, </s> */
        *n = 0;
        return "";
    }
    return llama2_token_piece(s->tokenizer, prev, token, n);
}

int llama2_text_stream_push(llama2_text_stream *s, int prev_token, int token, const char **text, size_t *len) {
    size_t n;
    const char *piece = piece_of(s, prev_token, token, &n);
    return l2_text_stream_push_bytes(s, piece, n, 1, text, len);
}

int llama2_text_stream_echo(llama2_text_stream *s, int prev_token, int token, const char **text, size_t *len) {
    size_t n;
    const char *piece = piece_of(s, prev_token, token, &n);
    return l2_text_stream_push_bytes(s, piece, n, 0, text, len);
}

void llama2_text_stream_finish(llama2_text_stream *s, const char **text, size_t *len) {
    memcpy(s->work, s->held, s->n_held);
    *text = s->work;
    *len = s->stopped ? 0 : s->n_held;
    s->n_held = 0;
    s->stopped = 0;
    llama2_text_filter_init(&s->filter);
}
