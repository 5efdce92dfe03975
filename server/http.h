/* The HTTP side of llama2-server, on libmicrohttpd: a listening socket, a
 * thread per connection, request bodies within a limit, the API key, and
 * the endpoints' answers written out (a stream as chunked server-sent
 * events).
 *
 * A thread per connection, not suspend/resume: a request is then one straight
 * line of code that blocks while the scheduler works (a condition variable,
 * with a look at the socket every 100 ms to see whether the client has gone),
 * and a stream's content callback simply waits for the next text. Threads
 * are bounded by the connection limit (the slots, the queue and a margin). */
#ifndef LLAMA2_SERVER_HTTP_H
#define LLAMA2_SERVER_HTTP_H

#include <stddef.h>

#include "endpoints.h"

typedef struct server_http server_http;

typedef struct server_http_options {
    const char *host;     /* a numeric address or a name */
    int port;             /* 0: any free port */
    const char *api_key;  /* NULL: none asked for */
    long max_body;        /* bytes */
    int max_connections;
    int verbose;          /* a line per request on stderr */
} server_http_options;

/* Listens and starts serving app. Fills address with "http://HOST:PORT"
 * (the port as bound). Returns NULL with a one-line message on failure. */
server_http *server_http_start(const server_http_options *options, server_app *app, char *address,
                               size_t address_size, char *msg, size_t msg_size);
/* Stops accepting connections; those open go on. */
void server_http_quiesce(server_http *http);
/* Requests begun whose answer is not yet sent in full. */
int server_http_requests(server_http *http);
/* Closes every connection, waits for their threads, frees. */
void server_http_stop(server_http *http);

#endif
