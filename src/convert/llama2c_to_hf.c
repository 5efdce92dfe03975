/*
 * llama2.c -> Hugging Face: a checkpoint to a folder with config.json,
 * model.safetensors and, from a tokenizer.bin, tokenizer.model (or, from
 * the BPE tokenizer file, tokenizer.json and tokenizer_config.json). The folder
 * is the output: one that holds anything exists, and is written into only
 * when asked (--force). The files are written aside (output_file.h) and
 * named together at the end, so that a failure leaves the folder as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/checkpoint_format.h"
#include "schema/json_safe.h"
#include "convert.h"
#include "hf_names.h"
#include "platform/checks.h"
#include "mapped_pages.h"
#include "model/model.h"
#include "write/output_file.h"
#include "qk_order.h"
#include "safetensors_writer.h"
#include "sentencepiece.h"
#include "small_file.h"
#include "text/bpe.h"

#define TOKENIZER_LIMIT ((size_t)64 << 20)
#define CHUNK_FLOATS ((size_t)1 << 22)

/* The folder's files: the tokenizer's are tokenizer.model (from llama2.c's
 * tokenizer.bin) or tokenizer.json and tokenizer_config.json (from the BPE
 * tokenizer file). */
enum { CONFIG_FILE, WEIGHTS_FILE, MAX_FILES = 4 };

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
static llama2_status put_weight(l2_output *o, const llama2_model *m, weight w, l2_dtype dtype, void *bytes,
                                llama2_error *err) {
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
        llama2_status s = l2_output_write(o, bytes, k * cols * elem, err);
        if (s != LLAMA2_OK) return s;
        if (m->mapping)
            l2_release_mapped(m->mapping, m->mapping_size,
                              (size_t)((const char *)(values + r * cols) - (const char *)m->mapping),
                              k * cols * sizeof(float));
    }
    return LLAMA2_OK;
}

