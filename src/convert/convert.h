/*
 * Conversion between Hugging Face Llama models and llama2.c files, without
 * Python: what llama2-convert runs. Internal to the project's tools (it
 * needs jansson, which the engine does not); not part of the public API.
 *
 * Unlike the engine's, these messages begin with the file they concern,
 * since one conversion reads several (config.json, shards, tokenizer).
 *
 * Every file is written as output_file.h says, with options->output_flags
 * (L2_OUTPUT_FORCE: an existing file may be replaced): never over an input,
 * and complete or not at all.
 */
#ifndef LLAMA2_CONVERT_H
#define LLAMA2_CONVERT_H

#include "llama2.h"
#include "write/output_file.h"
#include "safetensors.h"

typedef struct l2_convert_options {
    int version;              /* llama2.c output: 0, 1 or 2 */
    int group_size;           /* version 2: values per scale; 0 for the default */
    unsigned output_flags;    /* L2_OUTPUT_FORCE: replace existing outputs (output_file.h) */
    const char *tokenizer;    /* HF -> llama2.c: tokenizer.bin to write from the folder's
                                 tokenizer.model; llama2.c -> HF: tokenizer.bin to read */
    l2_dtype dtype;           /* llama2.c -> HF: F32, F16 or BF16 */
} l2_convert_options;

/* What a source is, told by its first bytes (source_kind.c). */
typedef enum l2_source_kind {
    L2_SOURCE_HF_FOLDER,     /* a folder: a Hugging Face model */
    L2_SOURCE_LLAMA2C,       /* "ak42" and a version; or, having no mark, what is left: version 0 */
    L2_SOURCE_SAFETENSORS,   /* one safetensors file (its folder is the model) */
    L2_SOURCE_SENTENCEPIECE, /* a SentencePiece tokenizer.model */
    L2_SOURCE_TOKENIZER_BIN, /* llama2.c's tokenizer.bin */
    L2_SOURCE_TOKENIZER_JSON, /* JSON: a Hugging Face tokenizer.json */
} l2_source_kind;

/* The kind of the file or folder at path. A path that cannot be read is
 * L2_SOURCE_LLAMA2C: opening it then says why. */
l2_source_kind l2_convert_source_kind(const char *path);

/* A Hugging Face folder (config.json, safetensors weights) to a llama2.c
 * checkpoint of options->version, and, when options->tokenizer is set, the
 * folder's tokenizer.model to that tokenizer.bin (or, without a
 * tokenizer.model, its tokenizer.json to a BPE tokenizer file). Everything is checked
 * before anything is written; outputs appear whole or not at all. */
llama2_status l2_convert_hf_to_llama2c(const char *dir, const char *out_path, const l2_convert_options *options,
                                       llama2_error *err);

/* A llama2.c checkpoint (any version) to a Hugging Face folder: config.json,
 * model.safetensors in options->dtype and, from options->tokenizer when set,
 * tokenizer.model. The folder is created if needed. A folder that holds
 * anything is an existing output: refused without L2_OUTPUT_FORCE; with it,
 * the files of those names are replaced and the others left alone. The
 * files are written aside and named only once all are complete. */
llama2_status l2_convert_llama2c_to_hf(const char *in_path, const char *out_dir, const l2_convert_options *options,
                                       llama2_error *err);

/* A SentencePiece tokenizer.model to llama2.c's tokenizer.bin. */
llama2_status l2_convert_sentencepiece(const char *in_path, const char *out_path, unsigned output_flags,
                                       llama2_error *err);

/* Hugging Face's tokenizer.json (and tokenizer_config.json beside it, for
 * BOS and EOS) as a byte-level BPE tokenizer: loaded, or written as the
 * engine's BPE tokenizer file (docs/FORMAT.md). Only Llama 3's
 * pre-tokenizer is accepted. */
llama2_status l2_load_tokenizer_json(const char *path, llama2_tokenizer **out, llama2_error *err);
llama2_status l2_convert_tokenizer_json(const char *in_path, const char *out_path, unsigned output_flags,
                                        llama2_error *err);
/* The BPE file's bytes (malloc'd) for a model of vocab_size tokens (0: any). */
llama2_status l2_tokenizer_json_bytes(const char *path, int vocab_size, unsigned char **data, size_t *size,
                                      llama2_error *err);

/* The BPE tokenizer file's bytes as tokenizer.json and tokenizer_config.json
 * (malloc'd text each; context: the config's model_max_length), which
 * l2_load_tokenizer_json reads back as the same tokenizer. */
llama2_status l2_tokenizer_json_from_bpe(const void *data, size_t size, int context, char **json, char **config,
                                         llama2_error *err);

/* A llama2.c checkpoint rewritten as another version (options->version,
 * options->group_size). */
llama2_status l2_convert_llama2c_version(const char *in_path, const char *out_path,
                                         const l2_convert_options *options, llama2_error *err);

#endif
