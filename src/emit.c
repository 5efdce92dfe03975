/* Decoded pieces on their way to the caller. */
#include <string.h>
#include <time.h>

#include "emit.h"

void emitter_init(emitter *e, const llama2_io *io, const llama2_tokenizer *tokenizer) {
    e->io = io;
    e->tokenizer = tokenizer;
    llama2_text_filter_init(&e->filter);
}

void emit_text(emitter *e, const char *text) {
    if (e->io && e->io->write) e->io->write(e->io->user, text, strlen(text));
}

void emit_token(emitter *e, int prev, int token) {
    size_t len;
    const char *piece = llama2_token_piece(e->tokenizer, prev, token, &len);
    /* Filter in slices so that the output buffer stays on the stack. */
    char out[256 + 4];
    while (len > 0) {
        size_t n = len < 256 ? len : 256;
        size_t got = llama2_text_filter_push(&e->filter, piece, n, out);
        if (got > 0 && e->io && e->io->write) e->io->write(e->io->user, out, got);
        piece += n;
        len -= n;
    }
}

double llama2_time_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
