/* What a conversion's source is, from its first bytes (convert.h), as the
 * library's l2_file_kind_of tells any file: a legacy llama2.c checkpoint,
 * which has no mark of its own, is what is left. Nothing is loaded or
 * validated here: the conversion that follows opens the source once and
 * says what is wrong with it. */
#include "convert.h"
#include "model/file_kind.h"
#include "platform/platform.h"

l2_source_kind l2_convert_source_kind(const char *path) {
    if (l2_path_lookup(path, NULL, NULL) == L2_PATH_FOLDER) return L2_SOURCE_HF_FOLDER;
    FILE *f = l2_fopen(path, "rb");
    if (!f) return L2_SOURCE_LLAMA2C;
    unsigned char head[L2_FILE_KIND_HEAD_BYTES];
    const size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    switch (l2_file_kind_of(head, n)) {
    case L2_FILE_SAFETENSORS: return L2_SOURCE_SAFETENSORS;
    case L2_FILE_SENTENCEPIECE: return L2_SOURCE_SENTENCEPIECE;
    case L2_FILE_TOKENIZER_BIN: return L2_SOURCE_TOKENIZER_BIN;
    case L2_FILE_JSON: return L2_SOURCE_TOKENIZER_JSON;
    default: return L2_SOURCE_LLAMA2C; /* version 0 has no mark: what is left (the loader names other kinds) */
    }
}
