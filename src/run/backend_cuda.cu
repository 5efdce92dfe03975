/*
 * The CUDA backend: the whole forward pass of a block on one NVIDIA GPU, in
 * the same steps as transformer.c (embed; per layer rmsnorm, products, rope,
 * store_kv, attention, product, residual_add, then rmsnorm, products,
 * swiglu, product, residual_add; the final norm and the classifier).
 *
 * create() uploads every weight once (fp32 tensors as they are; Q8_0 tensors
 * as int8 values plus their fp32 group scales), allocates the device KV
 * cache (the session's layout: [sequence][layer][position][kv_dim]), the
 * activations of a block of s->batch rows, the RoPE tables (copied from the
 * session, so the angles are the CPU's bits) and a logits buffer.
 * forward_block() then runs embedding to logits on the device and copies
 * back only the logits that were asked for, plus the block's new rows of
 * the KV cache (see "Failures" below for why).
 *
 * Products: fp32 weights go to cuBLAS (sgemv for one position, sgemm for a
 * prompt block, plain fp32 math: no TF32, whose 10-bit inputs would break
 * parity with the CPU); Q8_0 weights go to matmul_q8_kernel, which follows
 * llama2.c's runq.c: the input is quantized per group (max|x| / 127, round
 * half away from zero), each group's dot product is exact integer
 * arithmetic, scaled by the weight scale then the activation scale and
 * summed in fp32 (in a warp's tree order rather than runq.c's sequential
 * order). cuBLAS picks its own order of summation for sgemv and sgemm, so
 * unlike the CPU's an fp32 row's logits may differ in the last bits between
 * batches.
 *
 * Generation (blocks of one row) replays a CUDA graph captured once per
 * shape (with and without logits): every kernel reads the rows (position,
 * sequence, token) from a small device buffer (`params`) that is refreshed
 * by one cudaMemcpyAsync before each launch, and every pointer in the graph
 * is fixed for the session, so the graph never needs updating. cuBLAS gets a
 * workspace of our own so that it allocates nothing while being captured.
 *
 * Failures. A block the backend declines (more rows than its buffers, after
 * a failure) is computed by the CPU path, which reads the session's host KV
 * cache, so after every successful block the backend mirrors the block's
 * new K and V rows into the host cache (one strided copy per run of
 * consecutive positions, into pinned memory when the host cache could be
 * registered). On the first failed CUDA or cuBLAS call the backend disables
 * itself for the rest of the session and reports the failure: the call
 * returns it, the rows' sequences keep only what they had cached before,
 * and later calls run on the CPU over a host cache that holds every earlier
 * position. The device is not retried, since many CUDA errors leave the
 * context unusable.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend.h"
#include "platform/checks.h"
}

#define THREADS 256     /* threads per block of every kernel */
#define ATT_THREADS 256 /* threads per (position, head) block of attention */
#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)

/* ============================================================== kernels */

static __device__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

static __device__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* The sum (or the maximum) of v over the thread block, returned to every
 * thread. blockDim.x must be a multiple of 32. */
static __device__ float block_reduce(float v, bool take_max) {
    __shared__ float partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = take_max ? warp_max(v) : warp_sum(v);
    __syncthreads(); /* the previous call's readers are done with partial */
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < n_warps ? partial[lane] : (take_max ? -INFINITY : 0.0f);
        w = take_max ? warp_max(w) : warp_sum(w);
        if (lane == 0) partial[0] = w;
    }
    __syncthreads();
    return partial[0];
}

/* The rows of a block in `params`: row b's position, sequence and token at
 * params[3 b], [3 b + 1], [3 b + 2]; after the batch's rows, the rows whose
 * logits are asked for, in order. */
#define ROW_POSITION(params, b) ((params)[3 * (b)])
#define ROW_SEQUENCE(params, b) ((params)[3 * (b) + 1])
#define ROW_TOKEN(params, b) ((params)[3 * (b) + 2])

/* Token embedding: row b's token's row of the table into x[b] (blockIdx.x =
 * b). A Q8_0 table is dequantized: value times its group's scale. */
static __global__ void embed_kernel(float *x, const float *table_f32, const int8_t *table_q, const float *table_scales,
                                    int group_size, const int *params, int dim) {
    const int b = blockIdx.x;
    const size_t row = (size_t)ROW_TOKEN(params, b) * (size_t)dim;
    float *out = x + (size_t)b * (size_t)dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const size_t at = row + (size_t)i;
        out[i] = table_f32 ? table_f32[at] : __fmul_rn((float)table_q[at], table_scales[at / (size_t)group_size]);
    }
}

/* RMSNorm (https://arxiv.org/abs/1910.07467): out = weight * x / sqrt(mean(x^2)
 * + eps), one row per thread block; x's row is `rows[blockIdx.x]` when rows
 * is not NULL (the classifier's rows), else blockIdx.x. */
static __global__ void rmsnorm_kernel(float *out, const float *x, const float *weight, int n, float eps,
                                      const int *rows) {
    const int src = rows ? rows[blockIdx.x] : (int)blockIdx.x;
    const float *xr = x + (size_t)src * (size_t)n;
    float *o = out + (size_t)blockIdx.x * (size_t)n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_reduce(ss, false);
    ss /= (float)n;
    ss += eps;
    const float inv = 1.0f / sqrtf(ss);
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = __fmul_rn(weight[i], __fmul_rn(inv, xr[i]));
}

