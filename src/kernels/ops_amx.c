/*
 * AMX-INT8 products for int8 prompt blocks (the amx level; Sapphire Rapids
 * and later), bit for bit the reference's results like every int8 kernel.
 *
 * A tile multiply (tdpbssd) takes a tile A of up to 16 rows of K bytes (16
 * inputs' quantized values), a tile B of K / 4 rows of 64 bytes (16 weight
 * rows' values, 4 bytes of each row side by side in every B row) and adds
 * the 16 x 16 integer dots into a tile C of int32: exact, for any bytes.
 * Every group of gs values has its own scales, so each group's C tiles go
 * out to memory and the float steps follow, per (input, row), in the
 * reference's order: val += ((float)ival * ws) * xs, group by group.
 *
 * The weights are repacked once, when the model is opened (l2_repack_q8_amx,
 * only for this level), into B tiles: for each block of 16 rows, each step
 * of K columns, K / 4 rows of 64 bytes, one tile after the other; then each
 * block's scales, 16 per group. The inputs are loaded as they are (rows of
 * cols bytes). Blocks of 32 inputs x 32 rows use all 8 tiles: 4 C, 2 A, 2 B.
 * Rows outside whole blocks of 16, group sizes below AMX_MIN_GROUP (where
 * the float steps would swamp the tiles' work), and fewer than
 * AMX_MIN_INPUTS inputs go to the avx512-vnni level's products.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"
#include "ops_isa.h"
#include "ops_x86.h"

#define AMX_FN L2_TARGET(L2_AMX)
#define AMX_INLINE L2_INLINE(L2_AMX)

#define AMX_MIN_GROUP 32
/* Below a full tile of inputs the tiles idle in part; this many still keep
 * them ahead of the VNNI products (a choice, not measured). */
#define AMX_MIN_INPUTS 8
/* Groups whose C tiles are stored before their float steps run. */
#define AMX_PANEL 4

/* Tile registers: C tiles 0-3 ([input tile][row block]), A tiles 4-5, B
 * tiles 6-7 (plain numbers: gcc pastes them into the instructions). */
#define C00 0
#define C01 1
#define C10 2
#define C11 3
#define A0 4
#define A1 5
#define B0 6
#define B1 7

/* GCC's _tile_loadd and _tile_stored pass the stride as a long, which is 32
 * bits on Windows (LLP64): the assembler then rejects the address. There the
 * stride goes as a 64-bit integer. */
#if defined(_WIN32) && !defined(L2_EMULATED_X86)
#undef _tile_loadd
#undef _tile_stored
#define _tile_loadd(dst, base, stride) l2_tile_loadd(dst, base, stride)
#define l2_tile_loadd(dst, base, stride)                                                                 \
    __asm__ volatile("{tileloadd\t(%0,%1,1), %%tmm" #dst "|tileloadd\t%%tmm" #dst ", [%0+%1*1]}" ::"r"( \
        (const void *)(base)),                                                                           \
                     "r"((long long)(stride)))
#define _tile_stored(src, base, stride) l2_tile_stored(src, base, stride)
#define l2_tile_stored(src, base, stride)                                                                  \
    __asm__ volatile("{tilestored\t%%tmm" #src ", (%0,%1,1)|tilestored\t[%0+%1*1], %%tmm" #src "}" ::"r"( \
        (void *)(base)),                                                                                   \
                     "r"((long long)(stride))                                                              \
                     : "memory")
#endif

/* ldtilecfg's 64 bytes: palette 1; bytes per row and rows of each tile. */
typedef struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* Bytes of each input (and B rows x 4) per tile multiply: the largest
 * multiple of 4 up to 64 that divides gs; 0 where the tiles are not used. */
static int amx_step(int gs) {
    if (gs < AMX_MIN_GROUP || gs % 4 != 0) return 0;
    for (int k = 64; k >= 4; k -= 4)
        if (gs % k == 0) return k;
    return 0;
}

static size_t round_up_64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Where the parts of a repacked matrix lie. */
typedef struct amx_layout {
    size_t tiles, scales, total; /* byte offsets in the copy; its size */
    int k, steps, blocks, groups;
} amx_layout;

static amx_layout amx_layout_of(int rows, int cols, int gs) {
    amx_layout l = {0};
    l.tiles = round_up_64(l2_repack_q8_stripe_scales(NULL, NULL, NULL, rows, cols, gs));
    l.total = l.tiles;
    l.k = amx_step(gs);
    l.blocks = rows / 16;
    if (l.k == 0 || l.blocks == 0) {
        l.blocks = 0;
        return l;
    }
    l.steps = cols / l.k;
    l.groups = cols / gs;
    l.scales = l.tiles + round_up_64((size_t)l.blocks * (size_t)l.steps * 16 * (size_t)l.k);
    l.total = l.scales + (size_t)l.blocks * (size_t)l.groups * 16 * sizeof(float);
    return l;
}

