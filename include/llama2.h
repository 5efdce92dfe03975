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

/* What the library exports: the functions below, and nothing else. It is
 * built with hidden visibility by default; LLAMA2_API marks each public
 * function visible (a program that includes this header is unaffected). A
 * build may define LLAMA2_API itself (empty, or a platform's own
 * attribute) before including this header. */
#ifndef LLAMA2_API
#if defined(__GNUC__)
#define LLAMA2_API __attribute__((visibility("default")))
#else
#define LLAMA2_API
#endif
#endif

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
LLAMA2_API const char *llama2_status_string(llama2_status status);

/* ---------------------------------------------------------------- model */

typedef enum llama2_weight_type {
    LLAMA2_WEIGHTS_F32 = 0, /* llama2.c legacy (v0) and version 1 files */
    LLAMA2_WEIGHTS_Q8_0 = 1, /* llama2.c version 2: int8 with an fp32 scale per group */
    /* GGUF files, used in place as ggml's blocks (a model's type: the first
     * of Q4_0, Q4_K, Q5_K, Q6_K, GGML_Q8_0 that one of its matrices has; its
     * matrices of other types are held in fp32). */
    LLAMA2_WEIGHTS_GGML_Q8_0 = 2, /* 32 int8 values and an fp16 scale a block */
    LLAMA2_WEIGHTS_Q4_0 = 3,      /* 32 4-bit values and an fp16 scale a block */
    LLAMA2_WEIGHTS_Q4_K = 4,      /* 256 4-bit values a block, 6-bit scales and mins per 32 */
    LLAMA2_WEIGHTS_Q6_K = 5,      /* 256 6-bit values a block, an 8-bit scale per 16 */
    LLAMA2_WEIGHTS_Q5_K = 6       /* 256 5-bit values a block, 6-bit scales and mins per 32 */
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
    /* RoPE scaling of type llama3 (Llama 3.1, 3.2), as Hugging Face computes
     * it: each frequency whose wavelength exceeds original_context /
     * low_freq_factor is divided by factor, those under original_context /
     * high_freq_factor are kept, those between are blended. factor 0: none. */
    float rope_scaling_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int rope_original_context; /* original_max_position_embeddings */
} llama2_config;

typedef struct llama2_model llama2_model;

typedef struct llama2_model_options {
    int no_mmap; /* 1: read the file into memory instead of mapping it */
} llama2_model_options;

/* Opens and validates a checkpoint; the format is read from the file itself.
 * `options` may be NULL for the defaults (mmap). */
LLAMA2_API llama2_status llama2_model_open(const char *path, const llama2_model_options *options,
                                           llama2_model **out, llama2_error *err);
/* Unmaps or frees the model; NULL is a no-op. */
LLAMA2_API void llama2_model_close(llama2_model *model);
LLAMA2_API const llama2_config *llama2_model_config(const llama2_model *model);
/* What the model file is, for people: "v0 fp32", "v1 fp32", "v2 int8
 * (Q8_0)", or for GGUF its version and the count of tensors of each type
 * ("GGUF v3: 9 F32 tensors"). */
LLAMA2_API const char *llama2_model_format(const llama2_model *model);
/* The kernel table the CPU backend runs this model with, chosen when it was
 * opened: the level's name (llama2_kernels_name), with "-exact" for int8
 * models, whose float steps keep llama2.c's order. */
LLAMA2_API const char *llama2_model_kernels_name(const llama2_model *model);

/* ---------------------------------------------------------- thread pool */

typedef struct llama2_threadpool llama2_threadpool;

/* A pool of n_threads workers (the caller's thread counts as one of them):
 * created once, reused for every product. n_threads <= 0 means the number of
 * online processors. */
LLAMA2_API llama2_status llama2_threadpool_create(int n_threads, llama2_threadpool **out, llama2_error *err);
/* Stops the workers and frees the pool; NULL is a no-op. */
LLAMA2_API void llama2_threadpool_destroy(llama2_threadpool *pool);
LLAMA2_API int llama2_threadpool_size(const llama2_threadpool *pool);

/* -------------------------------------------------------------- session */

/* A session is the run state of a model: a KV cache for each of its
 * sequences (independent conversations, each with its own positions) and
 * the activation buffers, allocated once. One thread at a time. */
typedef struct llama2_session llama2_session;

