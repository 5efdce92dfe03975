/*
 * Weight products split over the thread pool. Each output row is computed
 * whole by one task, so the result does not depend on the thread count.
 */
#include "backend.h"
#include "platform/checks.h"
#include "session.h"
#include "platform/threadpool.h"

/* The most products one parallel section takes (the forward pass shares an
 * input among three at most); l2_session_products runs more in several
 * sections. */
#define MAX_PRODUCTS 8

static int is_blocks(const tensor *w) { return l2_weights_are_blocks(w->type); }

/* Q4_0 matrices run as panels of 16 rows (ops_blocks.h), made when the
 * model was opened, and Q4_K and Q6_K ones where the K-quant table has
 * panels (ops_kquants.h). */
static int is_panels(const tensor *w) {
    return (w->type == LLAMA2_WEIGHTS_Q4_0 || l2_weights_are_k(w->type)) && w->packed;
}

/* Rows per task: a multiple of the rows the table's kernels take together
 * (ops.h: task_rows), small enough to balance the workers, large enough to
 * amortise a task. */
static int rows_per_task(const l2_kernels *k, const tensor *w, int n_workers, int nb) {
    const int rows = w->rows;
    if (n_workers <= 1) return rows;
    int target = rows / (n_workers * 8); /* about 8 tasks per worker */
    int min_rows = nb > 1 ? 32 : 16;
    if (target < min_rows) target = min_rows;
    const int unit = is_panels(w) ? L2_PANEL_ROWS : nb > 1 ? k->block_task_rows : k->task_rows;
    return unit > 1 ? (target + unit - 1) / unit * unit : target;
}

typedef struct products_job {
    llama2_session *s;
    const float *x;
    int nb;
    const l2_product *products;
    int n_products;
    int by_stripes;                   /* int8, one input: tasks of stripes (gemv_q8_stripes) */
    int chunk[MAX_PRODUCTS];          /* rows (stripes) per task of each product */
    int first_task[MAX_PRODUCTS + 1]; /* prefix sums of each product's task count */
} products_job;

/* Task t of an int8 product by stripes: stripes [t * chunk, (t + 1) * chunk),
 * or, as the last task, the rows after the stripes. */
static void run_stripe_task(const products_job *job, const l2_product *prod, int chunk, int t) {
    const tensor *w = prod->w;
    const l2_kernels *k = job->s->kernels;
    const int stripes = k->q8_stripes(w->rows), begin = t * chunk;
    if (begin < stripes) {
        const int end = begin + chunk < stripes ? begin + chunk : stripes;
        k->gemv_q8_stripes(prod->out, job->s->xq, job->s->xq_scales, w->q, w->packed, w->cols, w->group_size,
                           stripes, begin, end);
    } else {
        k->matmul_q8(prod->out, prod->out_stride, job->s->xq, job->s->xq_scales, 1, w->q, w->scales, w->cols,
                     w->group_size, k->stripe_rows * stripes, w->rows);
    }
}

/* Tasks of a product by stripes: runs of `chunk` stripes, plus one for the
 * rows after them if any. */
static int stripe_tasks(const l2_kernels *k, const tensor *w, int chunk) {
    const int stripes = k->q8_stripes(w->rows);
    return (stripes + chunk - 1) / chunk + (k->stripe_rows * stripes < w->rows);
}


/* Rows [begin, end) of a product of ggml Q8_0 blocks: each weight row's
 * dot with every input's Q8_0 blocks, the row read once for the block's
 * inputs. A row's output is one dot whatever the other inputs. */
