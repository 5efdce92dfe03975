/*
 * Random-weight models for tests and benchmarks: a source of tensors for
 * the checkpoint writer that draws each tensor from its own random stream.
 */
#include <math.h>

#include "checkpoint_writer.h"
#include "platform/checks.h"

/* SplitMix64 (Steele, Lea, Flood): a 64-bit counter through a mixer. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t next_random(uint64_t *state) { return mix64(*state += 0x9E3779B97F4A7C15ull); }

typedef struct random_source {
    const llama2_config *config;
    uint64_t seed;
    uint64_t state;       /* the stream of the tensor being written */
    float center, spread; /* its values: uniform in [center - spread, center + spread) */
} random_source;

/* Each tensor's stream is numbered kind + 1, as random models have always
 * been (so a seed gives the weights it gave before the format table). */
_Static_assert(L2_TENSOR_TOKEN_EMBEDDING == 0 && L2_TENSOR_CLASSIFIER == 11, "random streams are numbered by kind");

static llama2_status read_random_rows(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows,
                                      float *out, llama2_error *err) {
    random_source *r = user;
    size_t rows, cols;
    l2_tensor_shape(r->config, kind, &rows, &cols);
    if (row == 0) {
        r->state = mix64(r->seed ^ mix64(((uint64_t)(kind + 1) << 32) | (uint32_t)layer));
        /* Norms near 1; matrices scaled by their fan-in (the columns). */
        r->center = l2_tensor_table[kind].matrix ? 0.0f : 1.0f;
        r->spread = l2_tensor_table[kind].matrix ? sqrtf(3.0f / (float)cols) : 0.1f;
    }
    for (size_t i = 0; i < n_rows * cols; i++) {
        /* 24 random bits as an exact float in [-1, 1). */
        float u = (float)(int32_t)(next_random(&r->state) >> 40) * (1.0f / 8388608.0f) - 1.0f;
        out[i] = r->center + u * r->spread;
    }
    return LLAMA2_OK;
}

llama2_config l2_random_model_config(int dim, int hidden_dim, int n_layers, int n_heads, int n_kv_heads,
                                     int vocab_size, int seq_len, int shared_classifier, int file_version,
                                     int group_size) {
    llama2_config c = {0};
    c.dim = dim;
    c.hidden_dim = hidden_dim;
    c.n_layers = n_layers;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.vocab_size = vocab_size;
    c.seq_len = seq_len;
    c.shared_classifier = shared_classifier;
    c.file_version = file_version;
    c.group_size = file_version == 2 ? (group_size != 0 ? group_size : l2_default_group_size(dim, hidden_dim)) : 0;
    c.weight_type = file_version == 2 ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32;
    c.rope_theta = L2_DEFAULT_ROPE_THETA;
    c.norm_eps = L2_DEFAULT_NORM_EPS;
    return c;
}

llama2_status l2_write_random_model(const char *path, const llama2_config *c, uint64_t seed, unsigned output_flags,
                                    llama2_error *err) {
    if (!path || !c) return l2_fail(err, LLAMA2_E_INVALID, "no path or no config");
    random_source r = {c, seed, 0, 0.0f, 0.0f};
    const l2_tensor_source source = {&r, read_random_rows, 0, NULL};
    return l2_checkpoint_write(path, c, &source, output_flags, err);
}
