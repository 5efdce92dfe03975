/*
 * llama2-quantize: converts an fp32 llama2.c checkpoint (legacy or version
 * 1) into a version 2 (Q8_0) file, as llama2.c's export.py would write it,
 * or (--type) any model into a GGUF file with its tokenizer.
 *
 *   llama2-quantize <input.bin> <output.bin> [--group-size N] [--force]
 *   llama2-quantize <input> <output.gguf> --type f32|f16|q8_0|q4_0|q4_k|q5_k|q6_k|q4_k_s|q4_k_m|q5_k_s|q5_k_m
 *                   [-z tokenizer.bin] [--force]
 *
 * The output is never the input, replaces an existing file only with
 * --force, and appears only once complete (output_file.h).
 * Exit status: 0 done, 1 a file could not be read or written, 2 usage.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "write/checkpoint_writer.h"
#include "write/gguf_writer.h"
#include "llama2.h"
#include "platform/platform.h"
#include "messages.h"
#include "tool_args.h"

static const char usage_text[] =
    "Usage: llama2-quantize <input.bin> <output.bin> [--group-size N] [--force]\n"
    "       llama2-quantize <input> <output.gguf> --type TYPE [-z tokenizer.bin] [--force]\n"
    "\n"
    "Writes an fp32 llama2.c checkpoint (legacy or version 1) as a version 2\n"
    "file: int8 weights with one fp32 scale per group of N values, byte for\n"
    "byte what llama2.c's export.py writes. N must divide dim and hidden_dim;\n"
    "by default it is the largest such size up to 64. The group size used, and\n"
    "why, is said on standard error, with a warning below 32 (a scale per few\n"
    "values: a larger file, and int8 products that may be slower than fp32's).\n"
    "With --type, writes any model (llama2.c v0, v1, v2 or GGUF) as a GGUF\n"
    "file holding its tokenizer (from -z, or the input GGUF's own; a BPE one\n"
    "as llama.cpp's gpt2 tokenizer), the\n"
    "weight matrices in TYPE: f32, f16, q8_0, q4_0, q4_k, q5_k, q6_k, or one of\n"
    "llama.cpp's mixes, all with q6_k for the output matrix: q4_k_s (q4_k; q5_k\n"
    "for attn_v of layers 0-3 and ffn_down of the first eighth of the layers),\n"
    "q4_k_m (q4_k; q6_k for attn_v and ffn_down of some layers), q5_k_s (q5_k),\n"
    "q5_k_m (q5_k; q6_k as q4_k_m). A matrix whose rows are not whole blocks\n"
    "of its type (256 values for the k types, 32 for the others) falls back:\n"
    "q6_k and q5_k to q8_0, q4_k to q4_0, and rows not whole blocks of 32 to\n"
    "f32.\n"
    "\n"
    "  --group-size N   values per scale\n"
    "  --type TYPE      write GGUF with matrices of this type: f32, f16, q8_0, q4_0, q4_k, q5_k, q6_k,\n"
    "                   q4_k_s, q4_k_m, q5_k_s, q5_k_m\n"
    "  -z, --tokenizer PATH  the model's tokenizer.bin or BPE tokenizer file (with --type)\n"
    "  --force          replace <output.bin> if it exists (never the input)\n"
    "  -h, --help       this text\n";

static int usage_error(const char *fmt, const char *arg) { return cli_usage_error("llama2-quantize", fmt, arg); }

/* Below this group size, a scale per group costs a large share of the
 * file, and the int8 products do little work per scale. */
#define SMALL_GROUP 32

/* Says why the group size is what it is and, when it is small, what that
 * costs: each group of g int8 values carries a 4-byte scale. */
static void print_group_size(int used, int given, int dim, int hidden_dim) {
    if (used <= 0) return;
    if (given)
        fprintf(stderr, "llama2-quantize: group size %d: as --group-size asked\n", used);
    else
        fprintf(stderr, "llama2-quantize: group size %d: the largest size up to 64 that divides dim %d and hidden_dim %d\n",
                used, dim, hidden_dim);
    if (used < SMALL_GROUP)
        fprintf(stderr,
                "llama2-quantize: warning: group size %d is below %d: with its scale each weight takes %.2f bytes "
                "(fp32: 4, group size 64: 1.06), and the int8 products may run slower than fp32's (llama2-bench "
                "measures both)\n",
                used, SMALL_GROUP, (used + 4.0) / used);
}

static int parse_type(const char *name, uint32_t *type) {
    static const struct { const char *name; uint32_t type; } types[] = {
        {"f32", L2_GGML_F32},   {"f16", L2_GGML_F16},   {"q8_0", L2_GGML_Q8_0},          {"q4_0", L2_GGML_Q4_0},
        {"q4_k", L2_GGML_Q4_K}, {"q5_k", L2_GGML_Q5_K}, {"q6_k", L2_GGML_Q6_K},
        {"q4_k_s", L2_GGUF_MIX_Q4_K_S}, {"q4_k_m", L2_GGUF_MIX_Q4_K_M}, {"q5_k_s", L2_GGUF_MIX_Q5_K_S},
        {"q5_k_m", L2_GGUF_MIX_Q5_K_M}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(name, types[i].name) == 0) {
            *type = types[i].type;
            return 1;
        }
    return 0;
}