/* The stripe-ordered scales of the VNNI one-input products, then, where the
 * tiles apply, the B tiles of every block of 16 rows and their scales. */
size_t l2_repack_q8_amx(void *dst, const int8_t *w, const float *ws, int rows, int cols, int gs) {
    const amx_layout l = amx_layout_of(rows, cols, gs);
    if (!dst) return l.total;
    unsigned char *p = dst;
    l2_repack_q8_stripe_scales(p, w, ws, rows, cols, gs);
    const size_t c = (size_t)cols, tile = 16 * (size_t)l.k;
    for (int b = 0; b < l.blocks; b++) {
        for (int s = 0; s < l.steps; s++) {
            int8_t *t = (int8_t *)(p + l.tiles + ((size_t)b * (size_t)l.steps + (size_t)s) * tile);
            for (int k4 = 0; k4 < l.k / 4; k4++)
                for (int n = 0; n < 16; n++)
                    memcpy(t + (size_t)k4 * 64 + (size_t)n * 4, w + (size_t)(16 * b + n) * c + (size_t)s * l.k + 4 * k4, 4);
        }
        float *sc = (float *)(p + l.scales) + (size_t)b * (size_t)l.groups * 16;
        for (int g = 0; g < l.groups; g++)
            for (int n = 0; n < 16; n++) sc[(size_t)g * 16 + (size_t)n] = ws[(size_t)(16 * b + n) * (size_t)l.groups + g];
    }
    return l.total;
}

/* Tiles for m_rows inputs (16, or the last few) and steps of k bytes. */
AMX_FN static void amx_configure(int m_rows, int k) {
    _Alignas(64) amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = C00; t <= C11; t++) {
        cfg.rows[t] = (uint8_t)m_rows;
        cfg.colsb[t] = 64;
    }
    for (int t = A0; t <= A1; t++) {
        cfg.rows[t] = (uint8_t)m_rows;
        cfg.colsb[t] = (uint16_t)k;
    }
    for (int t = B0; t <= B1; t++) {
        cfg.rows[t] = (uint8_t)(k / 4);
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

/* What one pass over a tile of inputs and rows reads and writes. */
typedef struct amx_pass {
    const int8_t *x;   /* the tile's first input */
    const float *xs;   /* its scales */
    size_t cols, groups;
    const int8_t *b;   /* the B tiles of the first row block */
    size_t b_stride;   /* bytes from one row block's tiles to the next's */
    const float *ws;   /* the first row block's scales, 16 per group */
    size_t ws_stride;  /* floats from one row block's scales to the next's */
    int k, gs, m_rows; /* bytes per step, group size, inputs per input tile */
} amx_pass;

/* The float steps of groups [g0, g0 + ng) for input tile mt and row block
 * nt: acc[m][nt * 16 + n] += ((float)ival * ws) * xs, group by group. */
AMX_INLINE void amx_float_steps(float acc[32][32], const int32_t c[AMX_PANEL][4][16][16], const amx_pass *p, int g0,
                                int ng, int mt, int nt) {
    for (int m = 0; m < p->m_rows; m++) {
        const int mi = mt * 16 + m;
        const float *xs = p->xs + (size_t)mi * p->groups;
        __m512 a = _mm512_loadu_ps(&acc[mi][nt * 16]);
        for (int i = 0; i < ng; i++) {
            const int g = g0 + i;
            const __m512 wsv = _mm512_loadu_ps(p->ws + (size_t)nt * p->ws_stride + (size_t)g * 16);
            const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(c[i][mt * 2 + nt][m])), wsv);
            a = _mm512_add_ps(a, _mm512_mul_ps(t, _mm512_set1_ps(xs[g])));
        }
        _mm512_storeu_ps(&acc[mi][nt * 16], a);
    }
}

/* One pass: M2 input tiles (1 or 2) x N2 row blocks (1 or 2), every group,
 * into acc[input][row] (32 x 32, from zero). */
