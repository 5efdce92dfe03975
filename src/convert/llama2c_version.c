/* A llama2.c checkpoint rewritten as another version of the format, by
 * the format's own rewrite (checkpoint_writer.h). */
#include <stdio.h>
#include <string.h>

#include "checkpoint_writer.h"
#include "convert.h"
#include "internal.h"
#include "out_file.h"

llama2_status l2_convert_llama2c_version(const char *in_path, const char *out_path,
                                         const l2_convert_options *options, llama2_error *err) {
    const char *inputs[1] = {in_path};
    llama2_status s = l2_out_check(out_path, options->force, inputs, 1, err);
    if (s != LLAMA2_OK) return s;
    s = l2_checkpoint_rewrite(in_path, out_path, options->version, options->group_size, err);
    if (s != LLAMA2_OK) {
        /* Its messages do not name a file: output failures are the output's. */
        static const char *const output_failures[] = {"cannot create", "write failed", "cannot rename"};
        const char *culprit = in_path;
        for (int i = 0; i < 3; i++)
            if (strncmp(err->message, output_failures[i], strlen(output_failures[i])) == 0) culprit = out_path;
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", err->message);
        s = l2_fail(err, s, "%s: %s", culprit, why);
    }
    return s;
}
