/* The loop of the AVX512-VNNI panel kernels (ops_blocks_avx512.c's Q4_0,
 * ops_kquants_avx512.c's Q4_K and Q6_K), written once: all that differs is
 * the block step, the macro's parameter. Included after ops_x86.h. */
#ifndef LLAMA2_OPS_AVX512_PANELS_H
#define LLAMA2_OPS_AVX512_PANELS_H

#include <stddef.h>
#include <stdint.h>

#include "ops_blocks.h"

/* Inputs a tile: a panel's 16 rows of each in one accumulator. */
#define L2_PANEL_TILE_512 8

/* One tile of n (a constant) inputs from i0: acc[i] zeroed, then step's
 * sums of each block added to it. */
#define L2_PANEL_TILE_512_OF(n, step, acc, panel, i0, n_blocks, ...)                                                  \
    do {                                                                                                               \
        _Pragma("GCC unroll 8") for (int i_ = 0; i_ < (n); i_++) acc[i_] = _mm512_setzero_ps();                        \
        for (int b_ = 0; b_ < (n_blocks); b_++) step(acc, panel, b_, i0, n, __VA_ARGS__);                              \
    } while (0)

/* Panels [panel_begin, panel_end) of a rows-row matrix (panel p at
 * panels + p * panel_bytes) against n_inputs inputs, L2_PANEL_TILE_512 at
 * a time: for a tile of ni inputs from i0, step(acc, panel, b, i0, ni,
 * ...) adds block b's sums for input i0 + i into acc[i] (ni a constant in
 * each call, so that the accumulators stay in registers); acc[i]'s lanes
 * of the matrix's rows are stored at out + (i0 + i) * out_stride + 16p
 * (a masked store: rows past the last are not written). */
#define L2_PANELS_512(out, out_stride, panels, panel_bytes, rows, panel_begin, panel_end, n_inputs, n_blocks, step,    \
                      ...)                                                                                             \
    do {                                                                                                               \
        const size_t bytes_ = (panel_bytes);                                                                           \
        for (int p_ = (panel_begin); p_ < (panel_end); p_++) {                                                         \
            const uint8_t *panel_ = (const uint8_t *)(panels) + (size_t)p_ * bytes_;                                   \
            const int row0_ = p_ * L2_PANEL_ROWS,                                                                      \
                      n_rows_ = (rows) - row0_ < L2_PANEL_ROWS ? (rows) - row0_ : L2_PANEL_ROWS;                       \
            const __mmask16 keep_ = (__mmask16)((1u << n_rows_) - 1u);                                                 \
            for (int i0_ = 0; i0_ < (n_inputs); i0_ += L2_PANEL_TILE_512) {                                            \
                const int ni_ = (n_inputs) - i0_ < L2_PANEL_TILE_512 ? (n_inputs) - i0_ : L2_PANEL_TILE_512;           \
                __m512 acc_[L2_PANEL_TILE_512];                                                                        \
                switch (ni_) {                                                                                         \
                case 8: L2_PANEL_TILE_512_OF(8, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;                \
                case 7: L2_PANEL_TILE_512_OF(7, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;                \
                case 6: L2_PANEL_TILE_512_OF(6, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;                \
                case 5: L2_PANEL_TILE_512_OF(5, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;                \
                case 4: L2_PANEL_TILE_512_OF(4, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;                \
                case 3: L2_PANEL_TILE_512_OF(3, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;                \
                case 2: L2_PANEL_TILE_512_OF(2, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;                \
                default: L2_PANEL_TILE_512_OF(1, step, acc_, panel_, i0_, n_blocks, __VA_ARGS__); break;               \
                }                                                                                                      \
                for (int i_ = 0; i_ < ni_; i_++)                                                                       \
                    _mm512_mask_storeu_ps((out) + (size_t)(i0_ + i_) * (out_stride) + (size_t)row0_, keep_, acc_[i_]); \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

#endif