AMX_INLINE void amx_tiles(float acc[32][32], const amx_pass *p, int M2, int N2) {
    _Alignas(64) int32_t c[AMX_PANEL][4][16][16];
    const size_t tile = 16 * (size_t)p->k, steps_per_group = (size_t)(p->gs / p->k);
    const size_t xr = p->cols * 16; /* bytes from one input tile to the next */
    const int groups = (int)p->groups;
    for (int g0 = 0; g0 < groups; g0 += AMX_PANEL) {
        const int ng = groups - g0 < AMX_PANEL ? groups - g0 : AMX_PANEL;
        for (int i = 0; i < ng; i++) {
            const size_t g = (size_t)(g0 + i);
            _tile_zero(C00);
            if (N2) _tile_zero(C01);
            if (M2) _tile_zero(C10);
            if (M2 && N2) _tile_zero(C11);
            for (size_t s = g * steps_per_group; s < (g + 1) * steps_per_group; s++) {
                const int8_t *x = p->x + s * (size_t)p->k, *b = p->b + s * tile;
                _tile_loadd(A0, x, (long)p->cols);
                _tile_loadd(B0, b, 64);
                _tile_dpbssd(C00, A0, B0);
                if (N2) {
                    _tile_loadd(B1, b + p->b_stride, 64);
                    _tile_dpbssd(C01, A0, B1);
                }
                if (M2) {
                    _tile_loadd(A1, x + xr, (long)p->cols);
                    _tile_dpbssd(C10, A1, B0);
                    if (N2) _tile_dpbssd(C11, A1, B1);
                }
            }
            _tile_stored(C00, c[i][0], 64);
            if (N2) _tile_stored(C01, c[i][1], 64);
            if (M2) _tile_stored(C10, c[i][2], 64);
            if (M2 && N2) _tile_stored(C11, c[i][3], 64);
        }
        for (int mt = 0; mt <= M2; mt++)
            for (int nt = 0; nt <= N2; nt++) amx_float_steps(acc, (const int32_t(*)[4][16][16])c, p, g0, ng, mt, nt);
    }
}

/* Every input tile of m_rows inputs from b_first (2 at a time while there
 * are two) against row blocks [blk0, blk1) (2 at a time while there are
 * two). */
AMX_FN static void amx_inputs(float *out, size_t os, const int8_t *xq, const float *xs, int b_first, int b_end,
                              const amx_layout *l, const unsigned char *packed, int cols, int gs, int m_rows,
                              int blk0, int blk1) {
    const size_t blk_bytes = (size_t)l->steps * 16 * (size_t)l->k, blk_scales = (size_t)l->groups * 16;
    float acc[32][32];
    for (int blk = blk0; blk < blk1; blk += 2) {
        const int N2 = blk + 1 < blk1;
        for (int b = b_first; b < b_end; b += 2 * m_rows) {
            const int M2 = b + m_rows < b_end;
            amx_pass p = {.x = xq + (size_t)b * (size_t)cols, .xs = xs + (size_t)b * (size_t)l->groups,
                          .cols = (size_t)cols, .groups = (size_t)l->groups,
                          .b = (const int8_t *)(packed + l->tiles) + (size_t)blk * blk_bytes, .b_stride = blk_bytes,
                          .ws = (const float *)(packed + l->scales) + (size_t)blk * blk_scales,
                          .ws_stride = blk_scales, .k = l->k, .gs = gs, .m_rows = m_rows};
            memset(acc, 0, sizeof acc);
            if (M2 && N2) amx_tiles(acc, &p, 1, 1);
            else if (M2) amx_tiles(acc, &p, 1, 0);
            else if (N2) amx_tiles(acc, &p, 0, 1);
            else amx_tiles(acc, &p, 0, 0);
            for (int mt = 0; mt <= M2; mt++)
                for (int m = 0; m < m_rows; m++)
                    memcpy(out + (size_t)(b + mt * m_rows + m) * os + (size_t)blk * 16, &acc[mt * 16 + m][0],
                           (size_t)(N2 ? 32 : 16) * sizeof(float));
        }
    }
}

AMX_FN void l2_matmul_q8_packed_amx(float *out, int out_stride, const int8_t *xq, const float *xs,
                                    const int32_t *x_sums, int nb, const int8_t *w, const float *ws, const void *packed,
                                    int rows, int cols, int gs, int row_begin, int row_end) {
    (void)x_sums; /* the tiles multiply signed by signed */
    const amx_layout l = amx_layout_of(rows, cols, gs);
    /* Whole blocks of 16 rows inside the range go to the tiles. */
    const int blk0 = (row_begin + 15) / 16, blk1 = row_end / 16 < l.blocks ? row_end / 16 : l.blocks;
    if (l.blocks == 0 || nb < AMX_MIN_INPUTS || blk0 >= blk1) {
        l2_matmul_q8_avx512vnni(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, row_end);
        return;
    }
    if (row_begin < 16 * blk0)
        l2_matmul_q8_avx512vnni(out, out_stride, xq, xs, nb, w, ws, cols, gs, row_begin, 16 * blk0);
    if (16 * blk1 < row_end)
        l2_matmul_q8_avx512vnni(out, out_stride, xq, xs, nb, w, ws, cols, gs, 16 * blk1, row_end);
    const size_t os = (size_t)out_stride;
    const int full = nb / 16 * 16;
    if (full > 0) {
        amx_configure(16, l.k);
        amx_inputs(out, os, xq, xs, 0, full, &l, packed, cols, gs, 16, blk0, blk1);
    }
    if (full < nb) {
        amx_configure(nb - full, l.k);
        amx_inputs(out, os, xq, xs, full, nb, &l, packed, cols, gs, nb - full, blk0, blk1);
    }
    _tile_release();
}

#else

/* ISO C forbids an empty translation unit. */
typedef int l2_ops_amx_unused;

#endif
