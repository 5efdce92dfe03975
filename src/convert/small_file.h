/* Reading a small input file (a config, a tokenizer) whole. */
#ifndef LLAMA2_CONVERT_SMALL_FILE_H
#define LLAMA2_CONVERT_SMALL_FILE_H

#include <stddef.h>

#include "llama2.h"

/* The whole file in a malloc'd buffer with a NUL after its size bytes;
 * refused when larger than limit. Messages begin with the path. */
llama2_status l2_read_small_file(const char *path, size_t limit, char **data, size_t *size, llama2_error *err);

#endif
