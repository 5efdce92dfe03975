/*
 * A row's logits do not depend on the batch, on random models larger than
 * the goldens' (grouped-query attention, several row blocks per product,
 * prompts that span many blocks and a partial last block), fp32, int8 and
 * GGUF's Q4_0 and Q8_0 blocks alike, bit for bit (memcmp):
 *   prompts: a 150-token prompt run token by token (batch 1, one thread:
 *       the reference), then through llama2_session_eval_all with other
 *       batch sizes and thread counts; then 20 generated positions (one
 *       token at a time) continue each session, so that the KV cache
 *       written by the blocks is checked too;
 *   sequences: several sequences of one session advanced together, as a
 *       server does (each call mixes pieces of prompts with single tokens of
 *       other sequences, in varying orders, batch sizes and thread counts),
 *       against each sequence run alone;
 *   shared prompts: a prompt evaluated once and copied into other sequences
 *       (llama2_session_copy_sequence), each continued on its own, against
 *       the whole text run alone; a cleared sequence starts afresh.
 * And the multi-sequence calls' refusals, each with its exact message, and
 * with the session left as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "write/checkpoint_writer.h"
#include "write/gguf_writer.h"
#include "text/tokenizer_internal.h"
#include "llama2.h"
#include "support.h"

#define PROMPT 150
#define GENERATED 20
#define POSITIONS (PROMPT + GENERATED)
#define VOCAB 517
#define SEQ_LEN 192

typedef struct model_case {
    const char *name;
    llama2_config config;
    llama2_model *model; /* opened by the group setup */
} model_case;

/* Two layers, 517 tokens, 192 positions. */
static llama2_config shape(int dim, int hidden, int heads, int kv_heads, int shared, int version, int gs) {
    return l2_random_model_config(dim, hidden, 2, heads, kv_heads, VOCAB, SEQ_LEN, shared, version, gs);
}

static model_case cases[] = {
    {"fp32, 6 heads / 2 kv heads, own classifier", {0}, NULL},
    {"fp32 legacy, 4 heads, shared classifier", {0}, NULL},
    {"int8 gs 32, 6 heads / 2 kv heads", {0}, NULL},
    {"int8 gs 8, 8 heads / 4 kv heads", {0}, NULL},
    {"fp32, dim 256, 8 heads / 2 kv heads", {0}, NULL},
    {"int8 gs 64, dim 256, 8 heads / 2 kv heads", {0}, NULL},
    /* GGUF twins of fp32 random models, their matrices held as ggml blocks
     * (ffn_down's 176-value rows are not whole blocks: F32 in that one). */
    {"GGUF Q4_0, 6 heads / 2 kv heads", {0}, NULL},
    {"GGUF Q4_0 with F32 ffn_down, 8 heads / 4 kv heads", {0}, NULL},
    {"GGUF Q8_0, dim 256, 8 heads / 2 kv heads", {0}, NULL},
    /* llama.cpp's Q4_K_M mix: Q4_K, Q6_K for layer 1's attn_v and ffn_down
     * and the classifier; then with ffn_down's 704-value rows not whole
     * blocks of 256 (Q4_0 there, Q6_K's layer 1 Q8_0). */
    {"GGUF Q4_K_M, dim 256, 8 heads / 2 kv heads", {0}, NULL},
    {"GGUF Q4_K_M with Q4_0 ffn_down, dim 256", {0}, NULL},
};
/* The cases written as GGUF twins, their type, and the model's type. */
#define FIRST_GGUF 6
static const uint32_t gguf_types[] = {L2_GGML_Q4_0, L2_GGML_Q4_0, L2_GGML_Q8_0, L2_GGUF_MIX_Q4_K_M,
                                      L2_GGUF_MIX_Q4_K_M};
static const llama2_weight_type gguf_weights[] = {LLAMA2_WEIGHTS_Q4_0, LLAMA2_WEIGHTS_Q4_0, LLAMA2_WEIGHTS_GGML_Q8_0,
                                                  LLAMA2_WEIGHTS_Q4_K, LLAMA2_WEIGHTS_Q4_0};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    assert_non_null(p);
    return p;
}

