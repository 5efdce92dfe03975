/*
 * Writing llama2.c checkpoints: any config in any of the three versions,
 * from any source of fp32 tensors, walking the format table
 * (checkpoint_format.c); version 2 matrices are quantized to Q8_0 on the
 * way, as llama2.c's export.py does. Rewriting a file to another version
 * is one such source.
 *
 * Output goes through fixed-size buffers written at their offsets to a file that
 * gets the destination's name only once every byte is written
 * (output_file.h: never over an input, over an existing file only when
 * asked), so that a failure never leaves a partial file behind.
 * A Q8_0 matrix is its int8 values followed by its scales: the values and
 * the scales are produced together and go through two buffers, each aimed
 * at its own place in the file. Memory use is a few buffers, whatever the
 * size of the model.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_writer.h"
#include "platform/checks.h"
#include "model/model.h"

#define STREAM_BYTES ((size_t)4 << 20)  /* each output buffer */
#define SCRATCH_FLOATS ((size_t)1 << 18) /* values asked of the source at a time */
#define MAX_GROUP 64

/* ------------------------------------------------------------ streams */

/* A buffer that lands at file offset `pos` when flushed. */
typedef struct stream {
    unsigned char *buf;
    size_t len;
    uint64_t pos;
} stream;

typedef struct writer {
    l2_output out;
    int io_errno; /* first write error (EINTR: a signal is waiting), 0 while none */
    stream main;  /* everything, in file order */
    stream side;  /* the scales of the Q8_0 matrix being written */
    float *scratch;
    size_t scratch_floats;
} writer;

static void stream_flush(writer *w, stream *s) {
    if (!w->io_errno && l2_output_interrupted(&w->out)) w->io_errno = EINTR;
    if (!w->io_errno && s->len > 0) w->io_errno = l2_temp_write_at(w->out.file, s->buf, s->len, s->pos);
    s->pos += s->len;
    s->len = 0;
}

/* Room for at least one byte at the end of the buffer; returns how much. */
static size_t stream_room(writer *w, stream *s) {
    if (s->len == STREAM_BYTES) stream_flush(w, s);
    return STREAM_BYTES - s->len;
}

static void stream_put(writer *w, stream *s, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0) {
        size_t room = stream_room(w, s), k = n < room ? n : room;
        memcpy(s->buf + s->len, p, k);
        s->len += k;
        p += k;
        n -= k;
    }
}

static uint64_t stream_end(const stream *s) { return s->pos + s->len; }

static void writer_free(writer *w) {
    free(w->main.buf);
    free(w->side.buf);
    free(w->scratch);
}

/* Opens the output `path`, made from `inputs` (NULL-terminated, or NULL),
 * as `flags` say (output_file.h). */
static llama2_status writer_open(writer *w, const char *path, const char *const *inputs, unsigned flags,
                                 size_t scratch_floats, llama2_error *err) {
    memset(w, 0, sizeof *w);
    w->main.buf = malloc(STREAM_BYTES);
    w->side.buf = malloc(STREAM_BYTES);
    w->scratch_floats = scratch_floats;
    w->scratch = malloc(scratch_floats * sizeof(float));
    if (!w->main.buf || !w->side.buf || !w->scratch) {
        writer_free(w);
        return l2_fail(err, LLAMA2_E_NOMEM, "out of memory for the output buffers");
    }
    llama2_status s = l2_output_open(&w->out, path, inputs, flags, err);
    if (s != LLAMA2_OK) writer_free(w);
    return s;
}

/* Ends a write: on success (s is LLAMA2_OK) flushes and gives the file its
 * name; otherwise, or when that fails, removes it. Returns the outcome. */
static llama2_status writer_close(writer *w, llama2_status s, llama2_error *err) {
    if (s == LLAMA2_OK) stream_flush(w, &w->main);
    if (s == LLAMA2_OK && w->io_errno == EINTR) s = l2_fail(err, LLAMA2_E_IO, "interrupted by a signal");
    if (s == LLAMA2_OK && w->io_errno) s = l2_fail(err, LLAMA2_E_IO, "write failed: %s", strerror(w->io_errno));
    if (s == LLAMA2_OK)
        s = l2_output_commit(&w->out, err);
    else
        l2_output_abort(&w->out);
    writer_free(w);
    return s;
}

