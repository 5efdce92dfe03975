/*
 * ggml's blocks as fp32 (ggml_dequant.h). The layouts, per block:
 *   Q8_0 (32 values, 34 bytes): fp16 d, 32 int8 q; x = q * d.
 *   Q4_0 (32, 18): fp16 d, 16 bytes; byte j holds value j (low nibble) and
 *       j + 16 (high), each stored plus 8; x = (nibble - 8) * d.
 *   Q4_K (256, 144): fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins
 *       for 8 sub-blocks of 32, 128 bytes of nibbles: each 32 bytes hold two
 *       sub-blocks (low nibbles, then high); x = (d * sc) * q - dmin * m.
 *   Q5_K (256, 176): Q4_K's d, dmin and scales, then qh[32], then Q4_K's
 *       nibbles; value i's fifth bit (16) is bit i / 32 of qh[i % 32].
 *   Q6_K (256, 210): 128 bytes of low 4 bits, 64 of high 2 bits, 16 int8
 *       scales (one per 16 values), fp16 d; x = d * sc * (q - 32).
 */
#include <string.h>

#include "float16.h"
#include "ggml_dequant.h"
#include "gguf.h"

static float half_at(const unsigned char *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return l2_f16_to_f32(h);
}

/* Sub-block j's 6-bit scale and min of a Q4_K block: the first four in the
 * low 6 bits of bytes j and j + 4, the last four in a byte's two nibbles
 * with their top 2 bits in the spare bits of the first eight bytes. */
static void q4_k_scale_min(int j, const unsigned char *q, int *scale, int *min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* A Q4_K block (qh NULL) or a Q5_K one (qh its fifth bits); q the nibbles. */
static void q4_k_block(const unsigned char *b, const unsigned char *qh, const unsigned char *q, float *y) {
    const float d = half_at(b), dmin = half_at(b + 2);
    const unsigned char *scales = b + 4;
    for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
        int sc, m;
        q4_k_scale_min(j, scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        q4_k_scale_min(j + 1, scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            const int h1 = qh ? ((qh[l] >> j) & 1) << 4 : 0, h2 = qh ? ((qh[l] >> (j + 1)) & 1) << 4 : 0;
            y[l] = d1 * (float)((q[l] & 0x0F) + h1) - m1;
            y[32 + l] = d2 * (float)((q[l] >> 4) + h2) - m2;
        }
    }
}

static void q6_k_block(const unsigned char *b, float *y) {
    const unsigned char *ql = b, *qh = b + 128;
    const signed char *sc = (const signed char *)(b + 192);
    const float d = half_at(b + 208);
    for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32;
            const int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32;
            const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
            const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
    }
}

int l2_ggml_dequantize(uint32_t type, const unsigned char *src, size_t n, float *out) {
    switch (type) {
    case L2_GGML_F32: memcpy(out, src, n * sizeof *out); return 1;
    case L2_GGML_F16:
    case L2_GGML_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, sizeof h);
            out[i] = type == L2_GGML_F16 ? l2_f16_to_f32(h) : l2_bf16_to_f32(h);
        }
        return 1;
    case L2_GGML_Q8_0:
        for (size_t b = 0; b < n / 32; b++, src += 34) {
            const float d = half_at(src);
            for (int j = 0; j < 32; j++) out[b * 32 + j] = (float)(signed char)src[2 + j] * d;
        }
        return 1;
    case L2_GGML_Q4_0:
        for (size_t b = 0; b < n / 32; b++, src += 18) {
            const float d = half_at(src);
            for (int j = 0; j < 16; j++) {
                out[b * 32 + j] = (float)((src[2 + j] & 0x0F) - 8) * d;
                out[b * 32 + j + 16] = (float)((src[2 + j] >> 4) - 8) * d;
            }
        }
        return 1;
    case L2_GGML_Q4_K:
        for (size_t b = 0; b < n / 256; b++) q4_k_block(src + b * 144, NULL, src + b * 144 + 16, out + b * 256);
        return 1;
    case L2_GGML_Q5_K:
        for (size_t b = 0; b < n / 256; b++)
            q4_k_block(src + b * 176, src + b * 176 + 16, src + b * 176 + 48, out + b * 256);
        return 1;
    case L2_GGML_Q6_K:
        for (size_t b = 0; b < n / 256; b++) q6_k_block(src + b * 210, out + b * 256);
        return 1;
    default: return 0;
    }
}
