/*
 * The x86 intrinsics of the kernel files, in plain C, for the tests'
 * emulated library (the kernel files compiled with -DL2_EMULATED_X86
 * -include tests/emulate_x86.h): every level then runs on any x86-64 CPU,
 * so that the AVX-512, VNNI and AMX kernels are tested against the
 * reference on machines without them.
 *
 * SIMDe (libsimde-dev) supplies the AVX2 and AVX-512 intrinsics under their
 * native names; this file adds what its Debian version lacks (masked loads
 * and stores, a conversion, the AVX-VNNI spellings), replaces its 256-bit
 * VNNI dot products by plain loops, and adds the AMX tile intrinsics, each
 * written from the instruction's documented operation. Where an instruction would fault (a tile used before it is
 * configured, shapes that do not fit), the emulation aborts.
 */
#ifndef LLAMA2_EMULATE_X86_H
#define LLAMA2_EMULATE_X86_H

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef simde__mmask8 __mmask8;
typedef simde__mmask16 __mmask16;
typedef simde__mmask32 __mmask32;
typedef simde__mmask64 __mmask64;

/* ----------------------------------------------- what SIMDe lacks */

#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif

/* Masked loads read only the lanes whose bit is set (a real masked load
 * does not fault on the others either), so AddressSanitizer sees any read
 * past an array. */
static inline __m512 l2_emu_mask_loadu_ps(__m512 src, __mmask16 k, const void *p) {
    float v[16];
    memcpy(v, &src, sizeof v);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy(&v[i], (const float *)p + i, sizeof(float));
    __m512 r;
    memcpy(&r, v, sizeof r);
    return r;
}
#define _mm512_mask_loadu_ps(src, k, p) l2_emu_mask_loadu_ps((src), (k), (p))
#define _mm512_maskz_loadu_ps(k, p) l2_emu_mask_loadu_ps(_mm512_setzero_ps(), (k), (p))

/* AVX's vmaskmovps: lane i when the top bit of mask lane i is set; the
 * others read as 0, and are not touched by the store. */
static inline __m256 l2_emu_maskload256(const float *p, __m256i mask) {
    int32_t m[8];
    float v[8] = {0};
    memcpy(m, &mask, sizeof m);
    for (int i = 0; i < 8; i++)
        if (m[i] < 0) memcpy(&v[i], p + i, sizeof(float));
    __m256 r;
    memcpy(&r, v, sizeof r);
    return r;
}
static inline void l2_emu_maskstore256(float *p, __m256i mask, __m256 a) {
    int32_t m[8];
    float v[8];
    memcpy(m, &mask, sizeof m);
    memcpy(v, &a, sizeof v);
    for (int i = 0; i < 8; i++)
        if (m[i] < 0) memcpy(p + i, &v[i], sizeof(float));
}
#undef _mm256_maskload_ps
#undef _mm256_maskstore_ps
#define _mm256_maskload_ps(p, mask) l2_emu_maskload256((p), (mask))
#define _mm256_maskstore_ps(p, mask, a) l2_emu_maskstore256((p), (mask), (a))

static inline void l2_emu_mask_storeu_ps(void *p, __mmask16 k, __m512 a) {
    float v[16];
    memcpy(v, &a, sizeof v);
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy((float *)p + i, &v[i], sizeof(float));
}
#define _mm512_mask_storeu_ps(p, k, a) l2_emu_mask_storeu_ps((p), (k), (a))

/* 16 fp16 values to fp32 (missing from SIMDe): exact, as vcvtph2ps;
 * NaNs come out quiet, as there. */
static inline __m512 l2_emu_cvtph_ps(__m256i a) {
    uint16_t v[16];
    float r[16];
    memcpy(v, &a, sizeof v);
    for (int i = 0; i < 16; i++) {
        const uint32_t sign = (uint32_t)(v[i] & 0x8000) << 16, exp = (v[i] >> 10) & 0x1F, man = v[i] & 0x3FF;
        uint32_t bits;
        if (exp == 0x1F) {
            bits = sign | 0x7F800000u | (man << 13) | (man ? 0x400000u : 0);
        } else {
            float f = ldexpf((float)(exp ? (man | 0x400) : man), exp ? (int)exp - 25 : -24);
            memcpy(&bits, &f, sizeof bits);
            bits |= sign;
        }
        memcpy(&r[i], &bits, sizeof bits);
    }
    __m512 out;
    memcpy(&out, r, sizeof out);
    return out;
}
#define _mm512_cvtph_ps(a) l2_emu_cvtph_ps(a)

