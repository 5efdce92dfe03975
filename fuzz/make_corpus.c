/*
 * Writes the seed corpora of the fuzz targets (nothing binary is kept in
 * the repository):
 *
 *   make_corpus <corpus-dir> [<models-dir>]
 *
 * fills <corpus-dir>/{checkpoint,gguf,tokenizer,encode,decode,args,server_request,
 * safetensors,sentencepiece,grammar,json_schema}/ with small valid inputs: tiny models of every checkpoint
 * format (written by the library's checkpoint writer), their headers alone,
 * tiny GGUF files with a tokenizer (the library's GGUF writer),
 * the shared tokenizers truncated to their first entries, sample prompts,
 * token id sequences, command lines, safetensors files with Llama's tensor
 * names, GBNF grammars, JSON Schemas, and SentencePiece models (built here, and the first pieces of
 * tokenizer.model). <models-dir> (default $LLAMA2_MODELS, else models)
 * supplies tok512.bin, tokenizer.bin and tokenizer.model; without them those
 * seeds are built from scratch only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "write/checkpoint_writer.h"
#include "text/bpe.h"
#include "write/gguf_writer.h"

/* ------------------------------------------------------------- output */

static const char *corpus_dir;

static void make_dir(const char *path) {
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void write_seed(const char *target, const char *name, const void *data, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", corpus_dir, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/seed-%s", corpus_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* A growing byte buffer. */
typedef struct bytes {
    unsigned char *data;
    size_t size, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
    if (b->size + n > b->cap) {
        while (b->size + n > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
        b->data = realloc(b->data, b->cap);
        if (!b->data) abort();
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void put_i32(bytes *b, int32_t v) { put(b, &v, 4); }
static void put_f32(bytes *b, float v) { put(b, &v, 4); }

static uint64_t rng = 0x2545F4914F6CDD1Du;
static uint32_t next_random(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Du) >> 32);
}
static float small_float(void) { return ((float)(next_random() % 2001) - 1000.0f) / 4000.0f; }

/* The whole file; NULL if it cannot be read. */
static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    fclose(f);
    *size = n;
    return buf;
}

/* -------------------------------------------------------- checkpoints */

/* The tensors of the seed models: norms of 1, small random weights. */
static llama2_status read_seed_rows(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows,
                                    float *out, llama2_error *err) {
    size_t rows, cols;
    l2_tensor_shape(user, kind, &rows, &cols);
    for (size_t i = 0; i < n_rows * cols; i++) out[i] = l2_tensor_table[kind].matrix ? small_float() : 1.0f;
    return LLAMA2_OK;
}

typedef struct seed_model {
    const char *name;
    int dim, hidden, layers, heads, kv_heads, vocab, seq;
    int version, shared, group_size;
    int rope;           /* version 0: with the RoPE tables */
    float rope_theta;   /* 0: llama2.c's */
    float norm_eps;
} seed_model;

/* A tiny model written by the library's writer (so through the format
 * table), and its header alone. */
static void checkpoint_seed(const seed_model *m) {
    llama2_config c = {0};
    c.dim = m->dim, c.hidden_dim = m->hidden, c.n_layers = m->layers, c.n_heads = m->heads;
    c.n_kv_heads = m->kv_heads, c.vocab_size = m->vocab, c.seq_len = m->seq;
    c.file_version = m->version, c.shared_classifier = m->shared, c.group_size = m->group_size;
    c.rope_theta = m->rope_theta, c.norm_eps = m->norm_eps;
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint", corpus_dir);
    make_dir(path);
    snprintf(path, sizeof path, "%s/checkpoint/seed-%s", corpus_dir, m->name);
    const l2_tensor_source source = {&c, read_seed_rows, 0, NULL};
    llama2_error err = {0};
    if (l2_checkpoint_write(path, &c, &source, L2_OUTPUT_FORCE, &err) != LLAMA2_OK) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, err.message);
        exit(1);
    }
    size_t size = 0;
    unsigned char *data = read_all(path, &size);
    if (!data) {
        fprintf(stderr, "make_corpus: cannot read back %s\n", path);
        exit(1);
    }
    if (m->version == 0 && !m->rope) {
        /* The tables end a file with a shared classifier: cut them off. */
        size = size - (size_t)m->seq * (size_t)(m->dim / m->heads) * sizeof(float);
        write_seed("checkpoint", m->name, data, size);
    }
    char name[64];
    snprintf(name, sizeof name, "%s-header", m->name);
    write_seed("checkpoint", name, data, m->version == 0 ? L2_V0_HEADER_BYTES : L2_V1_HEADER_BYTES);
    free(data);
}

