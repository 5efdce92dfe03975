/*
 * ggml's reference K-quant quantizers (kquantize.h), in ggml's float
 * operations and order so that the choices (and so the files) are the
 * ones its reference makes, up to the compiler's contraction of
 * multiply-adds (this project builds with -ffp-contract=off).
 */
#include <math.h>
#include <string.h>

#include "kernels/ops_kquants.h"
#include "kquantize.h"
#include "model/float16.h"

_Static_assert(sizeof(l2_block_q4_K) == 144, "Q4_K blocks are 144 bytes");
_Static_assert(sizeof(l2_block_q5_K) == 176, "Q5_K blocks are 176 bytes");
_Static_assert(sizeof(l2_block_q6_K) == 210, "Q6_K blocks are 210 bytes");

#define GROUP_MAX_EPS 1e-15f /* ggml's: a group below this is all zeros */

/* ggml's nearest_int, for arguments it is defined on; a value out of its
 * range (a scale that rounded to almost 0) is clamped first, where ggml's
 * result is undefined. */
static int nearest(float v) {
    if (!(v >= -4194303.0f)) v = isnan(v) ? 0.0f : -4194303.0f;
    if (v > 4194303.0f) v = 4194303.0f;
    return l2_nearest_int(v);
}

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* How Q4_K and Q5_K fit a sub-block: make_qkx2_quants's levels (nmax),
 * first candidate step (rmin) and number of steps (nstep). */
typedef struct fit_params {
    int nmax, nstep;
    float rmin;
} fit_params;

static const fit_params Q4_K_FIT = {15, 20, -1.0f}, Q5_K_FIT = {31, 15, -0.5f};

/* make_qkx2_quants with rdelta 0.1 and the squared error: n values x with
 * weights w into levels L (0-nmax) so that x ~ scale * L - the_min;
 * returns the scale. */