/* --------------------------------------------------------- quantizing */

/* Quantizes n values (whole groups of group_size) as export.py does, in
 * float32: scale = max|w| / 127, q = round-half-even(w / scale), with an
 * all-zero group (or one whose scale underflows to 0) giving scale 0 and
 * q 0 (what torch's cast of 0/0 gives on x86). The values go to the main
 * stream, the scales to the side stream. Returns 0 when a value is not
 * finite. */
static int quantize_values(writer *w, const float *v, size_t n, int group_size) {
    const size_t gs = (size_t)group_size;
    int ok = 1;
    for (size_t g = 0; g < n; g += gs) {
        const float *x = v + g;
        float wmax = 0.0f;
        for (size_t i = 0; i < gs; i++) {
            float a = fabsf(x[i]);
            if (a > wmax) wmax = a;
        }
        float scale = wmax / 127.0f;
        stream_put(w, &w->side, &scale, sizeof scale);
        for (size_t i = 0; i < gs;) {
            size_t room = stream_room(w, &w->main), k = gs - i < room ? gs - i : room;
            int8_t *q = (int8_t *)(w->main.buf + w->main.len);
            if (scale == 0.0f) {
                for (size_t j = 0; j < k; j++) {
                    if (!isfinite(x[i + j])) ok = 0;
                    q[j] = 0;
                }
            } else {
                for (size_t j = 0; j < k; j++) {
                    float r = rintf(x[i + j] / scale);
                    if (!(r >= -127.0f && r <= 127.0f)) {
                        /* A NaN or an infinity in the group; or a subnormal
                         * scale too coarse for its group: clamp that. */
                        if (isfinite(x[i + j]))
                            r = r < 0.0f ? -127.0f : 127.0f;
                        else
                            ok = 0, r = 0.0f;
                    }
                    q[j] = (int8_t)r;
                }
            }
            w->main.len += k;
            i += k;
        }
    }
    return ok;
}

/* Points the side stream at the end of a matrix of n values starting here. */
static void q8_begin(writer *w, size_t n) {
    w->side.pos = stream_end(&w->main) + (uint64_t)n;
    w->side.len = 0;
}

/* Moves the main stream past the matrix's scales. */
static void q8_end(writer *w, size_t n, int group_size) {
    stream_flush(w, &w->main);
    stream_flush(w, &w->side);
    w->main.pos += (uint64_t)(n / (size_t)group_size * sizeof(float));
}

/* --------------------------------------------------------- RoPE tables */

/* Version 0's RoPE tables as llama2.c's model.py computes them in float32
 * (freq_i = 1 / 10000^(2i / head_size), angle = pos * freq_i), with cos
 * and sin taken in double and rounded to float (torch's may differ in the
 * last bit). */
static llama2_status read_rope_rows(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows,
                                    float *out, llama2_error *err) {
    const llama2_config *c = user;
    const size_t head_size = (size_t)(c->dim / c->n_heads), half = head_size / 2;
    for (size_t r = 0; r < n_rows; r++)
        for (size_t i = 0; i < half; i++) {
            float freq = 1.0f / powf(L2_DEFAULT_ROPE_THETA, (float)(2 * i) / (float)head_size);
            double angle = (double)((float)(row + r) * freq);
            out[r * half + i] = (float)(kind == L2_TENSOR_ROPE_COS ? cos(angle) : sin(angle));
        }
    return LLAMA2_OK;
}

/* ------------------------------------------------------- the writer */

int l2_default_group_size(int dim, int hidden_dim) {
    if (dim <= 0 || hidden_dim <= 0) return 0;
    for (int g = MAX_GROUP; g > 1; g--)
        if (dim % g == 0 && hidden_dim % g == 0) return g;
    return 1;
}

/* The config as it will be written: weight type and group size from the
 * version, checked to be writable. */