static llama2_status write_weights(l2_output *o, const llama2_model *m, l2_dtype dtype, llama2_error *err) {
    const llama2_config *c = &m->config;
    const size_t max_weights = 3 + 9 * (size_t)c->n_layers;
    weight *w = malloc(max_weights * sizeof *w);
    l2_st_entry *entries = calloc(max_weights, sizeof *entries);
    /* A chunk is at most CHUNK_FLOATS values, one row when rows are longer,
     * or one head of query or key rows. */
    const size_t widest = (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim);
    void *bytes = malloc((CHUNK_FLOATS + widest * (size_t)(c->dim / c->n_heads)) * sizeof(float));
    llama2_status s = LLAMA2_OK;
    if (!w || !entries || !bytes) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
    size_t n = s == LLAMA2_OK ? list_weights(c, w) : 0;
    for (size_t i = 0; i < n; i++) {
        l2_hf_name(w[i].kind, w[i].layer, entries[i].name, sizeof entries[i].name);
        l2_hf_shape(c, w[i].kind, entries[i].shape, &entries[i].n_dims);
        entries[i].dtype = dtype;
    }
    unsigned char *header = NULL;
    size_t header_len = 0;
    if (s == LLAMA2_OK) s = l2_safetensors_header(entries, n, &header, &header_len, err);
    if (s == LLAMA2_OK) s = l2_output_write(o, header, header_len, err);
    for (size_t i = 0; i < n && s == LLAMA2_OK; i++) s = put_weight(o, m, w[i], dtype, bytes, err);
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
    if (root && c->rope_scaling_factor != 0.0f)
        json_object_set_new(root, "rope_scaling",
                            json_pack("{s:o, s:o, s:o, s:i, s:s}", "factor", json_float(c->rope_scaling_factor),
                                      "low_freq_factor", json_float(c->rope_low_freq_factor), "high_freq_factor",
                                      json_float(c->rope_high_freq_factor), "original_max_position_embeddings",
                                      c->rope_original_context, "rope_type", "llama3"));
    /* Nine significant digits: enough for any float, and 1e-05 stays 1e-05. */
    *out = root ? l2_json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
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

/* Makes the output folder ready: creates it (*created = 1), or takes an
 * existing empty one, or, with L2_OUTPUT_FORCE, any existing one. */
static llama2_status output_folder(const char *dir, unsigned flags, int *created, llama2_error *err) {
    *created = 0;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (mkdir(dir, 0777) != 0)
            return l2_fail(err, LLAMA2_E_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
        *created = 1;
        return LLAMA2_OK;
    }
    if (!S_ISDIR(st.st_mode)) return l2_fail(err, LLAMA2_E_IO, "%s: exists and is not a folder", dir);
    if (flags & L2_OUTPUT_FORCE) return LLAMA2_OK;
    DIR *d = opendir(dir);
    if (!d) return l2_fail(err, LLAMA2_E_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    int empty = 1;
    for (struct dirent *e; empty && (e = readdir(d)) != NULL;)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (!empty) return l2_fail(err, LLAMA2_E_IO, "%s: already exists and is not empty (--force writes into it)", dir);
    return LLAMA2_OK;
}

/* A file's name and, but for the weights, its bytes. */
typedef struct folder_file {
    const char *name;
    const void *data;
    size_t size;
    int text; /* JSON: a newline after it */
} folder_file;

/* Writes file i of the folder, aside (not yet named). */
static llama2_status write_file(int i, l2_output *out, const llama2_model *m, l2_dtype dtype, const folder_file *f,
                                llama2_error *err) {
    if (i == WEIGHTS_FILE) return write_weights(out, m, dtype, err);
    llama2_status s = l2_output_write(out, f->data, f->size, err);
    return s == LLAMA2_OK && f->text ? l2_output_write(out, "\n", 1, err) : s;
}

llama2_status l2_convert_llama2c_to_hf(const char *in_path, const char *out_dir, const l2_convert_options *options,
                                       llama2_error *err) {
    const l2_dtype dtype = options->dtype;
    const unsigned flags = options->output_flags;
    char *paths[MAX_FILES] = {0};
    l2_output outputs[MAX_FILES];
    folder_file files[MAX_FILES] = {{"config.json", NULL, 0, 1}, {"model.safetensors", NULL, 0, 0}};
    int n_open = 0, n_files = 2;
    const char *inputs[3] = {in_path, options->tokenizer, NULL};

    /* Every input is read and checked before the folder is touched. */
    llama2_model *m = NULL;
    char *tok_bin = NULL, *tok_json = NULL, *tok_config = NULL;
    unsigned char *tok_model = NULL;
    size_t tok_bin_len = 0, tok_model_len = 0;
    llama2_status s = l2_error_prefix_path(llama2_model_open(in_path, NULL, &m, err), in_path, NULL, err);
    if (s == LLAMA2_OK && m->rope_freq_factors)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED, "%s: " L2_ROPE_FACTORS_REFUSED, in_path, "config.json");
    if (s == LLAMA2_OK && m->config.weight_type != LLAMA2_WEIGHTS_F32)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s: an int8 (version %d) file cannot be converted: its weights were rounded; convert the fp32 "
                    "file it came from",
                    in_path, m->config.file_version);
    if (s == LLAMA2_OK && options->tokenizer)
        s = l2_read_small_file(options->tokenizer, TOKENIZER_LIMIT, &tok_bin, &tok_bin_len, err);
    if (s == LLAMA2_OK && options->tokenizer && l2_bpe_file_is(tok_bin, tok_bin_len)) {
        s = l2_error_prefix_path(
            l2_tokenizer_json_from_bpe(tok_bin, tok_bin_len, m->config.seq_len, &tok_json, &tok_config, err),
            options->tokenizer, NULL, err);
        files[n_files++] = (folder_file){"tokenizer.json", tok_json, tok_json ? strlen(tok_json) : 0, 1};
        files[n_files++] = (folder_file){"tokenizer_config.json", tok_config, tok_config ? strlen(tok_config) : 0, 1};
    } else if (s == LLAMA2_OK && options->tokenizer) {
        s = l2_sp_from_llama2c(tok_bin, tok_bin_len, options->tokenizer, &tok_model, &tok_model_len, err);
        files[n_files++] = (folder_file){"tokenizer.model", tok_model, tok_model_len, 0};
    }
    char *config = NULL;
    if (s == LLAMA2_OK) s = config_json(m, dtype, m->config.rope_theta, m->config.norm_eps, &config, err);
    files[CONFIG_FILE].data = config;
    files[CONFIG_FILE].size = config ? strlen(config) : 0;

    int created_dir = 0;
    if (s == LLAMA2_OK) s = output_folder(out_dir, flags, &created_dir, err);
    for (int i = 0; i < n_files && s == LLAMA2_OK; i++) {
        if (!(paths[i] = join_path(out_dir, files[i].name))) s = l2_fail(err, LLAMA2_E_NOMEM, "out of memory");
        if (s == LLAMA2_OK && (s = l2_output_open(&outputs[i], paths[i], inputs, flags, err)) == LLAMA2_OK) n_open++;
        if (s == LLAMA2_OK) s = write_file(i, &outputs[i], m, dtype, &files[i], err);
        s = l2_error_prefix_path(s, NULL, paths[i], err);
    }
    /* Named last opened first: an output that holds signals back (a named
     * temporary file) lets them through only once none opened before it
     * still needs them held. */
    int open = n_open, named_from = n_open; /* [0, open) still open, [named_from, n_open) named */
    while (s == LLAMA2_OK && open > 0) {
        open--;
        s = l2_error_prefix_path(l2_output_commit(&outputs[open], err), NULL, paths[open], err);
        named_from = s == LLAMA2_OK ? open : open + 1;
    }
    while (s != LLAMA2_OK && open > 0) l2_output_abort(&outputs[--open]);
    /* One could not be named: those named already go too, unless they may
     * have replaced files that were there (--force). */
    for (int i = named_from; s != LLAMA2_OK && !(flags & L2_OUTPUT_FORCE) && i < n_open; i++) unlink(paths[i]);
    for (int i = 0; i < n_files; i++) free(paths[i]);
    if (s != LLAMA2_OK && created_dir) rmdir(out_dir);
    free(config);
    free(tok_json);
    free(tok_config);
    free(tok_model);
    free(tok_bin);
    llama2_model_close(m);
    return s;
}