typedef struct llama2_session_options {
    llama2_threadpool *pool; /* NULL: run on the calling thread only */
    int batch_size;          /* rows (tokens) per block; <= 0: the default */
    const char *backend;     /* "cpu" (NULL: the default), "blas", "cuda" */
    int context_length;      /* cached positions per sequence; 0 or more than seq_len: seq_len */
    int n_sequences;         /* sequences (KV-cache regions); 0: 1 */
} llama2_session_options;

/* The name of the index-th backend compiled into this build ("cpu" first),
 * NULL past the last. */
LLAMA2_API const char *llama2_backend_name(int index);

#define LLAMA2_DEFAULT_BATCH 128

/* Creates a session of `model` (which must outlive it); `options` may be
 * NULL for the defaults. Allocates the whole KV cache: n_sequences *
 * context_length positions. Refuses (LLAMA2_E_NOMEM) a cache larger than the
 * machine's memory, (LLAMA2_E_UNSUPPORTED) a backend not compiled in or not
 * usable here, (LLAMA2_E_INVALID) a negative context_length or n_sequences. */
LLAMA2_API llama2_status llama2_session_create(const llama2_model *model, const llama2_session_options *options,
                                               llama2_session **out, llama2_error *err);
/* Frees the session; NULL is a no-op. */
LLAMA2_API void llama2_session_destroy(llama2_session *session);
/* The model the session was created with. */
LLAMA2_API const llama2_model *llama2_session_model(const llama2_session *session);
/* The positions cached per sequence (context_length as resolved). */
LLAMA2_API int llama2_session_context_length(const llama2_session *session);
/* The number of sequences. */
LLAMA2_API int llama2_session_sequences(const llama2_session *session);

/* Runs the model over tokens[0..n_tokens) of sequence 0 at positions pos,
 * pos+1, ... and returns in *logits the vocab_size scores that follow the
 * last of them (owned by the session, valid until the next call). Blocks of
 * the prompt are processed together; the KV cache is filled for every
 * position. As in llama2.c the positions before pos are not checked: they
 * hold whatever was cached there. Positions past the context are
 * LLAMA2_E_CONTEXT; token ids outside the vocabulary LLAMA2_E_INVALID. */
LLAMA2_API llama2_status llama2_session_eval(llama2_session *session, const int *tokens, int n_tokens, int pos,
                                             float **logits, llama2_error *err);

/* As llama2_session_eval, but with the logits after every position: calls
 * on_logits(user, i, logits) for i = 0..n_tokens-1 in order (the logits may be
 * modified; they are valid during the call). */
typedef void (*llama2_logits_fn)(void *user, int index, float *logits);
LLAMA2_API llama2_status llama2_session_eval_all(llama2_session *session, const int *tokens, int n_tokens, int pos,
                                                 llama2_logits_fn on_logits, void *user, llama2_error *err);

/* One row of a batch: `token` at `position` of `sequence`. */
typedef struct llama2_batch_row {
    int sequence; /* 0 .. n_sequences - 1 */
    int position; /* 0 .. context_length - 1 */
    int token;
    int logits;   /* non-zero: return the scores that follow this row */
} llama2_batch_row;

/* Evaluates rows[0..n_rows) of any sequences in one pass over the weights
 * per block of batch_size rows (continuous batching: every active sequence
 * advances together). The rows of one sequence continue it: in row order
 * their positions are p, p + 1, ..., with p at most the positions it has
 * cached (llama2_session_sequence_length), so a sequence can be extended or
 * rewound, never left with a gap. For each row that asks, vocab_size scores
 * are written to `logits` (NULL when none asks), one row after the other in
 * row order. A row's scores are the same bits whatever else is in the batch
 * (other sequences, the block size, its place, the thread count) on the cpu
 * backend. Everything is checked before anything runs: LLAMA2_E_INVALID for
 * a bad sequence, token or order, LLAMA2_E_CONTEXT for a position past the
 * context, and then nothing has changed; on a failure while running (a
 * backend's), each sequence of the rows keeps only the positions before its
 * first row. */
LLAMA2_API llama2_status llama2_session_eval_batch(llama2_session *session, const llama2_batch_row *rows, int n_rows,
                                                   float *logits, llama2_error *err);

/* The positions cached for `sequence` (0 for a bad index): the next
 * position a batch may give it, at most. */
LLAMA2_API int llama2_session_sequence_length(const llama2_session *session, int sequence);

