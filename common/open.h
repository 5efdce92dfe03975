/* What llama2 and llama2-server do at start from their usual flags: open
 * the checkpoint (checking --ctx), its tokenizer, a thread pool and a
 * session, and say which flag or file any failure is about. */
#ifndef LLAMA2_COMMON_OPEN_H
#define LLAMA2_COMMON_OPEN_H

#include <stddef.h>

#include "llama2.h"

typedef struct cli_open_options {
    const char *program;     /* for the --threads warning */
    const char *checkpoint;
    const char *tokenizer;   /* -z */
    int tokenizer_given;     /* -z was typed: no hint to pass it */
    int no_mmap;             /* --no-mmap */
    int context_length;      /* --ctx, 0: the model's */
    int threads;             /* --threads, 0: the online processors */
    int small_model_threads; /* without --threads, the threads of a model under 1M parameters (0: as any other) */
    const char *threads_culprit; /* what a failure to start the threads is about */
    int batch;               /* the session's block, 0: the library's default */
    int n_sequences;         /* the session's sequences, 0: one */
    const char *backend;     /* --backend, NULL: cpu */
    /* Called once the model and tokenizer are open, before the threads and
     * the session (whose KV cache may be large): a non-zero return is the
     * exit status, with *culprit and err->message set by it. NULL: none. */
    int (*before_session)(void *user, const llama2_model *model, const char **culprit, llama2_error *err);
    void *user;
} cli_open_options;

typedef struct cli_opened {
    llama2_model *model;
    llama2_tokenizer *tokenizer;
    llama2_threadpool *pool;
    llama2_session *session;
    const char *tokenizer_source; /* the file the tokenizer came from: -z's, or the model's own (GGUF) */
    /* Not an error: the tokenizer has more tokens than the model (only the
     * first vocab_size are used, as in llama2.c); "" when it has not. */
    char tokenizer_warning[768];
} cli_opened;

/* Opens all four (in *out, zeroed first). Returns 0; or the exit status,
 * 1 for a file or a failure, 2 for a flag, with *culprit (the file or flag
 * at fault) and the message in err, and nothing left open. A --threads
 * above the processors online is warned about on standard error. */
int cli_open(const cli_open_options *o, cli_opened *out, const char **culprit, llama2_error *err);

/* Closes what cli_open opened (any of it NULL). */
void cli_close(cli_opened *o);

/* The weights a configuration holds (the classifier when not shared). */
double cli_parameter_count(const llama2_config *c);

#endif
