/*
 * A SentencePiece model from llama2.c's tokenizer.bin, so that a model
 * converted to Hugging Face's layout carries a tokenizer.model that
 * SentencePiece (and transformers' LlamaTokenizer) loads.
 *
 * tokenizer.bin keeps each piece's bytes and score, not its type; the types
 * are recovered from llama2.c's conventions: "<unk>" is the unknown piece,
 * "\n<s>\n" and "\n</s>\n" (tokenizer.py's spelling) the begin and end
 * control pieces, "<0xHH>" the byte pieces. Written fields (numbers from
 * sentencepiece_model.proto):
 *   ModelProto      1 pieces, 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece, 2 score, 3 type
 *   TrainerSpec     3 model_type (BPE = 2), 4 vocab_size, 35 byte_fallback,
 *                   40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id
 *   NormalizerSpec  1 name, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
 *                   5 escape_whitespaces
 */
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"
#include "printable.h"
#include "protobuf.h"
#include "sentencepiece.h"
#include "text/bpe.h"

#define SP_SPACE "\xe2\x96\x81"
#define MODEL_TYPE_BPE 2

typedef struct token {
    const unsigned char *bytes;
    uint32_t len;
    float score;
} token;

/* The entries of tokenizer.bin: a uint32 longest length, then per token a
 * float score, a uint32 length and the bytes, up to the end of the file. */
static llama2_status read_tokens(const unsigned char *data, size_t size, const char *path, token **out,
                                 size_t *count, llama2_error *err) {
    *out = NULL;
    *count = 0;
    if (size < 4) return l2_fail(err, LLAMA2_E_FORMAT, "%s: too short for a tokenizer (%zu bytes)", path, size);
    if (l2_bpe_file_is(data, size))
        return l2_fail(err, LLAMA2_E_UNSUPPORTED,
                       "%s: a BPE tokenizer (from tokenizer.json): only llama2.c's tokenizer.bin becomes a tokenizer.model",
                       path);
    size_t n = 0;
    for (size_t pos = 4; pos < size; n++) {
        uint32_t len;
        if (size - pos < 8 || (memcpy(&len, data + pos + 4, 4), len > size - pos - 8))
            return l2_fail(err, LLAMA2_E_FORMAT, "%s: tokenizer truncated in entry %zu", path, n);
        pos += 8 + len;
    }
    if (n == 0) return l2_fail(err, LLAMA2_E_FORMAT, "%s: tokenizer has no tokens", path);
    token *t = malloc(n * sizeof *t);
    if (!t) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    size_t pos = 4;
    for (size_t i = 0; i < n; i++) {
        memcpy(&t[i].score, data + pos, 4);
        memcpy(&t[i].len, data + pos + 4, 4);
        t[i].bytes = data + pos + 8;
        pos += 8 + t[i].len;
    }
    *out = t;
    *count = n;
    return LLAMA2_OK;
}

static int is_text(const token *t, const char *s) {
    return t->len == strlen(s) && memcmp(t->bytes, s, t->len) == 0;
}

/* "<0xHH>" with two upper-case hex digits, as SentencePiece names bytes. */
static int byte_piece(const token *t) {
    static const char hex[] = "0123456789ABCDEF";
    if (t->len != 6 || memcmp(t->bytes, "<0x", 3) != 0 || t->bytes[5] != '>') return -1;
    const char *hi = memchr(hex, t->bytes[3], 16), *lo = memchr(hex, t->bytes[4], 16);
    if (!hi || !lo) return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

/* A token's piece: spaces as U+2581, the control pieces by their names. */
static size_t piece_text(const token *t, int type, char *out) {
    if (type == L2_SP_CONTROL) {
        const char *name = is_text(t, "\n<s>\n") ? "<s>" : "</s>";
        memcpy(out, name, strlen(name));
        return strlen(name);
    }
    size_t n = 0;
    for (uint32_t i = 0; i < t->len; i++) {
        if (t->bytes[i] == ' ') {
            memcpy(out + n, SP_SPACE, 3);
            n += 3;
        } else {
            out[n++] = (char)t->bytes[i];
        }
    }
    return n;
}

typedef struct piece_ref {
    const char *text;
    size_t len;
    size_t id;
} piece_ref;

static int by_text(const void *a, const void *b) {
    const piece_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    return c ? c : x->len < y->len ? -1 : x->len > y->len;
}

/* SentencePiece refuses a model with two equal pieces. */
static llama2_status check_unique(char *const *texts, const size_t *lens, size_t n, const char *path,
                                  llama2_error *err) {
    piece_ref *refs = malloc(n * sizeof *refs);
    if (!refs) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) refs[i] = (piece_ref){texts[i], lens[i], i};
    qsort(refs, n, sizeof *refs, by_text);
    llama2_status s = LLAMA2_OK;
    for (size_t i = 1; i < n && s == LLAMA2_OK; i++)
        if (by_text(&refs[i - 1], &refs[i]) == 0) {
            char shown[64];
            size_t a = refs[i - 1].id < refs[i].id ? refs[i - 1].id : refs[i].id;
            size_t b = refs[i - 1].id < refs[i].id ? refs[i].id : refs[i - 1].id;
            s = l2_fail(err, LLAMA2_E_FORMAT, "%s: tokens %zu and %zu are both '%s': SentencePiece cannot hold that",
                        path, a, b, l2_printable_n(refs[i].text, refs[i].len, shown, sizeof shown));
        }
    free(refs);
    return s;
}