/* Forgets every position of `sequence` (nothing is cleared in memory: the
 * positions are simply no longer cached). */
LLAMA2_API llama2_status llama2_session_clear_sequence(llama2_session *session, int sequence, llama2_error *err);

/* Keeps the first n_positions cached positions of `sequence` and forgets
 * the rest, so that a sequence whose tokens begin as a new request's do can
 * be continued after that common prefix (a prompt cache) instead of
 * evaluated again. n_positions may not exceed what it has cached
 * (LLAMA2_E_INVALID); nothing is cleared in memory. */
LLAMA2_API llama2_status llama2_session_trim_sequence(llama2_session *session, int sequence, int n_positions,
                                                      llama2_error *err);

/* The bytes that n_positions positions of a sequence's cache take outside
 * the session (llama2_session_read_sequence). */
LLAMA2_API size_t llama2_session_sequence_bytes(const llama2_session *session, int n_positions);
/* Copies the first n_positions cached positions of `sequence` into buf
 * (llama2_session_sequence_bytes(n_positions) bytes), so that a cache can
 * be kept outside the session and given back later
 * (llama2_session_write_sequence) to the same session or one of the same
 * model. n_positions may not exceed what it has cached (LLAMA2_E_INVALID);
 * a backend that keeps the cache on its device (cuda) is
 * LLAMA2_E_UNSUPPORTED. */
LLAMA2_API llama2_status llama2_session_read_sequence(const llama2_session *session, int sequence, int n_positions,
                                                      void *buf, llama2_error *err);
/* Makes the n_positions positions in buf (as read_sequence wrote them) the
 * cache of `sequence`, which forgets what it had. More positions than the
 * context is LLAMA2_E_INVALID; a device backend LLAMA2_E_UNSUPPORTED. */
LLAMA2_API llama2_status llama2_session_write_sequence(llama2_session *session, int sequence, int n_positions,
                                                       const void *buf, llama2_error *err);

/* Makes the first n_positions cached positions of `src` the cache of `dst`
 * (a copy: the two then continue independently), so that several sequences
 * share a prompt evaluated once. dst forgets what it had. n_positions may
 * not exceed what src has cached (LLAMA2_E_INVALID). */
LLAMA2_API llama2_status llama2_session_copy_sequence(llama2_session *session, int dst, int src, int n_positions,
                                                      llama2_error *err);

/* ------------------------------------------------------------ tokenizer */

typedef struct llama2_tokenizer llama2_tokenizer;

#define LLAMA2_TOKEN_BOS 1
#define LLAMA2_TOKEN_EOS 2

/* Loads a llama2.c tokenizer.bin with vocab_size entries (a file with fewer is
 * refused). vocab_size 0 reads every entry the file holds. */
LLAMA2_API llama2_status llama2_tokenizer_open(const char *path, int vocab_size, llama2_tokenizer **out,
                                               llama2_error *err);
/* The same, from bytes in memory (copied). */
LLAMA2_API llama2_status llama2_tokenizer_from_memory(const void *data, size_t size, int vocab_size,
                                                      llama2_tokenizer **out, llama2_error *err);
/* The tokenizer a model file carries (a GGUF file's tokenizer.ggml.*: a
 * SentencePiece one read as llama2.c's export of the same model would write
 * it, or a byte-level BPE one, "gpt2"), as a new tokenizer the caller closes. LLAMA2_E_UNSUPPORTED when the file
 * carries none (llama2.c checkpoints: open their tokenizer.bin). */
LLAMA2_API llama2_status llama2_model_tokenizer(const llama2_model *model, llama2_tokenizer **out,
                                                llama2_error *err);
/* Frees the tokenizer; NULL is a no-op. */
LLAMA2_API void llama2_tokenizer_close(llama2_tokenizer *tokenizer);
LLAMA2_API int llama2_tokenizer_vocab_size(const llama2_tokenizer *tokenizer);

/* llama2_tokenizer_open reads both kinds of file: llama2.c's tokenizer.bin
 * (SentencePiece pieces with scores) and the byte-level BPE file that
 * llama2-convert makes from a Hugging Face tokenizer.json (Llama 3;
 * docs/FORMAT.md). A BPE file may have fewer tokens than vocab_size. */
typedef enum llama2_tokenizer_kind {
    LLAMA2_TOKENIZER_LLAMA2C = 0,
    LLAMA2_TOKENIZER_BPE = 1
} llama2_tokenizer_kind;