static void run_block_rows(const products_job *job, const l2_product *prod, int begin, int end) {
    const tensor *w = prod->w;
    const l2_block_kernels *bk = job->s->model->block_kernels;
    const size_t n_blocks = (size_t)w->cols / L2_BLOCK;
    const l2_block_q8_0 *x = (const l2_block_q8_0 *)(const void *)job->s->xq;
    const l2_block_q8_0 *rows = (const l2_block_q8_0 *)w->blocks;
    int r = begin;
    /* Four rows at a time, against two inputs at a time (the same bits as
     * one at a time). */
    for (; r + 4 <= end; r += 4) {
        int b = 0;
        for (; b + 2 <= job->nb; b += 2) {
            float eight[8];
            bk->dot4x2_q8_0(eight, rows + (size_t)r * n_blocks, n_blocks, x + (size_t)b * n_blocks, n_blocks,
                            (int)n_blocks);
            for (int i = 0; i < 8; i++)
                prod->out[(size_t)(b + i / 4) * (size_t)prod->out_stride + (size_t)(r + i % 4)] = eight[i];
        }
        for (; b < job->nb; b++) {
            float four[4];
            bk->dot4_q8_0(four, rows + (size_t)r * n_blocks, n_blocks, x + (size_t)b * n_blocks, (int)n_blocks);
            for (int i = 0; i < 4; i++) prod->out[(size_t)b * (size_t)prod->out_stride + (size_t)(r + i)] = four[i];
        }
    }
    for (; r < end; r++)
        for (int b = 0; b < job->nb; b++)
            prod->out[(size_t)b * (size_t)prod->out_stride + (size_t)r] =
                bk->dot_q8_0(rows + (size_t)r * n_blocks, x + (size_t)b * n_blocks, (int)n_blocks);
}

/* Rows [begin, end) (begin a multiple of 16) of a Q4_0 product by panels,
 * every input of the block at once. */
static void run_panel_rows(const products_job *job, const l2_product *prod, int begin, int end) {
    const tensor *w = prod->w;
    const int n_blocks = w->cols / L2_BLOCK;
    job->s->model->block_kernels->q4_0_panels(prod->out, (size_t)prod->out_stride, w->packed, end, begin / L2_PANEL_ROWS,
                                              (end + L2_PANEL_ROWS - 1) / L2_PANEL_ROWS,
                                              (const l2_block_q8_0 *)(const void *)job->s->xq, job->s->xq_summaries,
                                              (size_t)n_blocks, job->nb, n_blocks);
}

/* The same for the K-quants, against each input's Q8_K blocks: by panels
 * where they were made, else four rows at a time. */
static void run_kquant_rows(const products_job *job, const l2_product *prod, int begin, int end) {
    const tensor *w = prod->w;
    const l2_kquant_kernels *kk = job->s->model->kquant_kernels;
    const size_t n_blocks = (size_t)w->cols / L2_SUPER_BLOCK, stride = (size_t)prod->out_stride;
    const l2_block_q8_K *x =
        (const l2_block_q8_K *)(const void *)(job->s->xq + l2_xq_k_offset(job->s->model, job->s->batch));
    if (is_panels(w)) {
        const int panel_begin = begin / L2_PANEL_ROWS, panel_end = (end + L2_PANEL_ROWS - 1) / L2_PANEL_ROWS;
        (w->type == LLAMA2_WEIGHTS_Q4_K ? kk->q4_K_panels : kk->q6_K_panels)(
            prod->out, stride, w->packed, end, panel_begin, panel_end, x, n_blocks, job->nb, (int)n_blocks);
        return;
    }
    const int q4 = w->type == LLAMA2_WEIGHTS_Q4_K, q5 = w->type == LLAMA2_WEIGHTS_Q5_K;
    const l2_block_q4_K *w4 = w->blocks;
    const l2_block_q5_K *w5 = w->blocks;
    const l2_block_q6_K *w6 = w->blocks;
    int r = begin;
    for (; r + 4 <= end; r += 4) {
        const size_t at = (size_t)r * n_blocks;
        int b = 0;
        for (; b + 2 <= job->nb; b += 2) {
            float eight[8];
            const l2_block_q8_K *xb = x + (size_t)b * n_blocks;
            if (q4)
                kk->dot4x2_q4_K(eight, w4 + at, n_blocks, xb, n_blocks, (int)n_blocks);
            else if (q5)
                kk->dot4x2_q5_K(eight, w5 + at, n_blocks, xb, n_blocks, (int)n_blocks);
            else
                kk->dot4x2_q6_K(eight, w6 + at, n_blocks, xb, n_blocks, (int)n_blocks);
            for (int i = 0; i < 8; i++) prod->out[(size_t)(b + i / 4) * stride + (size_t)(r + i % 4)] = eight[i];
        }
        for (; b < job->nb; b++) {
            float four[4];
            const l2_block_q8_K *xb = x + (size_t)b * n_blocks;
            if (q4)
                kk->dot4_q4_K(four, w4 + at, n_blocks, xb, (int)n_blocks);
            else if (q5)
                kk->dot4_q5_K(four, w5 + at, n_blocks, xb, (int)n_blocks);
            else
                kk->dot4_q6_K(four, w6 + at, n_blocks, xb, (int)n_blocks);
            for (int i = 0; i < 4; i++) prod->out[(size_t)b * stride + (size_t)(r + i)] = four[i];
        }
    }
    for (; r < end; r++)
        for (int b = 0; b < job->nb; b++) {
            const l2_block_q8_K *xb = x + (size_t)b * n_blocks;
            prod->out[(size_t)b * stride + (size_t)r] =
                q4   ? kk->dot_q4_K(w4 + (size_t)r * n_blocks, xb, (int)n_blocks)
                : q5 ? kk->dot_q5_K(w5 + (size_t)r * n_blocks, xb, (int)n_blocks)
                     : kk->dot_q6_K(w6 + (size_t)r * n_blocks, xb, (int)n_blocks);
        }
}

