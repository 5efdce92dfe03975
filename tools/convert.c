/*
 * llama2-convert: Hugging Face Llama models to llama2.c checkpoints and
 * back, SentencePiece tokenizers to tokenizer.bin, and llama2.c files from
 * one version of the format to another. What the source is comes from the
 * source itself (its first bytes, l2_convert_source_kind): a folder is a
 * Hugging Face model; a file is a llama2.c checkpoint, a SentencePiece
 * model or a Hugging Face tokenizer.json.
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
#include "messages.h"
#include "tool_args.h"

static const char usage_text[] =
    "Usage: llama2-convert <hf-folder> <out.bin> [--format-version 0|1|2] [--group-size N]\n"
    "                      [--tokenizer-out tokenizer.bin] [--force]\n"
    "       llama2-convert <tokenizer.model> <tokenizer.bin> [--force]\n"
    "       llama2-convert <tokenizer.json> <tokenizer.bin> [--force]\n"
    "       llama2-convert <model.bin> <out-folder> --to hf [--tokenizer tokenizer.bin]\n"
    "                      [--dtype f32|bf16|f16] [--force]\n"
    "       llama2-convert <model.bin> <out.bin> --format-version 0|1|2 [--group-size N] [--force]\n"
    "       llama2-convert --version\n"
    "\n"
    "Converts a Hugging Face Llama model (config.json and safetensors weights in\n"
    "F32, F16 or BF16) to a llama2.c checkpoint; a SentencePiece tokenizer.model to\n"
    "llama2.c's tokenizer.bin; a Hugging Face tokenizer.json (Llama 3's byte-level\n"
    "BPE, with BOS and EOS from tokenizer_config.json beside it) to the engine's BPE\n"
    "tokenizer file; a llama2.c checkpoint to a Hugging Face folder; or a llama2.c\n"
    "checkpoint to another version of the format. Memory use stays far below the\n"
    "model's size.\n"
    "\n"
    "  --format-version V   llama2.c output: 0 legacy fp32 (default), 1 fp32, 2 int8\n"
    "                       (--version V, its former spelling, still works)\n"
    "  --group-size N       values per scale for --format-version 2 (default: the\n"
    "                       largest size up to 64 dividing dim and hidden_dim)\n"
    "  --tokenizer-out F    also write the folder's tokenizer.model as tokenizer.bin F\n"
    "                       (without one, its tokenizer.json as a BPE tokenizer)\n"
    "  --to hf              write a Hugging Face folder (config.json, model.safetensors)\n"
    "  --tokenizer F        with --to hf: tokenizer.bin F becomes tokenizer.model\n"
    "                       (a BPE tokenizer file: tokenizer.json, tokenizer_config.json)\n"
    "  --dtype T            with --to hf: f32 (default), bf16 or f16 weights\n"
    "  --force              replace outputs that exist (never an input)\n"
    "  -h, --help           this text\n"
    "  --version            the program's version\n";

static int usage_error(const char *fmt, const char *arg) { return cli_usage_error("llama2-convert", fmt, arg); }

/* A value that reads as a number, for --version's former meaning: digits,
 * with a sign. */
static int looks_like_number(const char *s) {
    if (*s == '-' || *s == '+') s++;
    return *s >= '0' && *s <= '9';
}

/* The command line. */
typedef struct convert_args {
    const char *paths[2];
    int n_paths;
    const char *to, *dtype_name, *tokenizer, *tokenizer_out;
    int version, group_size; /* -1: not given */
    unsigned output_flags;
    const char *version_flag; /* as typed: the former spelling of --format-version is --version */
} convert_args;

/* Parses argv into *c. Returns -1 to go on, or the exit status (--help: 0,
 * a usage error: 2, said). */
static int parse_args(int argc, char **argv, convert_args *c) {
    *c = (convert_args){.version = -1, .group_size = -1, .version_flag = "--format-version"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* --version alone is the program's version, as for every program;
         * followed by a number it is --format-version's former spelling. */
        if (strcmp(a, "--version") == 0 && !(i + 1 < argc && looks_like_number(argv[i + 1]))) {
            printf("llama2-convert %s\n", LLAMA2_VERSION);
            return 0;
        }
        static const char *const valued[] = {"--format-version", "--version", "--group-size", "--to",
                                             "--dtype",          "--tokenizer", "--tokenizer-out"};
        const char *value = NULL;
        int which = -1;
        for (int k = 0; k < 7 && which < 0; k++)
            if (tool_option_value(argc, argv, &i, valued[k], &value)) which = k;
        if (which >= 0 && !value) return usage_error("%s needs a value", valued[which]);
        if (which == 0 || which == 1) {
            c->version_flag = valued[which];
            which = 0;
        } else if (which > 1) {
            which--;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "--force") == 0) {
            c->output_flags |= L2_OUTPUT_FORCE;
        } else if (which == 0) {
            if (tool_int_value("llama2-convert", c->version_flag, value, 0, 2, "the format version must be 0, 1 or 2",
                               &c->version) != 0)
                return 2;
        } else if (which == 1) {
            if (tool_int_value("llama2-convert", "--group-size", value, 1, INT_MAX,
                               "the group size must be a positive integer", &c->group_size) != 0)
                return 2;
        } else if (which == 2) {
            if (strcmp(value, "hf") != 0) return usage_error("--to: '%s' is not a known target (hf)", value);
            c->to = value;
        } else if (which == 3) {
            c->dtype_name = value;
            if (strcmp(value, "f32") != 0 && strcmp(value, "bf16") != 0 && strcmp(value, "f16") != 0)
                return usage_error("--dtype: '%s' is not f32, bf16 or f16", value);
        } else if (which == 4) {
            c->tokenizer = value;
        } else if (which == 5) {
            c->tokenizer_out = value;
        } else if (tool_file_argument("llama2-convert", a, c->paths, &c->n_paths) != 0) {
            return 2;
        }
    }
    if (c->n_paths < 2)
        return usage_error("%s", c->n_paths == 0 ? "missing the source and the output" : "missing the output");
    return -1;
}

