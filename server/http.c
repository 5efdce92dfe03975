/* The HTTP side (http.h), on libmicrohttpd. */
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"

/* Seconds an idle keep-alive connection stays open. */
#define IDLE_TIMEOUT 60

struct server_http {
    struct MHD_Daemon *daemon;
    server_app *app;
    server_http_options options;
    char *authorization; /* "Bearer <key>", NULL: no key asked for */
    int listen_fd;       /* the daemon's (it closes it) until quiesced */
    atomic_int requests; /* begun and not yet completed (answer sent or connection closed) */
};

/* What one request gathers between the calls libmicrohttpd makes for it. */
typedef struct request_state {
    const server_route *route;
    char *body;
    size_t len, cap;
    int too_large;  /* the body passed the limit: the rest is dropped */
    int status;
    double start;
    char method[16], path[128];
} request_state;

/* ------------------------------------------------------------ listening */

/* A socket listening on host:port; the address as bound in `address`. */
static int open_listener(const char *host, int port, int *ipv6, char *address, size_t address_size, char *msg,
                         size_t msg_size) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0) {
        snprintf(msg, msg_size, "--host: cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = found; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        const int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (a->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
            continue;
        }
        *ipv6 = a->ai_family == AF_INET6;
    }
    freeaddrinfo(found);
    if (fd < 0) {
        snprintf(msg, msg_size, "--port: cannot listen on %s port %d: %s", host, port, strerror(saved));
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    char numeric[NI_MAXHOST], bound_port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0 ||
        getnameinfo((struct sockaddr *)&bound, bound_len, numeric, sizeof numeric, bound_port, sizeof bound_port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(msg, msg_size, "--port: cannot read the address bound: %s", strerror(errno));
        close(fd);
        return -1;
    }
    snprintf(address, address_size, *ipv6 ? "http://[%s]:%s" : "http://%s:%s", numeric, bound_port);
    return fd;
}

/* ----------------------------------------------------------- the client */

/* Whether the client has hung up: a read would see the end of the stream
 * or an error. Bytes waiting (a next request) mean it is still there. */
static int client_gone(void *user) {
    const int fd = (int)(intptr_t)user;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The header equals "Bearer <key>", compared in constant time. */
static int authorized(const server_http *h, struct MHD_Connection *c) {
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!given || strlen(given) != strlen(h->authorization)) return 0;
    unsigned char diff = 0;
    for (size_t i = 0; given[i]; i++) diff |= (unsigned char)(given[i] ^ h->authorization[i]);
    return diff == 0;
}

/* ------------------------------------------------------------ answers */

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    const ssize_t n = server_stream_read(cls, buf, max);
    return n == -1 ? MHD_CONTENT_READER_END_OF_STREAM : n == -2 ? MHD_CONTENT_READER_END_WITH_ERROR : n;
}

static void free_stream(void *cls) { server_stream_free(cls); }