LLAMA2_API llama2_tokenizer_kind llama2_tokenizer_get_kind(const llama2_tokenizer *tokenizer);
/* The BOS and EOS ids (llama2.c: 1 and 2; BPE: the file's, EOS being the
 * first of its end tokens), -1 when the tokenizer has none. */
LLAMA2_API int llama2_tokenizer_bos(const llama2_tokenizer *tokenizer);
LLAMA2_API int llama2_tokenizer_eos(const llama2_tokenizer *tokenizer);
/* Whether a chat reply ends at `token`: EOS, and for BPE each of its end
 * tokens (Llama 3: <|end_of_text|>, <|eot_id|>, <|eom_id|>). */
LLAMA2_API int llama2_tokenizer_is_end(const llama2_tokenizer *tokenizer, int token);
/* Whether `token` is a control token, hidden in output unless asked for
 * (llama2.c: ids 0-2; BPE: the special tokens). */
LLAMA2_API int llama2_tokenizer_is_special(const llama2_tokenizer *tokenizer, int token);
/* The id of the token whose bytes are `piece` (special tokens included), -1
 * when there is none. */
LLAMA2_API int llama2_tokenizer_find(const llama2_tokenizer *tokenizer, const char *piece);

/* A byte-level BPE vocabulary as Hugging Face's tokenizer.json and GGUF
 * (tokenizer.ggml.model "gpt2") spell it: the GGUF reader builds one from
 * tokenizer.ggml.tokens, .merges, .token_type, .pre and the BOS/EOS/EOT ids. */
typedef struct llama2_bpe_vocab {
    int n_tokens;
    const char *const *tokens;  /* NUL-terminated: normal tokens in GPT-2's byte-to-unicode
                                   characters ("\u0120the"), the others as plain text */
    const int *token_types;     /* GGUF's numbers: 1 normal, 3 control (special: matched in text
                                   only when asked, hidden in output), 4 user-defined (added text,
                                   always matched whole); NULL: all normal */
    int n_merges;
    const char *const *merges;  /* "left right" in the tokens' characters, by rank (first = merged first) */
    const char *pre_tokenizer;  /* "llama3" (GGUF: "llama-bpe", the same split) */
    int bos_id;                 /* -1: none */
    int n_end;                  /* the tokens that end a reply, EOS first; at most 8 */
    const int *end_ids;
} llama2_bpe_vocab;

/* A BPE tokenizer from a vocabulary (copied). A merge naming no token, a
 * character outside GPT-2's map, an unknown type or pre-tokenizer give
 * LLAMA2_E_FORMAT with a one-line message. */
LLAMA2_API llama2_status llama2_tokenizer_from_bpe(const llama2_bpe_vocab *vocab, llama2_tokenizer **out,
                                                   llama2_error *err);

/* The most ids that encoding text_len bytes can give (BOS, EOS included). */
LLAMA2_API size_t llama2_tokenize_capacity(size_t text_len);

/* Encodes NUL-terminated text exactly as llama2.c does: optional BOS, a
 * dummy-prefix space for non-empty text, UTF-8 characters looked up whole or
 * spelled as byte tokens (id = byte + 3), then greedy merges by score.
 * `ids` must hold llama2_tokenize_capacity(strlen(text)) entries. */
LLAMA2_API llama2_status llama2_tokenize(const llama2_tokenizer *tokenizer, const char *text, int add_bos,
                                         int add_eos, int *ids, int *n_ids, llama2_error *err);
/* For a BPE tokenizer: the pre-tokenizer's split, then merges by rank
 * (Hugging Face's and tiktoken's encoding); special tokens' text stays text.
 * llama2_tokenize_special also turns the text of special tokens
 * ("<|eot_id|>") into those tokens: for templates, never for user text.
 * For llama2.c tokenizers the two are the same. */
LLAMA2_API llama2_status llama2_tokenize_special(const llama2_tokenizer *tokenizer, const char *text, int add_bos,
                                                 int add_eos, int *ids, int *n_ids, llama2_error *err);

/* The bytes of `token` as llama2.c decodes them after `prev_token`: the
 * leading space is dropped after BOS, and "<0xHH>" pieces are the byte HH.
 * BPE: the token's bytes, whatever came before (a special token's text).
 * Returns a pointer into the tokenizer and the length in *len. An id outside
 * the vocabulary gives an empty piece. */
