/* What a conversion's source is, from its first bytes (convert.h): each
 * kind is told by a mark of its own, and a legacy llama2.c checkpoint,
 * which has none, is what is left. Nothing is loaded or validated here:
 * the conversion that follows opens the source once and says what is
 * wrong with it. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "convert.h"
#include "model/checkpoint_format.h"
#include "platform/platform.h"

/* Enough of a tokenizer.bin for a few hundred pieces. */
#define HEAD_BYTES 4096

static uint32_t u32_at(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* "ak42" then version 1 or 2 (checkpoint_format.h); a later version is a
 * checkpoint too, which the loader refuses by name. */
static int is_llama2c_v1_v2(const unsigned char *h, size_t n) { return n >= 8 && u32_at(h) == L2_CHECKPOINT_MAGIC; }

/* safetensors: an 8-byte little-endian header length, then the JSON
 * header's '{'. */
static int is_safetensors(const unsigned char *h, size_t n) {
    if (n < 9 || h[8] != '{') return 0;
    return u32_at(h + 4) == 0 && u32_at(h) >= 2; /* a header under 4 GiB, "{}" at least */
}

/* A varint of at most 5 bytes at h[*at]; 0 when it does not end in n. */
static int skip_varint(const unsigned char *h, size_t n, size_t *at) {
    for (int i = 0; i < 5 && *at < n; i++)
        if (!(h[(*at)++] & 0x80)) return 1;
    return 0;
}

/* A SentencePiece ModelProto: it begins with its first piece, field 1
 * (tag 0x0a) holding a message whose own first field is the piece's text
 * (tag 0x0a again). */
static int is_sentencepiece(const unsigned char *h, size_t n) {
    size_t at = 1;
    return n >= 3 && h[0] == 0x0a && skip_varint(h, n, &at) && at < n && h[at] == 0x0a;
}

/* llama2.c's tokenizer.bin: max_token_length, then pieces of (finite
 * score, length 1..max_token_length, bytes) to the end of the file; the
 * pieces in the first bytes are checked (all of them in a small file). */
static int is_tokenizer_bin(const unsigned char *h, size_t n, int whole_file) {
    if (n < 4) return 0;
    const uint32_t max_len = u32_at(h);
    if (max_len == 0 || max_len > 1u << 16) return 0;
    size_t at = 4;
    int pieces = 0;
    while (n - at >= 8) {
        float score;
        memcpy(&score, h + at, sizeof score);
        const uint32_t len = u32_at(h + at + 4);
        if (!isfinite(score) || len == 0 || len > max_len) return 0;
        if (n - at - 8 < len) break;
        at += 8 + len;
        pieces++;
    }
    return pieces > 0 && (whole_file ? at == n : pieces >= 8);
}

l2_source_kind l2_convert_source_kind(const char *path) {
    if (l2_path_lookup(path, NULL, NULL) == L2_PATH_FOLDER) return L2_SOURCE_HF_FOLDER;
    FILE *f = l2_fopen(path, "rb");
    if (!f) return L2_SOURCE_LLAMA2C;
    unsigned char head[HEAD_BYTES];
    const size_t n = fread(head, 1, sizeof head, f);
    const int whole_file = n < sizeof head && feof(f);
    fclose(f);
    if (is_llama2c_v1_v2(head, n)) return L2_SOURCE_LLAMA2C;
    if (is_safetensors(head, n)) return L2_SOURCE_SAFETENSORS;
    if (is_sentencepiece(head, n)) return L2_SOURCE_SENTENCEPIECE;
    if (is_tokenizer_bin(head, n, whole_file)) return L2_SOURCE_TOKENIZER_BIN;
    return L2_SOURCE_LLAMA2C; /* version 0 has no mark: what is left */
}
