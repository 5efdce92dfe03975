/*
 * libFuzzer target: the command-line parser. The input is split on NUL
 * bytes into arguments after argv[0] = "llama2" and handed to cli_parse.
 *
 * Checks: the result is 0 or 2; a usage error has a non-empty one-line
 * message; a success has a checkpoint (unless --help or --version) and
 * every value in the range the program relies on. The parse is repeated
 * with message buffers of 0 and 7 bytes (allocated to size, so that the
 * sanitizer sees any overrun) and must give the same result.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

#define MAX_ARGS 256

static void check_success(const cli_args *a) {
    if (a->help || a->version) return;
    if (!a->checkpoint || !a->tokenizer) abort();
    if (!(a->temperature >= 0.0f) || !isfinite(a->temperature)) abort();
    if (!(a->topp >= 0.0f && a->topp <= 1.0f)) abort();
    if (a->steps < 0 || a->threads < 0 || a->threads > 1024 || a->batch < 0) abort();
    if (a->mode != CLI_GENERATE && a->mode != CLI_CHAT) abort();
    if (a->top_k < 0 || !(a->min_p >= 0.0f && a->min_p <= 1.0f) || !(a->repeat_penalty > 0.0f)) abort();
    if (a->repeat_last_n < -1 || a->context_length < 0 || a->reply_tokens < 0) abort();
    if (!isfinite(a->presence_penalty) || !isfinite(a->frequency_penalty)) abort();
    if (a->n_stops < 0 || a->n_stops > CLI_MAX_STOPS || (a->prompt && a->prompt_file)) abort();
    for (int i = 0; i < a->n_stops; i++)
        if (!a->stops[i] || !a->stops[i][0]) abort();
    if (!llama2_chat_template_name(a->chat_template)) abort();
    /* What main hands the library must be accepted by it. */
    llama2_sampler_options o = cli_sampler_options(a, 512);
    llama2_sampler *s = NULL;
    llama2_error err;
    if (llama2_sampler_create(16, &o, &s, &err) != LLAMA2_OK) abort();
    llama2_sampler_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    char **argv = malloc((MAX_ARGS + 2) * sizeof *argv);
    if (!copy || !argv) abort();
    memcpy(copy, data, size);
    copy[size] = '\0';
    int argc = 0;
    argv[argc++] = "llama2";
    for (size_t at = 0; at <= size && argc <= MAX_ARGS;) {
        argv[argc++] = copy + at;
        at += strlen(copy + at) + 1;
    }
    argv[argc] = NULL;

    cli_args a;
    char msg[512];
    int rc = cli_parse(argc, argv, &a, msg, sizeof msg);
    if (rc == 0) {
        check_success(&a);
    } else if (rc == 2) {
        size_t len = strlen(msg);
        if (len == 0 || strchr(msg, '\n')) {
            fprintf(stderr, "fuzz_args: usage error without a one-line message: '%s'\n", msg);
            abort();
        }
    } else {
        fprintf(stderr, "fuzz_args: cli_parse returned %d\n", rc);
        abort();
    }

    cli_args b;
    char *small = malloc(7);
    if (!small) abort();
    if (cli_parse(argc, argv, &b, small, 7) != rc) abort();
    if (rc == 2 && strlen(small) >= 7) abort();
    if (cli_parse(argc, argv, &b, small, 0) != rc) abort();
    free(small);
    free(argv);
    free(copy);
    return 0;
}