LLAMA2_API const char *llama2_token_piece(const llama2_tokenizer *tokenizer, int prev_token, int token, size_t *len);

/* ---------------------------------------------------------- text filter */

/* Streams decoded bytes into printable text: complete UTF-8 characters pass
 * (so byte tokens that spell a character print it), control bytes other than
 * whitespace and bytes that form no valid character are dropped. */
typedef struct llama2_text_filter {
    unsigned char pending[4];
    int n_pending;
    int n_expected;
} llama2_text_filter;

/* Starts a filter with nothing pending. */
LLAMA2_API void llama2_text_filter_init(llama2_text_filter *filter);
/* Filters n bytes into out, which must hold n + 4 bytes; returns how many
 * were written. An unfinished character waits for the next push. */
LLAMA2_API size_t llama2_text_filter_push(llama2_text_filter *filter, const char *in, size_t n, char *out);

/* ---------------------------------------------------------- text stream */

/* Token ids in, text to show out: the step between a sampler and a screen or
 * an HTTP response. Each token's piece (llama2_token_piece) goes through the
 * text filter; then the text is searched for stop strings. Text that may be
 * the start of a stop string is held back until the next tokens decide it, so
 * no byte of a stop string is ever handed out. One stream per sequence; it is
 * not shared between threads. */
typedef struct llama2_text_stream llama2_text_stream;

typedef struct llama2_text_stream_options {
    const char *const *stop; /* n_stop stop strings, copied; each non-empty */
    int n_stop;
    int show_special;        /* 1: the pieces of ids 0-2 (<unk>, <s>, </s>) are text, as
                                llama2.c prints them; 0: they give no text */
} llama2_text_stream_options;

/* A stream over `tokenizer` (which must outlive it). options NULL: no stop
 * strings, special tokens hidden. Fails on an empty stop string. */
LLAMA2_API llama2_status llama2_text_stream_create(const llama2_tokenizer *tokenizer,
                                                   const llama2_text_stream_options *options,
                                                   llama2_text_stream **out, llama2_error *err);
/* Frees a stream; NULL is allowed. */
LLAMA2_API void llama2_text_stream_destroy(llama2_text_stream *stream);

/* Adds the piece of `token` decoded after `prev_token` (the token before it,
 * or LLAMA2_TOKEN_BOS at the start). Sets *text / *len to the text decided by
 * it (often empty; valid until the next call on this stream). When the text
 * now contains a stop string, returns 1 + its index in options->stop (the
 * one that starts first, of those complete): *text is then everything before
 * it, and the stream gives no more text until llama2_text_stream_finish.
 * Returns 0 otherwise. */
LLAMA2_API int llama2_text_stream_push(llama2_text_stream *stream, int prev_token, int token, const char **text,
                                       size_t *len);

/* As llama2_text_stream_push, but the piece is not searched for stop strings
 * and nothing is held back (a prompt being echoed). Returns 0. */
LLAMA2_API int llama2_text_stream_echo(llama2_text_stream *stream, int prev_token, int token, const char **text,
                                       size_t *len);

/* Ends a text: sets *text / *len to what was held back (the start of a stop
 * string that never completed), drops an unfinished UTF-8 character, and
 * makes the stream ready for a new text. */
LLAMA2_API void llama2_text_stream_finish(llama2_text_stream *stream, const char **text, size_t *len);

/* -------------------------------------------------------------- sampler */

/* The sampler chain picks the next token from the logits in this order:
 *   1. penalties on the logits of the last repeat_last_n accepted tokens:
 *      repetition (a positive logit divided by repeat_penalty, a negative one
 *      multiplied), then frequency (times the token's count) and presence
 *      (once) subtracted: llama.cpp's definitions;
 *   2. temperature 0: the most likely token, and the chain ends here;
 *   3. softmax(logits / temperature);
 *   4. top-k: the k most likely tokens;
 *   5. top-p: the fewest most likely tokens whose mass exceeds top_p;
 *   6. min-p: the tokens at least min_p times as likely as the most likely;
 *   7. one draw from what is left, renormalised, with llama2.c's xorshift
 *      generator (one number per draw at any temperature above 0).
 * Temperature comes before the cut-offs, as in llama2.c (its top-p works on
 * softmax(logits / T)) and Hugging Face transformers; llama.cpp applies it
 * last. With top-k and min-p off and no penalties, the chain makes exactly
 * llama2.c's decisions, so a seed gives llama2.c's text. A stage that would
 * leave no token (NaN logits) gives the most likely token instead. */
