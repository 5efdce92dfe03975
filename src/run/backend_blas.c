/*
 * The CBLAS backend: fp32 weight products as sgemv (one row) and sgemm (a
 * block) of OpenBLAS, or of Apple's Accelerate on macOS. int8 weights and
 * everything else stay on the CPU kernels. The library picks its own order
 * of summation, which may depend on the block: a row's logits can differ in
 * the last bits between batches (the cpu backend's do not).
 */
#ifdef LLAMA2_WITH_BLAS

#ifdef __APPLE__
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

#include "backend.h"
#include "platform/threadpool.h"

static llama2_status blas_create(llama2_session *s, void **state, llama2_error *err) {
    (void)err;
#if defined(OPENBLAS_VERSION)
    /* Match the session's thread count; OpenBLAS keeps its own threads. */
    openblas_set_num_threads(llama2_threadpool_size(s->pool));
#else
    (void)s;
#endif
    *state = NULL;
    return LLAMA2_OK;
}

static l2_backend_result blas_products(void *state, llama2_session *s, const float *x, int nb,
                                       const l2_product *products, int n_products, llama2_error *err) {
    (void)state;
    (void)s;
    (void)err;
    for (int p = 0; p < n_products; p++)
        if (products[p].w->type != LLAMA2_WEIGHTS_F32) return L2_BACKEND_DECLINED;
    for (int p = 0; p < n_products; p++) {
        const tensor *w = products[p].w;
        if (nb == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, w->rows, w->cols, 1.0f, w->f32, w->cols, x, 1, 0.0f,
                        products[p].out, 1);
        else /* out[nb][rows] = x[nb][cols] . W[rows][cols]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, w->rows, w->cols, 1.0f, x, w->cols, w->f32,
                        w->cols, 0.0f, products[p].out, products[p].out_stride);
    }
    return L2_BACKEND_DONE;
}

const l2_backend_ops l2_backend_blas = {
    .name = "blas",
    .create = blas_create,
    .products = blas_products,
};

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int l2_backend_blas_not_built;
#endif
