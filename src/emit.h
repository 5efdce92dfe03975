/* Shared by the generation and chat loops: decoded pieces through the text
 * filter to the caller's writer, and the clock. */
#ifndef LLAMA2_EMIT_H
#define LLAMA2_EMIT_H

#include "llama2.h"

typedef struct emitter {
    const llama2_io *io;
    const llama2_tokenizer *tokenizer;
    llama2_text_filter filter;
} emitter;

void emitter_init(emitter *e, const llama2_io *io, const llama2_tokenizer *tokenizer);
/* Writes text as it is (our own ASCII: labels, newlines). */
void emit_text(emitter *e, const char *text);
/* Writes the piece of `token` decoded after `prev`, filtered. */
void emit_token(emitter *e, int prev, int token);

#endif
