/*
 * The smallest program that generates text with the llama2 library: a model,
 * its tokenizer, a session and a greedy sampler, then one llama2_generate.
 *
 *   cc generate.c -o generate $(pkg-config --cflags --libs llama2)
 *   ./generate stories15M.bin tokenizer.bin "Once upon a time" 64
 *
 * It prints what llama2.c's `run model -t 0 -n STEPS -i PROMPT` prints.
 */
#include <stdio.h>
#include <stdlib.h>

#include <llama2.h>

/* The library hands text to this callback as it is decoded. */
static int write_stdout(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0; /* non-zero would stop the generation */
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER PROMPT [STEPS]\n", argv[0]);
        return 2;
    }
    llama2_error err = {0};
    llama2_model *model = NULL;
    llama2_tokenizer *tokenizer = NULL;
    llama2_session *session = NULL;
    llama2_sampler *sampler = NULL;
    llama2_generate_options options = {.steps = argc == 5 ? atoi(argv[4]) : 256};
    llama2_io io = {.write = write_stdout};
    llama2_sampler_options greedy = {.temperature = 0}; /* a zeroed struct: the most likely token */

    /* Each call returns LLAMA2_OK or fills err with a one-line message. */
    if (llama2_model_open(argv[1], NULL, &model, &err) == LLAMA2_OK &&
        llama2_tokenizer_open(argv[2], llama2_model_config(model)->vocab_size, &tokenizer, &err) == LLAMA2_OK &&
        llama2_session_create(model, NULL, &session, &err) == LLAMA2_OK &&
        llama2_sampler_create(llama2_model_config(model)->vocab_size, &greedy, &sampler, &err) == LLAMA2_OK)
        llama2_generate(session, tokenizer, sampler, argv[3], &options, &io, NULL, &err);

    /* Destroy in the reverse order of creation; each accepts NULL. */
    llama2_sampler_destroy(sampler);
    llama2_session_destroy(session);
    llama2_tokenizer_close(tokenizer);
    llama2_model_close(model);
    if (err.status != LLAMA2_OK) {
        fprintf(stderr, "generate: %s\n", err.message);
        return 1;
    }
    return 0;
}
