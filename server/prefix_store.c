/* The prefix cache's store in RAM (prefix_store.h). Each entry's positions
 * are a mapping of their own, unmapped when the entry goes: the pages go
 * back to the system at once, so the server's resident memory follows the
 * bytes the store holds. From malloc they would stay with the process as
 * free holes between other blocks (glibc serves blocks of these sizes from
 * its heaps once one has been freed), and a churn of entries of every size
 * left the resident memory well past the cap. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "prefix_store.h"

typedef struct entry {
    int *tokens;
    int n;
    void *cache;             /* llama2_session_sequence_bytes(n) bytes, mapped */
    size_t mapped;           /* those bytes rounded up to whole pages */
    size_t bytes;            /* what it counts against the cap: the pages and the tokens */
    unsigned long long used; /* when it was kept: the least recent goes first */
} entry;

struct server_prefix_store {
    size_t cap, bytes;
    size_t peak; /* the most bytes it has held */
    entry *entries;
    int n_entries, cap_entries;
    unsigned long long clock;
};

server_prefix_store *server_prefix_store_create(size_t cap) {
    server_prefix_store *store = calloc(1, sizeof *store);
    if (store) store->cap = cap;
    return store;
}

/* A mapping of `bytes` (rounded up to pages), or NULL. */
static void *map_pages(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void drop(server_prefix_store *store, int i) {
    store->bytes -= store->entries[i].bytes;
    free(store->entries[i].tokens);
    munmap(store->entries[i].cache, store->entries[i].mapped);
    store->entries[i] = store->entries[--store->n_entries];
}

void server_prefix_store_destroy(server_prefix_store *store) {
    if (!store) return;
    while (store->n_entries > 0) drop(store, store->n_entries - 1);
    free(store->entries);
    free(store);
}

int server_prefix_store_put(server_prefix_store *store, const llama2_session *session, int sequence,
                            const int *tokens, int n) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t mapped = (llama2_session_sequence_bytes(session, n) + page - 1) / page * page;
    const size_t bytes = mapped + (size_t)n * sizeof *tokens;
    if (n <= 0 || bytes > store->cap) return 0;
    /* An entry that the new one begins with is only part of it. */
    for (int i = store->n_entries - 1; i >= 0; i--)
        if (store->entries[i].n <= n &&
            memcmp(store->entries[i].tokens, tokens, (size_t)store->entries[i].n * sizeof *tokens) == 0)
            drop(store, i);
    while (store->bytes + bytes > store->cap) {
        int oldest = 0;
        for (int i = 1; i < store->n_entries; i++)
            if (store->entries[i].used < store->entries[oldest].used) oldest = i;
        drop(store, oldest);
    }
    if (store->n_entries == store->cap_entries) {
        const int more = store->cap_entries ? 2 * store->cap_entries : 8;
        entry *bigger = realloc(store->entries, (size_t)more * sizeof *bigger);
        if (!bigger) return 0;
        store->entries = bigger;
        store->cap_entries = more;
    }
    entry e = {.tokens = malloc((size_t)n * sizeof *tokens), .n = n, .cache = map_pages(mapped), .mapped = mapped,
               .bytes = bytes, .used = ++store->clock};
    llama2_error err;
    if (!e.tokens || !e.cache || llama2_session_read_sequence(session, sequence, n, e.cache, &err) != LLAMA2_OK) {
        free(e.tokens);
        if (e.cache) munmap(e.cache, mapped);
        return 0;
    }
    memcpy(e.tokens, tokens, (size_t)n * sizeof *tokens);
    store->entries[store->n_entries++] = e;
    store->bytes += bytes;
    if (store->bytes > store->peak) store->peak = store->bytes;
    return 1;
}

int server_prefix_store_match(const server_prefix_store *store, const int *prompt, int n_prompt, int *which) {
    int best = 0;
    *which = -1;
    for (int i = 0; i < store->n_entries; i++) {
        const entry *e = &store->entries[i];
        int n = 0;
        while (n < e->n && n < n_prompt && e->tokens[n] == prompt[n]) n++;
        if (n > best) {
            best = n;
            *which = i;
        }
    }
    return best;
}

int server_prefix_store_take(server_prefix_store *store, int which, int used, llama2_session *session, int sequence,
                             int *tokens, llama2_error *err) {
    entry *e = &store->entries[which];
    const int n = e->n;
    if (llama2_session_write_sequence(session, sequence, n, e->cache, err) != LLAMA2_OK) return 0;
    memcpy(tokens, e->tokens, (size_t)n * sizeof *tokens);
    if (2 * used > n)
        drop(store, which);
    else
        e->used = ++store->clock;
    return n;
}

size_t server_prefix_store_bytes(const server_prefix_store *store) { return store ? store->bytes : 0; }

size_t server_prefix_store_peak(const server_prefix_store *store) { return store ? store->peak : 0; }
