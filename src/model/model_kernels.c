/*
 * A model's kernel table and the copies of its weights repacked for it:
 * chosen and made once when the model is opened, freed when it is closed,
 * shared by every session of the model.
 */

#include "platform/checks.h"
#include "platform/platform.h"
#include "model.h"
#include "kernels/ops.h"
#include "kernels/ops_blocks.h"
#include "kernels/ops_kquants.h"

/* Calls fn on every matrix that a product reads (the embedding table
 * only when it is also the classifier: otherwise only rows are looked up). */
static void for_each_product_matrix(llama2_model *m, void (*fn)(void *ctx, tensor *t), void *ctx) {
    for (int l = 0; l < m->config.n_layers; l++) {
        layer_weights *w = &m->layers[l];
        tensor *ts[7] = {&w->attention_query, &w->attention_key, &w->attention_value, &w->attention_output,
                         &w->ffn_gate,        &w->ffn_down,      &w->ffn_up};
        for (int i = 0; i < 7; i++) fn(ctx, ts[i]);
    }
    fn(ctx, m->config.shared_classifier ? &m->token_embedding : &m->classifier);
}

typedef struct repack_pass {
    const l2_kernels *k;
    const l2_kquant_kernels *kk;
    const llama2_model *m;
    unsigned char *dst; /* NULL while measuring */
    size_t total;
    int overflow;
} repack_pass;

/* Each copy starts on a 64-byte boundary. */
static size_t round_up_64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The copy of one matrix: int8 as the kernel table repacks it, GGUF's
 * Q4_0 as panels of 16 rows (ops_blocks.h), Q4_K and Q6_K too where the
 * K-quant table has panel kernels (ops_kquants.h). */
static size_t repack_matrix(const l2_kernels *k, const l2_kquant_kernels *kk, void *dst, const tensor *t) {
    if (t->type == LLAMA2_WEIGHTS_Q4_0)
        return l2_q4_0_panels_pack(dst, (const l2_block_q4_0 *)t->blocks, t->rows, t->cols / L2_BLOCK);
    if (t->type == LLAMA2_WEIGHTS_Q4_K && kk->q4_K_panels)
        return l2_q4_K_panels_pack(dst, (const l2_block_q4_K *)t->blocks, t->rows, t->cols / L2_SUPER_BLOCK);
    if (t->type == LLAMA2_WEIGHTS_Q6_K && kk->q6_K_panels)
        return l2_q6_K_panels_pack(dst, (const l2_block_q6_K *)t->blocks, t->rows, t->cols / L2_SUPER_BLOCK);
    if (t->type == LLAMA2_WEIGHTS_Q8_0 && k->repack_q8) return k->repack_q8(dst, t->q, t->scales, t->rows, t->cols, t->group_size);
    return 0;
}

/* The bytes of a matrix's own weights that its copy holds in full, so that
 * the products never read them again: the Q4_0, Q4_K and Q6_K panels; int8
 * where the table reads only its repack (no stripes, which read the
 * original). 0 else. */
static size_t replaced_bytes(const l2_kernels *k, const tensor *t, const void **source) {
    const size_t values = (size_t)t->rows * (size_t)t->cols;
    *source = t->blocks;
    if (t->type == LLAMA2_WEIGHTS_Q4_0) return values / L2_BLOCK * sizeof(l2_block_q4_0);
    if (t->type == LLAMA2_WEIGHTS_Q4_K) return values / L2_SUPER_BLOCK * sizeof(l2_block_q4_K);
    if (t->type == LLAMA2_WEIGHTS_Q6_K) return values / L2_SUPER_BLOCK * sizeof(l2_block_q6_K);
    if (t->type == LLAMA2_WEIGHTS_Q8_0 && k->matmul_q8_packed && !k->gemv_q8_stripes) {
        *source = t->q;
        return values;
    }
    return 0;
}

static void repack_one(void *ctx, tensor *t) {
    repack_pass *pass = ctx;
    const size_t need = repack_matrix(pass->k, pass->kk, NULL, t);
    if (need == 0) return;
    if (pass->dst) {
        repack_matrix(pass->k, pass->kk, pass->dst + pass->total, t);
        t->packed = pass->dst + pass->total;
        /* The file's pages of what the copy replaces leave this process's
         * memory (they are read again if touched: an embedding row of a
         * shared classifier), so the copy does not double the model's
         * resident size. A buffer the file was read into keeps its bytes. */
        const void *source = NULL;
        const size_t bytes = replaced_bytes(pass->k, t, &source);
        const unsigned char *map = pass->m->mapping, *src = source;
        if (bytes && map && src >= map && src + bytes <= map + pass->m->mapping_size)
            l2_mapping_release(pass->m->mapping, (size_t)(src - map), bytes);
    }
    if (!l2_add_size(pass->total, round_up_64(need), &pass->total)) pass->overflow = 1;
}

llama2_status l2_model_attach_kernels(llama2_model *m, llama2_error *err) {
    char message[256];
    if (!l2_kernels_check_cap(message, sizeof message)) return l2_fail(err, LLAMA2_E_INVALID, "%s", message);
    m->kernels = l2_kernels_for(m->config.weight_type);
    m->block_kernels = l2_block_kernels_for(m->kernels->name);
    m->kquant_kernels = l2_kquant_kernels_for(m->kernels->name);
    repack_pass pass = {m->kernels, m->kquant_kernels, m, NULL, 0, 0};
    for_each_product_matrix(m, repack_one, &pass);
    if (pass.overflow) return l2_fail(err, LLAMA2_E_NOMEM, "the repacked weights' size overflows");
    if (pass.total == 0) return LLAMA2_OK;
    m->packed = l2_aligned_zeroed(pass.total);
    if (!m->packed)
        return l2_fail(err, LLAMA2_E_NOMEM, "cannot allocate %.1f MiB for the repacked weights",
                       (double)pass.total / (1 << 20));
    pass.dst = m->packed;
    pass.total = 0;
    for_each_product_matrix(m, repack_one, &pass);
    /* A shared classifier is a copy of the embedding table's view. */
    if (m->config.shared_classifier) m->classifier = m->token_embedding;
    return LLAMA2_OK;
}

const char *llama2_model_kernels_name(const llama2_model *m) { return m->kernels->name; }

void l2_model_detach_kernels(llama2_model *m) {
    l2_aligned_free(m->packed);
    m->packed = NULL;
}
