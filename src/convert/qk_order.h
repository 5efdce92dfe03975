/* The order of the rows of the query and key projections.
 *
 * RoPE rotates pairs of a head's values. llama2.c (like Meta's original
 * code) pairs neighbours: rows 2j and 2j+1 of each head rotate together.
 * Hugging Face's Llama ("rotate_half") pairs the two halves of the head:
 * rows j and j + head_size/2. Its conversion script reorders the rows of
 * q_proj and k_proj to match, head by head; these undo and redo that. A
 * head is head_size rows whatever the number of heads, so the same mapping
 * serves query heads and (fewer, under grouped-query attention) key heads. */
#ifndef LLAMA2_CONVERT_QK_ORDER_H
#define LLAMA2_CONVERT_QK_ORDER_H

#include <stddef.h>

/* The Hugging Face row that holds llama2.c's row `row`. */
size_t l2_hf_row_of(size_t row, size_t head_size);

/* The llama2.c row that holds Hugging Face's row `row`. */
size_t l2_llama2c_row_of(size_t row, size_t head_size);

#endif