/* 16 bytes widened to int32, unsigned (vpmovzxbd) or signed (vpmovsxbd):
 * both missing from SIMDe. */
static inline __m512i l2_emu_cvt8_epi32(__m128i a, int is_signed) {
    uint8_t v[16];
    int32_t r[16];
    memcpy(v, &a, sizeof v);
    for (int i = 0; i < 16; i++) r[i] = is_signed && v[i] > 127 ? (int32_t)v[i] - 256 : (int32_t)v[i];
    __m512i out;
    memcpy(&out, r, sizeof out);
    return out;
}
#define _mm512_cvtepu8_epi32(a) l2_emu_cvt8_epi32((a), 0)
#define _mm512_cvtepi8_epi32(a) l2_emu_cvt8_epi32((a), 1)

/* int32 to float, rounded to nearest (the default rounding mode). */
static inline __m512 l2_emu_cvtepi32_ps(__m512i a) {
    int32_t v[16];
    float r[16];
    memcpy(v, &a, sizeof v);
    for (int i = 0; i < 16; i++) r[i] = (float)v[i];
    __m512 out;
    memcpy(&out, r, sizeof out);
    return out;
}
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps(a) l2_emu_cvtepi32_ps(a)

/* float to int32, rounded to nearest (cvtps) or toward zero (cvttps); a
 * NaN or a value out of range gives INT32_MIN, the "integer indefinite"
 * the instructions return (SIMDe's C casts are undefined there). */
static inline int32_t l2_emu_f2i(float v, int truncate) {
    float r = truncate ? truncf(v) : nearbyintf(v);
    return r >= -2147483648.0f && r < 2147483648.0f ? (int32_t)r : INT32_MIN;
}
static inline __m256i l2_emu_cvtps256(__m256 a, int truncate) {
    float v[8];
    int32_t r[8];
    memcpy(v, &a, sizeof v);
    for (int i = 0; i < 8; i++) r[i] = l2_emu_f2i(v[i], truncate);
    __m256i out;
    memcpy(&out, r, sizeof out);
    return out;
}
#undef _mm256_cvtps_epi32
#undef _mm256_cvttps_epi32
#define _mm256_cvtps_epi32(a) l2_emu_cvtps256((a), 0)
#define _mm256_cvttps_epi32(a) l2_emu_cvtps256((a), 1)

/* vpdpbusd on 8 lanes: src + the sums of 4 products of an unsigned byte
 * of a and a signed byte of b, wrapping; vpdpwssd: src + the sums of 2
 * products of int16. Plain loops: SIMDe's take the emulated files minutes
 * to compile. AVX-VNNI's VEX forms compute the same. */
static inline __m256i l2_emu_dpbusd256(__m256i src, __m256i a, __m256i b) {
    uint32_t acc[8];
    uint8_t ua[32];
    int8_t sb[32];
    memcpy(acc, &src, sizeof acc);
    memcpy(ua, &a, sizeof ua);
    memcpy(sb, &b, sizeof sb);
    for (int i = 0; i < 32; i++) acc[i / 4] += (uint32_t)((int32_t)ua[i] * (int32_t)sb[i]);
    memcpy(&src, acc, sizeof acc);
    return src;
}
static inline __m256i l2_emu_dpwssd256(__m256i src, __m256i a, __m256i b) {
    uint32_t acc[8];
    int16_t sa[16], sb[16];
    memcpy(acc, &src, sizeof acc);
    memcpy(sa, &a, sizeof sa);
    memcpy(sb, &b, sizeof sb);
    for (int i = 0; i < 16; i++) acc[i / 2] += (uint32_t)((int32_t)sa[i] * (int32_t)sb[i]);
    memcpy(&src, acc, sizeof acc);
    return src;
}
#undef _mm256_dpbusd_epi32
#undef _mm256_dpwssd_epi32
#define _mm256_dpbusd_epi32(src, a, b) l2_emu_dpbusd256((src), (a), (b))
#define _mm256_dpwssd_epi32(src, a, b) l2_emu_dpwssd256((src), (a), (b))
#define _mm256_dpbusd_avx_epi32(src, a, b) l2_emu_dpbusd256((src), (a), (b))
#define _mm256_dpwssd_avx_epi32(src, a, b) l2_emu_dpwssd256((src), (a), (b))

/* ----------------------------------------------------------------- AMX */

/* The tile registers of this thread, as ldtilecfg left them. */
typedef struct l2_emu_tiles {
    int configured;
    uint16_t colsb[8];
    uint8_t rows[8];
    uint8_t data[8][16][64];
} l2_emu_tiles;

