/* Giving back the pages of a read-only file mapping once they are read, so
 * that converting a model needs memory for a chunk of it, not all of it. */
#ifndef LLAMA2_CONVERT_MAPPED_PAGES_H
#define LLAMA2_CONVERT_MAPPED_PAGES_H

#include <stddef.h>

/* Tells the kernel that the pages holding [offset, offset + bytes) of the
 * mapping of map_size bytes at base are no longer needed: they stop
 * counting against the process (and are read again from the file if
 * touched). A margin on both sides is given back too: the kernel maps pages
 * around each one read, which would otherwise stay. */
void l2_release_mapped(const void *base, size_t map_size, size_t offset, size_t bytes);

#endif