/* llama2.c's activation quantization: one thread per group of group_size
 * values; scale = max|x| / 127, q = round(x / scale), half away from zero.
 * Plain IEEE division and roundf: the same bits as the CPU for the same x. */
static __global__ void quantize_q8_kernel(int8_t *xq, float *xs, const float *x, int n_groups, int group_size) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= n_groups) return;
    const size_t first = (size_t)g * (size_t)group_size;
    float wmax = 0.0f;
    for (int i = 0; i < group_size; i++) {
        const float v = fabsf(x[first + i]);
        if (v > wmax) wmax = v;
    }
    const float scale = wmax / 127.0f;
    xs[g] = scale;
    for (int i = 0; i < group_size; i++) {
        const float v = scale != 0.0f ? x[first + i] / scale : 0.0f;
        xq[first + i] = (int8_t)roundf(v);
    }
}

/* The exact integer dot product of one group: 16 bytes at a time when the
 * group size allows (the rows are then 16-byte aligned), else 4, else 1. */
static __device__ int group_dot(const int8_t *a, const int8_t *b, int group_size) {
    int sum = 0;
    if (group_size % 16 == 0) {
        const int4 *a16 = reinterpret_cast<const int4 *>(a), *b16 = reinterpret_cast<const int4 *>(b);
        for (int k = 0; k < group_size / 16; k++) {
            const int4 u = a16[k], v = b16[k];
            sum = __dp4a(u.x, v.x, sum);
            sum = __dp4a(u.y, v.y, sum);
            sum = __dp4a(u.z, v.z, sum);
            sum = __dp4a(u.w, v.w, sum);
        }
    } else if (group_size % 4 == 0) {
        const int *a4 = reinterpret_cast<const int *>(a), *b4 = reinterpret_cast<const int *>(b);
        for (int k = 0; k < group_size / 4; k++) sum = __dp4a(a4[k], b4[k], sum);
    } else {
        for (int k = 0; k < group_size; k++) sum += (int)a[k] * (int)b[k];
    }
    return sum;
}

/* Q8_0 product, one warp per weight row r: for each of the nb quantized
 * inputs, out[b * out_stride + r] = sum over groups of (int dot) * w_scale *
 * x_scale. The lanes take the groups in turn. */
static __global__ void __launch_bounds__(THREADS)
    matmul_q8_kernel(float *out, int out_stride, const int8_t *xq, const float *xs, int nb, const int8_t *w,
                     const float *ws, int rows, int cols, int group_size) {
    const int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows) return;
    const int groups = cols / group_size;
    const int8_t *wr = w + (size_t)r * (size_t)cols;
    const float *wsr = ws + (size_t)r * (size_t)groups;
    for (int b = 0; b < nb; b++) {
        const int8_t *xb = xq + (size_t)b * (size_t)cols;
        const float *xsb = xs + (size_t)b * (size_t)groups;
        float val = 0.0f;
        for (int g = lane; g < groups; g += 32) {
            const int ival = group_dot(wr + (size_t)g * group_size, xb + (size_t)g * group_size, group_size);
            /* runq.c's order, unfused: ((float)ival * w_scale) * x_scale. */
            val = __fadd_rn(val, __fmul_rn(__fmul_rn((float)ival, wsr[g]), xsb[g]));
        }
        val = warp_sum(val);
        if (lane == 0) out[(size_t)b * (size_t)out_stride + r] = val;
    }
}

static __device__ void rotate_pair(float *v, float fcr, float fci) {
    const float v0 = v[0], v1 = v[1];
    v[0] = __fsub_rn(__fmul_rn(v0, fcr), __fmul_rn(v1, fci));
    v[1] = __fadd_rn(__fmul_rn(v0, fci), __fmul_rn(v1, fcr));
}

/* Rotary position embedding (https://arxiv.org/abs/2104.09864): rotates each
 * adjacent pair (v[2j], v[2j+1]) of every head of q and k by the angle of
 * (position, j), from the session's tables; blockIdx.x = b. */
static __global__ void rope_kernel(float *q, float *k, const float *cos_table, const float *sin_table,
                                   const int *params, int dim, int kv_dim, int head_size) {
    const int b = blockIdx.x, half = head_size / 2;
    const size_t pos = (size_t)ROW_POSITION(params, b);
    const float *c = cos_table + pos * (size_t)half, *sn = sin_table + pos * (size_t)half;
    float *qb = q + (size_t)b * (size_t)dim, *kb = k + (size_t)b * (size_t)kv_dim;
    for (int i = 2 * threadIdx.x; i < dim; i += 2 * blockDim.x) {
        const int j = (i % head_size) / 2;
        rotate_pair(qb + i, c[j], sn[j]);
    }
    for (int i = 2 * threadIdx.x; i < kv_dim; i += 2 * blockDim.x) {
        const int j = (i % head_size) / 2;
        rotate_pair(kb + i, c[j], sn[j]);
    }
}

/* Where the cached row of (sequence, layer, position) starts (the session's
 * l2_cache_row). */
static __device__ size_t cache_row(int sequence, int layer, int position, int n_layers, int context, int kv_dim) {
    return (((size_t)sequence * (size_t)n_layers + (size_t)layer) * (size_t)context + (size_t)position) *
           (size_t)kv_dim;
}

