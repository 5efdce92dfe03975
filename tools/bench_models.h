/*
 * llama2-bench: the model shapes it measures, their sizes, and the cache
 * folder of random-weight models written for them.
 */
#ifndef LLAMA2_BENCH_MODELS_H
#define LLAMA2_BENCH_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "bench_options.h"
#include "llama2.h"

typedef struct shape {
    const char *name;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, seq_len, shared_classifier;
    int vocab_size;
    int by_default; /* measured without --shapes */
} shape;

extern const shape SHAPES[MAX_SHAPES];
extern const char *const TYPE_NAMES[N_TYPES];

/* The configuration of shape s with weights of `type` (TYPE_F32, TYPE_Q8). */
llama2_config shape_config(const shape *s, int type);

/* The size of the model file. */
uint64_t file_bytes(const llama2_config *c);

/* Weight bytes read for one generated token. */
uint64_t bytes_per_token(const llama2_config *c);

/* The cache files of the selection, and which of them can be measured. */
typedef struct model_set {
    char paths[MAX_SHAPES][N_TYPES][4096];
    int usable[MAX_SHAPES][N_TYPES];
} model_set;

/* The cache folder of the models unless --models says otherwise:
 * $XDG_CACHE_HOME/llama2, else ~/.cache/llama2, into buf. */
const char *default_models_dir(const bench_context *ctx, char *buf, size_t size);

/* Says where the models are, creates the options' models_dir (and the
 * folders above it) and writes every model of the selection that is not
 * there yet. */
void prepare_models(const bench_context *ctx, model_set *m);

#endif