static void checkpoint_seeds(void) {
    const seed_model seeds[] = {
        {"v0-shared", 8, 12, 1, 2, 1, 12, 8, 0, 1, 0, 1, 0, 0},
        {"v0-shared-norope", 8, 12, 1, 2, 1, 12, 8, 0, 1, 0, 0, 0, 0},
        {"v0-separate", 8, 16, 2, 2, 2, 10, 4, 0, 0, 0, 1, 0, 0},
        {"v0-wide", 16, 24, 1, 4, 2, 6, 16, 0, 1, 0, 1, 0, 0},
        {"v1-shared", 8, 12, 1, 2, 1, 12, 8, 1, 1, 0, 0, 0, 0},
        {"v1-separate", 8, 16, 2, 2, 2, 10, 4, 1, 0, 0, 0, 0, 0},
        {"v1-theta-eps", 8, 16, 2, 2, 2, 10, 4, 1, 0, 0, 0, 500000.0f, 1e-6f},
        {"v2-gs4-shared", 8, 12, 1, 2, 1, 12, 8, 2, 1, 4, 0, 0, 0},
        {"v2-gs2-separate", 8, 16, 2, 2, 2, 10, 4, 2, 0, 2, 0, 0, 0},
        {"v2-gs8-wide", 16, 24, 1, 4, 2, 6, 16, 2, 1, 8, 0, 0, 0},
        {"v2-gs4-theta", 8, 12, 1, 2, 1, 12, 8, 2, 1, 4, 0, 1e6f, 0},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) checkpoint_seed(&seeds[i]);
}

/* ---------------------------------------------------------------- GGUF */

/* A tokenizer.bin image of `vocab` pieces: <unk>, BOS, EOS, a space, then
 * letters. */
static llama2_tokenizer *tiny_tokenizer(int vocab) {
    bytes b = {0};
    const int32_t max_len = 8;
    put(&b, &max_len, 4);
    for (int i = 0; i < vocab; i++) {
        char piece[8];
        if (i < 4)
            snprintf(piece, sizeof piece, "%s", (const char *[]){"<unk>", "\n<s>\n", "\n</s>\n", " "}[i]);
        else
            snprintf(piece, sizeof piece, "%c", 'a' + (i - 4) % 26);
        const float score = -(float)i;
        const int32_t len = (int32_t)strlen(piece);
        put(&b, &score, 4);
        put(&b, &len, 4);
        put(&b, piece, (size_t)len);
    }
    llama2_tokenizer *t = NULL;
    llama2_error err = {0};
    if (llama2_tokenizer_from_memory(b.data, b.size, 0, &t, &err) != LLAMA2_OK) abort();
    free(b.data);
    return t;
}

static void gguf_seed(const char *name, const seed_model *m, uint32_t type) {
    llama2_config c = {0};
    c.dim = m->dim, c.hidden_dim = m->hidden, c.n_layers = m->layers, c.n_heads = m->heads;
    c.n_kv_heads = m->kv_heads, c.vocab_size = m->vocab, c.seq_len = m->seq;
    c.file_version = 1, c.shared_classifier = m->shared;
    char bin[4096], path[4096];
    snprintf(path, sizeof path, "%s/gguf", corpus_dir);
    make_dir(path);
    snprintf(bin, sizeof bin, "%s/gguf/.source.bin", corpus_dir);
    snprintf(path, sizeof path, "%s/gguf/seed-%s", corpus_dir, name);
    const l2_tensor_source source = {&c, read_seed_rows, 0, NULL};
    llama2_error err = {0};
    llama2_model *model = NULL;
    llama2_tokenizer *tok = tiny_tokenizer(m->vocab);
    if (l2_checkpoint_write(bin, &c, &source, L2_OUTPUT_FORCE, &err) != LLAMA2_OK ||
        llama2_model_open(bin, NULL, &model, &err) != LLAMA2_OK ||
        l2_gguf_write_model(path, model, tok, type, NULL, L2_OUTPUT_FORCE, NULL, &err) != LLAMA2_OK) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, err.message);
        exit(1);
    }
    llama2_model_close(model);
    llama2_tokenizer_close(tok);
    remove(bin);
}