/* Each row's new key and value into its sequence's cache at its position
 * (blockIdx.x = b). */
static __global__ void store_kv_kernel(float *key_cache, float *value_cache, const float *k, const float *v,
                                       const int *params, int layer, int n_layers, int context, int kv_dim) {
    const int b = blockIdx.x;
    const size_t row = cache_row(ROW_SEQUENCE(params, b), layer, ROW_POSITION(params, b), n_layers, context, kv_dim);
    const size_t src = (size_t)b * (size_t)kv_dim;
    for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
        key_cache[row + i] = k[src + i];
        value_cache[row + i] = v[src + i];
    }
}

/* Grouped-query attention (https://arxiv.org/abs/2305.13245), one thread
 * block per (head h = blockIdx.x, row b = blockIdx.y): causal softmax (with
 * max subtraction) of q.k / sqrt(head_size) over the row's sequence's
 * cached positions 0..pos, then the weighted sum of their values. The
 * n_heads / n_kv_heads query heads of a group share one KV head. scores:
 * [n][n_heads][context]. */
static __global__ void __launch_bounds__(ATT_THREADS)
    attention_kernel(float *out, const float *q, const float *key_cache, const float *value_cache, float *scores,
                     const int *params, int layer, int n_layers, int dim, int kv_dim, int head_size, int kv_mul,
                     int context) {
    __shared__ float partial[ATT_THREADS];
    const int h = blockIdx.x, b = blockIdx.y, n_heads = gridDim.x;
    const int pos = ROW_POSITION(params, b);
    const size_t layer_start = cache_row(ROW_SEQUENCE(params, b), layer, 0, n_layers, context, kv_dim);
    const float *key_layer = key_cache + layer_start, *value_layer = value_cache + layer_start;
    const float *qh = q + (size_t)b * (size_t)dim + (size_t)h * (size_t)head_size;
    const size_t kv_offset = (size_t)(h / kv_mul) * (size_t)head_size;
    float *att = scores + ((size_t)b * (size_t)n_heads + (size_t)h) * (size_t)context;
    const float scale = sqrtf((float)head_size);

    /* Scores: one thread per cached position (q is read by the whole warp at
     * once, a broadcast). */
    for (int t = threadIdx.x; t <= pos; t += blockDim.x) {
        const float *key = key_layer + (size_t)t * (size_t)kv_dim + kv_offset;
        float dot = 0.0f;
        for (int i = 0; i < head_size; i++) dot += qh[i] * key[i];
        att[t] = dot / scale;
    }

    /* Softmax over 0..pos. */
    float max = -INFINITY;
    for (int t = threadIdx.x; t <= pos; t += blockDim.x) max = fmaxf(max, att[t]);
    max = block_reduce(max, true);
    float sum = 0.0f;
    for (int t = threadIdx.x; t <= pos; t += blockDim.x) {
        const float e = expf(att[t] - max);
        att[t] = e;
        sum += e;
    }
    sum = block_reduce(sum, false);
    for (int t = threadIdx.x; t <= pos; t += blockDim.x) att[t] /= sum;
    __syncthreads();

    /* Weighted values: `lanes` threads across the head's dimensions, `groups`
     * of them splitting the positions, then the groups' partial sums added. */
    const int lanes = head_size < (int)blockDim.x ? head_size : (int)blockDim.x;
    const int groups = blockDim.x / lanes;
    const int g = threadIdx.x / lanes, li = threadIdx.x % lanes;
    float *o = out + (size_t)b * (size_t)dim + (size_t)h * (size_t)head_size;
    for (int i0 = 0; i0 < head_size; i0 += lanes) {
        const int i = i0 + li;
        float acc = 0.0f;
        if (g < groups && i < head_size)
            for (int t = g; t <= pos; t += groups) acc += att[t] * value_layer[(size_t)t * (size_t)kv_dim + kv_offset + i];
        partial[threadIdx.x] = acc;
        __syncthreads();
        if (g == 0 && i < head_size) {
            float total = 0.0f;
            for (int k = 0; k < groups; k++) total += partial[k * lanes + li];
            o[i] = total;
        }
        __syncthreads();
    }
}

/* The residual connection: x += delta, element by element. */
static __global__ void residual_add_kernel(float *x, const float *delta, int count) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) x[i] = __fadd_rn(x[i], delta[i]);
}

/* SwiGLU (https://arxiv.org/abs/2002.05202): gate = silu(gate) * up, with
 * silu(v) = v / (1 + exp(-v)), element by element. */
static __global__ void swiglu_kernel(float *gate, const float *up, int count) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float v = gate[i];
    v = __fmul_rn(v, 1.0f / (1.0f + expf(-v)));
    gate[i] = __fmul_rn(v, up[i]);
}

/* ================================================================ state */

typedef struct dev_tensor {
    llama2_weight_type type;
    int rows, cols, group_size;
    float *f32;     /* LLAMA2_WEIGHTS_F32 */
    int8_t *q;      /* LLAMA2_WEIGHTS_Q8_0 */
    float *scales;  /* LLAMA2_WEIGHTS_Q8_0 */
} dev_tensor;

typedef struct dev_layer {
    float *attention_norm, *ffn_norm;
    dev_tensor wq, wk, wv, wo, w1, w2, w3;
} dev_layer;