/* Pseudo-random token ids, the same for a given seed. */
static void random_tokens(int *tokens, int n, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        tokens[i] = (int)((seed >> 8) % VOCAB);
    }
}

static llama2_session *new_session(const llama2_model *m, llama2_threadpool *pool, int batch, int n_sequences) {
    llama2_error err = {0};
    llama2_session *s = NULL;
    llama2_session_options o = {.pool = pool, .batch_size = batch, .n_sequences = n_sequences};
    if (llama2_session_create(m, &o, &s, &err) != LLAMA2_OK) fail_msg("session: %s", err.message);
    return s;
}

static llama2_threadpool *new_pool(int threads) {
    llama2_threadpool *pool = NULL;
    if (threads > 0) assert_int_equal(llama2_threadpool_create(threads, &pool, NULL), LLAMA2_OK);
    return pool;
}

/* The logits after every one of tokens[0..n), token by token from position
 * 0 in a session of its own (batch 1, no pool): the reference. */
static float *alone(const llama2_model *m, const int *tokens, int n) {
    llama2_session *s = new_session(m, NULL, 1, 1);
    float *rows = xmalloc((size_t)n * VOCAB * sizeof(float));
    llama2_error err = {0};
    for (int pos = 0; pos < n; pos++) {
        float *logits = NULL;
        if (llama2_session_eval(s, tokens + pos, 1, pos, &logits, &err) != LLAMA2_OK) fail_msg("eval: %s", err.message);
        memcpy(rows + (size_t)pos * VOCAB, logits, VOCAB * sizeof(float));
    }
    llama2_session_destroy(s);
    return rows;
}

static void same_logits(const float *want, const float *got, const char *what, int a, int b, int c) {
    if (memcmp(want, got, VOCAB * sizeof(float)) != 0) {
        char message[200];
        snprintf(message, sizeof message, what, a, b, c);
        fail_msg("%s", message);
    }
}

/* ------------------------------------------------------------- prompts */

typedef struct logits_sink {
    float *rows; /* POSITIONS x vocab */
} logits_sink;

static void keep_logits(void *user, int index, float *logits) {
    logits_sink *s = user;
    memcpy(s->rows + (size_t)index * VOCAB, logits, VOCAB * sizeof(float));
}

/* One run: batch size and threads (0 threads: no pool). */
typedef struct run_config {
    int batch, threads;
} run_config;

static const run_config runs[] = {{7, 1}, {7, 3}, {128, 1}, {128, 2}, {64, 3}, {1, 2}};
#define N_RUNS (int)(sizeof runs / sizeof runs[0])

static void test_prompt(void **state) {
    const model_case *mc = *state;
    int tokens[POSITIONS];
    random_tokens(tokens, POSITIONS, 12345);
    float *ref = alone(mc->model, tokens, POSITIONS);
    float *got = xmalloc((size_t)POSITIONS * VOCAB * sizeof(float));
    for (int k = 0; k < N_RUNS; k++) {
        llama2_threadpool *pool = new_pool(runs[k].threads);
        llama2_session *s = new_session(mc->model, pool, runs[k].batch, 1);
        llama2_error err = {0};
        logits_sink sink = {got};
        if (llama2_session_eval_all(s, tokens, PROMPT, 0, keep_logits, &sink, &err) != LLAMA2_OK)
            fail_msg("eval_all: %s", err.message);
        for (int pos = PROMPT; pos < POSITIONS; pos++) {
            float *logits = NULL;
            assert_int_equal(llama2_session_eval(s, tokens + pos, 1, pos, &logits, &err), LLAMA2_OK);
            memcpy(got + (size_t)pos * VOCAB, logits, VOCAB * sizeof(float));
        }
        for (int pos = 0; pos < POSITIONS; pos++)
            same_logits(ref + (size_t)pos * VOCAB, got + (size_t)pos * VOCAB,
                        "batch %d, %d threads: the logits at position %d differ from token by token", runs[k].batch,
                        runs[k].threads, pos);
        llama2_session_destroy(s);
        llama2_threadpool_destroy(pool);
    }
    free(ref);
    free(got);
}

/* ----------------------------------------------------------- sequences */

