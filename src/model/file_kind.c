/* What a file is, from its first bytes (file_kind.h). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "checkpoint_format.h"
#include "file_kind.h"

static uint32_t u32_at(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* llama2.c's tokenizer.bin: a positive max_token_length, then entries of a
 * score (0 or a normal float: a version 0 checkpoint's second field, a small
 * integer, reads as a subnormal one), a length up to the maximum and that
 * many bytes without a NUL. The first three entries (or as many as the head
 * holds, at least one) must be such. */
static int is_tokenizer_bin(const unsigned char *p, size_t size) {
    if (size < 4) return 0;
    const uint32_t max_len = u32_at(p);
    if (max_len == 0 || max_len > 65536) return 0;
    size_t at = 4;
    int entries = 0;
    while (entries < 3 && at + 8 <= size) {
        float score;
        uint32_t bits = u32_at(p + at);
        memcpy(&score, &bits, sizeof score);
        const int c = fpclassify(score);
        if (c != FP_ZERO && c != FP_NORMAL) return 0;
        const uint32_t len = u32_at(p + at + 4);
        if (len > max_len) return 0;
        at += 8;
        if (len > size - at) break;
        if (memchr(p + at, 0, len)) return 0;
        at += len;
        entries++;
    }
    return entries >= 1;
}

/* A protobuf varint at p[*at], at most 5 bytes; 0 when it runs out. */
static int varint(const unsigned char *p, size_t size, size_t *at, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 35 && *at < size; shift += 7) {
        const unsigned char b = p[(*at)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* SentencePiece's ModelProto: it starts with its first piece (field 1,
 * length-delimited), whose first field is the piece's text (field 1,
 * length-delimited, within the piece). */
static int is_sentencepiece(const unsigned char *p, size_t size) {
    size_t at = 0;
    uint64_t piece_len, text_len;
    if (size < 4 || p[at++] != 0x0a || !varint(p, size, &at, &piece_len)) return 0;
    const size_t piece_start = at;
    if (piece_len < 2 || at >= size || p[at++] != 0x0a || !varint(p, size, &at, &text_len)) return 0;
    return text_len <= piece_len - (at - piece_start);
}

static int is_safetensors(const unsigned char *p, size_t size) {
    if (size < 9 || p[8] != '{') return 0;
    const uint64_t n = (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32;
    return n >= 2 && n <= ((uint64_t)1 << 32);
}

/* JSON: an object or an array after white space, whose first member
 * starts as JSON does (so that a version 0 header with dim 123, '{' then
 * NULs, is not taken for one). */
static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int is_json(const unsigned char *p, size_t size) {
    size_t at = 0;
    while (at < size && is_space(p[at])) at++;
    if (at == size || (p[at] != '{' && p[at] != '[')) return 0;
    const unsigned char open = p[at++];
    while (at < size && is_space(p[at])) at++;
    if (at == size) return 1;
    if (open == '{') return p[at] == '"' || p[at] == '}';
    return strchr("\"{[]-0123456789tfn", p[at]) != NULL && p[at] != '\0';
}

l2_file_kind l2_file_kind_of(const unsigned char *head, size_t size) {
    if (size >= 8 && u32_at(head) == L2_CHECKPOINT_MAGIC) {
        const uint32_t version = u32_at(head + 4);
        return version == 1 ? L2_FILE_CHECKPOINT_V1 : version == 2 ? L2_FILE_CHECKPOINT_V2 : L2_FILE_CHECKPOINT_VERSION;
    }
    if (size >= 4 && memcmp(head, "GGUF", 4) == 0) return L2_FILE_GGUF;
    if (size >= 4 && memcmp(head, "PK\3\4", 4) == 0) return L2_FILE_ZIP;
    if (is_safetensors(head, size)) return L2_FILE_SAFETENSORS;
    if (is_json(head, size)) return L2_FILE_JSON;
    if (is_sentencepiece(head, size)) return L2_FILE_SENTENCEPIECE;
    if (is_tokenizer_bin(head, size)) return L2_FILE_TOKENIZER_BIN;
    llama2_config c;
    size_t header_bytes;
    if (size >= L2_V0_HEADER_BYTES && l2_header_decode(head, size, &c, &header_bytes, NULL) == LLAMA2_OK)
        return L2_FILE_CHECKPOINT_V0;
    return L2_FILE_UNKNOWN;
}

const char *l2_file_kind_name(l2_file_kind kind) {
    switch (kind) {
    case L2_FILE_UNKNOWN: break;
    case L2_FILE_CHECKPOINT_V0: return "a llama2.c checkpoint (version 0)";
    case L2_FILE_CHECKPOINT_V1: return "a llama2.c checkpoint (version 1)";
    case L2_FILE_CHECKPOINT_V2: return "a llama2.c checkpoint (version 2)";
    case L2_FILE_CHECKPOINT_VERSION: return "a llama2.c checkpoint of an unknown version";
    case L2_FILE_GGUF: return "a GGUF file";
    case L2_FILE_TOKENIZER_BIN: return "a llama2.c tokenizer (tokenizer.bin)";
    case L2_FILE_SENTENCEPIECE: return "a SentencePiece tokenizer.model";
    case L2_FILE_SAFETENSORS: return "a safetensors file";
    case L2_FILE_ZIP: return "a zip archive (PyTorch .pt/.pth files are)";
    case L2_FILE_JSON: return "a JSON file";
    }
    return "a file of unknown kind";
}
