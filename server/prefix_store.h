/* The prefix cache's store in RAM (--cache-ram): the positions of a slot
 * about to be given to another conversation are copied out of the session
 * (llama2_session_read_sequence) with their tokens, and copied back into a
 * slot (llama2_session_write_sequence) when a later prompt begins with
 * them. The bytes it holds never pass its cap: the least recently used
 * entries go first. Only the scheduler's thread uses it. */
#ifndef LLAMA2_SERVER_PREFIX_STORE_H
#define LLAMA2_SERVER_PREFIX_STORE_H

#include <stddef.h>

#include "llama2.h"

typedef struct server_prefix_store server_prefix_store;

/* A store of at most cap bytes (cache and tokens); NULL when memory ran
 * out. */
server_prefix_store *server_prefix_store_create(size_t cap);
void server_prefix_store_destroy(server_prefix_store *store);

/* Keeps the first n positions of `sequence` and tokens[0..n), making room
 * by dropping the least recently used entries (and any entry the new one
 * begins with). Returns 1 when kept, 0 when it cannot be (larger than the
 * cap, no memory, a backend whose cache cannot be read). */
int server_prefix_store_put(server_prefix_store *store, const llama2_session *session, int sequence,
                            const int *tokens, int n);

/* The most of prompt's first tokens an entry holds (0: none), and which
 * entry in *entry. */
int server_prefix_store_match(const server_prefix_store *store, const int *prompt, int n_prompt, int *entry);

/* Writes the entry's positions into `sequence` and its tokens into
 * tokens[0..n), for a prompt that begins with `used` of them. An entry the
 * prompt takes more than half of is dropped: the slot holds its
 * conversation now. One it shares less with (another conversation with the
 * same system prompt) stays, as the most recently used, for the
 * conversation it holds. Returns n, or 0 with err set. */
int server_prefix_store_take(server_prefix_store *store, int entry, int used, llama2_session *session, int sequence,
                             int *tokens, llama2_error *err);

/* The bytes held now, and the most held at any time. */
size_t server_prefix_store_bytes(const server_prefix_store *store);
size_t server_prefix_store_peak(const server_prefix_store *store);

#endif
