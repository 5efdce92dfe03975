/* llama2-server's flags: every value is checked, and a bad one is a usage
 * error that names the flag. */
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
           "/metrics, /tokenize and /detokenize; every slot generates at once, in one batch.\n"
           "Options:\n"
           "  -z, --tokenizer <path>        tokenizer file (default tokenizer.bin)\n"
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
           "      --verbose                 one line per request on standard error\n"
           "  -h, --help                    this text\n"
           "      --version                 the version\n"
           "When ready it prints one line, 'llama2-server: listening on http://HOST:PORT'.\n";
}

typedef enum opt_id {
    OPT_TOKENIZER, OPT_HOST, OPT_PORT, OPT_PARALLEL, OPT_QUEUE, OPT_CTX, OPT_THREADS, OPT_BATCH, OPT_API_KEY,
    OPT_CHAT_TEMPLATE, OPT_ALIAS, OPT_MAX_BODY, OPT_SHUTDOWN_TIMEOUT, OPT_NO_MMAP, OPT_VERBOSE, OPT_HELP,
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
    {'h', "help", 0, OPT_HELP},             {0, "version", 0, OPT_VERSION},
};

static int apply(void *user, const cli_option *o, const char *flag, const char *v, char *msg, size_t size) {
    server_args *a = user;
    switch ((opt_id)o->id) {
    case OPT_TOKENIZER: a->tokenizer = v; return 0;
    case OPT_HOST:
        if (v[0] == '\0') return cli_fail(msg, size, "%s: the address must not be empty", flag);
        a->host = v;
        return 0;
    case OPT_PORT:
        if (!cli_parse_int(v, 0, 65535, &a->port))
            return cli_fail(msg, size, "%s: the port must be an integer from 0 to 65535, got '%s'", flag, v);
        return 0;
    case OPT_PARALLEL:
        if (!cli_parse_int(v, 1, 256, &a->parallel))
            return cli_fail(msg, size, "%s: slots must be an integer from 1 to 256, got '%s'", flag, v);
        return 0;
    case OPT_QUEUE:
        if (!cli_parse_int(v, 0, 65536, &a->queue))
            return cli_fail(msg, size, "%s: the queue must be an integer from 0 to 65536, got '%s'", flag, v);
        return 0;
    case OPT_CTX:
        if (!cli_parse_int(v, 1, 0x7fffffff, &a->context_length))
            return cli_fail(msg, size, "%s: the context length must be a positive integer, got '%s'", flag, v);
        return 0;
    case OPT_THREADS:
        if (!cli_parse_int(v, 1, 1024, &a->threads))
            return cli_fail(msg, size, "%s: threads must be an integer from 1 to 1024, got '%s'", flag, v);
        return 0;
    case OPT_BATCH:
        if (!cli_parse_int(v, 1, 65536, &a->batch))
            return cli_fail(msg, size, "%s: batch must be an integer from 1 to 65536, got '%s'", flag, v);
        return 0;
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
        if (!cli_parse_long(v, 1024, 1L << 30, &a->max_body))
            return cli_fail(msg, size, "%s: the body limit must be an integer from 1024 to 1073741824, got '%s'", flag, v);
        return 0;
    case OPT_SHUTDOWN_TIMEOUT:
        if (!cli_parse_int(v, 0, 86400, &a->shutdown_timeout))
            return cli_fail(msg, size, "%s: the timeout must be an integer from 0 to 86400 seconds, got '%s'", flag, v);
        return 0;
    case OPT_NO_MMAP: a->no_mmap = 1; return 0;
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