static void run_product_task(void *ctx, int task, int worker) {
    (void)worker;
    const products_job *job = ctx;
    int p = 0;
    while (task >= job->first_task[p + 1]) p++;
    const l2_product *prod = &job->products[p];
    if (job->by_stripes) {
        run_stripe_task(job, prod, job->chunk[p], task - job->first_task[p]);
        return;
    }
    const tensor *w = prod->w;
    int begin = (task - job->first_task[p]) * job->chunk[p];
    int end = begin + job->chunk[p] < w->rows ? begin + job->chunk[p] : w->rows;
    const l2_kernels *k = job->s->kernels;
    if (l2_weights_are_k(w->type)) {
        run_kquant_rows(job, prod, begin, end);
    } else if (is_panels(w)) {
        run_panel_rows(job, prod, begin, end);
    } else if (is_blocks(w)) {
        run_block_rows(job, prod, begin, end);
    } else if (w->type == LLAMA2_WEIGHTS_F32) {
        k->matmul_f32(prod->out, prod->out_stride, job->x, job->nb, w->f32, w->cols, begin, end);
    } else if (k->matmul_q8_packed && w->packed) {
        k->matmul_q8_packed(prod->out, prod->out_stride, job->s->xq, job->s->xq_scales, job->s->xq_sums, job->nb,
                            w->q, w->scales, w->packed, w->rows, w->cols, w->group_size, begin, end);
    } else {
        k->matmul_q8(prod->out, prod->out_stride, job->s->xq, job->s->xq_scales, job->nb, w->q, w->scales, w->cols,
                     w->group_size, begin, end);
    }
}

/* Quantizing the inputs of a block, one task per input. */
typedef struct quantize_job {
    llama2_session *s;
    const float *x;
    int cols, gs;
    int q8_0, q8_k; /* ggml blocks (gs 0): which forms the products take */
} quantize_job;