/* A model with Llama 3's RoPE scaling (written as rope_freqs.weight) and a
 * byte-level BPE tokenizer (tokenizer.ggml.model "gpt2"): the 256 byte
 * tokens, "ab" and two control tokens, and a padding row. */
static void gguf_bpe_seed(void) {
    static char names[256][3];
    const char *tokens[259];
    int types[259];
    for (int b = 0; b < 256; b++) {
        const unsigned cp = l2_bpe_byte_char((unsigned char)b);
        if (cp < 0x80) {
            names[b][0] = (char)cp;
        } else {
            names[b][0] = (char)(0xC0 | cp >> 6);
            names[b][1] = (char)(0x80 | (cp & 0x3F));
        }
        tokens[b] = names[b];
        types[b] = 1;
    }
    tokens[256] = "ab", types[256] = 1;
    tokens[257] = "<|begin_of_text|>", types[257] = 3;
    tokens[258] = "<|eot_id|>", types[258] = 3;
    const char *merges[] = {"a b"};
    const int end[] = {258};
    const llama2_bpe_vocab v = {259, tokens, types, 1, merges, "llama3", 257, 1, end};
    llama2_config c = {0};
    c.dim = 8, c.hidden_dim = 12, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.vocab_size = 260, c.seq_len = 8;
    c.file_version = 1, c.shared_classifier = 1, c.rope_theta = 500000.0f, c.norm_eps = 1e-5f;
    c.rope_scaling_factor = 8.0f, c.rope_low_freq_factor = 1.0f, c.rope_high_freq_factor = 4.0f;
    c.rope_original_context = 32;
    char bin[4096], path[4096];
    snprintf(path, sizeof path, "%s/gguf", corpus_dir);
    make_dir(path);
    snprintf(bin, sizeof bin, "%s/gguf/.source.bin", corpus_dir);
    snprintf(path, sizeof path, "%s/gguf/seed-bpe-rope-scaling", corpus_dir);
    const l2_tensor_source source = {&c, read_seed_rows, 0, NULL};
    llama2_error err = {0};
    llama2_model *model = NULL;
    llama2_tokenizer *tok = NULL;
    if (llama2_tokenizer_from_bpe(&v, &tok, &err) != LLAMA2_OK ||
        l2_checkpoint_write(bin, &c, &source, L2_OUTPUT_FORCE, &err) != LLAMA2_OK ||
        llama2_model_open(bin, NULL, &model, &err) != LLAMA2_OK ||
        l2_gguf_write_model(path, model, tok, L2_GGML_F32, NULL, L2_OUTPUT_FORCE, NULL, &err) != LLAMA2_OK) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, err.message);
        exit(1);
    }
    llama2_model_close(model);
    llama2_tokenizer_close(tok);
    remove(bin);
}

static void gguf_seeds(void) {
    const seed_model shared = {"", 8, 12, 1, 2, 1, 12, 8, 1, 1, 0, 0, 0, 0};
    const seed_model separate = {"", 8, 16, 2, 2, 2, 10, 4, 1, 0, 0, 0, 0, 0};
    const seed_model blocks = {"", 32, 64, 1, 2, 1, 8, 4, 1, 1, 0, 0, 0, 0};
    gguf_seed("f32-shared", &shared, L2_GGML_F32);
    gguf_seed("f32-separate", &separate, L2_GGML_F32);
    gguf_seed("f16-separate", &separate, L2_GGML_F16);
    gguf_seed("q8_0-blocks", &blocks, L2_GGML_Q8_0);
    gguf_bpe_seed();
}

