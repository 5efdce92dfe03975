/*
 * Reading a SentencePiece model (sentencepiece_model.proto's ModelProto)
 * and exporting it as llama2.c's tokenizer.bin, byte for byte what
 * llama2.c's tokenizer.py writes.
 *
 * The fields read (field numbers from sentencepiece_model.proto):
 *   ModelProto     1 pieces (SentencePiece, repeated), 2 trainer_spec
 *   SentencePiece  1 piece (string), 2 score (float), 3 type (enum)
 *   TrainerSpec    46 bos_piece, 47 eos_piece (strings)
 */
#include <stdlib.h>
#include <string.h>

#include "platform/checks.h"
#include "printable.h"
#include "protobuf.h"
#include "sentencepiece.h"

#define MAX_PIECES (1 << 24)

/* tokenizer.py's replacements: U+2581 "▁" (SentencePiece's space) as a
 * space; the begin and end pieces as these. */
#define SP_SPACE "\xe2\x96\x81"
#define LLAMA2C_BOS "\n<s>\n"
#define LLAMA2C_EOS "\n</s>\n"

static llama2_status malformed(const l2_pb_reader *r, size_t base, const char *path, const char *what,
                               llama2_error *err) {
    return l2_fail(err, LLAMA2_E_FORMAT, "%s: not a SentencePiece model: %s at byte %zu", path,
                   r->error ? r->error : what, base + l2_pb_offset(r));
}

/* One SentencePiece message into *piece. */
static llama2_status parse_piece(const unsigned char *data, size_t size, size_t base, const char *path,
                                 l2_sp_piece *piece, llama2_error *err) {
    l2_pb_reader r = l2_pb_reader_of(data, size);
    uint32_t field;
    int wire;
    *piece = (l2_sp_piece){"", 0, 0.0f, L2_SP_NORMAL};
    while (l2_pb_next_field(&r, &field, &wire)) {
        const unsigned char *text;
        uint32_t bits;
        uint64_t v;
        if (field == 1 && wire == L2_PB_BYTES && l2_pb_bytes(&r, &text, &piece->len)) {
            piece->text = (const char *)text;
        } else if (field == 2 && wire == L2_PB_FIXED32 && l2_pb_fixed32(&r, &bits)) {
            memcpy(&piece->score, &bits, sizeof bits);
        } else if (field == 3 && wire == L2_PB_VARINT && l2_pb_varint(&r, &v)) {
            if (v < L2_SP_NORMAL || v > L2_SP_BYTE) return malformed(&r, base, path, "unknown piece type", err);
            piece->type = (int)v;
        } else if (field <= 3) {
            return malformed(&r, base, path, "a piece field of the wrong wire type", err);
        } else {
            l2_pb_skip(&r, wire);
        }
    }
    return r.error ? malformed(&r, base, path, "", err) : LLAMA2_OK;
}

static llama2_status parse_trainer_spec(const unsigned char *data, size_t size, size_t base, const char *path,
                                        l2_sp_model *m, llama2_error *err) {
    l2_pb_reader r = l2_pb_reader_of(data, size);
    uint32_t field;
    int wire;
    while (l2_pb_next_field(&r, &field, &wire)) {
        if (field == 46 || field == 47) {
            const unsigned char *text;
            size_t len;
            if (wire != L2_PB_BYTES || !l2_pb_bytes(&r, &text, &len))
                return malformed(&r, base, path, "a piece name of the wrong wire type", err);
            if (field == 46) m->bos_piece = (const char *)text, m->bos_len = len;
            else m->eos_piece = (const char *)text, m->eos_len = len;
        } else {
            l2_pb_skip(&r, wire);
        }
    }
    return r.error ? malformed(&r, base, path, "", err) : LLAMA2_OK;
}

