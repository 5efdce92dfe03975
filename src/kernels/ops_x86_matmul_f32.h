/* The fp32 product of several inputs at the x86 levels (ops_avx2_matmul.c,
 * ops_avx512_matmul.c) around each level's own kernels: the blocks of
 * columns, the rows that alias in the caches and the calls of the row tiles are the same
 * at every level; the vector width, the target and the kernels that
 * multiply are the level's.
 *
 * A level's file includes this once, after defining
 *   X86_W       its vector width (ops_x86_width.h);
 *   MM_BLOCK    the columns of a block, MM_R the rows of a row tile;
 *   dot_rows(out, os, x, nb, w, ws, cols, k0, k1, next, ns, ahead_of, R)
 *               R (1..MM_R) rows, row r's column k0 at w + r * ws, against
 *               nb inputs (x, cols floats apart) over the block [k0, k1),
 *               into out[b * os + r] (the block's dot, or after the first
 *               block the sum so far plus it), prefetching the next row
 *               tile's block at `next` (MM_R rows ns floats apart; 0: none)
 *               as it goes, or the rows' streams in memory MM_AHEAD floats
 *               on (ahead_of; ops_x86_tiles.h) (an inline function, R a
 *               constant in each use);
 *   gemv_f32(out, x, w, cols, row_begin, row_end)
 *               the product of one input;
 * and gets dot_rows_1..4 (dot_rows_of[R]), gemm_f32, gemm_few_f32 (2 to
 * MM_FEW_INPUTS inputs) and the level's matmul_f32 entry
 * (l2_matmul_f32_avx2, l2_matmul_f32_avx512), which picks among them. Every
 * function here is compiled for the includer's level. */

typedef void (*dot_rows_fn)(float *out, size_t os, const float *x, int nb, const float *w, size_t ws, size_t cols,
                            size_t k0, size_t k1, uintptr_t next, size_t ns, row_streams ahead_of);
/* Not inlined: each keeps all the vector registers to itself. */
#define DOT_ROWS(R)                                                                                             \
    __attribute__((noinline)) V_FN static void dot_rows_##R(float *out, size_t os, const float *x, int nb,    \
                                                             const float *w, size_t ws, size_t cols, size_t k0, \
                                                             size_t k1, uintptr_t next, size_t ns,             \
                                                             row_streams ahead_of) {                           \
        dot_rows(out, os, x, nb, w, ws, cols, k0, k1, next, ns, ahead_of, R);                                  \
    }
DOT_ROWS(1)
DOT_ROWS(2)
DOT_ROWS(3)
DOT_ROWS(4)
#undef DOT_ROWS
_Static_assert(MM_R == 4, "dot_rows_of has a function for 1 to 4 rows");
static const dot_rows_fn dot_rows_of[MM_R + 1] = {NULL, dot_rows_1, dot_rows_2, dot_rows_3, dot_rows_4};
static const row_streams no_streams = {0, 0};

/* Block by block, and in a block MM_R rows at a time against every input
 * while the rows' columns are in L1. Rows whose length is a multiple of 2
 * KiB map the same columns of every row and input to the same few cache
 * sets, which then hold neither a tile's streams in L1 nor a block of many
 * inputs in L2: for them the block of the tile's rows is first copied side
 * by side, and the inputs are taken 64 at a time (with AVX2, a down
 * projection of 2048 columns ran at 0.8 of the speed without). */
#define MM_ALIASED_INPUTS 64

