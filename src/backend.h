/*
 * Backends: where the work of a session runs. The CPU kernels are the
 * default and the reference; a backend may take over the weight products
 * (BLAS) or whole blocks of the forward pass (CUDA), and says no (returns 0)
 * for anything it does not handle, which then runs on the CPU.
 *
 * Adding a device is one new file defining an l2_backend_ops and one line in
 * backend.c's table.
 */
#ifndef LLAMA2_BACKEND_H
#define LLAMA2_BACKEND_H

#include "llama2.h"
#include "session.h"

typedef struct l2_backend_ops {
    const char *name;
    /* Prepares the backend for a session (uploads weights, ...). */
    llama2_status (*create)(llama2_session *s, void **state, llama2_error *err);
    void (*destroy)(void *state);
    /* Products that share the input x ([nb][cols]); 0: not handled. */
    int (*products)(void *state, llama2_session *s, const float *x, int nb, const l2_product *products,
                    int n_products);
    /* A whole block (embedding to logits of its last n_logits positions,
     * into s->logits); 0: not handled. */
    int (*forward_block)(void *state, llama2_session *s, const int *tokens, int n, int pos0, int n_logits);
} l2_backend_ops;

/* The compiled-in backend with this name, or NULL. */
const l2_backend_ops *l2_backend_find(const char *name);

#ifdef LLAMA2_WITH_BLAS
extern const l2_backend_ops l2_backend_blas;
#endif
#ifdef LLAMA2_WITH_CUDA
extern const l2_backend_ops l2_backend_cuda;
#endif

#endif