static enum MHD_Result send_answer(struct MHD_Connection *c, request_state *st, server_answer *a) {
    st->status = a->status;
    if (a->status == 0) return MHD_NO; /* the client went away: close */
    struct MHD_Response *r =
        a->stream ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_stream, a->stream, free_stream)
                  : MHD_create_response_from_buffer(a->body_len, a->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        if (a->stream) server_stream_free(a->stream);
        free(a->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
    if (a->stream) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* nginx: pass each event on at once */
    }
    if (a->retry_after > 0) {
        char seconds[16];
        snprintf(seconds, sizeof seconds, "%d", a->retry_after);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    if (a->status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    const enum MHD_Result queued = MHD_queue_response(c, (unsigned int)a->status, r);
    MHD_destroy_response(r);
    return queued;
}

static enum MHD_Result send_error(struct MHD_Connection *c, request_state *st, const server_error *e) {
    server_answer a;
    server_answer_error(e, &a);
    return send_answer(c, st, &a);
}

static enum MHD_Result too_large(struct MHD_Connection *c, request_state *st, long limit) {
    server_error e;
    server_fail(&e, 413, "invalid_request_error", "request_too_large", NULL,
                "the request body is larger than %ld bytes (--max-body)", limit);
    return send_error(c, st, &e);
}

/* -------------------------------------------------------------- requests */

/* Called for the headers, then for each piece of the body, then once at
 * its end: the answer is made on that last call. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    server_http *h = cls;
    request_state *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st))) return MHD_NO;
        *con_cls = st;
        atomic_fetch_add(&h->requests, 1);
        st->start = llama2_time_seconds();
        snprintf(st->method, sizeof st->method, "%s", method);
        snprintf(st->path, sizeof st->path, "%s", url);
        server_error e;
        /* Counted first, then the check: a request that finds the server
         * open is one the drain waits for (main.c), and one begun after the
         * signal (on a kept-alive connection) is refused. */
        if (atomic_load(&h->app->closing)) {
            server_fail(&e, 503, "server_error", "shutting_down", NULL, "the server is shutting down");
            return send_error(c, st, &e);
        }
        if (!(st->route = server_find_route(method, url, &e))) return send_error(c, st, &e);
        if (h->authorization && !server_route_is_open(st->route) && !authorized(h, c)) {
            const int given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION) != NULL;
            server_fail(&e, 401, "invalid_request_error", "invalid_api_key", NULL,
                        given ? "incorrect API key" : "no API key: send the header 'Authorization: Bearer <key>'");
            return send_error(c, st, &e);
        }
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > (unsigned long long)h->options.max_body)
            return too_large(c, st, h->options.max_body);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        const size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large) return MHD_YES;
        if (st->len + n > (size_t)h->options.max_body) {
            st->too_large = 1;
            return MHD_YES;
        }
        if (st->len + n > st->cap) {
            size_t cap = st->cap ? st->cap : 4096;
            while (cap < st->len + n) cap *= 2;
            char *bigger = realloc(st->body, cap);
            if (!bigger) return MHD_NO;
            st->body = bigger;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        return MHD_YES;
    }
    if (st->too_large) return too_large(c, st, h->options.max_body);
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    server_client client = {client_gone, (void *)(intptr_t)(info ? info->connect_fd : -1)};
    server_answer a;
    server_handle(h->app, st->route, st->body ? st->body : "", st->len, &client, &a);
    return send_answer(c, st, &a);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)c;
    server_http *h = cls;
    request_state *st = *con_cls;
    if (!st) return;
    if (h->options.verbose)
        fprintf(stderr, "llama2-server: %s %s %d %.1f ms%s\n", st->method, st->path, st->status,
                (llama2_time_seconds() - st->start) * 1e3,
                why == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    free(st->body);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&h->requests, 1);
}

/* libmicrohttpd's own messages (a client that hung up, ...): with
 * --verbose only. */
static void on_log(void *cls, const char *fmt, va_list ap) {
    const server_http *h = cls;
    if (!h->options.verbose) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    fprintf(stderr, "llama2-server: http: %s\n", line);
}

/* ------------------------------------------------------------ the API */

server_http *server_http_start(const server_http_options *options, server_app *app, char *address,
                               size_t address_size, char *msg, size_t msg_size) {
    server_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    h->app = app;
    h->options = *options;
    if (options->api_key) {
        size_t n = strlen(options->api_key) + 8;
        if (!(h->authorization = malloc(n))) {
            free(h);
            snprintf(msg, msg_size, "out of memory");
            return NULL;
        }
        snprintf(h->authorization, n, "Bearer %s", options->api_key);
    }
    int ipv6 = 0;
    h->listen_fd = open_listener(options->host, options->port, &ipv6, address, address_size, msg, msg_size);
    if (h->listen_fd < 0) {
        free(h->authorization);
        free(h);
        return NULL;
    }
    const unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                               MHD_USE_ITC | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    /* The logger first, as libmicrohttpd asks, so that it takes every message. */
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_log, h,
                                 MHD_OPTION_LISTEN_SOCKET, h->listen_fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)options->max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(msg, msg_size, "cannot start the HTTP server (libmicrohttpd) on %s", address);
        close(h->listen_fd);
        free(h->authorization);
        free(h);
        return NULL;
    }
    return h;
}

void server_http_quiesce(server_http *h) {
    const MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    h->listen_fd = -1;
}

int server_http_requests(server_http *h) { return atomic_load(&h->requests); }

void server_http_stop(server_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->daemon);
    free(h->authorization);
    free(h);
}