/* --------------------------------------------------------- tokenizers */


/* The length of the header and the first n entries of a tokenizer file. */
static size_t first_entries(const unsigned char *data, size_t size, int n) {
    size_t pos = 4;
    for (int i = 0; i < n && pos + 8 <= size; i++) {
        int32_t len;
        memcpy(&len, data + pos + 4, 4);
        if (len < 0 || (size_t)len > size - pos - 8) break;
        pos += 8 + (size_t)len;
    }
    return pos;
}

static void tokenizer_seeds(const char *models) {
    /* From scratch: BOS/EOS, a few letters and their merges. */
    const char *pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a", "b", "ab", " ab", "<0x41>", "\xc3\xa9"};
    bytes b = {0};
    put_i32(&b, 6);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        put_f32(&b, (float)i - 3.0f);
        put_i32(&b, (int32_t)strlen(pieces[i]));
        put(&b, pieces[i], strlen(pieces[i]));
    }
    write_seed("tokenizer", "scratch", b.data, b.size);
    free(b.data);

    const char *files[2] = {"tok512.bin", "tokenizer.bin"};
    const int counts[3] = {8, 40, 300};
    for (int f = 0; f < 2; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", models, files[f]);
        size_t size = 0;
        unsigned char *data = read_all(path, &size);
        if (!data) {
            fprintf(stderr, "make_corpus: %s not found, skipping its seeds\n", path);
            continue;
        }
        for (int c = 0; c < 3; c++) {
            char name[64];
            snprintf(name, sizeof name, "%s-%d", files[f], counts[c]);
            write_seed("tokenizer", name, data, first_entries(data, size, counts[c]));
        }
        free(data);
    }
}

/* ------------------------------------------------------------ prompts */

static void encode_seeds(void) {
    const char *prompts[] = {
        "Once upon a time",
        "Lily and Ben went to the park. They saw a big dog!",
        "caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80",
        "\xff\xfe\x80\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80 bad utf-8",
        "<0x41><s></s><unk> \n\t\r",
        " leading and  double  spaces ",
        "a",
    };
    for (size_t i = 0; i < sizeof prompts / sizeof prompts[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "%zu", i);
        write_seed("encode", name, prompts[i], strlen(prompts[i]));
    }
    /* A long text: the fuzzer keeps inputs up to the longest seed. */
    size_t n = 60000;
    char *text = malloc(n);
    if (!text) abort();
    const char *words[] = {"the ", "little ", "dog ", "ran ", "\xc3\xa9t\xc3\xa9 ", "! ", "\n", "zzz "};
    for (size_t at = 0; at < n;) {
        const char *w = words[next_random() % 8];
        size_t len = strlen(w) < n - at ? strlen(w) : n - at;
        memcpy(text + at, w, len);
        at += len;
    }
    write_seed("encode", "long", text, n);
    free(text);
}

static void decode_seeds(void) {
    /* Little-endian uint16 ids, offset by 64 as fuzz_decode reads them. */
    const int sequences[][12] = {
        {1, 403, 407, 261, 378, 284, 300, 2, 0, 0, 0, 0},
        {1, 230, 172, 150, 3, 131, 197, 200, 2, 1, 1, 0},   /* byte tokens */
        {-5, 0, 511, 512, 31999, 32000, 40000, 1, 2, 3, 4, 5},
        {1, 29871, 30010, 31000, 13, 9, 29889, 2, 0, 0, 0, 0},
    };
    for (size_t s = 0; s < sizeof sequences / sizeof sequences[0]; s++) {
        unsigned char buf[24];
        for (int i = 0; i < 12; i++) {
            unsigned v = (unsigned)(sequences[s][i] + 64) & 0xFFFF;
            buf[2 * i] = (unsigned char)v;
            buf[2 * i + 1] = (unsigned char)(v >> 8);
        }
        char name[16];
        snprintf(name, sizeof name, "%zu", s);
        write_seed("decode", name, buf, sizeof buf);
    }
}

