/* Helpers of the fuzz targets: checking an error message, the input as a
 * file, and loading the shared tokenizers once for the targets that need a
 * real vocabulary. */
#ifndef LLAMA2_FUZZ_COMMON_H
#define LLAMA2_FUZZ_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "llama2.h"

/* Aborts unless a failure's message is one line that fits its buffer. */
static inline void fuzz_check_message(llama2_status s, const llama2_error *err) {
    if (s == LLAMA2_OK) return;
    size_t len = strnlen(err->message, sizeof err->message);
    if (len == 0 || len == sizeof err->message || strchr(err->message, '\n')) {
        fprintf(stderr, "bad error message for status %d\n", (int)s);
        abort();
    }
}

/* The fuzz input as a file: a memfd (a temporary file, unlinked, where
 * memfd_create is missing) that every input overwrites, opened by its
 * /proc/self/fd path. `name` names it (llama2-fuzz-NAME) and the target in
 * the message of a failure. */
typedef struct fuzz_file {
    int fd;
    char path[64];
} fuzz_file;

static inline void fuzz_file_prepare(fuzz_file *f, const char *name) {
    f->fd = -1;
#ifdef MFD_CLOEXEC
    char memfd_name[64];
    snprintf(memfd_name, sizeof memfd_name, "llama2-fuzz-%s", name);
    f->fd = memfd_create(memfd_name, MFD_CLOEXEC);
#endif
    if (f->fd < 0) {
        char templ[96];
        snprintf(templ, sizeof templ, "/tmp/llama2-fuzz-%s-XXXXXX", name);
        f->fd = mkstemp(templ);
        if (f->fd < 0) {
            fprintf(stderr, "fuzz_%s: cannot create a temporary file: %s\n", name, strerror(errno));
            abort();
        }
        unlink(templ);
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* The file's bytes become data (it is truncated first). */
static inline void fuzz_file_put(const fuzz_file *f, const uint8_t *data, size_t size) {
    if (ftruncate(f->fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
}

/* $LLAMA2_FUZZ_TOKENIZER when set (one tokenizer), else tok512.bin and
 * tokenizer.bin from $LLAMA2_MODELS (default models: make test-models fills
 * it). Aborts when none loads: a fuzzer without its vocabulary tests
 * nothing. */
static inline int fuzz_load_tokenizers(llama2_tokenizer **out, int max) {
    static const char *names[] = {"tok512.bin", "tokenizer.bin"};
    const char *single = getenv("LLAMA2_FUZZ_TOKENIZER");
    const char *models = getenv("LLAMA2_MODELS");
    if (!models || !*models) models = "models";
    int n = 0;
    for (int i = 0; i < 2 && n < max; i++) {
        char path[4096];
        if (single && *single) {
            if (i > 0) break;
            snprintf(path, sizeof path, "%s", single);
        } else {
            snprintf(path, sizeof path, "%s/%s", models, names[i]);
        }
        llama2_error err = {0};
        if (llama2_tokenizer_open(path, 0, &out[n], &err) != LLAMA2_OK) {
            fprintf(stderr, "fuzz: %s: %s\n", path, err.message);
            continue;
        }
        n++;
    }
    if (n == 0) {
        fprintf(stderr, "fuzz: no tokenizer (set LLAMA2_MODELS or LLAMA2_FUZZ_TOKENIZER)\n");
        abort();
    }
    return n;
}

#endif
