/* A llama2.c checkpoint rewritten as another version of the format. */
#include <stdio.h>
#include <string.h>

#include "checkpoint_out.h"
#include "checkpoint_writer.h"
#include "convert.h"
#include "internal.h"
#include "model_rows.h"
#include "output.h"

static void model_source_rows(void *user, l2_role role, int layer, size_t row0, size_t n_rows, float *out) {
    const llama2_model *m = user;
    l2_model_rows(m, role, layer, row0, n_rows, out);
    size_t rows, cols;
    int n_dims;
    l2_role_shape(role, llama2_model_config(m), &rows, &cols, &n_dims);
    if (row0 + n_rows == rows) l2_model_release(m, role, layer);
}

llama2_status l2_convert_llama2c_version(const char *in_path, const char *out_path,
                                         const l2_convert_options *options, llama2_error *err) {
    const int version = options->version;
    if (version < 0 || version > 2)
        return l2_fail(err, LLAMA2_E_INVALID, "--version %d: must be 0, 1 or 2", version);
    const char *inputs[1] = {in_path};
    llama2_status s = l2_output_check(out_path, options->force, inputs, 1, err);
    if (s != LLAMA2_OK) return s;
    llama2_model *m = NULL;
    if ((s = llama2_model_open(in_path, NULL, &m, err)) != LLAMA2_OK) {
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", err->message);
        return l2_fail(err, s, "%s: %s", in_path, why);
    }
    l2_checkpoint_plan plan = {*llama2_model_config(m), L2_LLAMA2C_THETA, L2_LLAMA2C_EPS};
    if (plan.config.weight_type != LLAMA2_WEIGHTS_F32)
        s = l2_fail(err, LLAMA2_E_UNSUPPORTED,
                    "%s: an int8 (version 2) file cannot be rewritten: its fp32 weights are gone", in_path);
    plan.config.file_version = version;
    plan.config.weight_type = version == 2 ? LLAMA2_WEIGHTS_Q8_0 : LLAMA2_WEIGHTS_F32;
    plan.config.group_size = version == 2 ? (options->group_size ? options->group_size
                                                                 : l2_default_group_size(plan.config.dim, plan.config.hidden_dim))
                                          : 0;
    l2_weight_source src = {model_source_rows, m};
    if (s == LLAMA2_OK) s = l2_write_checkpoint(out_path, &plan, &src, err);
    llama2_model_close(m);
    return s;
}