typedef struct llama2_sampler llama2_sampler;

typedef struct llama2_sampler_options {
    float temperature;       /* >= 0; 0: always the most likely token */
    float top_p;             /* in [0, 1]; 0 or 1: off */
    int top_k;               /* >= 0; 0: off */
    float min_p;             /* in [0, 1]; 0: off */
    float repeat_penalty;    /* > 0, or 0; 0 or 1: off */
    int repeat_last_n;       /* >= 0: how many accepted tokens the penalties see; 0: off */
    float presence_penalty;  /* finite; 0: off */
    float frequency_penalty; /* finite; 0: off */
    uint64_t seed;           /* the generator's start; 0 stands for a fixed non-zero seed */
} llama2_sampler_options;

/* llama2.c's defaults: temperature 1, top-p 0.9, repeat_last_n 64 (with the
 * penalties off), seed 0. A zeroed struct is greedy decoding. */
LLAMA2_API llama2_sampler_options llama2_sampler_defaults(void);

/* A chain for a vocabulary of vocab_size tokens. options NULL: the defaults.
 * Fails (LLAMA2_E_INVALID) on a value outside the ranges above. */
LLAMA2_API llama2_status llama2_sampler_create(int vocab_size, const llama2_sampler_options *options,
                                               llama2_sampler **out, llama2_error *err);
/* Frees a sampler; NULL is allowed. */
LLAMA2_API void llama2_sampler_destroy(llama2_sampler *sampler);

/* Records a token that entered the context (each prompt token, then each
 * token fed back), for the penalties. Ids outside the vocabulary are ignored. */
LLAMA2_API void llama2_sampler_accept(llama2_sampler *sampler, int token);

/* Picks the next token. Overwrites logits (with the probabilities, at a
 * temperature above 0). Does not accept the token. */
LLAMA2_API int llama2_sampler_sample(llama2_sampler *sampler, float *logits);

/* Runs the chain without drawing: probs[i] (vocab_size of them) is the
 * probability that llama2_sampler_sample would now pick token i, 0 for the
 * tokens a stage removed. Overwrites logits; the generator does not move. */
LLAMA2_API void llama2_sampler_distribution(llama2_sampler *sampler, float *logits, float *probs);

/* -------------------------------------------------------------- grammar */

/* A grammar in GBNF, llama.cpp's format, compiled for the sampler:
 *   rule-name ::= alternatives       (names: letters, digits, '-', '_')
 * A newline ends a rule, except inside parentheses and after `::=` or `|`.
 * Items: "literal" (escapes \n \r \t \\ \" \[ \] \- \^ \xHH \uHHHH
 * \UHHHHHHHH), [class] with ranges a-z and [^negation], `.` (any
 * character), a rule name, (group); each may be followed by `*`, `+`, `?`,
 * `{m}`, `{m,}` or `{m,n}`. `|` separates alternatives, none of which may be
 * empty (write "" for the empty text). `#` comments to the end of the line.
 * The text is the rule `root`. Characters are Unicode code points, matched
 * as their UTF-8 bytes. */
typedef struct llama2_grammar llama2_grammar;

/* Compiles text[0..len). Fails (LLAMA2_E_INVALID) with a message
 * "line:column: what", e.g. "2:9: unknown rule 'valu'", on a syntax error,
 * an unknown rule, a rule defined twice, no `root`, left recursion (a rule
 * that can reach itself before matching a character, which includes a
 * repetition of something that can be empty), and on a grammar past the
 * size limits (more than 2^20 elements once repetitions are written out,
 * 2^18 rules, groups nested 128 deep, a repetition count above 100000);
 * LLAMA2_E_NOMEM when out of memory. */
LLAMA2_API llama2_status llama2_grammar_parse(const char *text, size_t len, llama2_grammar **out, llama2_error *err);
/* Frees a grammar; NULL is allowed. */
LLAMA2_API void llama2_grammar_free(llama2_grammar *grammar);
/* 1 when text[0..len) is a whole text of the grammar, 0 when it is not, -1
 * when out of memory or past the matcher's limits. */
LLAMA2_API int llama2_grammar_match(const llama2_grammar *grammar, const char *text, size_t len);