llama2_status l2_sp_parse(const void *data, size_t size, const char *path, l2_sp_model *out, llama2_error *err) {
    memset(out, 0, sizeof *out);
    out->bos_piece = "<s>";
    out->bos_len = 3;
    out->eos_piece = "</s>";
    out->eos_len = 4;
    l2_pb_reader r = l2_pb_reader_of(data, size);
    size_t cap = 0;
    uint32_t field;
    int wire;
    llama2_status s = LLAMA2_OK;
    while (s == LLAMA2_OK && l2_pb_next_field(&r, &field, &wire)) {
        if ((field == 1 || field == 2) && wire != L2_PB_BYTES) {
            s = malformed(&r, 0, path, "a message field of the wrong wire type", err);
            break;
        }
        const unsigned char *body;
        size_t len;
        if (field == 1 && l2_pb_bytes(&r, &body, &len)) {
            if (out->n_pieces == cap) {
                size_t bigger = cap ? cap * 2 : 1024;
                l2_sp_piece *p = bigger <= MAX_PIECES ? realloc(out->pieces, bigger * sizeof *p) : NULL;
                if (!p) {
                    s = l2_fail(err, LLAMA2_E_NOMEM, "%s: too many pieces for memory", path);
                    break;
                }
                out->pieces = p;
                cap = bigger;
            }
            size_t base = (size_t)(body - (const unsigned char *)data);
            s = parse_piece(body, len, base, path, &out->pieces[out->n_pieces], err);
            if (s == LLAMA2_OK && out->pieces[out->n_pieces].len == 0)
                s = l2_fail(err, LLAMA2_E_FORMAT, "%s: piece %zu is empty", path, out->n_pieces);
            out->n_pieces++;
        } else if (field == 2 && l2_pb_bytes(&r, &body, &len)) {
            s = parse_trainer_spec(body, len, (size_t)(body - (const unsigned char *)data), path, out, err);
        } else {
            l2_pb_skip(&r, wire);
        }
    }
    if (s == LLAMA2_OK && r.error) s = malformed(&r, 0, path, "", err);
    if (s == LLAMA2_OK && out->n_pieces == 0)
        s = l2_fail(err, LLAMA2_E_FORMAT, "%s: not a SentencePiece model: no pieces", path);
    if (s != LLAMA2_OK) l2_sp_free(out);
    return s;
}

void l2_sp_free(l2_sp_model *m) {
    free(m->pieces);
    memset(m, 0, sizeof *m);
}

/* SentencePieceProcessor's bos_id() and eos_id(): the id of the piece so
 * named when it is a control piece, else -1. */
static long control_piece_id(const l2_sp_model *m, const char *name, size_t len) {
    for (size_t i = 0; i < m->n_pieces; i++)
        if (m->pieces[i].len == len && memcmp(m->pieces[i].text, name, len) == 0)
            return m->pieces[i].type == L2_SP_CONTROL ? (long)i : -1;
    return -1;
}

/* A piece's bytes in tokenizer.bin: "▁" replaced by a space (shorter, so
 * out needs at most len bytes). Returns the length. */
static size_t spaces_restored(const char *text, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (len - i >= 3 && memcmp(text + i, SP_SPACE, 3) == 0) {
            out[n++] = ' ';
            i += 3;
        } else {
            out[n++] = text[i++];
        }
    }
    return n;
}

llama2_status l2_sp_to_llama2c(const l2_sp_model *m, const char *path, unsigned char **out, size_t *len,
                               llama2_error *err) {
    const long bos = control_piece_id(m, m->bos_piece, m->bos_len), eos = control_piece_id(m, m->eos_piece, m->eos_len);
    size_t total = 4;
    for (size_t i = 0; i < m->n_pieces; i++) {
        if (m->pieces[i].len > INT32_MAX) return l2_fail(err, LLAMA2_E_FORMAT, "%s: piece %zu is too long", path, i);
        total += 8 + m->pieces[i].len + sizeof LLAMA2C_EOS; /* room for either replacement */
    }
    unsigned char *buf = malloc(total);
    if (!buf) return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    size_t pos = 4;
    uint32_t longest = 0;
    for (size_t i = 0; i < m->n_pieces; i++) {
        const l2_sp_piece *p = &m->pieces[i];
        char *text = (char *)buf + pos + 8;
        size_t n;
        if ((long)i == bos)
            n = strlen(LLAMA2C_BOS), memcpy(text, LLAMA2C_BOS, n);
        else if ((long)i == eos)
            n = strlen(LLAMA2C_EOS), memcpy(text, LLAMA2C_EOS, n);
        else
            n = spaces_restored(p->text, p->len, text);
        const uint32_t n32 = (uint32_t)n;
        memcpy(buf + pos, &p->score, 4);
        memcpy(buf + pos + 4, &n32, 4);
        pos += 8 + n;
        if (n32 > longest) longest = n32;
    }
    memcpy(buf, &longest, 4);
    *out = buf;
    *len = pos;
    return LLAMA2_OK;
}