typedef struct cuda_state {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    int have_stream, have_blas;
    int out_of_memory; /* the failure was an allocation */
    int disabled;      /* a failure: every later block runs on the CPU */
    char error[200];   /* what failed */

    void **allocs; /* every cudaMalloc, freed by destroy */
    int n_allocs, cap_allocs;

    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_size, kv_dim, vocab, context, batch;
    float norm_eps;
    dev_tensor embedding, classifier;
    dev_layer *layers;
    float *final_norm;
    float *key_cache, *value_cache; /* [n_sequences][n_layers][context][kv_dim] */
    size_t cache_floats;
    float *rope_cos, *rope_sin;     /* [context][head_size / 2] */
    float *x, *xb, *xb2, *q, *k, *v; /* [batch][dim or kv_dim] */
    float *hb, *hb2;                /* [batch][hidden_dim] */
    float *att;                     /* [batch][n_heads][context] */
    float *logits;                  /* [batch][vocab] */
    int8_t *xq;                     /* [batch][max(dim, hidden_dim)] */
    float *xs;                      /* its group scales */
    void *workspace;                /* cuBLAS's */
    int *params;                    /* device [4 * batch]: the rows, then the logits rows (ROW_POSITION) */
    int *host_params;               /* pinned staging for params */

    cudaGraphExec_t graph[2]; /* one row, without / with logits */
    int graph_state[2];       /* 0: not captured yet, 1: ready, -1: capture failed (run eagerly) */

    float *host_keys, *host_values; /* the session's cache, mirrored after each block */
    int registered;                 /* 1: host_keys/host_values are page-locked by us */
} cuda_state;

static int fail_cuda(cuda_state *st, const char *what, cudaError_t e) {
    snprintf(st->error, sizeof st->error, "%s: %s", what, cudaGetErrorString(e));
    if (e == cudaErrorMemoryAllocation) st->out_of_memory = 1;
    return 0;
}

static int fail_blas(cuda_state *st, const char *what, cublasStatus_t e) {
    snprintf(st->error, sizeof st->error, "%s: %s", what, cublasGetStatusString(e));
    if (e == CUBLAS_STATUS_ALLOC_FAILED) st->out_of_memory = 1;
    return 0;
}

/* Each returns 0 from the enclosing function (after recording why) when the
 * call fails. */
