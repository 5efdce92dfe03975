/* What each endpoint does, whatever carries the HTTP: the routes, and the
 * answer to a request (a body, or a stream of server-sent events that the
 * HTTP layer pulls from as the scheduler produces text). */
#ifndef LLAMA2_SERVER_ENDPOINTS_H
#define LLAMA2_SERVER_ENDPOINTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#include "metrics.h"
#include "request.h"
#include "scheduler.h"

/* What the endpoints share: set up by main, read by every HTTP thread. */
typedef struct server_app {
    server_scheduler *scheduler;
    server_metrics *metrics;
    server_limits limits;
    const llama2_config *config;
    const char *model_id;  /* the model's name in the API */
    long long started;     /* Unix time the server started: the model's "created" */
    uint64_t seed;         /* where request ids and default seeds start */
    atomic_ullong counter; /* requests numbered, for their ids and seeds */
    atomic_int closing;    /* shutting down: /health says 503 */
    int webui;             /* GET / answers the chat page (not --no-webui) */
} server_app;

/* The client of a request: gone(user) says whether it has hung up. */
typedef struct server_client {
    int (*gone)(void *user);
    void *user;
} server_client;

typedef struct server_stream server_stream;

/* An endpoint's answer: status 0 means close the connection without one
 * (the client went away). */
typedef struct server_answer {
    int status;
    const char *content_type;
    char *body;            /* malloc'd, body_len bytes; NULL for a stream */
    size_t body_len;
    server_stream *stream; /* a server-sent event stream, status 200 */
    int retry_after;       /* seconds, for a 503 (0: no header) */
} server_answer;

typedef struct server_route server_route;

/* The route of (method, path); NULL with a 404 or 405 in *e. */
const server_route *server_find_route(const char *method, const char *path, server_error *e);
/* 1 when the route answers without the API key (/health). */
int server_route_is_open(const server_route *route);

/* Runs the route on the request's body. Blocks until a whole answer is
 * ready (a stream is returned as soon as its job is queued). */
void server_handle(server_app *app, const server_route *route, const char *body, size_t len,
                   const server_client *client, server_answer *out);

/* The answer for an error. */
void server_answer_error(const server_error *e, server_answer *out);

/* Copies at most max bytes of the stream into buf, waiting for the
 * scheduler if none is ready. Returns the count, -1 at the end, -2 when the
 * client has gone (the stream is cut). */
ssize_t server_stream_read(server_stream *stream, char *buf, size_t max);
/* Frees the stream; its job, if still running, is cancelled. */
void server_stream_free(server_stream *stream);

#endif
