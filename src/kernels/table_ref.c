/* The scalar level's table: the reference (ops_ref.c, ops_ref_matmul.c),
 * exact by definition, its own exact form. Its products take any rows. */
#include "ops.h"

static const l2_kernels reference = {
    .name = "scalar", .rmsnorm = l2_rmsnorm_ref, .softmax = l2_softmax_ref, .swiglu = l2_swiglu_ref,
    .add = l2_add_ref, .matmul_f32 = l2_matmul_f32_ref, .attention = l2_attention_ref,
    .quantize_q8 = l2_quantize_q8_ref, .matmul_q8 = l2_matmul_q8_ref, .task_rows = 1, .block_task_rows = 1};

const l2_kernels *l2_kernels_reference(void) { return &reference; }
