/*
 * llama2.c -> Hugging Face: a checkpoint to a folder with config.json,
 * model.safetensors and, from a tokenizer.bin, tokenizer.model. The three
 * files are written under temporary names and renamed into place together
 * at the end, so that a failure leaves the folder as it was.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_format.h"
#include "convert.h"
#include "hf_names.h"
#include "internal.h"
#include "mapped_pages.h"
#include "model.h"
#include "out_file.h"
#include "qk_order.h"
#include "safetensors_writer.h"
#include "sentencepiece.h"
#include "small_file.h"

#define TOKENIZER_LIMIT ((size_t)64 << 20)
#define CHUNK_FLOATS ((size_t)1 << 22)

enum { CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, N_FILES };
static const char *const file_names[N_FILES] = {"config.json", "model.safetensors", "tokenizer.model"};

/* ---------------------------------------------------------- weights */

/* One tensor of the output: its kind and layer. */
typedef struct weight {
    l2_tensor_kind kind;
    int layer;
} weight;

/* The weights in Hugging Face's order (each layer's together); returns how
 * many: 2 + 9 * n_layers, and the classifier when it is not shared. */
static size_t list_weights(const llama2_config *c, weight *w) {
    static const l2_tensor_kind layer_kinds[9] = {
        L2_TENSOR_ATTENTION_NORM, L2_TENSOR_ATTENTION_QUERY, L2_TENSOR_ATTENTION_KEY,
        L2_TENSOR_ATTENTION_VALUE, L2_TENSOR_ATTENTION_OUTPUT, L2_TENSOR_FFN_NORM,
        L2_TENSOR_FFN_GATE, L2_TENSOR_FFN_DOWN, L2_TENSOR_FFN_UP};
    size_t n = 0;
    w[n++] = (weight){L2_TENSOR_TOKEN_EMBEDDING, 0};
    for (int l = 0; l < c->n_layers; l++)
        for (int i = 0; i < 9; i++) w[n++] = (weight){layer_kinds[i], l};
    w[n++] = (weight){L2_TENSOR_FINAL_NORM, 0};
    if (!c->shared_classifier) w[n++] = (weight){L2_TENSOR_CLASSIFIER, 0};
    return n;
}

/* Writes one weight's values in dtype, rows in Hugging Face's order, a
 * chunk at a time, giving back the pages of each chunk once written. */
static void put_weight(l2_out *o, const llama2_model *m, weight w, l2_dtype dtype, void *bytes) {
    size_t rows, cols;
    l2_tensor_shape(&m->config, w.kind, &rows, &cols);
    const float *values = l2_model_f32(m, w.kind, w.layer);
    const size_t elem = l2_dtype_size(dtype), head_size = (size_t)m->head_size;
    /* Whole heads per chunk, so that the rows a chunk reads are its own. */
    size_t step = CHUNK_FLOATS / cols ? CHUNK_FLOATS / cols : 1;
    if (l2_hf_rope_rows(w.kind)) step = step > head_size ? step / head_size * head_size : head_size;
    for (size_t r = 0; r < rows; r += step) {
        const size_t k = rows - r < step ? rows - r : step;
        if (l2_hf_rope_rows(w.kind))
            for (size_t i = 0; i < k; i++)
                l2_values_from_f32(dtype, values + l2_llama2c_row_of(r + i, head_size) * cols, cols,
                                   (unsigned char *)bytes + i * cols * elem);
        else
            l2_values_from_f32(dtype, values + r * cols, k * cols, bytes);
        l2_out_write(o, bytes, k * cols * elem);
        if (m->mapping)
            l2_release_mapped(m->mapping, m->mapping_size,
                              (size_t)((const char *)(values + r * cols) - (const char *)m->mapping),
                              k * cols * sizeof(float));
    }
}

static llama2_status write_weights(l2_out *o, const llama2_model *m, l2_dtype dtype, llama2_error *err) {
    const llama2_config *c = &m->config;
    const size_t max_weights = 3 + 9 * (size_t)c->n_layers;
    weight *w = malloc(max_weights * sizeof *w);
    l2_st_entry *entries = calloc(max_weights, sizeof *entries);
    /* A chunk is at most CHUNK_FLOATS values, one row when rows are longer,
     * or one head of query or key rows. */
    const size_t widest = (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim);
    void *bytes = malloc((CHUNK_FLOATS + widest * (size_t)(c->dim / c->n_heads)) * sizeof(float));
    llama2_status s = LLAMA2_OK;
    if (!w || !entries || !bytes) s = l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", o->path);
    size_t n = s == LLAMA2_OK ? list_weights(c, w) : 0;
    for (size_t i = 0; i < n; i++) {
        l2_hf_name(w[i].kind, w[i].layer, entries[i].name, sizeof entries[i].name);
        l2_hf_shape(c, w[i].kind, entries[i].shape, &entries[i].n_dims);
        entries[i].dtype = dtype;
    }
    unsigned char *header = NULL;
    size_t header_len = 0;
    if (s == LLAMA2_OK) s = l2_safetensors_header(entries, n, &header, &header_len, err);
    if (s == LLAMA2_OK) {
        l2_out_write(o, header, header_len);
        for (size_t i = 0; i < n; i++) put_weight(o, m, w[i], dtype, bytes);
    }
    free(header);
    free(bytes);
    free(entries);
    free(w);
    return s;
}

/* ----------------------------------------------------------- config */

