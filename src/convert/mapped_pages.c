/* madvise(MADV_DONTNEED) on a private read-only file mapping drops the
 * process's page table entries; the page cache keeps the data. */
#include <sys/mman.h>
#include <unistd.h>

#include "mapped_pages.h"

/* A fault maps more than the page touched: fault-around (64 KiB by
 * default) and, with large folios in the page cache, the whole folio, up to
 * a 2 MiB huge page, on either side. */
#define MARGIN ((size_t)2 << 20)

void l2_release_mapped(const void *base, size_t map_size, size_t offset, size_t bytes) {
    if (!base || bytes == 0 || offset >= map_size) return;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t mapped = (map_size + page - 1) / page * page; /* the mapping covers whole pages */
    size_t begin = offset > MARGIN ? (offset - MARGIN) / MARGIN * MARGIN : 0;
    size_t end = bytes < map_size - offset ? offset + bytes : map_size;
    end = mapped - end <= 2 * MARGIN ? mapped : (end + 2 * MARGIN - 1) / MARGIN * MARGIN;
    /* Advice only: a failure leaves the pages where they are. */
    (void)madvise((unsigned char *)base + begin, end - begin, MADV_DONTNEED);
}
