/* Writing GGUF files (version 3) from a model and a tokenizer: the llama
 * metadata, the tokenizer as llama.cpp's converter stores a SentencePiece
 * one, the weight matrices in F32, F16, Q8_0 or Q4_0 (norms in F32). Used by
 * llama2-quantize; not part of the public API. */
#ifndef LLAMA2_GGUF_WRITER_H
#define LLAMA2_GGUF_WRITER_H

#include <stdint.h>

#include "llama2.h"
#include "model/gguf.h"
#include "output_file.h"

/* Writes model m with tokenizer tok (whose vocabulary must be the model's
 * size) to path as GGUF, the matrices in `type` (L2_GGML_F32, _F16, _Q8_0
 * or _Q4_0, quantized as ggml's reference does; a matrix whose rows are not
 * whole blocks of the type stays F32). An int8 model's weights are
 * dequantized first. The output is written as output_file.h says, with
 * output_flags, never over one of `inputs` (NULL-terminated), complete or
 * not at all. *fallbacks (when not NULL) counts the matrices left F32. */
llama2_status l2_gguf_write_model(const char *path, const llama2_model *m, const llama2_tokenizer *tok, uint32_t type,
                                  const char *const *inputs, unsigned output_flags, int *fallbacks,
                                  llama2_error *err);

#endif
