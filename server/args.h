/* The command line of llama2-server, kept apart from main() so that tests
 * can drive it. */
#ifndef LLAMA2_SERVER_ARGS_H
#define LLAMA2_SERVER_ARGS_H

#include <stddef.h>

#include "llama2.h"

typedef struct server_args {
    const char *checkpoint;
    const char *tokenizer;       /* -z, default "tokenizer.bin" */
    int tokenizer_given;         /* -z was given */
    const char *host;            /* --host, default 127.0.0.1 */
    int port;                    /* --port, default 8080; 0: a free port */
    int parallel;                /* --parallel: slots, requests generated at once (default 4) */
    int queue;                   /* --queue: requests waiting for a slot before 503 (default 64) */
    int context_length;          /* --ctx: positions per slot, 0: the model's */
    int threads;                 /* --threads, 0: the online processors */
    int batch;                   /* --batch: prompt tokens per step, at most (default 128) */
    const char *api_key;         /* --api-key, NULL: none asked for */
    llama2_chat_template chat_template; /* --chat-template, default llama2 */
    const char *alias;           /* --alias: the model's id, NULL: the file's name */
    long max_body;               /* --max-body: the largest request body, in bytes */
    int shutdown_timeout;        /* --shutdown-timeout: seconds to finish requests after SIGTERM */
    int no_mmap;
    int no_webui;                /* --no-webui: no chat page at / */
    int cache_ram;               /* --cache-ram: MiB of prefixes kept in RAM, 0: none (the default) */
    int no_prefix_cache;         /* --no-prefix-cache: evaluate every prompt from its first token */
    int verbose;                 /* --verbose: one line per request on stderr */
    int help, version;
} server_args;

/* Parses argv into *args. Returns 0, or 2 (a usage error) with a one-line
 * message in msg that names the flag. */
int server_args_parse(int argc, char **argv, server_args *args, char *msg, size_t msg_size);

/* The --help text. */
const char *server_usage(void);

#endif
