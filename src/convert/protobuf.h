/* The protocol buffer wire format, as much as SentencePiece's model file
 * needs: varints, 32-bit values and length-delimited fields, read with
 * bounds checks and written into a growing buffer. */
#ifndef LLAMA2_CONVERT_PROTOBUF_H
#define LLAMA2_CONVERT_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

enum { L2_PB_VARINT = 0, L2_PB_FIXED64 = 1, L2_PB_BYTES = 2, L2_PB_FIXED32 = 5 };

/* A message being read: [p, end) left; error set (and kept) by the first
 * failure, after which every read fails. */
typedef struct l2_pb_reader {
    const unsigned char *start, *p, *end;
    const char *error;
} l2_pb_reader;

l2_pb_reader l2_pb_reader_of(const void *data, size_t size);

/* The next field's number and wire type; 0 at the end or on an error. */
int l2_pb_next_field(l2_pb_reader *r, uint32_t *field, int *wire);
/* The value of a field of that wire type; 0 on an error. */
int l2_pb_varint(l2_pb_reader *r, uint64_t *value);
int l2_pb_fixed32(l2_pb_reader *r, uint32_t *value);
int l2_pb_bytes(l2_pb_reader *r, const unsigned char **data, size_t *len);
/* Skips the value of a field of wire type `wire`. */
int l2_pb_skip(l2_pb_reader *r, int wire);
/* The byte offset of the read position, for messages. */
size_t l2_pb_offset(const l2_pb_reader *r);

/* A message being written; `failed` once an allocation has failed. */
typedef struct l2_pb_writer {
    unsigned char *data;
    size_t len, cap;
    int failed;
} l2_pb_writer;

void l2_pb_put_varint_field(l2_pb_writer *w, uint32_t field, uint64_t value);
/* An int32 field: negative values take 10 bytes, as the format requires. */
void l2_pb_put_int32_field(l2_pb_writer *w, uint32_t field, int32_t value);
void l2_pb_put_float_field(l2_pb_writer *w, uint32_t field, float value);
void l2_pb_put_bytes_field(l2_pb_writer *w, uint32_t field, const void *data, size_t len);

#endif
