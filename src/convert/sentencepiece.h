/* SentencePiece model files (tokenizer.model, a protocol buffer ModelProto)
 * to and from llama2.c's tokenizer.bin. Only the wire format is needed, and
 * only a few fields: the pieces (text, score, type), and in the trainer spec
 * the names of the begin and end pieces. */
#ifndef LLAMA2_CONVERT_SENTENCEPIECE_H
#define LLAMA2_CONVERT_SENTENCEPIECE_H

#include <stddef.h>

#include "llama2.h"

/* ModelProto.SentencePiece.Type */
typedef enum l2_sp_type {
    L2_SP_NORMAL = 1,
    L2_SP_UNKNOWN = 2,
    L2_SP_CONTROL = 3,
    L2_SP_USER_DEFINED = 4,
    L2_SP_UNUSED = 5,
    L2_SP_BYTE = 6
} l2_sp_type;

typedef struct l2_sp_piece {
    const char *text; /* into the parsed bytes, not NUL-terminated */
    size_t len;
    float score;
    int type;
} l2_sp_piece;

typedef struct l2_sp_model {
    l2_sp_piece *pieces;
    size_t n_pieces;
    const char *bos_piece, *eos_piece; /* TrainerSpec's, default "<s>" and "</s>" */
    size_t bos_len, eos_len;
} l2_sp_model;

/* Parses a ModelProto from the size bytes at data, which must outlive the
 * model. Unknown fields are skipped; malformed wire data, a field of the
 * wrong wire type and an empty piece are refused. `path` is for messages. */
llama2_status l2_sp_parse(const void *data, size_t size, const char *path, l2_sp_model *out, llama2_error *err);
void l2_sp_free(l2_sp_model *m);

/* The tokenizer.bin that llama2.c's tokenizer.py exports for this model, in
 * a malloc'd buffer: the longest piece's length, then per piece its score,
 * its length and its bytes, with U+2581 (SentencePiece's space) as a space
 * and the begin and end pieces as "\n<s>\n" and "\n</s>\n". */
llama2_status l2_sp_to_llama2c(const l2_sp_model *m, const char *path, unsigned char **out, size_t *len,
                               llama2_error *err);

/* A ModelProto from tokenizer.bin bytes, in a malloc'd buffer: a BPE model
 * (as llama2.c trains and Llama 2 uses) whose pieces are the tokens with
 * spaces as U+2581; "<unk>" is the unknown piece, "\n<s>\n" and "\n</s>\n"
 * the control pieces <s> and </s>, "<0xHH>" the byte pieces (byte fallback
 * when all 256 are there); normalization as llama2.c encodes: no Unicode
 * normalization, a dummy space prefix, spaces kept as they are. */
llama2_status l2_sp_from_llama2c(const void *data, size_t size, const char *path, unsigned char **out,
                                 size_t *len, llama2_error *err);

#endif
