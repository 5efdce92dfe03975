/*
 * llama2: run Llama-2-architecture models stored in llama2.c's checkpoint
 * format, with llama2.c's tokenizer and sampler, as a C11 library.
 *
 * Every value here (model, tokenizer, sampler, thread pool, session) is owned
 * by the caller; nothing is global. No function prints or exits: each one that
 * can fail returns a llama2_status and, when `err` is not NULL, fills it with a
 * one-line message that does not name the file (the caller knows it).
 */
#ifndef LLAMA2_H
#define LLAMA2_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLAMA2_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

typedef enum llama2_status {
    LLAMA2_OK = 0,
    LLAMA2_E_IO,          /* a file could not be opened, read or mapped */
    LLAMA2_E_FORMAT,      /* a file is not a valid checkpoint or tokenizer */
    LLAMA2_E_UNSUPPORTED, /* valid, but not something this build runs */
    LLAMA2_E_NOMEM,       /* an allocation failed or would be too large */
    LLAMA2_E_INVALID,     /* the caller passed a bad argument */
    LLAMA2_E_CONTEXT,     /* the tokens do not fit the context window */
} llama2_status;

typedef struct llama2_error {
    llama2_status status;
    char message[256];
} llama2_error;

/* A short fixed description of a status code ("bad file format", ...). */
const char *llama2_status_string(llama2_status status);

/* ---------------------------------------------------------------- model */

typedef enum llama2_weight_type {
    LLAMA2_WEIGHTS_F32 = 0, /* llama2.c legacy (v0) and version 1 files */
    LLAMA2_WEIGHTS_Q8_0 = 1 /* llama2.c version 2: int8 with an fp32 scale per group */
} llama2_weight_type;

typedef struct llama2_config {
    int dim;               /* width of the residual stream */
    int hidden_dim;        /* width of the feed-forward layer */
    int n_layers;
    int n_heads;           /* query heads */
    int n_kv_heads;        /* key/value heads (grouped-query attention) */
    int vocab_size;
    int seq_len;           /* context window, in positions */
    int shared_classifier; /* 1: the classifier is the embedding table */
    int file_version;      /* 0 (legacy), 1 or 2 */
    int group_size;        /* values per scale for Q8_0, else 0 */
    llama2_weight_type weight_type;
    float rope_theta;      /* RoPE base frequency (llama2.c: 10000) */
    float norm_eps;        /* RMSNorm epsilon (llama2.c: 1e-5) */
} llama2_config;

typedef struct llama2_model llama2_model;

typedef struct llama2_model_options {
    int no_mmap; /* 1: read the file into memory instead of mapping it */
} llama2_model_options;

/* Opens and validates a checkpoint; the format is read from the file itself.
 * `options` may be NULL for the defaults (mmap). */
llama2_status llama2_model_open(const char *path, const llama2_model_options *options,
                                llama2_model **out, llama2_error *err);
void llama2_model_close(llama2_model *model);
const llama2_config *llama2_model_config(const llama2_model *model);

/* ---------------------------------------------------------- thread pool */

typedef struct llama2_threadpool llama2_threadpool;

/* A pool of n_threads workers (the caller's thread counts as one of them):
 * created once, reused for every product. n_threads <= 0 means the number of
 * online processors. */
llama2_status llama2_threadpool_create(int n_threads, llama2_threadpool **out, llama2_error *err);
void llama2_threadpool_destroy(llama2_threadpool *pool);
int llama2_threadpool_size(const llama2_threadpool *pool);

/* -------------------------------------------------------------- session */

/* A session is the run state of one conversation with a model: the KV cache
 * and the activation buffers, allocated once. */
typedef struct llama2_session llama2_session;

typedef struct llama2_session_options {
    llama2_threadpool *pool; /* NULL: run on the calling thread only */
    int batch_size;          /* prompt tokens per block; <= 0: the default */
    const char *backend;     /* "cpu" (NULL: the default), "blas", "cuda" */
    int context_length;      /* KV positions of the session; 0: the model's seq_len */
} llama2_session_options;

/* The name of the index-th backend compiled into this build ("cpu" first),
 * NULL past the last. */
const char *llama2_backend_name(int index);

#define LLAMA2_DEFAULT_BATCH 128

llama2_status llama2_session_create(const llama2_model *model, const llama2_session_options *options,
                                    llama2_session **out, llama2_error *err);
void llama2_session_destroy(llama2_session *session);
const llama2_model *llama2_session_model(const llama2_session *session);
/* The positions the session holds: options->context_length, or seq_len. */
int llama2_session_context_length(const llama2_session *session);

/* Runs the model over tokens[0..n_tokens) at positions pos, pos+1, ... and
 * returns in *logits the vocab_size scores that follow the last of them
 * (owned by the session, valid until the next call). Blocks of the prompt are
 * processed together; the KV cache is filled for every position. */
llama2_status llama2_session_eval(llama2_session *session, const int *tokens, int n_tokens, int pos,
                                  float **logits, llama2_error *err);

/* As llama2_session_eval, but with the logits after every position: calls
 * on_logits(user, i, logits) for i = 0..n_tokens-1 in order (the logits may be
 * modified; they are valid during the call). */
typedef void (*llama2_logits_fn)(void *user, int index, float *logits);
llama2_status llama2_session_eval_all(llama2_session *session, const int *tokens, int n_tokens, int pos,
                                      llama2_logits_fn on_logits, void *user, llama2_error *err);

