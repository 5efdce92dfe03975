/* Interleaved pairs (llama2.c) <-> rotate-half pairs (Hugging Face). */
#include "qk_order.h"

size_t l2_hf_row_of(size_t row, size_t head_size) {
    const size_t head = row / head_size, i = row % head_size, half = head_size / 2;
    /* Pair j = i / 2; its first value (i even) is in the first half. */
    return head * head_size + (i % 2) * half + i / 2;
}

size_t l2_llama2c_row_of(size_t row, size_t head_size) {
    const size_t head = row / head_size, i = row % head_size, half = head_size / 2;
    return head * head_size + (i % half) * 2 + i / half;
}
