/* llama2-server's flags: every value is checked, and a bad one is a usage
 * error that names the flag. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "options.h"

#define DEFAULT_PORT 8080
#define DEFAULT_PARALLEL 4
#define DEFAULT_QUEUE 64
#define DEFAULT_PROMPT_BATCH 128
#define DEFAULT_MAX_BODY (1L << 20)
#define DEFAULT_SHUTDOWN_TIMEOUT 30

const char *server_usage(void) {
    return "Usage:   llama2-server <checkpoint> -z <tokenizer> [options]\n"
           "Example: llama2-server model.bin -z tokenizer.bin --port 8080 --parallel 4\n"
           "Serves the OpenAI API (/v1/chat/completions, /v1/completions, /v1/models), /health,\n"
           "/metrics, /tokenize and /detokenize, and a chat page at /; every slot generates at\n"
           "once, in one batch.\n"
           "Options:\n"
           "  -z, --tokenizer <path>        tokenizer file (default: a GGUF model's own, else tokenizer.bin)\n"
           "      --host <address>          address to listen on (default 127.0.0.1)\n"
           "      --port <int>              port, 0 = any free one (default 8080)\n"
           "      --parallel <int>          slots: requests generated at once (default 4)\n"
           "      --queue <int>             requests waiting for a slot; past them, 503 (default 64)\n"
           "      --ctx <int>               positions per slot, at most the model's (default: the model's)\n"
           "      --threads <int>           worker threads (default: the online processors)\n"
           "      --batch <int>             prompt tokens evaluated per step, at most (default 128)\n"
           "      --api-key <key>           require 'Authorization: Bearer <key>' (not on /health)\n"
           "      --chat-template <name>    llama2 | chatml | zephyr | none | llama3 (default llama2)\n"
           "      --alias <name>            the model's id in the API (default: the file's name)\n"
           "      --max-body <bytes>        largest request body; past it, 413 (default 1048576)\n"
           "      --shutdown-timeout <s>    on SIGTERM or SIGINT, seconds to finish the requests in\n"
           "                                flight before they are cut (default 30)\n"
           "      --no-mmap                 read the checkpoint into memory instead of mapping it\n"
           "      --no-prefix-cache         evaluate every prompt whole; by default a slot keeps its\n"
           "                                positions and a prompt that begins with them goes on from there\n"
           "      --cache-ram <MiB>         keep the positions a slot gives up to another conversation in\n"
           "                                RAM, at most this much, for when it comes back (default 0: off)\n"
           "      --no-webui                no chat page at / (by default GET / is a chat in the browser)\n"
           "      --verbose                 one line per request on standard error\n"
           "  -h, --help                    this text\n"
           "      --version                 the version\n"
           "When ready it prints one line, 'llama2-server: listening on http://HOST:PORT'.\n";
}

typedef enum opt_id {
    OPT_TOKENIZER, OPT_HOST, OPT_PORT, OPT_PARALLEL, OPT_QUEUE, OPT_CTX, OPT_THREADS, OPT_BATCH, OPT_API_KEY,
    OPT_CHAT_TEMPLATE, OPT_ALIAS, OPT_MAX_BODY, OPT_SHUTDOWN_TIMEOUT, OPT_NO_MMAP, OPT_NO_PREFIX_CACHE, OPT_NO_WEBUI,
    OPT_CACHE_RAM, OPT_VERBOSE, OPT_HELP,
    OPT_VERSION
} opt_id;

static const cli_option options[] = {
    {'z', "tokenizer", 1, OPT_TOKENIZER},   {0, "host", 1, OPT_HOST},
    {0, "port", 1, OPT_PORT},               {0, "parallel", 1, OPT_PARALLEL},
    {0, "queue", 1, OPT_QUEUE},             {0, "ctx", 1, OPT_CTX},
    {0, "threads", 1, OPT_THREADS},         {0, "batch", 1, OPT_BATCH},
    {0, "api-key", 1, OPT_API_KEY},         {0, "chat-template", 1, OPT_CHAT_TEMPLATE},
    {0, "alias", 1, OPT_ALIAS},             {0, "max-body", 1, OPT_MAX_BODY},
    {0, "shutdown-timeout", 1, OPT_SHUTDOWN_TIMEOUT},
    {0, "no-mmap", 0, OPT_NO_MMAP},         {0, "verbose", 0, OPT_VERBOSE},
    {0, "no-prefix-cache", 0, OPT_NO_PREFIX_CACHE}, {0, "no-webui", 0, OPT_NO_WEBUI},
    {0, "cache-ram", 1, OPT_CACHE_RAM},
    {'h', "help", 0, OPT_HELP},             {0, "version", 0, OPT_VERSION},
};

static int apply(void *user, const cli_option *o, const char *flag, const char *v, char *msg, size_t size) {
    server_args *a = user;
    switch ((opt_id)o->id) {
    case OPT_TOKENIZER:
        a->tokenizer = v;
        a->tokenizer_given = 1;
        return 0;
    case OPT_HOST:
        if (v[0] == '\0') return cli_fail(msg, size, "%s: the address must not be empty", flag);
        a->host = v;
        return 0;
    case OPT_PORT:
        return cli_int_value(flag, v, 0, 65535, "the port must be an integer from 0 to 65535", &a->port, msg, size);
    case OPT_PARALLEL:
        return cli_int_value(flag, v, 1, 256, "slots must be an integer from 1 to 256", &a->parallel, msg, size);
    case OPT_QUEUE:
        return cli_int_value(flag, v, 0, 65536, "the queue must be an integer from 0 to 65536", &a->queue, msg,
                             size);
    case OPT_CTX:
        return cli_int_value(flag, v, 1, INT_MAX, "the context length must be a positive integer", &a->context_length,
                             msg, size);
    case OPT_THREADS:
        return cli_int_value(flag, v, 1, 1024, "threads must be an integer from 1 to 1024", &a->threads, msg, size);
    case OPT_BATCH:
        return cli_int_value(flag, v, 1, 65536, "batch must be an integer from 1 to 65536", &a->batch, msg, size);
    case OPT_API_KEY:
        if (v[0] == '\0') return cli_fail(msg, size, "%s: the key must not be empty", flag);
        a->api_key = v;
        return 0;
    case OPT_CHAT_TEMPLATE:
        if (!llama2_chat_template_from_name(v, &a->chat_template))
            return cli_fail(msg, size, "%s: unknown chat template '%s' (expected llama2, chatml, zephyr, none or llama3)", flag, v);
        return 0;
    case OPT_ALIAS:
        if (v[0] == '\0') return cli_fail(msg, size, "%s: the name must not be empty", flag);
        a->alias = v;
        return 0;
    case OPT_MAX_BODY:
        return cli_long_value(flag, v, 1024, 1L << 30, "the body limit must be an integer from 1024 to 1073741824",
                              &a->max_body, msg, size);
    case OPT_SHUTDOWN_TIMEOUT:
        return cli_int_value(flag, v, 0, 86400, "the timeout must be an integer from 0 to 86400 seconds",
                             &a->shutdown_timeout, msg, size);
    case OPT_NO_MMAP: a->no_mmap = 1; return 0;
    case OPT_NO_PREFIX_CACHE: a->no_prefix_cache = 1; return 0;
    case OPT_NO_WEBUI: a->no_webui = 1; return 0;
    case OPT_CACHE_RAM:
        return cli_int_value(flag, v, 0, 1 << 20, "the store must be an integer from 0 to 1048576 MiB", &a->cache_ram,
                             msg, size);
    case OPT_VERBOSE: a->verbose = 1; return 0;
    case OPT_HELP: a->help = 1; return 0;
    case OPT_VERSION: a->version = 1; return 0;
    }
    return 0;
}

int server_args_parse(int argc, char **argv, server_args *a, char *msg, size_t size) {
    *a = (server_args){.tokenizer = "tokenizer.bin", .host = "127.0.0.1", .port = DEFAULT_PORT,
                       .parallel = DEFAULT_PARALLEL, .queue = DEFAULT_QUEUE, .batch = DEFAULT_PROMPT_BATCH,
                       .chat_template = LLAMA2_TEMPLATE_LLAMA2, .max_body = DEFAULT_MAX_BODY,
                       .shutdown_timeout = DEFAULT_SHUTDOWN_TIMEOUT};
    if (size > 0) msg[0] = '\0';
    int rc = cli_parse_options(argc, argv, options, sizeof options / sizeof options[0], apply, a, &a->checkpoint, msg, size);
    if (rc) return rc;
    if (a->help || a->version) return 0;
    if (!a->checkpoint) return cli_fail(msg, size, "no checkpoint given (usage: llama2-server <checkpoint> -z <tokenizer>)");
    return 0;
}