static llama2_status output_config(const llama2_config *c, llama2_config *out, llama2_error *err) {
    *out = *c;
    llama2_status s = l2_header_check(c, err);
    if (s != LLAMA2_OK) return s;
    const int q8 = c->file_version == 2;
    out->weight_type = q8 ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32;
    out->group_size = !q8 ? 0 : c->group_size != 0 ? c->group_size : l2_default_group_size(c->dim, c->hidden_dim);
    out->shared_classifier = c->shared_classifier != 0;
    s = l2_check_shape(out, LLAMA2_E_INVALID, "", err);
    if (s != LLAMA2_OK) return s;
    size_t bytes;
    if (!l2_checkpoint_bytes(out, 1, &bytes) || (uint64_t)bytes > (uint64_t)INT64_MAX)
        return l2_fail(err, LLAMA2_E_INVALID, "the model is too large to write");
    return LLAMA2_OK;
}

/* Writes one tensor, asking `from` for its rows a scratch buffer at a time. */
static llama2_status put_tensor(writer *w, const llama2_config *c, const l2_file_tensor *t,
                                const l2_tensor_source *from, llama2_error *err) {
    const size_t step = w->scratch_floats / t->cols; /* rows at a time: at least one */
    const int q8 = t->type == LLAMA2_WEIGHTS_Q8_0;
    if (q8) q8_begin(w, t->rows * t->cols);
    int finite = 1;
    for (size_t row = 0; row < t->rows && !w->io_errno; row += step) {
        const size_t n = t->rows - row < step ? t->rows - row : step;
        llama2_status s = from->read_rows(from->user, t->kind, t->layer, row, n, w->scratch, err);
        if (s != LLAMA2_OK) return s;
        if (q8)
            finite &= quantize_values(w, w->scratch, n * t->cols, c->group_size);
        else
            stream_put(w, &w->main, w->scratch, n * t->cols * sizeof(float));
    }
    if (q8) q8_end(w, t->rows * t->cols, c->group_size);
    if (!finite)
        return l2_fail(err, LLAMA2_E_FORMAT, "a weight is not a finite number: it cannot be quantized (%s, layer %d)",
                       l2_tensor_table[t->kind].name, t->layer);
    return LLAMA2_OK;
}

llama2_status l2_checkpoint_write(const char *path, const llama2_config *config, const l2_tensor_source *source,
                                  unsigned output_flags, llama2_error *err) {
    if (!path || !config || !source || !source->read_rows)
        return l2_fail(err, LLAMA2_E_INVALID, "no path, no config or no source of tensors");
    llama2_config c;
    llama2_status s = output_config(config, &c, err);
    if (s != LLAMA2_OK) return s;

    /* The scratch holds at least one row of the widest tensor. */
    size_t scratch = SCRATCH_FLOATS;
    if ((size_t)c.hidden_dim > scratch) scratch = (size_t)c.hidden_dim;
    if ((size_t)c.dim > scratch) scratch = (size_t)c.dim;
    writer w;
    s = writer_open(&w, path, source->inputs, output_flags, scratch, err);
    if (s != LLAMA2_OK) return s;

    unsigned char header[L2_V1_HEADER_BYTES];
    stream_put(&w, &w.main, header, l2_header_encode(&c, header));
    const l2_tensor_source computed_rope = {&c, read_rope_rows, 1, NULL};
    l2_tensor_walk walk = l2_tensor_walk_start(&c, 1);
    l2_file_tensor t;
    while (s == LLAMA2_OK && !w.io_errno && l2_tensor_walk_next(&walk, &t)) {
        const int rope = t.kind == L2_TENSOR_ROPE_COS || t.kind == L2_TENSOR_ROPE_SIN;
        s = put_tensor(&w, &c, &t, rope && !source->has_rope_tables ? &computed_rope : source, err);
    }
    return writer_close(&w, s, err);
}

/* ------------------------------------------------------------ rewrite */