V_FN static void gemm_f32(float *out, size_t os, const float *x, int nb, const float *w, size_t cols, int row_begin,
                           int row_end) {
    _Alignas(64) float tile[MM_R * MM_BLOCK];
    const int aliased = cols % 512 == 0;
    const int chunk = aliased ? MM_ALIASED_INPUTS : nb;
    for (int b = 0; b < nb; b += chunk) {
        const int bn = nb - b < chunk ? nb - b : chunk;
        for (size_t k0 = 0; k0 < cols; k0 += MM_BLOCK) {
            const size_t k1 = cols - k0 < MM_BLOCK ? cols : k0 + MM_BLOCK, kc = k1 - k0;
            for (int r = row_begin; r < row_end; r += MM_R) {
                const int nr = row_end - r < MM_R ? row_end - r : MM_R;
                const float *wt = w + (size_t)r * cols + k0;
                size_t ws = cols;
                if (aliased) {
                    for (int i = 0; i < nr; i++)
                        memcpy(tile + (size_t)i * MM_BLOCK, wt + (size_t)i * cols, kc * sizeof(float));
                    wt = tile;
                    ws = MM_BLOCK;
                }
                const uintptr_t next = r + 2 * MM_R <= row_end ? (uintptr_t)(w + (size_t)(r + MM_R) * cols + k0) : 0;
                dot_rows_of[nr](out + (size_t)b * os + r, os, x + (size_t)b * cols, bn, wt, ws, cols, k0, k1, next,
                                cols, no_streams);
            }
        }
    }
}

/* A few inputs (the next tokens of a batch of sequences) are bound, like one,
 * by reading the weights: the rows are read as gemv_f32 reads them, as four
 * quarters of the range, row i of each quarter side by side and each from its
 * first column to its last (four long streams, which the tiles prefetch
 * MM_AHEAD floats ahead as they read them), and every block of the four rows
 * is multiplied by all the inputs while it is in L1. The inputs stay in L2
 * (16 rows of 2048 floats are 128 KiB). Rows of a multiple of 2 KiB are not
 * copied as in gemm_f32: each block is read once, and with the streams
 * prefetched the copy no longer paid for itself. Each dot is the same
 * dot_tile arithmetic, block by block in order, as in gemm_f32: the same
 * bits. */
#define MM_FEW_INPUTS 16

V_FN static void gemm_few_f32(float *out, size_t os, const float *x, int nb, const float *w, size_t cols,
                               int row_begin, int row_end) {
    _Alignas(16) float sums[MM_FEW_INPUTS * MM_R];
    const int q = (row_end - row_begin) / MM_R;
    const size_t qc = (size_t)q * cols;
    for (int i = 0; i < q; i++) {
        const int r = row_begin + i;
        for (size_t k0 = 0; k0 < cols; k0 += MM_BLOCK) {
            const size_t k1 = cols - k0 < MM_BLOCK ? cols : k0 + MM_BLOCK;
            const float *wt = w + (size_t)r * cols + k0;
            const row_streams streams = {(uintptr_t)wt, qc};
            dot_rows_4(sums, MM_R, x, nb, wt, qc, cols, k0, k1, 0, 0, streams);
        }
        for (int b = 0; b < nb; b++)
            for (int j = 0; j < MM_R; j++) out[(size_t)b * os + (size_t)(r + j * q)] = sums[b * MM_R + j];
    }
    /* The rows left over, side by side. */
    const int r = row_begin + MM_R * q, nr = row_end - r;
    if (nr > 0)
        for (size_t k0 = 0; k0 < cols; k0 += MM_BLOCK) {
            const size_t k1 = cols - k0 < MM_BLOCK ? cols : k0 + MM_BLOCK;
            dot_rows_of[nr](out + r, os, x, nb, w + (size_t)r * cols + k0, cols, cols, k0, k1, 0, 0, no_streams);
        }
}

V_FN void X86_CAT(l2_matmul_f32_, V_NAME)(float *out, int out_stride, const float *x, int nb, const float *w, int cols,
                                          int row_begin, int row_end) {
    if (nb == 1)
        gemv_f32(out, x, w, (size_t)cols, row_begin, row_end);
    else if (nb <= MM_FEW_INPUTS)
        gemm_few_f32(out, (size_t)out_stride, x, nb, w, (size_t)cols, row_begin, row_end);
    else
        gemm_f32(out, (size_t)out_stride, x, nb, w, (size_t)cols, row_begin, row_end);
}
