/*
 * What a file is, from its first bytes: the one place that tells a llama2.c
 * checkpoint from a GGUF file, a tokenizer or the files of a Hugging Face
 * model, so that a loader handed the wrong kind can say what it got and
 * what to do instead (and a loader of another format can choose its path).
 */
#ifndef LLAMA2_FILE_KIND_H
#define LLAMA2_FILE_KIND_H

#include <stddef.h>

typedef enum l2_file_kind {
    L2_FILE_UNKNOWN,
    L2_FILE_CHECKPOINT_V0,       /* llama2.c legacy: no magic, a header of plausible shapes */
    L2_FILE_CHECKPOINT_V1,       /* "ak42", version 1 */
    L2_FILE_CHECKPOINT_V2,       /* "ak42", version 2 */
    L2_FILE_CHECKPOINT_VERSION,  /* "ak42", another version */
    L2_FILE_GGUF,                /* "GGUF" */
    L2_FILE_TOKENIZER_BIN,       /* llama2.c's tokenizer.bin */
    L2_FILE_SENTENCEPIECE,       /* SentencePiece's tokenizer.model (a ModelProto) */
    L2_FILE_SAFETENSORS,         /* a u64 header length, then '{' */
    L2_FILE_ZIP,                 /* "PK\3\4": PyTorch's .pt/.pth among others */
    L2_FILE_JSON,                /* '{' or '[' after white space: a config.json, tokenizer.json... */
} l2_file_kind;

/* The bytes of a file's start that l2_file_kind_of needs at most. */
#define L2_FILE_KIND_HEAD_BYTES 4096

/* The kind of the file whose first `size` bytes are `head` (size may be less
 * than the file, at least L2_FILE_KIND_HEAD_BYTES where the file has them).
 * A version 0 checkpoint has no magic: it is the kind of a start that is
 * none of the others and decodes as a header. */
l2_file_kind l2_file_kind_of(const unsigned char *head, size_t size);

/* The kind in words, with an article: "a GGUF file". */
const char *l2_file_kind_name(l2_file_kind kind);

#endif