static const char *torch_dtype(l2_dtype dtype) {
    return dtype == L2_DTYPE_F32 ? "float32" : dtype == L2_DTYPE_F16 ? "float16" : "bfloat16";
}

/* A float as the shortest decimal that reads back as the same float, as a
 * JSON number (1e-05, not 9.99999974738e-06). */
static json_t *json_float(float f) {
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        if (strtof(text, NULL) == f) break;
    }
    return json_real(strtod(text, NULL));
}

static llama2_status config_json(const llama2_model *m, l2_dtype dtype, float rope_theta, float norm_eps,
                                 char **out, llama2_error *err) {
    const llama2_config *c = &m->config;
    json_t *root = json_pack(
        "{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:n, s:b, s:s, s:b, s:b, s:i, s:i, s:s}",
        "architectures", "LlamaForCausalLM", "model_type", "llama", "hidden_size", c->dim, "intermediate_size",
        c->hidden_dim, "num_hidden_layers", c->n_layers, "num_attention_heads", c->n_heads, "num_key_value_heads",
        c->n_kv_heads, "vocab_size", c->vocab_size, "max_position_embeddings", c->seq_len, "rms_norm_eps",
        json_float(norm_eps), "rope_theta", json_float(rope_theta), "rope_scaling", "tie_word_embeddings",
        c->shared_classifier != 0, "hidden_act", "silu", "attention_bias", 0, "mlp_bias", 0, "bos_token_id",
        LLAMA2_TOKEN_BOS, "eos_token_id", LLAMA2_TOKEN_EOS, "torch_dtype", torch_dtype(dtype));
    /* Nine significant digits: enough for any float, and 1e-05 stays 1e-05. */
    *out = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(root);
    if (!*out) return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for config.json");
    return LLAMA2_OK;
}

/* ------------------------------------------------------------ files */

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

llama2_status l2_convert_llama2c_to_hf(const char *in_path, const char *out_dir, const l2_convert_options *options,
                                       llama2_error *err) {
    const l2_dtype dtype = options->dtype;
    char *paths[N_FILES] = {0};
    l2_out outputs[N_FILES] = {{0}};
    const int n_files = options->tokenizer ? N_FILES : N_FILES - 1;
    const char *inputs[2] = {in_path, options->tokenizer};
    llama2_status s = LLAMA2_OK;
    int created_dir = 0;
    struct stat st;
    if (stat(out_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return l2_fail(err, LLAMA2_E_INVALID, "%s: exists and is not a folder", out_dir);
    } else if (mkdir(out_dir, 0777) != 0) {
        return l2_fail(err, LLAMA2_E_IO, "%s: cannot create the folder: %s", out_dir, strerror(errno));
    } else {
        created_dir = 1;
    }
    for (int i = 0; i < n_files && s == LLAMA2_OK; i++) {
        if (!(paths[i] = join_path(out_dir, file_names[i]))) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
        if (s == LLAMA2_OK) s = l2_out_check(paths[i], options->force, inputs, options->tokenizer ? 2 : 1, err);
    }

    /* Every input is read and checked before the first byte is written. */
    llama2_model *m = NULL;
    char *tok_bin = NULL;
    unsigned char *tok_model = NULL;
    size_t tok_bin_len = 0, tok_model_len = 0;
    if (s == LLAMA2_OK && (s = llama2_model_open(in_path, NULL, &m, err)) != LLAMA2_OK) {
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", err->message);
        s = l2_fail(err, s, "%s: %s", in_path, why);
    }
    if (s == LLAMA2_OK && m->config.weight_type != LLAMA2_WEIGHTS_F32)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s: an int8 (version %d) file cannot be converted: its weights were rounded; convert the fp32 "
                    "file it came from",
                    in_path, m->config.file_version);
    if (s == LLAMA2_OK && options->tokenizer)
        s = l2_read_small_file(options->tokenizer, TOKENIZER_LIMIT, &tok_bin, &tok_bin_len, err);
    if (s == LLAMA2_OK && options->tokenizer)
        s = l2_sp_from_llama2c(tok_bin, tok_bin_len, options->tokenizer, &tok_model, &tok_model_len, err);
    char *config = NULL;
    if (s == LLAMA2_OK) s = config_json(m, dtype, m->config.rope_theta, m->config.norm_eps, &config, err);

    for (int i = 0; i < n_files && s == LLAMA2_OK; i++) {
        if ((s = l2_out_open(&outputs[i], paths[i], err)) != LLAMA2_OK) break;
        if (i == CONFIG_FILE) {
            l2_out_write(&outputs[i], config, strlen(config));
            l2_out_write(&outputs[i], "\n", 1);
        } else if (i == WEIGHTS_FILE) {
            s = write_weights(&outputs[i], m, dtype, err);
        } else {
            l2_out_write(&outputs[i], tok_model, tok_model_len);
        }
        if (s == LLAMA2_OK) s = l2_out_close(&outputs[i], err);
    }
    for (int i = 0; i < n_files && s == LLAMA2_OK; i++) s = l2_out_commit(&outputs[i], err);
    for (int i = 0; i < n_files; i++) {
        l2_out_abort(&outputs[i]);
        free(paths[i]);
    }
    if (s != LLAMA2_OK && created_dir) rmdir(out_dir);
    free(config);
    free(tok_model);
    free(tok_bin);
    llama2_model_close(m);
    return s;
}