static float fit_scale_min(fit_params p, int n, const float *x, const float *w, uint8_t *L, float *the_min,
                           uint8_t *aux) {
    const int nmax = p.nmax, nstep = p.nstep;
    const float rmin = p.rmin, rdelta = 0.1f;
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clamp(nearest(iscale * (x[i] - min)), 0, nmax);
        const float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clamp(nearest(iscale * (x[i] - min)), 0, nmax);
            aux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float error = 0;
            for (int i = 0; i < n; i++) {
                const float diff = this_scale * aux[i] + this_min - x[i];
                error += w[i] * (diff * diff);
            }
            if (error < best_error) {
                memcpy(L, aux, (size_t)n);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* The scales and mins of a Q4_K or Q5_K block (their shared 12 bytes and
 * fp16 d and dmin) and its levels L (0-p.nmax), as quantize_row_q4_K_ref
 * and quantize_row_q5_K_ref choose them. */
static void k_scales_levels(fit_params p, const float *x, uint8_t scales_out[12], uint16_t *d_out, uint16_t *dmin_out,
                            uint8_t L[L2_SUPER_BLOCK]) {
    uint8_t aux[32];
    float weights[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *v = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += v[l] * v[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(v[l]);
        scales[j] = fit_scale_min(p, 32, v, weights, L + 32 * j, &mins[j], aux);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    memset(scales_out, 0, 12);
    for (int j = 0; j < 8; j++) {
        /* As ggml: the rounded value kept in a byte, then capped at 63. */
        uint8_t ls = (uint8_t)nearest(inv_scale * scales[j]), lm = (uint8_t)nearest(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0x0F) | ((lm & 0x0F) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = l2_f32_to_f16(max_scale / 63.0f);
    *dmin_out = l2_f32_to_f16(max_min / 63.0f);
    /* The levels again against the scales as stored (a sub-block whose
     * scale is 0 keeps the fit's). */
    for (int j = 0; j < 8; j++) {
        int sc, m;
        l2_q4_K_scale_min(scales_out, j, &sc, &m);
        const float d = l2_f16_to_f32(*d_out) * sc;
        if (!d) continue;
        const float dm = l2_f16_to_f32(*dmin_out) * m;
        for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)clamp(nearest((x[32 * j + i] + dm) / d), 0, p.nmax);
    }
}

static void q4_K_block(const float *x, l2_block_q4_K *y) {
    uint8_t L[L2_SUPER_BLOCK];
    k_scales_levels(Q4_K_FIT, x, y->scales, &y->d, &y->dmin, L);
    for (int j = 0; j < L2_SUPER_BLOCK; j += 64)
        for (int l = 0; l < 32; l++) y->qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

/* Q4_K's nibbles, each level's fifth bit (16) in qh: bit j of qh[l] for
 * value 32j + l. */
static void q5_K_block(const float *x, l2_block_q5_K *y) {
    uint8_t L[L2_SUPER_BLOCK];
    k_scales_levels(Q5_K_FIT, x, y->scales, &y->d, &y->dmin, L);
    memset(y->qh, 0, sizeof y->qh);
    for (int i = 0; i < L2_SUPER_BLOCK; i++) y->qh[i % 32] |= (uint8_t)((L[i] >> 4) << (i / 32));
    for (int j = 0; j < L2_SUPER_BLOCK; j += 64)
        for (int l = 0; l < 32; l++) y->qs[j / 2 + l] = (uint8_t)((L[j + l] & 0x0F) | ((L[j + l + 32] & 0x0F) << 4));
}

/* make_qx_quants with nmax 32 and x^2 weights (rmse_type 1): n values
 * into levels L (0-63, the value plus 32); returns the scale. */
static float fit_scale(int n, const float *x, int8_t *L) {
    const int nmax = 32;
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clamp(nearest(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = clamp(nearest(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clamp(nearest(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static void q6_K_block(const float *x, l2_block_q6_K *y) {
    int8_t L[L2_SUPER_BLOCK];
    float scales[16], max_scale = 0, max_abs_scale = 0;
    for (int g = 0; g < 16; g++) {
        scales[g] = fit_scale(16, x + 16 * g, L + 16 * g);
        if (fabsf(scales[g]) > max_abs_scale) {
            max_abs_scale = fabsf(scales[g]);
            max_scale = scales[g];
        }
    }
    memset(y, 0, sizeof *y);
    if (max_abs_scale < GROUP_MAX_EPS) return; /* all zeros, d = 0 */
    const float iscale = -128.0f / max_scale;
    y->d = l2_f32_to_f16(1 / iscale);
    for (int g = 0; g < 16; g++) {
        const int s = nearest(iscale * scales[g]);
        y->scales[g] = (int8_t)(s < 127 ? s : 127);
    }
    for (int g = 0; g < 16; g++) {
        const float d = l2_f16_to_f32(y->d) * y->scales[g];
        if (!d) continue;
        for (int i = 0; i < 16; i++) L[16 * g + i] = (int8_t)(clamp(nearest(x[16 * g + i] / d), -32, 31) + 32);
    }
    for (int h = 0; h < 2; h++) {
        const int8_t *v = L + 128 * h;
        uint8_t *ql = y->ql + 64 * h, *qh = y->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            const int q1 = v[l], q2 = v[l + 32], q3 = v[l + 64], q4 = v[l + 96];
            ql[l] = (uint8_t)((q1 & 0x0F) | ((q3 & 0x0F) << 4));
            ql[l + 32] = (uint8_t)((q2 & 0x0F) | ((q4 & 0x0F) << 4));
            qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
    }
}

void l2_quantize_q4_K(const float *x, size_t n, unsigned char *out) {
    for (size_t b = 0; b < n / L2_SUPER_BLOCK; b++) {
        l2_block_q4_K y;
        q4_K_block(x + b * L2_SUPER_BLOCK, &y);
        memcpy(out + b * sizeof y, &y, sizeof y);
    }
}

void l2_quantize_q5_K(const float *x, size_t n, unsigned char *out) {
    for (size_t b = 0; b < n / L2_SUPER_BLOCK; b++) {
        l2_block_q5_K y;
        q5_K_block(x + b * L2_SUPER_BLOCK, &y);
        memcpy(out + b * sizeof y, &y, sizeof y);
    }
}

void l2_quantize_q6_K(const float *x, size_t n, unsigned char *out) {
    for (size_t b = 0; b < n / L2_SUPER_BLOCK; b++) {
        l2_block_q6_K y;
        q6_K_block(x + b * L2_SUPER_BLOCK, &y);
        memcpy(out + b * sizeof y, &y, sizeof y);
    }
}