static void run_quantize_task(void *ctx, int b, int worker) {
    (void)worker;
    const quantize_job *job = ctx;
    const size_t cols = (size_t)job->cols;
    if (job->gs == 0) { /* ggml blocks: Q8_0 (and its summaries), Q8_K for the K-quants */
        llama2_session *s = job->s;
        if (job->q8_0) {
            l2_block_q8_0 *y = (l2_block_q8_0 *)(void *)s->xq + (size_t)b * (cols / L2_BLOCK);
            s->model->block_kernels->quantize_q8_0(y, job->x + (size_t)b * cols, job->cols);
            l2_block_q8_0_summarize(s->xq_summaries + (size_t)b * (cols / L2_BLOCK), y, job->cols / L2_BLOCK);
        }
        if (job->q8_k) {
            l2_block_q8_K *y = (l2_block_q8_K *)(void *)(s->xq + l2_xq_k_offset(s->model, s->batch)) +
                               (size_t)b * (cols / L2_SUPER_BLOCK);
            s->model->kquant_kernels->quantize_q8_K(y, job->x + (size_t)b * cols, job->cols);
        }
        return;
    }
    job->s->kernels->quantize_q8(job->s->xq + (size_t)b * cols, job->s->xq_scales + (size_t)b * (cols / (size_t)job->gs),
                                 job->x + (size_t)b * cols, job->cols, job->gs);
    if (job->s->xq_sums)
        l2_q8_group_sums(job->s->xq_sums + (size_t)b * (cols / (size_t)job->gs), job->s->xq + (size_t)b * cols,
                         job->cols, job->gs);
}

llama2_status l2_session_products(llama2_session *s, const float *x, int nb, const l2_product *products,
                                  int n_products, llama2_error *err) {
    if (n_products > MAX_PRODUCTS) {
        llama2_status st = l2_session_products(s, x, nb, products, MAX_PRODUCTS, err);
        if (st != LLAMA2_OK) return st;
        return l2_session_products(s, x, nb, products + MAX_PRODUCTS, n_products - MAX_PRODUCTS, err);
    }
    if (s->backend->products) {
        llama2_error berr = {0};
        l2_backend_result r = s->backend->products(s->backend_state, s, x, nb, products, n_products, &berr);
        if (r == L2_BACKEND_DONE) return LLAMA2_OK;
        if (r == L2_BACKEND_FAILED) return l2_backend_failure(&berr, err);
    }
    products_job job = {.s = s, .x = x, .nb = nb, .products = products, .n_products = n_products};
    const tensor *w0 = products[0].w;
    int blocks = 0, q8_0_blocks = 0, k_blocks = 0; /* a file may mix them in one section */
    for (int p = 0; p < n_products; p++) {
        const int k = l2_weights_are_k(products[p].w->type);
        blocks |= is_blocks(products[p].w);
        k_blocks |= k;
        q8_0_blocks |= is_blocks(products[p].w) && !k;
    }
    if (w0->type == LLAMA2_WEIGHTS_Q8_0 || blocks) {
        /* runq.c quantizes the shared input once before its products; a
         * block's inputs are quantized in parallel (each input's bytes do
         * not depend on who quantizes it). Products of ggml blocks take
         * them as Q8_0 blocks, as llama.cpp does. */
        quantize_job qj = {s, x, w0->cols, blocks ? 0 : w0->group_size, q8_0_blocks, k_blocks};
        if (nb >= 4 && s->n_workers > 1) {
            l2_pool_run(s->pool, nb, run_quantize_task, &qj);
        } else {
            for (int b = 0; b < nb; b++) run_quantize_task(&qj, b, 0);
        }
    }
    job.by_stripes = w0->type == LLAMA2_WEIGHTS_Q8_0 && nb == 1 && s->kernels->gemv_q8_stripes != NULL;
    for (int p = 0; p < n_products; p++)
        if (!products[p].w->packed) job.by_stripes = 0;
    job.first_task[0] = 0;
    for (int p = 0; p < n_products; p++) {
        int rows = products[p].w->rows;
        job.chunk[p] = rows_per_task(s->kernels, products[p].w, s->n_workers, nb);
        if (job.by_stripes) {
            job.chunk[p] = (job.chunk[p] + s->kernels->stripe_rows - 1) / s->kernels->stripe_rows;
            job.first_task[p + 1] = job.first_task[p] + stripe_tasks(s->kernels, products[p].w, job.chunk[p]);
        } else {
            job.first_task[p + 1] = job.first_task[p] + (rows + job.chunk[p] - 1) / job.chunk[p];
        }
    }
    l2_pool_run(s->pool, job.first_task[n_products], run_product_task, &job);
    return LLAMA2_OK;
}