static void args_seeds(void) {
    /* Arguments joined by NUL bytes, as fuzz_args splits them. */
    const char *lines[] = {
        "model.bin",
        "model.bin\0-t\0" "0.8\0-p\0" "0.9\0-s\0" "42\0-n\0" "256\0-i\0Once upon a time",
        "model.bin\0--temperature=1\0--top-p=0.5\0--steps=0\0--threads=4\0--batch=8",
        "model.bin\0-m\0chat\0-y\0be nice\0-z\0tok.bin\0--no-mmap\0--no-timer\0--verbose",
        "--help",
        "--version",
        "model.bin\0-t\0nan\0-p\0-0.1",
        "model.bin\0other.bin",
        "-n",
        "model.bin\0--no-timer=1\0--bogus\0-x",
        "model.bin\0--top-k\0" "40\0--min-p=0.05\0--repeat-penalty\0" "1.1\0--repeat-last-n\0-1\0--presence-penalty"
        "\0" "0.5\0--frequency-penalty=-0.5",
        "model.bin\0-f\0-\0--stop\0The end\0--stop=\n\0--ctx\0" "64\0-m\0chat\0--chat-template\0zephyr\0--reply-tokens"
        "\0" "8",
    };
    const size_t sizes[] = {
        sizeof "model.bin" - 1,
        sizeof "model.bin\0-t\0" "0.8\0-p\0" "0.9\0-s\0" "42\0-n\0" "256\0-i\0Once upon a time" - 1,
        sizeof "model.bin\0--temperature=1\0--top-p=0.5\0--steps=0\0--threads=4\0--batch=8" - 1,
        sizeof "model.bin\0-m\0chat\0-y\0be nice\0-z\0tok.bin\0--no-mmap\0--no-timer\0--verbose" - 1,
        sizeof "--help" - 1,
        sizeof "--version" - 1,
        sizeof "model.bin\0-t\0nan\0-p\0-0.1" - 1,
        sizeof "model.bin\0other.bin" - 1,
        sizeof "-n" - 1,
        sizeof "model.bin\0--no-timer=1\0--bogus\0-x" - 1,
        sizeof "model.bin\0--top-k\0" "40\0--min-p=0.05\0--repeat-penalty\0" "1.1\0--repeat-last-n\0-1\0--presence-penalty"
               "\0" "0.5\0--frequency-penalty=-0.5" - 1,
        sizeof "model.bin\0-f\0-\0--stop\0The end\0--stop=\n\0--ctx\0" "64\0-m\0chat\0--chat-template\0zephyr\0--reply-tokens"
               "\0" "8" - 1,
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "%zu", i);
        write_seed("args", name, lines[i], sizes[i]);
    }
}

/* ------------------------------------------------------ server requests */

static void server_request_seeds(void) {
    /* The first byte as fuzz_server_request reads it: the endpoint (bits
     * 0-1: completion, chat, tokenize, detokenize), the template (2-3) and
     * the context (4-7: 1 + 16 * n positions); then the body. */
    static const struct {
        unsigned char head;
        const char *body;
    } seeds[] = {
        {0xF0, "{\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"temperature\":0.8,\"top_p\":0.9,"
               "\"top_k\":40,\"min_p\":0.05,\"seed\":42,\"stop\":[\"The end\",\"\\n\"],\"n\":2}"},
        {0xF0, "{\"prompt\":[[1,403,407]],\"stream\":true,\"stream_options\":{\"include_usage\":true},"
               "\"presence_penalty\":0.5,\"frequency_penalty\":-1,\"repeat_penalty\":1.1,\"ignore_eos\":true}"},
        {0x21, "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\","
               "\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\","
               "\"content\":[{\"type\":\"text\",\"text\":\"A story\"}]}],\"max_completion_tokens\":8}"},
        {0xF5, "{\"messages\":[{\"role\":\"developer\",\"content\":\"x\"},{\"role\":\"user\",\"content\":\"y\"}],"
               "\"stop\":\"<|im_end|>\",\"temperature\":null}"},
        {0x11, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}],\"n\":9,\"max_tokens\":\"5\"}"},
        {0xF2, "{\"content\":\"Once upon a time \\u00e9\\ud83d\\ude00\",\"add_special\":true}"},
        {0xF3, "{\"tokens\":[1,403,407,261,378,2,200,511]}"},
        {0xF0, "{\"prompt\": ["},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        bytes b = {0};
        put(&b, &seeds[i].head, 1);
        put(&b, seeds[i].body, strlen(seeds[i].body));
        char name[16];
        snprintf(name, sizeof name, "%zu", i);
        write_seed("server_request", name, b.data, b.size);
        free(b.data);
    }
}

