/*
 * llama2-convert: Hugging Face Llama models to llama2.c checkpoints and
 * back, SentencePiece tokenizers to tokenizer.bin, and llama2.c files from
 * one version of the format to another. What the source is comes from the
 * source itself: a folder is a Hugging Face model; a file is a llama2.c
 * checkpoint, a SentencePiece model, or (named *.json) a Hugging Face
 * tokenizer.json.
 *
 * Exit status: 0 done, 1 an input could not be converted or an output
 * written, 2 usage.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert.h"
#include "llama2.h"
#include "platform/platform.h"
#include "tool_args.h"

static const char usage_text[] =
    "Usage: llama2-convert <hf-folder> <out.bin> [--version 0|1|2] [--group-size N]\n"
    "                      [--tokenizer-out tokenizer.bin] [--force]\n"
    "       llama2-convert <tokenizer.model> <tokenizer.bin> [--force]\n"
    "       llama2-convert <tokenizer.json> <tokenizer.bin> [--force]\n"
    "       llama2-convert <model.bin> <out-folder> --to hf [--tokenizer tokenizer.bin]\n"
    "                      [--dtype f32|bf16|f16] [--force]\n"
    "       llama2-convert <model.bin> <out.bin> --version 0|1|2 [--group-size N] [--force]\n"
    "\n"
    "Converts a Hugging Face Llama model (config.json and safetensors weights in\n"
    "F32, F16 or BF16) to a llama2.c checkpoint; a SentencePiece tokenizer.model to\n"
    "llama2.c's tokenizer.bin; a Hugging Face tokenizer.json (Llama 3's byte-level\n"
    "BPE, with BOS and EOS from tokenizer_config.json beside it) to the engine's BPE\n"
    "tokenizer file; a llama2.c checkpoint to a Hugging Face folder; or a llama2.c\n"
    "checkpoint to another version of the format. Memory use stays far below the\n"
    "model's size.\n"
    "\n"
    "  --version V          llama2.c output: 0 legacy fp32 (default), 1 fp32, 2 int8\n"
    "  --group-size N       values per scale for --version 2 (default: the largest\n"
    "                       size up to 64 dividing dim and hidden_dim)\n"
    "  --tokenizer-out F    also write the folder's tokenizer.model as tokenizer.bin F\n"
    "                       (without one, its tokenizer.json as a BPE tokenizer)\n"
    "  --to hf              write a Hugging Face folder (config.json, model.safetensors)\n"
    "  --tokenizer F        with --to hf: tokenizer.bin F becomes tokenizer.model\n"
    "  --dtype T            with --to hf: f32 (default), bf16 or f16 weights\n"
    "  --force              replace outputs that exist (never an input)\n"
    "  -h, --help           this text\n";

static int usage_error(const char *fmt, const char *arg) { return tool_usage_error("llama2-convert", fmt, arg); }

/* What a file source is: a llama2.c checkpoint when it loads as one or
 * starts with the version 1/2 magic; else a SentencePiece model when its
 * first byte is the tag of ModelProto's pieces field. */