/* The options that go together with what the source is. Returns -1, or a
 * usage error's status (said). */
static int check_combination(const convert_args *c, int from_hf, int from_tokenizer) {
    if ((c->to || c->tokenizer || c->dtype_name) && from_hf)
        return usage_error("%s", "--to, --tokenizer and --dtype are for a llama2.c source");
    if ((c->tokenizer || c->dtype_name) && !c->to) return usage_error("%s", "--tokenizer and --dtype go with --to hf");
    if (c->tokenizer_out && !from_hf) return usage_error("%s", "--tokenizer-out is for a Hugging Face folder source");
    if (c->to && (c->version >= 0 || c->group_size >= 0))
        return usage_error("%s", "--format-version and --group-size are for llama2.c outputs, not --to hf");
    if (from_tokenizer && (c->version >= 0 || c->group_size >= 0))
        return usage_error("%s", "--format-version and --group-size are for checkpoints, not tokenizers");
    if (!from_hf && !from_tokenizer && !c->to && c->version < 0)
        return usage_error("%s", "a llama2.c source needs --to hf or --format-version");
    if (c->group_size > 0 && c->version != 2) return usage_error("%s", "--group-size goes with --format-version 2");
    return -1;
}

int main(int argc, char **argv) {
    l2_program_start(&argc, &argv);
    convert_args c;
    int rc = parse_args(argc, argv, &c);
    if (rc >= 0) return rc;
    const char *const *paths = c.paths;
    struct stat st;
    if (stat(paths[0], &st) != 0) {
        fprintf(stderr, "llama2-convert: %s: cannot open: %s\n", paths[0], strerror(errno));
        return 1;
    }
    /* What the source is, from its first bytes: it is opened once, by the
     * conversion. */
    const l2_source_kind kind = S_ISDIR(st.st_mode) ? L2_SOURCE_HF_FOLDER : l2_convert_source_kind(paths[0]);
    if (kind == L2_SOURCE_SAFETENSORS || kind == L2_SOURCE_TOKENIZER_BIN) {
        fprintf(stderr, "llama2-convert: %s: %s\n", paths[0],
                kind == L2_SOURCE_SAFETENSORS
                    ? "is one safetensors file: convert the Hugging Face folder that holds it and its config.json"
                    : "is a llama2.c tokenizer.bin already: convert the SentencePiece tokenizer.model it came from");
        return 1;
    }
    const int from_hf = kind == L2_SOURCE_HF_FOLDER;
    const int from_sentencepiece = kind == L2_SOURCE_SENTENCEPIECE && !c.to;
    const int from_tokenizer_json = kind == L2_SOURCE_TOKENIZER_JSON && !c.to;
    if ((rc = check_combination(&c, from_hf, from_sentencepiece || from_tokenizer_json)) >= 0) return rc;

    l2_convert_options options = {0};
    options.version = c.version < 0 ? 0 : c.version;
    options.group_size = c.group_size < 0 ? 0 : c.group_size;
    options.output_flags = c.output_flags;
    options.tokenizer = from_hf ? c.tokenizer_out : c.tokenizer;
    options.dtype = !c.dtype_name || strcmp(c.dtype_name, "f32") == 0 ? L2_DTYPE_F32
                    : strcmp(c.dtype_name, "bf16") == 0               ? L2_DTYPE_BF16
                                                                      : L2_DTYPE_F16;
    llama2_error err = {0};
    llama2_status s;
    if (from_hf)
        s = l2_convert_hf_to_llama2c(paths[0], paths[1], &options, &err);
    else if (from_sentencepiece)
        s = l2_convert_sentencepiece(paths[0], paths[1], c.output_flags, &err);
    else if (from_tokenizer_json)
        s = l2_convert_tokenizer_json(paths[0], paths[1], c.output_flags, &err);
    else if (c.to)
        s = l2_convert_llama2c_to_hf(paths[0], paths[1], &options, &err);
    else
        s = l2_convert_llama2c_version(paths[0], paths[1], &options, &err);
    if (s != LLAMA2_OK) {
        fprintf(stderr, "llama2-convert: %s\n", err.message);
        return 1;
    }
    if (c.to)
        fprintf(stderr, "llama2-convert: %s -> %s/ (Hugging Face, %s)\n", paths[0], paths[1],
                c.dtype_name ? c.dtype_name : "f32");
    else
        fprintf(stderr, "llama2-convert: %s -> %s (%lld bytes)\n", paths[0], paths[1], tool_file_size(paths[1]));
    return 0;
}