#define CUDA_TRY(st, call)                                                   \
    do {                                                                     \
        cudaError_t e_ = (call);                                             \
        if (e_ != cudaSuccess) return fail_cuda((st), #call, e_);            \
    } while (0)
#define BLAS_TRY(st, call)                                                   \
    do {                                                                     \
        cublasStatus_t b_ = (call);                                          \
        if (b_ != CUBLAS_STATUS_SUCCESS) return fail_blas((st), #call, b_);  \
    } while (0)

/* After a kernel launch: a bad configuration shows here. */
static int launched(cuda_state *st, const char *kernel) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? 1 : fail_cuda(st, kernel, e);
}

static unsigned blocks_for(size_t count) { return (unsigned)((count + THREADS - 1) / THREADS); }

/* ============================================================== uploads */

static int dev_alloc(cuda_state *st, void **out, size_t bytes) {
    *out = NULL;
    if (st->n_allocs == st->cap_allocs) {
        int cap = st->cap_allocs ? st->cap_allocs * 2 : 64;
        void **bigger = (void **)realloc(st->allocs, (size_t)cap * sizeof *bigger);
        if (!bigger) {
            snprintf(st->error, sizeof st->error, "out of host memory");
            st->out_of_memory = 1;
            return 0;
        }
        st->allocs = bigger;
        st->cap_allocs = cap;
    }
    if (bytes == 0) bytes = 1;
    CUDA_TRY(st, cudaMalloc(out, bytes));
    st->allocs[st->n_allocs++] = *out;
    return 1;
}

/* count values of T on the device, zero-filled. */
template <typename T> static int dev_zeros(cuda_state *st, T **out, size_t count) {
    void *p;
    size_t bytes;
    if (!l2_mul_size(count, sizeof(T), &bytes)) {
        snprintf(st->error, sizeof st->error, "a device buffer's size overflows");
        st->out_of_memory = 1;
        return 0;
    }
    if (!dev_alloc(st, &p, bytes)) return 0;
    CUDA_TRY(st, cudaMemset(p, 0, bytes));
    *out = static_cast<T *>(p);
    return 1;
}

/* A copy of host[0..count) on the device. */
template <typename T> static int dev_upload(cuda_state *st, T **out, const T *host, size_t count) {
    void *p;
    if (!dev_alloc(st, &p, count * sizeof(T))) return 0;
    CUDA_TRY(st, cudaMemcpy(p, host, count * sizeof(T), cudaMemcpyHostToDevice));
    *out = static_cast<T *>(p);
    return 1;
}

static int upload_tensor(cuda_state *st, dev_tensor *d, const tensor *t) {
    memset(d, 0, sizeof *d);
    d->type = t->type;
    d->rows = t->rows;
    d->cols = t->cols;
    d->group_size = t->group_size;
    const size_t n = (size_t)t->rows * (size_t)t->cols;
    if (t->type == LLAMA2_WEIGHTS_F32) return dev_upload(st, &d->f32, t->f32, n);
    return dev_upload(st, &d->q, t->q, n) && dev_upload(st, &d->scales, t->scales, n / (size_t)t->group_size);
}

/* Everything the forward pass needs, on the device. */
static int setup(cuda_state *st, llama2_session *s) {
    const llama2_model *m = s->model;
    const llama2_config *c = &m->config;
    st->dim = c->dim;
    st->hidden_dim = c->hidden_dim;
    st->n_layers = c->n_layers;
    st->n_heads = c->n_heads;
    st->n_kv_heads = c->n_kv_heads;
    st->head_size = m->head_size;
    st->kv_dim = m->kv_dim;
    st->vocab = c->vocab_size;
    st->context = s->context;
    st->norm_eps = c->norm_eps;
    st->batch = s->batch;
    if (c->weight_type != LLAMA2_WEIGHTS_F32 && c->weight_type != LLAMA2_WEIGHTS_Q8_0) {
        /* GGUF's ggml blocks (Q4_0, Q8_0) run on the CPU only. */
        snprintf(st->error, sizeof st->error, "GGUF Q4_0 and Q8_0 blocks are not supported (use the cpu backend)");
        return 0;
    }
    if (st->batch > 65535) { /* attention's grid has one row of blocks per position */
        snprintf(st->error, sizeof st->error, "a batch of %d positions is more than 65535", st->batch);
        return 0;
    }

    st->device = 0;
    CUDA_TRY(st, cudaSetDevice(st->device));
    /* A GPU this build has neither machine code nor usable PTX for. */
    cudaFuncAttributes attr;
    CUDA_TRY(st, cudaFuncGetAttributes(&attr, rmsnorm_kernel));

    CUDA_TRY(st, cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
    st->have_stream = 1;
    BLAS_TRY(st, cublasCreate(&st->blas));
    st->have_blas = 1;
    /* cublasSetStream resets the workspace: set it first. */
    BLAS_TRY(st, cublasSetStream(st->blas, st->stream));
    BLAS_TRY(st, cublasSetMathMode(st->blas, CUBLAS_DEFAULT_MATH)); /* fp32, not TF32 */
    if (!dev_alloc(st, &st->workspace, CUBLAS_WORKSPACE_BYTES)) return 0;
    BLAS_TRY(st, cublasSetWorkspace(st->blas, st->workspace, CUBLAS_WORKSPACE_BYTES));

    /* Weights. */
    if (!upload_tensor(st, &st->embedding, &m->token_embedding)) return 0;
    const int shared = m->classifier.type == m->token_embedding.type && m->classifier.f32 == m->token_embedding.f32 &&
                       m->classifier.q == m->token_embedding.q;
    if (shared)
        st->classifier = st->embedding;
    else if (!upload_tensor(st, &st->classifier, &m->classifier))
        return 0;
    if (!dev_upload(st, &st->final_norm, m->final_norm, (size_t)c->dim)) return 0;
    st->layers = (dev_layer *)calloc((size_t)c->n_layers, sizeof *st->layers);
    if (!st->layers) {
        snprintf(st->error, sizeof st->error, "out of host memory");
        st->out_of_memory = 1;
        return 0;
    }
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        dev_layer *d = &st->layers[l];
        if (!dev_upload(st, &d->attention_norm, w->attention_norm, (size_t)c->dim) ||
            !dev_upload(st, &d->ffn_norm, w->ffn_norm, (size_t)c->dim) ||
            !upload_tensor(st, &d->wq, &w->attention_query) || !upload_tensor(st, &d->wk, &w->attention_key) ||
            !upload_tensor(st, &d->wv, &w->attention_value) || !upload_tensor(st, &d->wo, &w->attention_output) ||
            !upload_tensor(st, &d->w1, &w->ffn_gate) || !upload_tensor(st, &d->w2, &w->ffn_down) ||
            !upload_tensor(st, &d->w3, &w->ffn_up))
            return 0;
    }

    /* The KV cache, the activations of one block and the RoPE tables. */
    const size_t B = (size_t)st->batch, seq = (size_t)st->context;
    const size_t cache = (size_t)s->n_sequences * (size_t)st->n_layers * seq * (size_t)st->kv_dim;
    st->cache_floats = cache;
    const size_t widest = (size_t)(st->hidden_dim > st->dim ? st->hidden_dim : st->dim);
    const size_t gs = c->weight_type == LLAMA2_WEIGHTS_Q8_0 ? (size_t)c->group_size : 0;
    size_t att;
    if (!l2_mul_size(B * (size_t)st->n_heads, seq, &att)) {
        snprintf(st->error, sizeof st->error, "the attention scores' size overflows");
        st->out_of_memory = 1;
        return 0;
    }
    if (!dev_zeros(st, &st->key_cache, cache) || !dev_zeros(st, &st->value_cache, cache) ||
        !dev_zeros(st, &st->x, B * (size_t)st->dim) || !dev_zeros(st, &st->xb, B * (size_t)st->dim) ||
        !dev_zeros(st, &st->xb2, B * (size_t)st->dim) ||
        !dev_zeros(st, &st->q, B * (size_t)st->dim) || !dev_zeros(st, &st->k, B * (size_t)st->kv_dim) ||
        !dev_zeros(st, &st->v, B * (size_t)st->kv_dim) || !dev_zeros(st, &st->hb, B * (size_t)st->hidden_dim) ||
        !dev_zeros(st, &st->hb2, B * (size_t)st->hidden_dim) || !dev_zeros(st, &st->att, att) ||
        !dev_zeros(st, &st->logits, B * (size_t)st->vocab) || !dev_zeros(st, &st->params, 4 * B))
        return 0;
    if (gs && (!dev_zeros(st, &st->xq, B * widest) || !dev_zeros(st, &st->xs, B * widest / gs))) return 0;
    const size_t rope = seq * (size_t)(st->head_size / 2);
    if (!dev_upload(st, &st->rope_cos, (const float *)s->rope_cos, rope) ||
        !dev_upload(st, &st->rope_sin, (const float *)s->rope_sin, rope))
        return 0;
    CUDA_TRY(st, cudaMallocHost((void **)&st->host_params, 4 * B * sizeof(int)));

    /* Page-lock the session's cache so that the mirror copies are DMA; an
     * unregistered cache works too, a little slower. */
    st->host_keys = s->key_cache;
    st->host_values = s->value_cache;
    if (cudaHostRegister(st->host_keys, cache * sizeof(float), cudaHostRegisterDefault) == cudaSuccess) {
        if (cudaHostRegister(st->host_values, cache * sizeof(float), cudaHostRegisterDefault) == cudaSuccess)
            st->registered = 1;
        else
            (void)cudaHostUnregister(st->host_keys);
    }
    (void)cudaGetLastError(); /* a refused registration is not an error */
    CUDA_TRY(st, cudaDeviceSynchronize());
    return 1;
}

/* ========================================================= forward pass */

/* Quantizes the nb rows of x (cols values each) into xq / xs. */
static int quantize(cuda_state *st, const float *x, int nb, int cols, int group_size) {
    const int n_groups = nb * (cols / group_size);
    quantize_q8_kernel<<<blocks_for((size_t)n_groups), THREADS, 0, st->stream>>>(st->xq, st->xs, x, n_groups,
                                                                                   group_size);
    return launched(st, "quantize_q8_kernel");
}

/* out[b * out_stride + r] = W[r] . x[b] for the nb rows of x. For Q8_0
 * weights, x must already be in xq / xs. */
static int product(cuda_state *st, const dev_tensor *w, const float *x, int nb, float *out, int out_stride) {
    if (w->type == LLAMA2_WEIGHTS_F32) {
        const float one = 1.0f, zero = 0.0f;
        /* W is row-major [rows][cols]: column-major, it is W^T with ld cols. */
        if (nb == 1)
            BLAS_TRY(st, cublasSgemv(st->blas, CUBLAS_OP_T, w->cols, w->rows, &one, w->f32, w->cols, x, 1, &zero,
                                     out, 1));
        else
            BLAS_TRY(st, cublasSgemm(st->blas, CUBLAS_OP_T, CUBLAS_OP_N, w->rows, nb, w->cols, &one, w->f32,
                                     w->cols, x, w->cols, &zero, out, out_stride));
        return 1;
    }
    const int rows_per_block = THREADS / 32;
    const unsigned grid = (unsigned)((w->rows + rows_per_block - 1) / rows_per_block);
    matmul_q8_kernel<<<grid, THREADS, 0, st->stream>>>(out, out_stride, st->xq, st->xs, nb, w->q, w->scales,
                                                        w->rows, w->cols, w->group_size);
    return launched(st, "matmul_q8_kernel");
}

/* Quantizes x when w (the first of the products that share x) is int8. */
static int prepare_input(cuda_state *st, const dev_tensor *w, const float *x, int nb) {
    return w->type == LLAMA2_WEIGHTS_Q8_0 ? quantize(st, x, nb, w->cols, w->group_size) : 1;
}

static int rmsnorm(cuda_state *st, float *out, const float *x, const float *weight, int n, const int *rows) {
    rmsnorm_kernel<<<n, THREADS, 0, st->stream>>>(out, x, weight, st->dim, st->norm_eps, rows);
    return launched(st, "rmsnorm_kernel");
}

static int residual_add(cuda_state *st, float *x, const float *delta, int n) {
    const int count = n * st->dim;
    residual_add_kernel<<<blocks_for((size_t)count), THREADS, 0, st->stream>>>(x, delta, count);
    return launched(st, "residual_add_kernel");
}

static int attention_block(cuda_state *st, int l, int n) {
    const dev_layer *w = &st->layers[l];
    if (!rmsnorm(st, st->xb, st->x, w->attention_norm, n, NULL) || !prepare_input(st, &w->wq, st->xb, n) ||
        !product(st, &w->wq, st->xb, n, st->q, st->dim) || !product(st, &w->wk, st->xb, n, st->k, st->kv_dim) ||
        !product(st, &w->wv, st->xb, n, st->v, st->kv_dim))
        return 0;
    rope_kernel<<<n, THREADS, 0, st->stream>>>(st->q, st->k, st->rope_cos, st->rope_sin, st->params, st->dim,
                                                st->kv_dim, st->head_size);
    if (!launched(st, "rope_kernel")) return 0;
    store_kv_kernel<<<n, THREADS, 0, st->stream>>>(st->key_cache, st->value_cache, st->k, st->v, st->params, l,
                                                    st->n_layers, st->context, st->kv_dim);
    if (!launched(st, "store_kv_kernel")) return 0;
    attention_kernel<<<dim3((unsigned)st->n_heads, (unsigned)n), ATT_THREADS, 0, st->stream>>>(
        st->xb, st->q, st->key_cache, st->value_cache, st->att, st->params, l, st->n_layers, st->dim, st->kv_dim,
        st->head_size, st->n_heads / st->n_kv_heads, st->context);
    if (!launched(st, "attention_kernel")) return 0;
    return prepare_input(st, &w->wo, st->xb, n) && product(st, &w->wo, st->xb, n, st->xb2, st->dim) &&
           residual_add(st, st->x, st->xb2, n);
}

static int feed_forward_block(cuda_state *st, int l, int n) {
    const dev_layer *w = &st->layers[l];
    if (!rmsnorm(st, st->xb, st->x, w->ffn_norm, n, NULL) || !prepare_input(st, &w->w1, st->xb, n) ||
        !product(st, &w->w1, st->xb, n, st->hb, st->hidden_dim) ||
        !product(st, &w->w3, st->xb, n, st->hb2, st->hidden_dim))
        return 0;
    const int count = n * st->hidden_dim;
    swiglu_kernel<<<blocks_for((size_t)count), THREADS, 0, st->stream>>>(st->hb, st->hb2, count);
    if (!launched(st, "swiglu_kernel")) return 0;
    return prepare_input(st, &w->w2, st->hb, n) && product(st, &w->w2, st->hb, n, st->xb2, st->dim) &&
           residual_add(st, st->x, st->xb2, n);
}

/* Enqueues the whole block on the stream: the n rows of params, the logits
 * of the n_logits rows listed after them into st->logits. */
static int enqueue_forward(cuda_state *st, int n, int n_logits) {
    const dev_tensor *e = &st->embedding;
    embed_kernel<<<n, THREADS, 0, st->stream>>>(st->x, e->f32, e->q, e->scales, e->group_size, st->params, st->dim);
    if (!launched(st, "embed_kernel")) return 0;
    for (int l = 0; l < st->n_layers; l++)
        if (!attention_block(st, l, n) || !feed_forward_block(st, l, n)) return 0;
    if (n_logits == 0) return 1;
    return rmsnorm(st, st->xb, st->x, st->final_norm, n_logits, st->params + 3 * st->batch) &&
           prepare_input(st, &st->classifier, st->xb, n_logits) &&
           product(st, &st->classifier, st->xb, n_logits, st->logits, st->vocab);
}

/* The graph of one row (with or without logits), captured on first use.
 * Returns 0 when it cannot be had: the caller then runs eagerly. */
static int graph_ready(cuda_state *st, int with_logits) {
    if (st->graph_state[with_logits] != 0) return st->graph_state[with_logits] == 1;
    st->graph_state[with_logits] = -1;
    if (cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    const int enqueued = enqueue_forward(st, 1, with_logits);
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(st->stream, &graph);
    if (enqueued && e == cudaSuccess && graph) e = cudaGraphInstantiate(&st->graph[with_logits], graph, 0);
    if (graph) (void)cudaGraphDestroy(graph);
    if (!enqueued || e != cudaSuccess) {
        st->graph[with_logits] = NULL;
        st->error[0] = '\0'; /* a capture problem is not a device failure */
        (void)cudaGetLastError();
        return 0;
    }
    st->graph_state[with_logits] = 1;
    return 1;
}

/* The cached rows of positions [pos, pos + count) of a sequence, every
 * layer, from `from` to `to` (device or host caches of the same layout). */
static int copy_cache_rows(cuda_state *st, float *to, const float *from, int sequence, int pos, int count,
                           cudaMemcpyKind kind) {
    const size_t row = (size_t)st->kv_dim * sizeof(float), pitch = (size_t)st->context * row;
    const size_t first = ((size_t)sequence * (size_t)st->n_layers * (size_t)st->context + (size_t)pos) *
                         (size_t)st->kv_dim;
    CUDA_TRY(st, cudaMemcpy2DAsync(to + first, pitch, from + first, pitch, (size_t)count * row,
                                   (size_t)st->n_layers, kind, st->stream));
    return 1;
}

static int run_block(cuda_state *st, const llama2_batch_row *rows, int n, float *logits) {
    CUDA_TRY(st, cudaSetDevice(st->device));
    int n_logits = 0;
    for (int b = 0; b < n; b++) {
        st->host_params[3 * b] = rows[b].position;
        st->host_params[3 * b + 1] = rows[b].sequence;
        st->host_params[3 * b + 2] = rows[b].token;
        if (rows[b].logits) st->host_params[3 * st->batch + n_logits++] = b;
    }
    const int use_graph = n == 1 && graph_ready(st, n_logits);
    CUDA_TRY(st, cudaMemcpyAsync(st->params, st->host_params, 4 * (size_t)st->batch * sizeof(int),
                                 cudaMemcpyHostToDevice, st->stream));
    if (use_graph)
        CUDA_TRY(st, cudaGraphLaunch(st->graph[n_logits], st->stream));
    else if (!enqueue_forward(st, n, n_logits))
        return 0;

    /* The block's K and V rows of every layer into the session's cache:
     * one copy per run of consecutive positions of a sequence. */
    for (int b0 = 0; b0 < n;) {
        int b1 = b0 + 1;
        while (b1 < n && rows[b1].sequence == rows[b0].sequence && rows[b1].position == rows[b1 - 1].position + 1)
            b1++;
        if (!copy_cache_rows(st, st->host_keys, st->key_cache, rows[b0].sequence, rows[b0].position, b1 - b0,
                             cudaMemcpyDeviceToHost) ||
            !copy_cache_rows(st, st->host_values, st->value_cache, rows[b0].sequence, rows[b0].position, b1 - b0,
                             cudaMemcpyDeviceToHost))
            return 0;
        b0 = b1;
    }
    if (n_logits > 0)
        CUDA_TRY(st, cudaMemcpyAsync(logits, st->logits, (size_t)n_logits * (size_t)st->vocab * sizeof(float),
                                     cudaMemcpyDeviceToHost, st->stream));
    CUDA_TRY(st, cudaStreamSynchronize(st->stream));
    return 1;
}

/* ============================================================ interface */

static void cuda_destroy(void *state) {
    cuda_state *st = (cuda_state *)state;
    if (!st) return;
    (void)cudaSetDevice(st->device);
    if (st->have_stream) (void)cudaStreamSynchronize(st->stream);
    for (int i = 0; i < 2; i++)
        if (st->graph[i]) (void)cudaGraphExecDestroy(st->graph[i]);
    if (st->have_blas) (void)cublasDestroy(st->blas);
    for (int i = 0; i < st->n_allocs; i++) (void)cudaFree(st->allocs[i]);
    if (st->host_params) (void)cudaFreeHost(st->host_params);
    if (st->registered) {
        (void)cudaHostUnregister(st->host_keys);
        (void)cudaHostUnregister(st->host_values);
    }
    if (st->have_stream) (void)cudaStreamDestroy(st->stream);
    (void)cudaGetLastError();
    free(st->allocs);
    free(st->layers);
    free(st);
}

static llama2_status cuda_create(llama2_session *s, void **state, llama2_error *err) {
    *state = NULL;
    /* No GPU or no driver: an error code, never an abort. */
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count <= 0) e = cudaErrorNoDevice;
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return l2_fail(err, LLAMA2_E_UNSUPPORTED, "no CUDA device: %s", cudaGetErrorString(e));
    }
    cuda_state *st = (cuda_state *)calloc(1, sizeof *st);
    if (!st) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    if (!setup(st, s)) {
        llama2_status status = st->out_of_memory ? LLAMA2_E_NOMEM : LLAMA2_E_UNSUPPORTED;
        l2_fail(err, status, "CUDA backend on device 0: %s", st->error);
        cuda_destroy(st);
        return status;
    }
    *state = st;
    return LLAMA2_OK;
}

