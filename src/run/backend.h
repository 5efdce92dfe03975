/*
 * Backends: where the work of a session runs. The CPU kernels are the
 * default and the reference; a backend may take over the weight products
 * (BLAS) or whole blocks of the forward pass (CUDA). For each piece of work
 * it says whether it did it, declined it (the CPU then does it) or failed
 * (the call returns the failure's error).
 *
 * Adding a device is one new file defining an l2_backend_ops and one line in
 * backend.c's table.
 */
#ifndef LLAMA2_BACKEND_H
#define LLAMA2_BACKEND_H

#include "llama2.h"
#include "session.h"

typedef enum l2_backend_result {
    L2_BACKEND_DONE,     /* the work is done */
    L2_BACKEND_DECLINED, /* not handled: the CPU does it */
    L2_BACKEND_FAILED,   /* handled and failed: err says why */
} l2_backend_result;

typedef struct l2_backend_ops {
    const char *name;
    /* Prepares the backend for a session (uploads weights, ...). */
    llama2_status (*create)(llama2_session *s, void **state, llama2_error *err);
    void (*destroy)(void *state);
    /* Products that share the input x ([nb][cols]). */
    l2_backend_result (*products)(void *state, llama2_session *s, const float *x, int nb,
                                  const l2_product *products, int n_products, llama2_error *err);
    /* A whole block (embedding to logits): rows[0..n) (checked), the
     * logits of the rows that ask into `logits`, vocab_size floats each in
     * row order. The session's host KV cache must hold the block's keys and
     * values afterwards (a later block may run on the CPU). */
    l2_backend_result (*forward_block)(void *state, llama2_session *s, const llama2_batch_row *rows, int n,
                                       float *logits, llama2_error *err);
    /* Copies the first n cached positions of sequence src into dst in the
     * backend's own cache (the session copies the host cache). */
    l2_backend_result (*copy_sequence)(void *state, llama2_session *s, int dst, int src, int n,
                                       llama2_error *err);
} l2_backend_ops;

/* The compiled-in backend with this name, or NULL. */
const l2_backend_ops *l2_backend_find(const char *name);

/* A backend's failure (its error in from) as the call's: copied into err,
 * with a status that is never LLAMA2_OK; returns that status. */
llama2_status l2_backend_failure(const llama2_error *from, llama2_error *err);

#ifdef LLAMA2_WITH_BLAS
extern const l2_backend_ops l2_backend_blas;
#endif
#ifdef LLAMA2_WITH_CUDA
extern const l2_backend_ops l2_backend_cuda;
#endif

#endif
