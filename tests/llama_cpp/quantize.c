/*
 * llama.cpp's quantizer (llama_model_quantize, no importance matrix), for
 * the parity test (tests/test_gguf.c): built by setup.sh against the
 * llama.cpp that node-llama-cpp carries, never by the project's Makefile.
 *
 *   quantize <backend-dir> <in.gguf> <out.gguf> <ftype> [pure]
 *
 * ftype is llama.cpp's file type number (14: Q4_K_S, 15: Q4_K_M, 18:
 * Q6_K); "pure" gives every matrix the file type's base type (Q4_K_S:
 * Q4_K everywhere), as llama-quantize --pure.
 */
#include <stdio.h>
#include <stdlib.h>

#include "llama.h"

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: quantize <backend-dir> <in.gguf> <out.gguf> <ftype> [pure]\n");
        return 2;
    }
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    llama_model_quantize_params params = llama_model_quantize_default_params();
    params.ftype = (enum llama_ftype)atoi(argv[4]);
    params.nthread = 1;
    params.pure = argc == 6;
    const uint32_t status = llama_model_quantize(argv[2], argv[3], &params);
    llama_backend_free();
    if (status != 0) fprintf(stderr, "quantize: %s: llama_model_quantize failed (%u)\n", argv[2], (unsigned)status);
    return status == 0 ? 0 : 1;
}
