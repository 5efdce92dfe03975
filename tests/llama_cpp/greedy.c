/*
 * llama.cpp's greedy continuation of a prompt given as token ids, for the
 * parity test (tests/test_gguf.c): built by setup.sh against the llama.cpp
 * that node-llama-cpp carries, never by the project's Makefile.
 *
 *   greedy <backend-dir> <model.gguf> <n_new> <id>...
 *
 * prints the n_new ids that follow, one a line: each the first largest
 * logit (llama2.c's argmax), no end-of-text stop.
 */
#include <stdio.h>
#include <stdlib.h>

#include "llama.h"

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: greedy <backend-dir> <model.gguf> <n_new> <id>...\n");
        return 2;
    }
    ggml_backend_load_all_from_path(argv[1]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(argv[2], mp);
    if (!model) {
        fprintf(stderr, "greedy: %s: cannot load\n", argv[2]);
        return 1;
    }
    const int n_new = atoi(argv[3]), n_prompt = argc - 4;
    llama_token *tokens = malloc((size_t)(n_prompt + 1) * sizeof *tokens);
    for (int i = 0; i < n_prompt; i++) tokens[i] = (llama_token)atoi(argv[4 + i]);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_new + 8);
    cp.n_batch = cp.n_ctx;
    cp.n_threads = cp.n_threads_batch = 1;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "greedy: cannot make a context\n");
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_batch batch = llama_batch_get_one(tokens, n_prompt);
    llama_token next = 0;
    for (int i = 0; i < n_new; i++) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "greedy: decode failed\n");
            return 1;
        }
        const float *logits = llama_get_logits_ith(ctx, -1);
        next = 0;
        for (int v = 1; v < n_vocab; v++)
            if (logits[v] > logits[next]) next = v;
        printf("%d\n", (int)next);
        batch = llama_batch_get_one(&next, 1);
    }
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(tokens);
    return 0;
}