/* After a failure: the device is not used again (see "Failures"). */
static l2_backend_result failed(cuda_state *st, llama2_error *err) {
    st->disabled = 1;
    l2_fail(err, st->out_of_memory ? LLAMA2_E_NOMEM : LLAMA2_E_UNSUPPORTED,
            "CUDA backend: %s (later calls run on the CPU)", st->error);
    return L2_BACKEND_FAILED;
}

static l2_backend_result cuda_forward_block(void *state, llama2_session *s, const llama2_batch_row *rows, int n,
                                            float *logits, llama2_error *err) {
    cuda_state *st = (cuda_state *)state;
    (void)s;
    if (!st || st->disabled || n < 1 || n > st->batch) return L2_BACKEND_DECLINED;
    return run_block(st, rows, n, logits) ? L2_BACKEND_DONE : failed(st, err);
}

static int copy_sequence(cuda_state *st, int dst, int src, int n) {
    CUDA_TRY(st, cudaSetDevice(st->device));
    const size_t row = (size_t)st->kv_dim * sizeof(float), pitch = (size_t)st->context * row;
    const size_t layer_rows = (size_t)st->n_layers * (size_t)st->context * (size_t)st->kv_dim;
    const size_t to = (size_t)dst * layer_rows, from = (size_t)src * layer_rows;
    CUDA_TRY(st, cudaMemcpy2DAsync(st->key_cache + to, pitch, st->key_cache + from, pitch, (size_t)n * row,
                                   (size_t)st->n_layers, cudaMemcpyDeviceToDevice, st->stream));
    CUDA_TRY(st, cudaMemcpy2DAsync(st->value_cache + to, pitch, st->value_cache + from, pitch, (size_t)n * row,
                                   (size_t)st->n_layers, cudaMemcpyDeviceToDevice, st->stream));
    CUDA_TRY(st, cudaStreamSynchronize(st->stream));
    return 1;
}

static l2_backend_result cuda_copy_sequence(void *state, llama2_session *s, int dst, int src, int n,
                                            llama2_error *err) {
    cuda_state *st = (cuda_state *)state;
    (void)s;
    if (!st || st->disabled) return L2_BACKEND_DECLINED;
    if (n == 0) return L2_BACKEND_DONE;
    return copy_sequence(st, dst, src, n) ? L2_BACKEND_DONE : failed(st, err);
}

extern "C" const l2_backend_ops l2_backend_cuda = {
    "cuda", cuda_create, cuda_destroy, NULL, cuda_forward_block, cuda_copy_sequence,
};