llama2_status l2_sp_from_llama2c(const void *data, size_t size, const char *path, unsigned char **out,
                                 size_t *len, llama2_error *err) {
    *out = NULL;
    *len = 0;
    token *tokens;
    size_t n;
    llama2_status s = read_tokens(data, size, path, &tokens, &n, err);
    if (s != LLAMA2_OK) return s;
    if (n > INT32_MAX) {
        free(tokens);
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: too many tokens", path);
    }
    int *types = malloc(n * sizeof *types);
    char **texts = calloc(n, sizeof *texts);
    size_t *lens = malloc(n * sizeof *lens);
    long unk = -1, bos = -1, eos = -1;
    int bytes_seen[256] = {0}, n_bytes = 0;
    if (!types || !texts || !lens) s = l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && s == LLAMA2_OK; i++) {
        const token *t = &tokens[i];
        int b = byte_piece(t);
        types[i] = L2_SP_NORMAL;
        if (t->len == 0)
            s = l2_fail(err, LLAMA2_E_FORMAT, "%s: token %zu is empty: SentencePiece cannot hold it", path, i);
        else if (unk < 0 && is_text(t, "<unk>"))
            types[i] = L2_SP_UNKNOWN, unk = (long)i;
        else if (bos < 0 && is_text(t, "\n<s>\n"))
            types[i] = L2_SP_CONTROL, bos = (long)i;
        else if (eos < 0 && is_text(t, "\n</s>\n"))
            types[i] = L2_SP_CONTROL, eos = (long)i;
        else if (b >= 0 && !bytes_seen[b])
            types[i] = L2_SP_BYTE, bytes_seen[b] = 1, n_bytes++;
        if (s == LLAMA2_OK && !(texts[i] = malloc((size_t)t->len * 3)))
            s = l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
        if (s == LLAMA2_OK) lens[i] = piece_text(t, types[i], texts[i]);
    }
    if (s == LLAMA2_OK && unk < 0)
        s = l2_fail(err, LLAMA2_E_FORMAT, "%s: no <unk> token: a SentencePiece model needs one", path);
    if (s == LLAMA2_OK) s = check_unique(texts, lens, n, path, err);

    l2_pb_writer model = {0}, piece = {0}, spec = {0};
    for (size_t i = 0; i < n && s == LLAMA2_OK; i++) {
        piece.len = 0;
        l2_pb_put_bytes_field(&piece, 1, texts[i], lens[i]);
        l2_pb_put_float_field(&piece, 2, tokens[i].score);
        if (types[i] != L2_SP_NORMAL) l2_pb_put_varint_field(&piece, 3, (uint64_t)types[i]);
        l2_pb_put_bytes_field(&model, 1, piece.data, piece.len);
    }
    if (s == LLAMA2_OK) {
        l2_pb_put_varint_field(&spec, 3, MODEL_TYPE_BPE);
        l2_pb_put_int32_field(&spec, 4, (int32_t)n);
        l2_pb_put_varint_field(&spec, 35, n_bytes == 256);
        l2_pb_put_int32_field(&spec, 40, (int32_t)unk);
        l2_pb_put_int32_field(&spec, 41, (int32_t)bos);
        l2_pb_put_int32_field(&spec, 42, (int32_t)eos);
        l2_pb_put_int32_field(&spec, 43, -1);
        l2_pb_put_bytes_field(&model, 2, spec.data, spec.len);
        spec.len = 0;
        l2_pb_put_bytes_field(&spec, 1, "identity", 8);
        l2_pb_put_varint_field(&spec, 3, 1);
        l2_pb_put_varint_field(&spec, 4, 0);
        l2_pb_put_varint_field(&spec, 5, 1);
        l2_pb_put_bytes_field(&model, 3, spec.data, spec.len);
        if (model.failed || piece.failed || spec.failed) s = l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(types);
    free(tokens);
    free(piece.data);
    free(spec.data);
    if (s != LLAMA2_OK) {
        free(model.data);
        return s;
    }
    *out = model.data;
    *len = model.len;
    return LLAMA2_OK;
}
