/* Writing GGUF files (version 3) from a model and a tokenizer: the llama
 * metadata, the tokenizer as llama.cpp's converter stores a SentencePiece
 * one, the weight matrices in F32, F16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K, or
 * in one of llama.cpp's mixes Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M (norms in
 * F32). Used by llama2-quantize; not part
 * of the public API. */
#ifndef LLAMA2_GGUF_WRITER_H
#define LLAMA2_GGUF_WRITER_H

#include <stdint.h>

#include "llama2.h"
#include "model/gguf.h"
#include "output_file.h"

/* `type` for llama.cpp's mixes (its llama_tensor_get_type for a llama
 * model without experts). Each gives the classifier (the embedding table
 * when they are tied) Q6_K. Q4_K_M: Q4_K, with Q6_K for attn_v and
 * ffn_down of the layers i with i < n/8, i >= 7n/8 or (i - n/8) % 3 == 2;
 * Q5_K_M: the same with Q5_K for Q4_K. Q4_K_S: Q4_K, with Q5_K for attn_v
 * of layers 0-3 and ffn_down of the layers i < n/8. Q5_K_S: Q5_K. (Not
 * llama.cpp's rule for 70B models, whose attn_v it writes in Q5_K.) */
#define L2_GGUF_MIX_Q4_K_M 0x10000u
#define L2_GGUF_MIX_Q4_K_S 0x10001u
#define L2_GGUF_MIX_Q5_K_S 0x10002u
#define L2_GGUF_MIX_Q5_K_M 0x10003u

/* The type l2_gguf_write_model writes a tensor of `kind` (layer `layer`,
 * rows of `cols` values) of a model of config *c in, for the file's
 * `type`: the mix's choice, after the fallback; F32 for a norm. */
uint32_t l2_gguf_written_type(uint32_t type, l2_tensor_kind kind, int layer, size_t cols, const llama2_config *c);

/* Writes model m with tokenizer tok (whose vocabulary must be the model's
 * size) to path as GGUF, the matrices in `type` (L2_GGML_F32, _F16, _Q8_0,
 * _Q4_0, _Q4_K, _Q5_K, _Q6_K or an L2_GGUF_MIX_, quantized as ggml's
 * reference does). A matrix whose rows are not whole blocks of its type
 * falls back as llama.cpp's does, to types this engine runs: Q6_K to Q8_0,
 * Q5_K to Q8_0 (llama.cpp: Q5_1), Q4_K to Q4_0 (llama.cpp: Q5_0), and any whose rows are not whole blocks of 32
 * to F32 (llama.cpp: F16). An int8 model's weights are dequantized first.
 * The output is written as output_file.h says, with output_flags, never
 * over one of `inputs` (NULL-terminated), complete or not at all.
 * *fallbacks (when not NULL) counts the matrices that fell back. */
llama2_status l2_gguf_write_model(const char *path, const llama2_model *m, const llama2_tokenizer *tok, uint32_t type,
                                  const char *const *inputs, unsigned output_flags, int *fallbacks,
                                  llama2_error *err);

#endif
