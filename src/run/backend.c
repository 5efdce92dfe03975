/* The table of compiled-in backends. */
#include <string.h>

#include "backend.h"

static const l2_backend_ops cpu = {.name = "cpu"};

static const l2_backend_ops *const backends[] = {
    &cpu,
#ifdef LLAMA2_WITH_BLAS
    &l2_backend_blas,
#endif
#ifdef LLAMA2_WITH_CUDA
    &l2_backend_cuda,
#endif
};

const l2_backend_ops *l2_backend_find(const char *name) {
    if (!name || !*name) name = "cpu";
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strcmp(backends[i]->name, name) == 0) return backends[i];
    return NULL;
}

const char *llama2_backend_name(int index) {
    if (index < 0 || (size_t)index >= sizeof backends / sizeof backends[0]) return NULL;
    return backends[index]->name;
}

llama2_status l2_backend_failure(const llama2_error *from, llama2_error *err) {
    const llama2_status status = from->status != LLAMA2_OK ? from->status : LLAMA2_E_UNSUPPORTED;
    if (err) {
        *err = *from;
        err->status = status;
    }
    return status;
}