/* Constrains the sampler's output to the grammar (NULL removes it). The
 * grammar and the tokenizer must outlive the sampler, or the next call. The
 * constrained text starts at the next llama2_sampler_sample: from then on
 * each token given to llama2_sampler_accept continues it (the prompt's
 * tokens, accepted before, are not constrained). The sampler never draws a
 * token whose piece would leave the grammar (pieces as llama2_token_piece
 * gives them, byte tokens and characters split across tokens included), and
 * draws BOS or EOS, which end the text, only where the grammar may end; a
 * token with an empty piece (<unk>) never. The drawn token is checked first;
 * only when it leaves the grammar are all tokens checked, and the draw is
 * made again, from the chain run on the logits of the allowed tokens only
 * (a second number of the generator). With a grammar, llama2_generate ends
 * at EOS as at BOS; llama2_chat refuses a sampler with a grammar. Limits:
 * a step on which more than 4096 parses are alive, or which takes more than
 * 65536 steps of the matcher, counts as leaving the grammar. */
LLAMA2_API llama2_status llama2_sampler_set_grammar(llama2_sampler *sampler, const llama2_grammar *grammar,
                                                    const llama2_tokenizer *tokenizer, llama2_error *err);

/* ---------------------------------------------------------- chat format */

/* How a conversation is written for the model:
 *   LLAMA2: Llama 2 chat, llama2.c's exact text: each user turn is
 *           <s>"[INST] {user} [/INST]", the first with the system prompt as
 *           "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"; an
 *           assistant turn is " {text}" then </s>.
 *   CHATML: <s>"<|im_start|>{role}\n{content}<|im_end|>\n" per message;
 *           replies end at the text "<|im_end|>" (a stop string).
 *   ZEPHYR: <s>"<|{role}|>\n{content}"</s>"\n" per message (TinyLlama-chat).
 *   NONE:   <s> and the contents, one after the other, each ending "\n".
 *   LLAMA3: <|begin_of_text|>, then per message <|start_header_id|>"{role}"
 *           <|end_header_id|>"\n\n{content}"<|eot_id|>, the content trimmed
 *           of whitespace as Meta's template does; replies end at any end
 *           token (<|eot_id|>, <|end_of_text|>). Needs a BPE tokenizer with
 *           those special tokens.
 * <s> and </s> are the tokens BOS and EOS, never text. */
typedef enum llama2_chat_template {
    LLAMA2_TEMPLATE_LLAMA2 = 0,
    LLAMA2_TEMPLATE_CHATML,
    LLAMA2_TEMPLATE_ZEPHYR,
    LLAMA2_TEMPLATE_NONE,
    LLAMA2_TEMPLATE_LLAMA3,
} llama2_chat_template;

/* The template called `name` ("llama2", "chatml", "zephyr", "none", "llama3");
 * returns 0 for an unknown name. */
LLAMA2_API int llama2_chat_template_from_name(const char *name, llama2_chat_template *out);
/* The name of a template ("llama2", ...), or NULL for a value outside the enum. */
LLAMA2_API const char *llama2_chat_template_name(llama2_chat_template tmpl);
/* The stop strings a template's replies end with (ChatML: "<|im_end|>"), as
 * a NULL-terminated list of static strings. */
LLAMA2_API const char *const *llama2_chat_template_stops(llama2_chat_template tmpl);

/* One message of a conversation: role "system", "user" or "assistant". */
typedef struct llama2_chat_message {
    const char *role;
    const char *content;
} llama2_chat_message;

/* Encodes a whole conversation in the template's format, from position 0
 * (BOS first), ready for llama2_session_eval; with add_assistant, ends with
 * the opening of the assistant's reply, so that sampling continues it. A
 * system message is allowed first only (an empty one counts as none).
 * *ids is allocated with malloc (the caller frees it); *n_ids is its count.
 * Fails (LLAMA2_E_INVALID) on an unknown role or a misplaced system message. */
LLAMA2_API llama2_status llama2_chat_encode(const llama2_tokenizer *tokenizer, llama2_chat_template tmpl,
                                            const llama2_chat_message *messages, int n_messages, int add_assistant,
                                            int **ids, int *n_ids, llama2_error *err);

/* ------------------------------------------------- generation and chat */