static int looks_like_sentencepiece(const char *path) {
    llama2_model *m = NULL;
    if (llama2_model_open(path, NULL, &m, NULL) == LLAMA2_OK) {
        llama2_model_close(m);
        return 0;
    }
    FILE *f = fopen(path, "rb");
    unsigned char head[4] = {0};
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    return n == 4 && head[0] == 0x0a;
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    const char *paths[2] = {NULL, NULL};
    const char *to = NULL, *dtype_name = NULL, *tokenizer = NULL, *tokenizer_out = NULL;
    int n_paths = 0, version = -1, group_size = -1;
    unsigned output_flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        static const char *const valued[] = {"--version", "--group-size", "--to", "--dtype", "--tokenizer",
                                             "--tokenizer-out"};
        const char *value = NULL;
        int which = -1;
        for (int k = 0; k < 6 && which < 0; k++)
            if (tool_option_value(argc, argv, &i, valued[k], &value)) which = k;
        if (which >= 0 && !value) return usage_error("%s needs a value", valued[which]);
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--force") == 0) {
            output_flags |= L2_OUTPUT_FORCE;
        } else if (which == 0) {
            if ((version = tool_parse_int(value, 0, 2)) < 0)
                return usage_error("--version: '%s' is not 0, 1 or 2", value);
        } else if (which == 1) {
            if ((group_size = tool_parse_int(value, 1, INT_MAX)) < 0)
                return usage_error("--group-size: '%s' is not a positive integer", value);
        } else if (which == 2) {
            if (strcmp(value, "hf") != 0) return usage_error("--to: '%s' is not a known target (hf)", value);
            to = value;
        } else if (which == 3) {
            dtype_name = value;
            if (strcmp(value, "f32") != 0 && strcmp(value, "bf16") != 0 && strcmp(value, "f16") != 0)
                return usage_error("--dtype: '%s' is not f32, bf16 or f16", value);
        } else if (which == 4) {
            tokenizer = value;
        } else if (which == 5) {
            tokenizer_out = value;
        } else if (tool_file_argument("llama2-convert", a, paths, &n_paths) != 0) {
            return 2;
        }
    }
    if (n_paths < 2)
        return usage_error("%s", n_paths == 0 ? "missing the source and the output" : "missing the output");

    struct stat st;
    if (stat(paths[0], &st) != 0) {
        fprintf(stderr, "llama2-convert: %s: cannot open: %s\n", paths[0], strerror(errno));
        return 1;
    }
    const int from_hf = S_ISDIR(st.st_mode);
    const int from_tokenizer_json = !from_hf && !to && ends_with(paths[0], ".json");
    const int from_sentencepiece = !from_hf && !to && !from_tokenizer_json && looks_like_sentencepiece(paths[0]);
    if ((to || tokenizer || dtype_name) && from_hf)
        return usage_error("%s", "--to, --tokenizer and --dtype are for a llama2.c source");
    if ((tokenizer || dtype_name) && !to) return usage_error("%s", "--tokenizer and --dtype go with --to hf");
    if (tokenizer_out && !from_hf) return usage_error("%s", "--tokenizer-out is for a Hugging Face folder source");
    if (to && (version >= 0 || group_size >= 0))
        return usage_error("%s", "--version and --group-size are for llama2.c outputs, not --to hf");
    if ((from_sentencepiece || from_tokenizer_json) && (version >= 0 || group_size >= 0))
        return usage_error("%s", "--version and --group-size are for checkpoints, not tokenizers");
    if (!from_hf && !from_sentencepiece && !from_tokenizer_json && !to && version < 0)
        return usage_error("%s", "a llama2.c source needs --to hf or --version");
    if (group_size > 0 && version != 2) return usage_error("%s", "--group-size goes with --version 2");

    l2_convert_options options = {0};
    options.version = version < 0 ? 0 : version;
    options.group_size = group_size < 0 ? 0 : group_size;
    options.output_flags = output_flags;
    options.tokenizer = from_hf ? tokenizer_out : tokenizer;
    options.dtype = !dtype_name || strcmp(dtype_name, "f32") == 0 ? L2_DTYPE_F32
                    : strcmp(dtype_name, "bf16") == 0             ? L2_DTYPE_BF16
                                                                  : L2_DTYPE_F16;
    llama2_error err = {0};
    llama2_status s;
    if (from_hf)
        s = l2_convert_hf_to_llama2c(paths[0], paths[1], &options, &err);
    else if (from_sentencepiece)
        s = l2_convert_sentencepiece(paths[0], paths[1], output_flags, &err);
    else if (from_tokenizer_json)
        s = l2_convert_tokenizer_json(paths[0], paths[1], output_flags, &err);
    else if (to)
        s = l2_convert_llama2c_to_hf(paths[0], paths[1], &options, &err);
    else
        s = l2_convert_llama2c_version(paths[0], paths[1], &options, &err);
    if (s != LLAMA2_OK) {
        fprintf(stderr, "llama2-convert: %s\n", err.message);
        return 1;
    }
    if (to)
        fprintf(stderr, "llama2-convert: %s -> %s/ (Hugging Face, %s)\n", paths[0], paths[1],
                dtype_name ? dtype_name : "f32");
    else
        fprintf(stderr, "llama2-convert: %s -> %s (%lld bytes)\n", paths[0], paths[1], tool_file_size(paths[1]));
    return 0;
}