/* --type: the model and its tokenizer into a GGUF file. */
static int write_gguf(const char *const paths[2], const char *type_name, const char *tokenizer_path, int group_size,
                      unsigned output_flags) {
    uint32_t type;
    if (!parse_type(type_name, &type)) return usage_error("--type: '%s' is not one of f32, f16, q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_s, q4_k_m, q5_k_s, q5_k_m", type_name);
    if (group_size) return usage_error("%s", "--group-size is for llama2.c version 2 output, not --type");
    llama2_error err = {0};
    llama2_model *m = NULL;
    llama2_tokenizer *tok = NULL;
    const char *culprit = paths[0];
    llama2_status s = llama2_model_open(paths[0], NULL, &m, &err);
    if (s == LLAMA2_OK && tokenizer_path) {
        culprit = tokenizer_path;
        s = llama2_tokenizer_open(tokenizer_path, llama2_model_config(m)->vocab_size, &tok, &err);
    } else if (s == LLAMA2_OK) {
        s = llama2_model_tokenizer(m, &tok, &err);
        if (s == LLAMA2_E_UNSUPPORTED) snprintf(err.message, sizeof err.message, "the file carries no tokenizer: pass its tokenizer.bin with -z");
    }
    int fallbacks = 0;
    if (s == LLAMA2_OK) {
        const char *inputs[3] = {paths[0], tokenizer_path, NULL};
        culprit = paths[0];
        s = l2_gguf_write_model(paths[1], m, tok, type, inputs, output_flags, &fallbacks, &err);
        if (s != LLAMA2_OK && l2_output_failure(err.message)) culprit = paths[1];
    }
    llama2_tokenizer_close(tok);
    llama2_model_close(m);
    if (s != LLAMA2_OK) {
        fprintf(stderr, "llama2-quantize: %s: %s\n", culprit, err.message);
        return 1;
    }
    fprintf(stderr, "llama2-quantize: %s (%lld bytes) -> %s (%lld bytes), GGUF %s", paths[0], tool_file_size(paths[0]),
            paths[1], tool_file_size(paths[1]), type_name);
    if (fallbacks) fprintf(stderr, ", %d matrices in a fallback type (rows not whole blocks)", fallbacks);
    fputc('\n', stderr);
    return 0;
}

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    const char *paths[2] = {NULL, NULL};
    int n_paths = 0, group_size = 0;
    const char *type_name = NULL, *tokenizer = NULL;
    unsigned output_flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--force") == 0) {
            output_flags |= L2_OUTPUT_FORCE;
        } else if (tool_option_value(argc, argv, &i, "--group-size", &v)) {
            if (!v) return usage_error("%s needs a value", "--group-size");
            if (tool_int_value("llama2-quantize", "--group-size", v, 1, INT_MAX,
                               "the group size must be a positive integer", &group_size) != 0)
                return 2;
        } else if (tool_option_value(argc, argv, &i, "--type", &v)) {
            if (!v) return usage_error("%s needs a value", "--type");
            type_name = v;
        } else if (tool_option_value(argc, argv, &i, "--tokenizer", &v) || tool_option_value(argc, argv, &i, "-z", &v)) {
            if (!v) return usage_error("%s needs a value", "--tokenizer");
            tokenizer = v;
        } else if (tool_file_argument("llama2-quantize", a, paths, &n_paths) != 0) {
            return 2;
        }
    }
    if (n_paths < 2)
        return usage_error("%s", n_paths == 0 ? "missing the input and output files" : "missing the output file");
    if (type_name) return write_gguf(paths, type_name, tokenizer, group_size, output_flags);
    if (tokenizer) return usage_error("%s", "-z is for --type (GGUF output)");

    llama2_error err = {0};
    llama2_status s = l2_quantize_file(paths[0], paths[1], group_size, output_flags, &err);
    if (s != LLAMA2_OK) {
        const char *culprit = l2_output_failure(err.message) ? paths[1] : paths[0];
        fprintf(stderr, "llama2-quantize: %s: %s\n", culprit, err.message);
        return 1;
    }
    int used = group_size, dim = 0, hidden_dim = 0;
    llama2_model *m = NULL;
    if (llama2_model_open(paths[1], NULL, &m, NULL) == LLAMA2_OK) {
        const llama2_config *c = llama2_model_config(m);
        used = c->group_size;
        dim = c->dim;
        hidden_dim = c->hidden_dim;
        llama2_model_close(m);
    }
    fprintf(stderr, "llama2-quantize: %s (%lld bytes) -> %s (%lld bytes), group size %d\n", paths[0],
            tool_file_size(paths[0]), paths[1], tool_file_size(paths[1]), used);
    print_group_size(used, group_size != 0, dim, hidden_dim);
    return 0;
}