#define N_SEQ 5
#define SEQ_TOKENS 60

/* N_SEQ sequences of SEQ_TOKENS tokens each, started at different times,
 * advanced in calls that give each active sequence either its next piece
 * of prompt (1-12 tokens) or one token, in a rotating order. Every row asks
 * for logits; each must equal the sequence's alone. */
static void run_sequences(const model_case *mc, const float *const *ref, int tokens[N_SEQ][SEQ_TOKENS], int batch,
                          int threads, uint32_t seed) {
    llama2_threadpool *pool = new_pool(threads);
    llama2_session *s = new_session(mc->model, pool, batch, N_SEQ);
    llama2_batch_row rows[N_SEQ * 12];
    int rows_pos[N_SEQ * 12];
    float *logits = xmalloc(sizeof rows / sizeof rows[0] * VOCAB * sizeof(float));
    int done[N_SEQ] = {0};
    llama2_error err = {0};
    for (int step = 0;; step++) {
        int n = 0, active = 0;
        for (int j = 0; j < N_SEQ; j++) {
            const int q = (j + step) % N_SEQ;
            seed = seed * 1664525u + 1013904223u;
            if (done[q] == SEQ_TOKENS || step < 2 * q) continue; /* later sequences start later */
            active++;
            int take = done[q] < 20 ? 1 + (int)((seed >> 10) % 12) : 1;
            if (take > SEQ_TOKENS - done[q]) take = SEQ_TOKENS - done[q];
            for (int i = 0; i < take; i++) {
                rows[n] = (llama2_batch_row){q, done[q] + i, tokens[q][done[q] + i], 1};
                rows_pos[n++] = done[q] + i;
            }
            done[q] += take;
        }
        if (active == 0 && step > 2 * N_SEQ) break;
        if (n == 0) continue;
        if (llama2_session_eval_batch(s, rows, n, logits, &err) != LLAMA2_OK) fail_msg("eval_batch: %s", err.message);
        for (int i = 0; i < n; i++)
            same_logits(ref[rows[i].sequence] + (size_t)rows_pos[i] * VOCAB, logits + (size_t)i * VOCAB,
                        "sequence %d, position %d: batch %d: logits differ from the sequence alone", rows[i].sequence,
                        rows_pos[i], batch);
        for (int q = 0; q < N_SEQ; q++) assert_int_equal(llama2_session_sequence_length(s, q), done[q]);
    }
    free(logits);
    llama2_session_destroy(s);
    llama2_threadpool_destroy(pool);
}

static void test_sequences(void **state) {
    const model_case *mc = *state;
    int tokens[N_SEQ][SEQ_TOKENS];
    float *ref[N_SEQ];
    for (int q = 0; q < N_SEQ; q++) {
        random_tokens(tokens[q], SEQ_TOKENS, 777u + (uint32_t)q);
        ref[q] = alone(mc->model, tokens[q], SEQ_TOKENS);
    }
    static const run_config seq_runs[] = {{1, 1}, {4, 2}, {7, 3}, {64, 1}, {64, 2}, {16, 3}};
    for (size_t k = 0; k < sizeof seq_runs / sizeof seq_runs[0]; k++)
        run_sequences(mc, (const float *const *)ref, tokens, seq_runs[k].batch, seq_runs[k].threads, 99u + (uint32_t)k);
    for (int q = 0; q < N_SEQ; q++) free(ref[q]);
}

/* ------------------------------------------------------- shared prompts */

#define SHARED 30
#define OWN 12