static _Thread_local l2_emu_tiles l2_emu_tile_state;

static inline void l2_emu_tile_check(int t) {
    if (!l2_emu_tile_state.configured || t < 0 || t > 7) abort();
}

/* ldtilecfg: palette byte 0, bytes per row of tile t at bytes 16 + 2t,
 * rows at byte 48 + t; palette 0 returns the tiles to their initial state.
 * Every tile is zeroed. */
static inline void l2_emu_tile_loadconfig(const void *config) {
    const uint8_t *c = config;
    memset(&l2_emu_tile_state, 0, sizeof l2_emu_tile_state);
    if (c[0] == 0) return;
    if (c[0] != 1) abort();
    for (int t = 0; t < 8; t++) {
        l2_emu_tile_state.colsb[t] = (uint16_t)(c[16 + 2 * t] | c[17 + 2 * t] << 8);
        l2_emu_tile_state.rows[t] = c[48 + t];
        if (l2_emu_tile_state.colsb[t] > 64 || l2_emu_tile_state.rows[t] > 16) abort();
    }
    l2_emu_tile_state.configured = 1;
}
#define _tile_loadconfig(config) l2_emu_tile_loadconfig(config)

/* tileloadd: rows x colsb bytes, row r from base + r * stride; the rest of
 * the register zeroed. */
static inline void l2_emu_tile_loadd(int t, const void *base, long stride) {
    l2_emu_tile_check(t);
    memset(l2_emu_tile_state.data[t], 0, sizeof l2_emu_tile_state.data[t]);
    for (int r = 0; r < l2_emu_tile_state.rows[t]; r++)
        memcpy(l2_emu_tile_state.data[t][r], (const uint8_t *)base + (long)r * stride, l2_emu_tile_state.colsb[t]);
}
#define _tile_loadd(t, base, stride) l2_emu_tile_loadd((t), (base), (stride))

static inline void l2_emu_tile_stored(int t, void *base, long stride) {
    l2_emu_tile_check(t);
    for (int r = 0; r < l2_emu_tile_state.rows[t]; r++)
        memcpy((uint8_t *)base + (long)r * stride, l2_emu_tile_state.data[t][r], l2_emu_tile_state.colsb[t]);
}
#define _tile_stored(t, base, stride) l2_emu_tile_stored((t), (base), (stride))

static inline void l2_emu_tile_zero(int t) {
    l2_emu_tile_check(t);
    memset(l2_emu_tile_state.data[t], 0, sizeof l2_emu_tile_state.data[t]);
}
#define _tile_zero(t) l2_emu_tile_zero(t)

/* tdpbssd c, a, b: for each row m of c and dword n of a row of c,
 * c[m].dword[n] += sum over k < colsb(a) / 4 and i < 4 of
 * a[m].byte[4k + i] * b[k].byte[4n + i], the bytes signed. The shapes must
 * agree: rows(a) = rows(c), colsb(a) / 4 = rows(b), colsb(b) = colsb(c). */
static inline void l2_emu_tile_dpbssd(int c, int a, int b) {
    l2_emu_tile_check(c);
    l2_emu_tile_check(a);
    l2_emu_tile_check(b);
    const l2_emu_tiles *s = &l2_emu_tile_state;
    if (s->rows[a] != s->rows[c] || s->colsb[a] / 4 != s->rows[b] || s->colsb[b] != s->colsb[c] || s->colsb[a] % 4)
        abort();
    for (int m = 0; m < s->rows[c]; m++)
        for (int n = 0; n < s->colsb[c] / 4; n++) {
            uint32_t acc; /* wraps, as the instruction does */
            memcpy(&acc, &s->data[c][m][4 * n], sizeof acc);
            for (int k = 0; k < s->colsb[a] / 4; k++)
                for (int i = 0; i < 4; i++)
                    acc += (uint32_t)((int32_t)(int8_t)s->data[a][m][4 * k + i] * (int32_t)(int8_t)s->data[b][k][4 * n + i]);
            memcpy(&l2_emu_tile_state.data[c][m][4 * n], &acc, sizeof acc);
        }
}
#define _tile_dpbssd(c, a, b) l2_emu_tile_dpbssd((c), (a), (b))

static inline void l2_emu_tile_release(void) { memset(&l2_emu_tile_state, 0, sizeof l2_emu_tile_state); }
#define _tile_release() l2_emu_tile_release()

#endif
