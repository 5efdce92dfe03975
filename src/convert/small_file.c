/* Small input files, read whole. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "platform/checks.h"
#include "small_file.h"

llama2_status l2_read_small_file(const char *path, size_t limit, char **data, size_t *size, llama2_error *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return l2_fail(err, LLAMA2_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return l2_fail(err, LLAMA2_E_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > limit) {
        fclose(f);
        return l2_fail(err, LLAMA2_E_FORMAT, "%s: %lld bytes, more than the %zu such a file may have", path,
                       (long long)st.st_size, limit);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return l2_fail(err, LLAMA2_E_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    int failed = ferror(f) || n != (size_t)st.st_size;
    fclose(f);
    if (failed) {
        free(buf);
        return l2_fail(err, LLAMA2_E_IO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return LLAMA2_OK;
}
