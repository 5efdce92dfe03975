/*
 * libFuzzer target: arbitrary bytes as a safetensors file. A header that
 * parses must describe tensors inside the bytes: each is found by its name
 * and its values are read whole (F32/F16/BF16), each name is classified as
 * a Llama weight or refused; a refusal is one line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "hf_names.h"
#include "safetensors.h"

#define MAX_VALUES 65536 /* values converted per tensor */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    l2_safetensors st;
    llama2_error err = {0};
    llama2_status s = l2_safetensors_parse(data, size, "fuzz.safetensors", &st, &err);
    fuzz_check_message(s, &err);
    if (s != LLAMA2_OK) return 0;
    static float values[MAX_VALUES];
    for (size_t i = 0; i < st.n_tensors; i++) {
        const l2_st_tensor *t = &st.tensors[i];
        if (t->offset > size || t->bytes > size - t->offset) abort();
        if (l2_safetensors_find(&st, t->name) != t) abort();
        if (t->dtype != L2_DTYPE_OTHER) {
            size_t n = t->bytes / l2_dtype_size(t->dtype);
            l2_values_to_f32(t->dtype, data + t->offset, n < MAX_VALUES ? n : MAX_VALUES, values);
        }
        l2_tensor_kind kind;
        int layer;
        const char *why;
        if (l2_hf_parse_name(t->name, 4, &kind, &layer, &why) && (layer < 0 || layer >= 4 || kind >= L2_HF_KINDS))
            abort();
    }
    l2_safetensors_close(&st);
    return 0;
}