/* ------------------------------------------------------------ tokenizer */

typedef struct llama2_tokenizer llama2_tokenizer;

#define LLAMA2_TOKEN_BOS 1
#define LLAMA2_TOKEN_EOS 2

/* Loads a llama2.c tokenizer.bin with vocab_size entries (a file with fewer is
 * refused). vocab_size 0 reads every entry the file holds. */
llama2_status llama2_tokenizer_open(const char *path, int vocab_size, llama2_tokenizer **out,
                                    llama2_error *err);
/* The same, from bytes in memory (copied). */
llama2_status llama2_tokenizer_from_memory(const void *data, size_t size, int vocab_size,
                                           llama2_tokenizer **out, llama2_error *err);
void llama2_tokenizer_close(llama2_tokenizer *tokenizer);
int llama2_tokenizer_vocab_size(const llama2_tokenizer *tokenizer);

/* The most ids that encoding text_len bytes can give (BOS, EOS included). */
size_t llama2_tokenize_capacity(size_t text_len);

/* Encodes NUL-terminated text exactly as llama2.c does: optional BOS, a
 * dummy-prefix space for non-empty text, UTF-8 characters looked up whole or
 * spelled as byte tokens (id = byte + 3), then greedy merges by score.
 * `ids` must hold llama2_tokenize_capacity(strlen(text)) entries. */
llama2_status llama2_tokenize(const llama2_tokenizer *tokenizer, const char *text, int add_bos,
                              int add_eos, int *ids, int *n_ids, llama2_error *err);

/* The bytes of `token` as llama2.c decodes them after `prev_token`: the
 * leading space is dropped after BOS, and "<0xHH>" pieces are the byte HH.
 * Returns a pointer into the tokenizer and the length in *len. An id outside
 * the vocabulary gives an empty piece. */
const char *llama2_token_piece(const llama2_tokenizer *tokenizer, int prev_token, int token, size_t *len);

/* ---------------------------------------------------------- text filter */

/* Streams decoded bytes into printable text: complete UTF-8 characters pass
 * (so byte tokens that spell a character print it), control bytes other than
 * whitespace and bytes that form no valid character are dropped. */
typedef struct llama2_text_filter {
    unsigned char pending[4];
    int n_pending;
    int n_expected;
} llama2_text_filter;

void llama2_text_filter_init(llama2_text_filter *filter);
/* Writes at most n + 4 bytes to out; returns how many. */
size_t llama2_text_filter_push(llama2_text_filter *filter, const char *in, size_t n, char *out);

/* -------------------------------------------------------------- sampler */

typedef struct llama2_sampler llama2_sampler;

/* temperature 0 is argmax; otherwise softmax(logits / temperature) and, for
 * 0 < topp < 1, nucleus sampling; seed drives llama2.c's xorshift generator. */
llama2_status llama2_sampler_create(int vocab_size, float temperature, float topp, uint64_t seed,
                                    llama2_sampler **out, llama2_error *err);
void llama2_sampler_destroy(llama2_sampler *sampler);
/* Picks the next token; overwrites logits with probabilities. */
int llama2_sampler_sample(llama2_sampler *sampler, float *logits);
/* Advances the generator as one sample would, without logits (so a caller
 * that skips a sample llama2.c would take keeps its random sequence). */
void llama2_sampler_skip(llama2_sampler *sampler);

/* ------------------------------------------------- generation and chat */

/* How a generation loop talks to its caller. */
typedef struct llama2_io {
    void *user;
    /* Text to show, already filtered; called as each token is decoded. */
    void (*write)(void *user, const char *text, size_t len);
    /* Reads one line of input without its newline into a buffer the caller
     * of llama2_chat frees with free(); returns 0 at the end of input. */
    int (*read_line)(void *user, char **line);
} llama2_io;

typedef struct llama2_stats {
    int prompt_tokens;       /* positions fed from the prompt (BOS included) */
    int generated_tokens;    /* tokens sampled */
    int positions;           /* positions run through the model */
    double prompt_seconds;   /* time spent on prompt blocks */
    double generate_seconds; /* time spent generating */
    double seconds_after_first; /* llama2.c's timer: from the end of the first position */
    int context_full;        /* 1: chat stopped because the context window filled */
} llama2_stats;

/* llama2.c's generate(): prints the prompt and then sampled tokens until
 * `steps` positions (BOS included) or a sampled BOS, then a newline. */
llama2_status llama2_generate(llama2_session *session, const llama2_tokenizer *tokenizer,
                              llama2_sampler *sampler, const char *prompt, int steps,
                              const llama2_io *io, llama2_stats *stats, llama2_error *err);

/* llama2.c's chat(): the Llama 2 chat template, turns read through io when
 * system_prompt / user_prompt are NULL; ends at `steps` positions or at the
 * end of input. */
llama2_status llama2_chat(llama2_session *session, const llama2_tokenizer *tokenizer,
                          llama2_sampler *sampler, const char *system_prompt,
                          const char *user_prompt, int steps, const llama2_io *io,
                          llama2_stats *stats, llama2_error *err);

/* A monotonic clock, in seconds. */
double llama2_time_seconds(void);

#ifdef __cplusplus
}
#endif

#endif