/* How a generation loop talks to its caller. */
typedef struct llama2_io {
    void *user;
    /* Text to show, already filtered, as each token is decoded. Returns 0 to
     * go on; anything else stops: llama2_generate ends, llama2_chat ends the
     * current reply and asks for the next turn. */
    int (*write)(void *user, const char *text, size_t len);
    /* Reads one line of input without its newline into a buffer the caller
     * of llama2_chat frees with free(); returns 0 at the end of input. */
    int (*read_line)(void *user, char **line);
} llama2_io;

/* Why a generation (or a whole chat) ended. */
typedef enum llama2_stop_reason {
    LLAMA2_STOP_LENGTH = 0, /* the step limit */
    LLAMA2_STOP_CONTEXT,    /* every position of the context window is used */
    LLAMA2_STOP_TOKEN,      /* the model ended it: BOS sampled in generation */
    LLAMA2_STOP_STRING,     /* a stop string */
    LLAMA2_STOP_CALLER,     /* io->write returned non-zero */
    LLAMA2_STOP_INPUT,      /* chat: the end of input */
} llama2_stop_reason;

typedef struct llama2_stats {
    int prompt_tokens;       /* positions fed from the prompt (BOS included) */
    int generated_tokens;    /* tokens sampled */
    int positions;           /* positions run through the model */
    double prompt_seconds;   /* time spent on prompt blocks */
    double generate_seconds; /* time spent generating */
    double seconds_after_first; /* generation: llama2.c's timer, from the end of the first
                                   position; chat: model time only (input waits left out) */
    llama2_stop_reason stop; /* why it ended */
} llama2_stats;

typedef struct llama2_generate_options {
    int steps;               /* positions to run, BOS included; 0 or more than the context:
                                the whole context */
    const char *const *stop; /* n_stop stop strings: generation ends before the first */
    int n_stop;
} llama2_generate_options;

/* llama2.c's generate(): writes the prompt and then sampled tokens until
 * `steps` positions (BOS included), a sampled BOS, a stop string or a write
 * that returns non-zero; then a newline. The prompt runs through the model in
 * blocks; every prompt token and fed-back token is accepted by the sampler.
 * options NULL: 256 steps, no stop strings. */
LLAMA2_API llama2_status llama2_generate(llama2_session *session, const llama2_tokenizer *tokenizer,
                                         llama2_sampler *sampler, const char *prompt,
                                         const llama2_generate_options *options, const llama2_io *io,
                                         llama2_stats *stats, llama2_error *err);

typedef struct llama2_chat_options {
    const char *system_prompt; /* NULL: asked for through io->read_line */
    const char *user_prompt;   /* the first user turn; NULL: asked for */
    int steps;                 /* positions for the whole chat; 0: the whole context */
    int reply_tokens;          /* most tokens sampled in one reply; 0: no cap */
    llama2_chat_template chat_template;
    const char *const *stop;   /* n_stop stop strings, besides the template's own */
    int n_stop;
} llama2_chat_options;

/* A conversation on the terminal, as llama2.c's chat(): asks for a system
 * prompt and user turns through io, writes "Assistant: " and the reply. A
 * reply ends at EOS, a stop string, reply_tokens, or a write that returns
 * non-zero; the chat ends at the end of input, `steps` positions or a full
 * context (stats->stop says which). With LLAMA2_TEMPLATE_LLAMA2 every byte is
 * llama2.c's, its quirks included: a sample is drawn after every prompt
 * position (a sampled EOS there writes a newline), the token sampled after
 * EOS is shown, and special tokens are shown. Other templates sample only
 * replies and hide special tokens. */
LLAMA2_API llama2_status llama2_chat(llama2_session *session, const llama2_tokenizer *tokenizer,
                                     llama2_sampler *sampler, const llama2_chat_options *options,
                                     const llama2_io *io, llama2_stats *stats, llama2_error *err);

/* A monotonic clock, in seconds. */
LLAMA2_API double llama2_time_seconds(void);

/* The kernel level the CPU backend uses on this CPU, the fastest it runs:
 * "amx", "avx512-vnni", "avx512", "avx2-vnni", "avx2" (x86-64), "neon"
 * (aarch64) or "scalar" (the reference). LLAMA2_KERNELS=<level> in the
 * environment caps the choice at that level (read whenever a model is
 * opened and by this call). */
LLAMA2_API const char *llama2_kernels_name(void);

#ifdef __cplusplus
}
#endif

#endif