/* An open fp32 model as a source of tensors. */
static llama2_status read_model_rows(void *user, l2_tensor_kind kind, int layer, size_t row, size_t n_rows,
                                     float *out, llama2_error *err) {
    const llama2_model *m = user;
    size_t rows, cols;
    l2_tensor_shape(&m->config, kind, &rows, &cols);
    memcpy(out, l2_model_f32(m, kind, layer) + row * cols, n_rows * cols * sizeof(float));
    return LLAMA2_OK;
}

/* torch.equal on two fp32 tensors: equal values everywhere (so -0 equals
 * 0 and a NaN equals nothing). */
static int same_values(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) return 0;
    return 1;
}

llama2_status l2_checkpoint_rewrite(const char *in_path, const char *out_path, int version, int group_size,
                                    unsigned output_flags, llama2_error *err) {
    if (!in_path || !out_path) return l2_fail(err, LLAMA2_E_INVALID, "no input or no output path");
    if (version < 0 || version > 2) return l2_fail(err, LLAMA2_E_INVALID, "version %d, must be 0, 1 or 2", version);
    if (group_size < 0) return l2_fail(err, LLAMA2_E_INVALID, "group size %d, must be positive", group_size);
    if (group_size > 0 && version != 2)
        return l2_fail(err, LLAMA2_E_INVALID, "group size %d given for version %d: only version 2 has groups",
                       group_size, version);
    llama2_model *m = NULL;
    llama2_status s = llama2_model_open(in_path, NULL, &m, err);
    if (s != LLAMA2_OK) return s;
    const llama2_config *in = &m->config;
    llama2_config out = *in;
    out.file_version = version;
    out.group_size = version == 2 && group_size == 0 ? l2_default_group_size(in->dim, in->hidden_dim) : group_size;
    if (l2_weights_are_blocks(in->weight_type)) {
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "a GGUF file of %s blocks cannot be rewritten as a llama2.c checkpoint: its weights were rounded; "
                    "rewrite the fp32 file it came from",
                    in->weight_type == LLAMA2_WEIGHTS_Q4_0   ? "Q4_0"
                    : in->weight_type == LLAMA2_WEIGHTS_Q4_K ? "Q4_K"
                    : in->weight_type == LLAMA2_WEIGHTS_Q5_K ? "Q5_K"
                    : in->weight_type == LLAMA2_WEIGHTS_Q6_K ? "Q6_K"
                                                             : "Q8_0");
    } else if (m->rope_freq_factors) {
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED, L2_ROPE_FACTORS_REFUSED, "a llama2.c header");
    } else if (in->weight_type != LLAMA2_WEIGHTS_F32 && version == 2) {
        s = l2_fail(err, LLAMA2_E_INVALID, "already int8 (a version %d file with group size %d)", in->file_version,
                    in->group_size);
    } else if (in->weight_type != LLAMA2_WEIGHTS_F32) {
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "an int8 (version %d) file cannot be rewritten as fp32: its weights were rounded; rewrite the "
                    "fp32 file it came from",
                    in->file_version);
    } else if (version == 2 && (in->dim % out.group_size != 0 || in->hidden_dim % out.group_size != 0)) {
        s = l2_fail(err, LLAMA2_E_INVALID, "group size %d does not divide dim %d and hidden_dim %d", out.group_size,
                    in->dim, in->hidden_dim);
    }
    if (s == LLAMA2_OK) {
        /* llama2.c's export stores one classifier when the two tables are
         * equal, whatever the version. */
        out.shared_classifier = in->shared_classifier ||
                                same_values(m->token_embedding.f32, m->classifier.f32,
                                            (size_t)in->vocab_size * (size_t)in->dim);
        const char *inputs[2] = {in_path, NULL};
        const l2_tensor_source source = {m, read_model_rows, m->rope_cos != NULL, inputs};
        s = l2_checkpoint_write(out_path, &out, &source, output_flags, err);
    }
    llama2_model_close(m);
    return s;
}

llama2_status l2_quantize_file(const char *in_path, const char *out_path, int group_size, unsigned output_flags,
                               llama2_error *err) {
    return l2_checkpoint_rewrite(in_path, out_path, 2, group_size, output_flags, err);
}
