/* A llama2.c checkpoint rewritten as another version of the format, by
 * the format's own rewrite (checkpoint_writer.h). */
#include "write/checkpoint_writer.h"
#include "convert.h"
#include "write/output_file.h"

llama2_status l2_convert_llama2c_version(const char *in_path, const char *out_path,
                                         const l2_convert_options *options, llama2_error *err) {
    llama2_status s =
        l2_checkpoint_rewrite(in_path, out_path, options->version, options->group_size, options->output_flags, err);
    return l2_error_prefix_path(s, in_path, out_path, err);
}