/* -------------------------------------------------------- safetensors */

/* A safetensors file: the header's length (8 bytes, little-endian), the
 * header, data_len bytes of values. */
static void safetensors_seed(const char *name, const char *header, size_t data_len) {
    bytes b = {0};
    const uint64_t n = strlen(header);
    for (int i = 0; i < 8; i++) {
        unsigned char c = (unsigned char)(n >> (8 * i));
        put(&b, &c, 1);
    }
    put(&b, header, n);
    for (size_t i = 0; i < data_len; i++) {
        unsigned char c = (unsigned char)next_random();
        put(&b, &c, 1);
    }
    write_seed("safetensors", name, b.data, b.size);
    free(b.data);
}

static void safetensors_seeds(void) {
    safetensors_seed("empty", "{}", 0);
    safetensors_seed("metadata", "{\"__metadata__\":{\"format\":\"pt\"}}    ", 0);
    safetensors_seed("f32", "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
    safetensors_seed("layers",
                     "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[4,4],\"data_offsets\":[0,32]},"
                     "\"model.layers.1.mlp.up_proj.weight\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[32,48]},"
                     "\"model.layers.0.self_attn.q_proj.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]},"
                     "\"lm_head.weight\":{\"dtype\":\"I8\",\"shape\":[3,1,1],\"data_offsets\":[64,67]}}",
                     67);
}

/* ------------------------------------------------------ sentencepiece */

static void put_varint(bytes *b, uint64_t v) {
    do {
        unsigned char c = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        put(b, &c, 1);
        v >>= 7;
    } while (v);
}

static void put_field(bytes *b, unsigned field, int wire) { put_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

/* A ModelProto.SentencePiece: piece, score, type (1 normal is left out). */
static void put_piece(bytes *b, const char *text, float score, int type) {
    bytes p = {0};
    put_field(&p, 1, 2);
    put_varint(&p, strlen(text));
    put(&p, text, strlen(text));
    put_field(&p, 2, 5);
    put_f32(&p, score);
    if (type != 1) {
        put_field(&p, 3, 0);
        put_varint(&p, (uint64_t)type);
    }
    put_field(b, 1, 2);
    put_varint(b, p.size);
    put(b, p.data, p.size);
    free(p.data);
}

static void sentencepiece_seeds(const char *models) {
    bytes b = {0};
    put_piece(&b, "<unk>", 0.0f, 2);
    put_piece(&b, "<s>", 0.0f, 3);
    put_piece(&b, "</s>", 0.0f, 3);
    put_piece(&b, "<0x41>", 0.0f, 6);
    put_piece(&b, "\xe2\x96\x81" "a", -1.0f, 1);
    put_piece(&b, "b", -2.0f, 1);
    bytes spec = {0};
    put_field(&spec, 3, 0);
    put_varint(&spec, 2);
    put_field(&spec, 46, 2);
    put_varint(&spec, 3);
    put(&spec, "<s>", 3);
    put_field(&spec, 43, 0);
    put_varint(&spec, UINT64_MAX); /* pad_id -1 */
    put_field(&b, 2, 2);
    put_varint(&b, spec.size);
    put(&b, spec.data, spec.size);
    write_seed("sentencepiece", "scratch", b.data, b.size);
    free(spec.data);
    free(b.data);

    /* tokenizer.bin inputs too (the target reads its bytes both ways). */
    char path[4096];
    snprintf(path, sizeof path, "%s/tok512.bin", models);
    size_t size = 0;
    unsigned char *data = read_all(path, &size);
    if (data) {
        write_seed("sentencepiece", "tok512.bin-40", data, first_entries(data, size, 40));
        free(data);
    }
    /* The first pieces of Llama 2's model: its records up to the 40th piece. */
    snprintf(path, sizeof path, "%s/tokenizer.model", models);
    data = read_all(path, &size);
    if (!data) {
        fprintf(stderr, "make_corpus: %s not found, skipping its seeds\n", path);
        return;
    }
    size_t pos = 0;
    for (int pieces = 0; pos < size && pieces < 40; pieces++) {
        uint64_t len = 0;
        int shift = 0;
        size_t p = pos + 1; /* past the one-byte tag of field 1 */
        while (p < size && shift < 64) {
            len |= (uint64_t)(data[p] & 0x7f) << shift;
            shift += 7;
            if (!(data[p++] & 0x80)) break;
        }
        if (data[pos] != 0x0a || len > size - p) break;
        pos = p + len;
    }
    write_seed("sentencepiece", "tokenizer.model-40", data, pos);
    free(data);
}

static void grammar_seeds(void) {
    static const char *grammars[] = {
        "root ::= \"yes\" | \"no\"\n",
        "root ::= \"-\"? [0-9]+ (\".\" [0-9]+)?\n",
        "root ::= list\nlist ::= \"[\" (item (\",\" item)*)? \"]\"\nitem ::= [0-9] | list\n",
        "# json\nroot ::= value\nvalue ::= object | array | string | [0-9]+ | \"true\" | \"null\"\n"
        "object ::= \"{\" ws (string \":\" ws value (\",\" ws string \":\" ws value)*)? \"}\"\n"
        "array ::= \"[\" ws (value (\",\" ws value)*)? \"]\"\n"
        "string ::= \"\\\"\" ([^\"\\\\\\x00-\\x1F] | \"\\\\\" [\"\\\\/bfnrt])* \"\\\"\"\nws ::= [ \\t\\n]{0,4}\n",
        "root ::= [^a-z\\u00e9] . \"\\U0001F600\" \"a\"{2,5} \"b\"{3} \"c\"{1,}\n",
    };
    for (size_t i = 0; i < sizeof grammars / sizeof grammars[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "grammar%zu", i);
        write_seed("grammar", name, grammars[i], strlen(grammars[i]));
    }
}

static void json_schema_seeds(void) {
    static const char *schemas[] = {
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":8},\"age\":{\"type\":"
        "\"integer\",\"minimum\":0,\"maximum\":120}},\"required\":[\"name\"]}",
        "{\"type\":\"array\",\"prefixItems\":[{\"const\":1}],\"items\":{\"enum\":[\"a\",null]},\"minItems\":1,"
        "\"maxItems\":4}",
        "{\"$ref\":\"#/$defs/t\",\"$defs\":{\"t\":{\"type\":\"object\",\"properties\":{\"c\":{\"type\":\"array\","
        "\"items\":{\"$ref\":\"#/$defs/t\"}}}}}}",
        "{\"anyOf\":[{\"type\":\"string\",\"format\":\"date-time\"},{\"type\":[\"integer\",\"null\"]}]}",
        "{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"}}},{\"required\":[\"a\"]}]}",
    };
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "schema%zu", i);
        write_seed("json_schema", name, schemas[i], strlen(schemas[i]));
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_corpus <corpus-dir> [<models-dir>]\n");
        return 2;
    }
    corpus_dir = argv[1];
    const char *models = argc == 3 ? argv[2] : getenv("LLAMA2_MODELS");
    if (!models || !*models) models = "models";
    make_dir(corpus_dir);
    checkpoint_seeds();
    gguf_seeds();
    tokenizer_seeds(models);
    encode_seeds();
    decode_seeds();
    args_seeds();
    server_request_seeds();
    safetensors_seeds();
    sentencepiece_seeds(models);
    grammar_seeds();
    json_schema_seeds();
    return 0;
}