static void test_shared_prompt(void **state) {
    const model_case *mc = *state;
    int text[3][SHARED + OWN];
    float *ref[3];
    random_tokens(text[0], SHARED + OWN, 4242);
    for (int c = 1; c < 3; c++) {
        memcpy(text[c], text[0], SHARED * sizeof(int));
        random_tokens(text[c] + SHARED, OWN, 5000u + (uint32_t)c);
    }
    for (int c = 0; c < 3; c++) ref[c] = alone(mc->model, text[c], SHARED + OWN);

    llama2_threadpool *pool = new_pool(2);
    llama2_session *s = new_session(mc->model, pool, 16, 4);
    llama2_error err = {0};
    float *logits = xmalloc(3 * VOCAB * sizeof(float));
    /* The prompt once, in sequence 0 (garbage in sequence 3 first, to be
     * replaced by the copy). */
    llama2_batch_row rows[SHARED + OWN];
    for (int i = 0; i < 5; i++) rows[i] = (llama2_batch_row){3, i, (i * 31) % VOCAB, 0};
    assert_int_equal(llama2_session_eval_batch(s, rows, 5, NULL, &err), LLAMA2_OK);
    for (int i = 0; i < SHARED; i++) rows[i] = (llama2_batch_row){0, i, text[0][i], i == SHARED - 1};
    assert_int_equal(llama2_session_eval_batch(s, rows, SHARED, logits, &err), LLAMA2_OK);
    same_logits(ref[0] + (size_t)(SHARED - 1) * VOCAB, logits, "shared prompt: last position %d%d%d", 0, 0, 0);
    /* Copied into sequences 1 and 3 (3's own positions go). */
    assert_int_equal(llama2_session_copy_sequence(s, 1, 0, SHARED, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_copy_sequence(s, 3, 0, SHARED, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_sequence_length(s, 3), SHARED);
    /* The three continue together: 0 with text 0, 1 with text 1, 3 with text 2. */
    const int seq_of[3] = {0, 1, 3};
    for (int i = 0; i < OWN; i++) {
        for (int c = 0; c < 3; c++) rows[c] = (llama2_batch_row){seq_of[c], SHARED + i, text[c][SHARED + i], 1};
        assert_int_equal(llama2_session_eval_batch(s, rows, 3, logits, &err), LLAMA2_OK);
        for (int c = 0; c < 3; c++)
            same_logits(ref[c] + (size_t)(SHARED + i) * VOCAB, logits + (size_t)c * VOCAB,
                        "choice %d at position %d (sequence %d): logits differ from the text alone", c, SHARED + i,
                        seq_of[c]);
    }
    /* A prompt cache: sequence 0 trimmed to the shared prefix continues
     * with text 2's own tokens as if text 2 had been evaluated whole. */
    assert_int_equal(llama2_session_trim_sequence(s, 0, SHARED, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_sequence_length(s, 0), SHARED);
    for (int i = 0; i < OWN; i++) rows[i] = (llama2_batch_row){0, SHARED + i, text[2][SHARED + i], i == OWN - 1};
    assert_int_equal(llama2_session_eval_batch(s, rows, OWN, logits, &err), LLAMA2_OK);
    same_logits(ref[2] + (size_t)(SHARED + OWN - 1) * VOCAB, logits, "trimmed sequence: last position %d%d%d", 0, 0,
                0);
    /* A cache kept outside the session: sequence 1's shared prefix read
     * out, sequence 2 given it, and continued with text 2's own tokens. */
    const size_t kv_bytes = llama2_session_sequence_bytes(s, SHARED);
    void *kept = xmalloc(kv_bytes);
    assert_int_equal(llama2_session_read_sequence(s, 1, SHARED, kept, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_write_sequence(s, 2, SHARED, kept, &err), LLAMA2_OK);
    free(kept);
    assert_int_equal(llama2_session_sequence_length(s, 2), SHARED);
    for (int i = 0; i < OWN; i++) rows[i] = (llama2_batch_row){2, SHARED + i, text[2][SHARED + i], i == OWN - 1};
    assert_int_equal(llama2_session_eval_batch(s, rows, OWN, logits, &err), LLAMA2_OK);
    same_logits(ref[2] + (size_t)(SHARED + OWN - 1) * VOCAB, logits,
                "sequence written from memory: last position %d%d%d", 0, 0, 0);
    /* A cleared sequence starts afresh: text 2 from position 0 in 3. */
    assert_int_equal(llama2_session_clear_sequence(s, 3, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_sequence_length(s, 3), 0);
    for (int i = 0; i < SHARED + OWN; i++) rows[i] = (llama2_batch_row){3, i, text[2][i], i == SHARED + OWN - 1};
    assert_int_equal(llama2_session_eval_batch(s, rows, SHARED + OWN, logits, &err), LLAMA2_OK);
    same_logits(ref[2] + (size_t)(SHARED + OWN - 1) * VOCAB, logits, "cleared sequence: last position %d%d%d", 0, 0,
                0);
    free(logits);
    for (int c = 0; c < 3; c++) free(ref[c]);
    llama2_session_destroy(s);
    llama2_threadpool_destroy(pool);
}

/* ------------------------------------------------------------ refusals */

static void refused(llama2_status got, llama2_status want, const llama2_error *err, const char *message) {
    if (got != want || strcmp(err->message, message) != 0)
        fail_msg("status %d \"%s\", expected %d \"%s\"", (int)got, err->message, (int)want, message);
}

static void test_refusals(void **state) {
    const model_case *mc = *state;
    llama2_error err = {0};
    llama2_session *s = NULL;
    llama2_session_options bad = {.context_length = -1};
    refused(llama2_session_create(mc->model, &bad, &s, &err), LLAMA2_E_INVALID, &err, "context length -1 is negative");
    bad = (llama2_session_options){.n_sequences = -2};
    refused(llama2_session_create(mc->model, &bad, &s, &err), LLAMA2_E_INVALID, &err, "sequence count -2 is negative");
    /* A context of 40 positions, 3 sequences; more than seq_len is seq_len. */
    llama2_session_options big = {.context_length = SEQ_LEN + 1};
    assert_int_equal(llama2_session_create(mc->model, &big, &s, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_context_length(s), SEQ_LEN);
    assert_int_equal(llama2_session_sequences(s), 1);
    llama2_session_destroy(s);
    llama2_session_options o = {.context_length = 40, .n_sequences = 3, .batch_size = 8};
    assert_int_equal(llama2_session_create(mc->model, &o, &s, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_context_length(s), 40);
    assert_int_equal(llama2_session_sequences(s), 3);

    float *logits = xmalloc(4 * VOCAB * sizeof(float));
    llama2_batch_row rows[4] = {{0, 0, 1, 1}, {0, 1, 2, 1}, {1, 0, 3, 1}, {2, 0, 4, 0}};
    assert_int_equal(llama2_session_eval_batch(s, rows, 4, logits, &err), LLAMA2_OK);
    const int before[3] = {2, 1, 1};
    for (int q = 0; q < 3; q++) assert_int_equal(llama2_session_sequence_length(s, q), before[q]);

    struct {
        llama2_batch_row rows[2];
        int n;
        llama2_status status;
        const char *message;
    } cases_[] = {
        {{{0, 2, 1, 1}}, 0, LLAMA2_E_INVALID, "no rows to evaluate"},
        {{{3, 0, 1, 1}}, 1, LLAMA2_E_INVALID, "row 0: sequence 3 does not exist (the session has 3)"},
        {{{0, 2, 1, 1}, {-1, 0, 1, 1}}, 2, LLAMA2_E_INVALID, "row 1: sequence -1 does not exist (the session has 3)"},
        {{{0, 2, VOCAB, 1}}, 1, LLAMA2_E_INVALID, "row 0: token id 517 is outside the vocabulary (517)"},
        {{{1, 1, -1, 1}}, 1, LLAMA2_E_INVALID, "row 0: token id -1 is outside the vocabulary (517)"},
        {{{1, 40, 1, 1}}, 1, LLAMA2_E_CONTEXT, "row 0: position 40 does not fit the context window of 40"},
        {{{1, -1, 1, 1}}, 1, LLAMA2_E_CONTEXT, "row 0: position -1 does not fit the context window of 40"},
        {{{0, 3, 1, 1}}, 1, LLAMA2_E_INVALID, "row 0: position 3 of sequence 0 leaves a gap (it has 2 cached)"},
        {{{0, 2, 1, 1}, {0, 4, 1, 1}}, 2, LLAMA2_E_INVALID,
         "row 1: position 4 of sequence 0 does not follow its previous row's 2"},
        {{{2, 1, 1, 1}, {2, 1, 1, 1}}, 2, LLAMA2_E_INVALID,
         "row 1: position 1 of sequence 2 does not follow its previous row's 1"},
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {
        refused(llama2_session_eval_batch(s, cases_[i].rows, cases_[i].n, logits, &err), cases_[i].status, &err,
                cases_[i].message);
        for (int q = 0; q < 3; q++) assert_int_equal(llama2_session_sequence_length(s, q), before[q]);
    }
    llama2_batch_row asks = {1, 1, 5, 1};
    refused(llama2_session_eval_batch(s, &asks, 1, NULL, &err), LLAMA2_E_INVALID, &err,
            "1 rows ask for logits and there is no buffer for them");
    /* A sequence may be rewound (and forgets what followed). */
    llama2_batch_row rewind = {0, 1, 7, 0};
    assert_int_equal(llama2_session_eval_batch(s, &rewind, 1, NULL, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_sequence_length(s, 0), 2);
    rewind.position = 0;
    assert_int_equal(llama2_session_eval_batch(s, &rewind, 1, NULL, &err), LLAMA2_OK);
    assert_int_equal(llama2_session_sequence_length(s, 0), 1);

    refused(llama2_session_copy_sequence(s, 1, 0, 2, &err), LLAMA2_E_INVALID, &err,
            "cannot copy 2 positions of sequence 0: it has 1");
    refused(llama2_session_copy_sequence(s, 1, 0, -1, &err), LLAMA2_E_INVALID, &err,
            "cannot copy -1 positions of sequence 0: it has 1");
    refused(llama2_session_copy_sequence(s, 3, 0, 1, &err), LLAMA2_E_INVALID, &err,
            "sequence 3 does not exist (the session has 3)");
    refused(llama2_session_trim_sequence(s, 0, 2, &err), LLAMA2_E_INVALID, &err,
            "cannot keep 2 positions of sequence 0: it has 1");
    refused(llama2_session_trim_sequence(s, 0, -1, &err), LLAMA2_E_INVALID, &err,
            "cannot keep -1 positions of sequence 0: it has 1");
    refused(llama2_session_trim_sequence(s, 5, 0, &err), LLAMA2_E_INVALID, &err,
            "sequence 5 does not exist (the session has 3)");
    float kv[1];
    refused(llama2_session_read_sequence(s, 0, 2, kv, &err), LLAMA2_E_INVALID, &err,
            "cannot read 2 positions of sequence 0: it has 1");
    refused(llama2_session_write_sequence(s, 0, 41, kv, &err), LLAMA2_E_INVALID, &err,
            "cannot write 41 positions into sequence 0: the context holds 40");
    refused(llama2_session_clear_sequence(s, -1, &err), LLAMA2_E_INVALID, &err,
            "sequence -1 does not exist (the session has 3)");
    assert_int_equal(llama2_session_sequence_length(s, 7), 0);
    /* The one-sequence calls see the context too. */
    int tokens[2] = {1, 2};
    float *out = NULL;
    refused(llama2_session_eval(s, tokens, 2, 39, &out, &err), LLAMA2_E_CONTEXT, &err,
            "positions 39..40 do not fit the context window of 40");
    assert_int_equal(llama2_session_eval(s, tokens, 1, 39, &out, &err), LLAMA2_OK);
    free(logits);
    llama2_session_destroy(s);
}

/* --------------------------------------------------------------- setup */

static char models_dir[4096]; /* the models' files */

/* Replaces case i's fp32 model by its GGUF twin in gguf_types[i -
 * FIRST_GGUF], with a tokenizer of made-up pieces (the writer wants one of
 * the model's size). 1 on success. */
static int gguf_twin(const char *dir, int i, llama2_error *err) {
    static char text[VOCAB * 8];
    static size_t lengths[VOCAB];
    static float scores[VOCAB];
    size_t at = 0;
    for (int t = 0; t < VOCAB; t++) {
        lengths[t] = (size_t)snprintf(text + at, sizeof text - at, "p%d", t);
        at += lengths[t];
        scores[t] = (float)-t;
    }
    llama2_tokenizer *tok = NULL;
    if (l2_tokenizer_from_pieces(VOCAB, text, lengths, scores, &tok, err) != LLAMA2_OK) return 0;
    char name[32];
    snprintf(name, sizeof name, "m%d.gguf", i);
    const char *path = test_path_in(dir, name);
    llama2_status st = l2_gguf_write_model(path, cases[i].model, tok, gguf_types[i - FIRST_GGUF], NULL,
                                           L2_OUTPUT_FORCE, NULL, err);
    llama2_tokenizer_close(tok);
    llama2_model_close(cases[i].model);
    cases[i].model = NULL;
    if (st == LLAMA2_OK) st = llama2_model_open(path, NULL, &cases[i].model, err);
    if (st == LLAMA2_OK && llama2_model_config(cases[i].model)->weight_type == gguf_weights[i - FIRST_GGUF]) return 1;
    if (st == LLAMA2_OK) snprintf(err->message, sizeof err->message, "not held as ggml blocks");
    return 0;
}

static int open_models(void **state) {
    (void)state;
    cases[0].config = shape(96, 256, 6, 2, 0, 1, 0);
    cases[1].config = shape(64, 172, 4, 4, 1, 0, 0);
    cases[2].config = shape(96, 256, 6, 2, 0, 2, 32);
    cases[3].config = shape(64, 176, 8, 4, 1, 2, 8);
    cases[4].config = shape(256, 704, 8, 2, 0, 1, 0);
    cases[5].config = shape(256, 704, 8, 2, 0, 2, 64);
    cases[6].config = shape(96, 256, 6, 2, 0, 1, 0);
    cases[7].config = shape(64, 176, 8, 4, 1, 1, 0);
    cases[8].config = shape(256, 704, 8, 2, 0, 1, 0);
    cases[9].config = shape(256, 768, 8, 2, 0, 1, 0);
    cases[10].config = shape(256, 704, 8, 2, 0, 1, 0);
    char dir[4096];
    if (test_tmp_dir_create(dir, sizeof dir, "test-batch") != 0) return -1;
    int ok = 1;
    for (int i = 0; i < N_CASES && ok; i++) {
        /* A file of its own: Windows keeps the name of an open file. */
        char name[32];
        snprintf(name, sizeof name, "m%d.bin", i);
        const char *path = test_path_in(dir, name);
        llama2_error err = {0};
        if (l2_write_random_model(path, &cases[i].config, 11, L2_OUTPUT_FORCE, &err) != LLAMA2_OK ||
            llama2_model_open(path, NULL, &cases[i].model, &err) != LLAMA2_OK) {
            fprintf(stderr, "%s: %s\n", cases[i].name, err.message);
            ok = 0;
        } else if (i >= FIRST_GGUF && !gguf_twin(dir, i, &err)) {
            fprintf(stderr, "%s: %s\n", cases[i].name, err.message);
            ok = 0;
        }
    }
    /* Mapped: the files go once the models are closed (close_models). */
    snprintf(models_dir, sizeof models_dir, "%s", dir);
    return ok ? 0 : -1;
}

static int close_models(void **state) {
    (void)state;
    for (int i = 0; i < N_CASES; i++) llama2_model_close(cases[i].model);
    if (models_dir[0]) test_tmp_dir_remove(models_dir);
    return 0;
}

/* Adds test `fn` on case i, named "what: case name". */
static int add_test(struct CMUnitTest *tests, int n, char (*names)[96], const char *what, CMUnitTestFunction fn,
                    int i) {
    snprintf(names[n], sizeof names[n], "%s: %s", what, cases[i].name);
    tests[n] = (struct CMUnitTest){names[n], fn, NULL, NULL, &cases[i]};
    return n + 1;
}

int main(void) {
    struct CMUnitTest tests[4 * N_CASES];
    static char names[4 * N_CASES][96];
    int n = 0;
    for (int i = 0; i < N_CASES; i++) {
        n = add_test(tests, n, names, "prompt", test_prompt, i);
        n = add_test(tests, n, names, "sequences", test_sequences, i);
    }
    /* Shared prompts on a GQA model of each weight type, refusals on one. */
    n = add_test(tests, n, names, "shared prompt", test_shared_prompt, 0);
    n = add_test(tests, n, names, "shared prompt", test_shared_prompt, 2);
    n = add_test(tests, n, names, "refusals", test_refusals, 3);
    return _cmocka_run_group_tests("test_batch", tests, (size_t)n, open_models, close_models);
}
