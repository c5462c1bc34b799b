/*
 * gw_server.c -- HTTP request lifecycle of the gateway (see gw_server.h
 * for the design notes).
 *
 * Flow of one request (gw_request.state):
 *   1. NEW      first call: request id chosen, size limit checked.
 *   2. BODY     upload chunks appended (past 64 KiB only counted).
 *   3. WAITING  body complete: transcoded, connection suspended, RPC (or
 *               the readiness probes) started.
 *   4. DONE     the callback stored the outcome and resumed the
 *               connection; the handler queues the response.
 * Any request answered without an RPC goes from 2 straight to its reply.
 */
#include "gw_server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cv_log.h"
#include "cv_validate.h"
#include "cv_rpc.h"
#include "cv_time.h"
#include "cv_transcode.h"
#include "gw_auth.h"
#include "gw_console.h"
#include "gw_encoding.h"
#include "gw_metrics.h"
#include "gw_openapi.h"

#define GW_BODY_MAX (64 * 1024)
/* A chunked body past the limit is drained (to answer 413) up to this
 * much, then its connection is closed. */
#define GW_DISCARD_MAX    (1024 * 1024)
#define GW_REQUEST_ID_MAX 128
#define GW_IDEM_KEY_MAX   255
#define GW_METHOD_MAX     15
#define GW_LOG_PATH_MAX   200

/* Connection limits (gw_config, 0 = these). */
#define GW_DEFAULT_MAX_CONNECTIONS 16384
#define GW_DEFAULT_PER_IP          256
#define GW_DEFAULT_IDLE_TIMEOUT_S  5
#define GW_DEFAULT_MAX_IN_FLIGHT   4096
/* File descriptors kept for everything but client connections (NNG
 * sockets, console files, logs). */
#define GW_FD_RESERVE 256
/* Shutdown: grace for in-flight calls before they are cancelled, and the
 * bound on waiting for the cancelled ones' callbacks. */
#define GW_STOP_GRACE_MS  3000
#define GW_STOP_CANCEL_MS 10000

enum gw_req_state {
    GW_REQ_NEW,
    GW_REQ_BODY,
    GW_REQ_WAITING,
    GW_REQ_DONE,
    GW_REQ_ANSWERED, /* refused on its headers: the answer is queued */
};

/* One name the gateway serves: "127.0.0.1", "localhost", "[::1]",
 * "cavra.example.org"; port -1 when the entry names none (any port),
 * GW_PORT_SELF for the port the gateway is bound to. */
#define GW_HOST_NAME_MAX 255
#define GW_PORT_SELF     (-2)
typedef struct gw_host {
    char name[GW_HOST_NAME_MAX + 1];
    int port;
} gw_host;

/* A configured CORS origin (scheme, name, explicit port) and its text as
 * sent in Access-Control-Allow-Origin. */
typedef struct gw_cors_origin {
    bool https;
    gw_host host;
    char text[GW_HOST_NAME_MAX + 16];
} gw_cors_origin;

struct gw_server {
    gw_config cfg;
    struct MHD_Daemon *daemon;
    cv_rpc_client *clients[GW_SVC_COUNT];
    gw_auth *auth; /* NULL in sandbox mode */
    char *openapi; /* the OpenAPI document, rendered once at start-up */
    size_t openapi_len;
    MHD_socket listen_fd; /* returned by MHD_quiesce_daemon: ours to close */
    pthread_mutex_t mtx;  /* guards in_flight and stopping */
    pthread_cond_t drained;
    int in_flight; /* suspended connections */
    bool stopping; /* no RPC starts any more */
    /* Read-held while an RPC starts, write-held while the clients close:
     * no MHD thread can use a client being freed. */
    pthread_rwlock_t clients_lock;
    atomic_int connections;          /* open client connections */
    atomic_llong rejected_logged_us; /* last "connection refused" log line */
    int port;
    gw_host *hosts; /* the names the Host header may carry */
    size_t n_hosts;
    bool host_any;        /* wildcard listen, no list: Host not checked */
    gw_cors_origin *cors; /* CAVRA_GATEWAY_CORS_ORIGINS */
    size_t n_cors;
    /* The bound port, for entries of GW_PORT_SELF (known only once MHD
     * has bound when the configured port is 0). */
    atomic_int self_port;
};

typedef struct gw_request {
    enum gw_req_state state;
    gw_server *gw;
    struct MHD_Connection *conn;
    char request_id[GW_REQUEST_ID_MAX + 1];
    char *body;
    size_t len, cap;
    bool too_large;
    size_t discarded;           /* body bytes dropped past the limit */
    const gw_cors_origin *cors; /* a configured CORS origin asked */
    const gw_route *route;      /* NULL: a built-in (readyz) */
    Cv__Actor *actor;           /* verified caller, NULL in sandbox mode */
    int64_t started_us;         /* for the latency histogram */
    unsigned int status;        /* the status queued */
    int builtin;                /* gw_metric_builtin when route is NULL */
    char method[GW_METHOD_MAX + 1];
    char path[GW_LOG_PATH_MAX + 1]; /* logged only when no route matched */
    int cause;                      /* gw_503_cause of a 503, -1 otherwise */
    char detail[CV_ERROR_MSG_MAX];  /* the error detail answered, for the log */
    /* Outcome of the RPC, written by the callback before resume. */
    cv_rpc_result result;
    /* Readiness probes: one per service. */
    pthread_mutex_t probe_mtx;
    int probes_left;
    bool probe_ok[GW_SVC_COUNT];
    bool probe_db_ok[GW_SVC_COUNT];
    bool probes_started; /* probe_mtx initialised */
} gw_request;

static const char *const gw_service_names[GW_SVC_COUNT] = {"ack", "retry",
                                                           "report"};

/* ---- responses ---- */

static bool
gw_stopping(gw_server *gw)
{
    bool stopping;

    pthread_mutex_lock(&gw->mtx);
    stopping = gw->stopping;
    pthread_mutex_unlock(&gw->mtx);
    return stopping;
}

/* Only for an Origin configured in CAVRA_GATEWAY_CORS_ORIGINS: every
 * other origin gets no CORS header at all. */
static void
gw_add_cors_headers(const gw_request *r, struct MHD_Response *resp)
{
    if (r->cors == NULL)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors->text);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            "X-Request-Id, Idempotent-Replayed");
}

/* Adds every Accept-Encoding line: a list may span several. */
static enum MHD_Result
gw_accept_cb(void *cls, enum MHD_ValueKind kind, const char *key,
             const char *value)
{
    (void)kind;
    if (key != NULL && strcasecmp(key, MHD_HTTP_HEADER_ACCEPT_ENCODING) == 0)
        gw_accept_add(cls, value);
    return MHD_YES;
}

/* True when the request's Accept-Encoding allows a gzip answer. */
static bool
gw_wants_gzip(const gw_request *r)
{
    gw_accept a;

    gw_accept_init(&a);
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, gw_accept_cb, &a);
    return gw_accept_gzip(&a);
}

/* The body to send for text (len bytes, malloc'd, owned): gzip in place
 * of it when the type, the size and the client allow and it shrinks.
 * Returns true when *text now holds gzip. */
static bool
gw_encode_body(const gw_request *r, const char *type, char **text, size_t *len)
{
    char *gz;
    size_t gz_len;

    if (*len < GW_GZIP_MIN_BYTES || !gw_encoding_compressible(type) ||
        !gw_wants_gzip(r) || gw_gzip(*text, *len, &gz, &gz_len) != 0)
        return false;
    if (gz_len >= *len) {
        free(gz);
        return false;
    }
    free(*text);
    *text = gz;
    *len = gz_len;
    return true;
}

static enum MHD_Result
gw_queue_text(gw_request *r, unsigned int status, const char *type, char *text,
              size_t len, const char *allow)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    bool gzip = gw_encode_body(r, type, &text, &len);

    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (gzip)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    /* One Vary line: what the answer depends on besides the URL. */
    if (gw_encoding_compressible(type))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
                                r->cors != NULL ? "Origin, Accept-Encoding"
                                                : "Accept-Encoding");
    else if (r->cors != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    /* A busy resource (one verification at a time, schedule caps): tell
     * clients when to come back instead of letting them hammer it. */
    if (status == 429)
        MHD_add_response_header(resp, "Retry-After", "5");
    gw_add_cors_headers(r, resp);
    if (r->result.reply != NULL && r->result.reply->replayed)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    if (gw_stopping(r->gw))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    /* Counted here, where every answer passes: no 503 goes uncounted. */
    if (status == 503)
        gw_metrics_503(r->cause >= 0 ? (enum gw_503_cause)r->cause
                                     : GW_503_SERVICE_UNAVAILABLE);
    r->status = status;
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Queues a JSON document (steals the reference). */
static enum MHD_Result
gw_queue_json(gw_request *r, unsigned int status, json_t *doc,
              const char *allow)
{
    char *text = doc != NULL ? json_dumps(doc, CV_JSON_OUTPUT) : NULL;

    json_decref(doc);
    if (text == NULL)
        return MHD_NO;
    return gw_queue_text(r, status, "application/json", text, strlen(text),
                         allow);
}

/* The docs/api.md error body: {"detail","code","request_id"}. */
static enum MHD_Result
gw_queue_error(gw_request *r, unsigned int status, int code, const char *detail,
               const char *allow)
{
    json_t *doc = json_pack("{s:s, s:s, s:s}", "detail", detail, "code",
                            cv_code_name(code), "request_id", r->request_id);

    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    return gw_queue_json(r, status, doc, allow);
}

/* A 503 with its cause (for /metrics and the log). */
static enum MHD_Result
gw_queue_503(gw_request *r, enum gw_503_cause cause, const char *detail)
{
    r->cause = (int)cause;
    return gw_queue_error(r, 503, CV_UNAVAILABLE, detail, NULL);
}

static enum MHD_Result
gw_queue_cv_error(gw_request *r, const cv_error *err)
{
    return gw_queue_error(r, (unsigned int)cv_code_http_status(err->code),
                          err->code, err->msg, NULL);
}

/* ---- request ids and headers ---- */

static bool
gw_request_id_sane(const char *id)
{
    /* The shared rule: 1..128 of [A-Za-z0-9._:-], and nothing that looks
     * like a secret (it is echoed and stored with evidence). */
    return id != NULL && cv_request_id_sane(id);
}

/* 1..255 printable ASCII (docs/api.md). */
static bool
gw_idempotency_key_sane(const char *key)
{
    size_t n = strlen(key);

    if (n < 1 || n > GW_IDEM_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return false;
    return true;
}

static bool
gw_content_type_json(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* ---- Host and Origin (browser safety, see gw_server.h) ---- */

/* Parses "name[:port]" (name may be a bracketed IPv6 literal) of len
 * bytes into *h, the name lower-cased. Returns 0, or -1 when malformed. */
static int
gw_host_parse(const char *s, size_t len, gw_host *h)
{
    size_t name_len;
    const char *colon = NULL;

    while (len > 0 && (s[0] == ' ' || s[0] == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0)
        return -1;
    if (s[0] == '[') {
        const char *end = memchr(s, ']', len);

        if (end == NULL)
            return -1;
        name_len = (size_t)(end - s) + 1;
        if (name_len < len) {
            if (s[name_len] != ':')
                return -1;
            colon = s + name_len;
        }
    } else {
        colon = memchr(s, ':', len);
        name_len = colon != NULL ? (size_t)(colon - s) : len;
    }
    if (name_len == 0 || name_len > GW_HOST_NAME_MAX)
        return -1;
    for (size_t i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)s[i];

        /* Names, IPv4 and bracketed IPv6 literals only. */
        if (!isalnum(c) && c != '.' && c != '-' && c != '_' && c != '[' &&
            c != ']' && c != ':')
            return -1;
        h->name[i] = (char)tolower(c);
    }
    h->name[name_len] = '\0';
    h->port = -1;
    if (colon != NULL) {
        long port = 0;
        size_t digits = len - (size_t)(colon + 1 - s);

        if (digits == 0 || digits > 5)
            return -1;
        for (const char *p = colon + 1; p < s + len; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535)
            return -1;
        h->port = (int)port;
    }
    return 0;
}

static int
gw_hosts_add(gw_server *gw, const char *s, size_t len)
{
    gw_host h, *grown;

    if (gw_host_parse(s, len, &h) != 0)
        return -1;
    grown = realloc(gw->hosts, (gw->n_hosts + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    gw->hosts = grown;
    gw->hosts[gw->n_hosts++] = h;
    return 0;
}

/* The names the Host header may carry: the configured list, or the
 * listen address and port (plus the loopback names in sandbox mode). */
static int
gw_hosts_init(gw_server *gw, cv_error *err)
{
    const char *list = gw->cfg.allowed_hosts;

    if (list != NULL && list[0] != '\0') {
        for (const char *p = list; *p != '\0';) {
            size_t n = strcspn(p, ",");

            if (gw_hosts_add(gw, p, n) != 0)
                return cv_error_set(
                    err, CV_INVALID_ARGUMENT,
                    "CAVRA_GATEWAY_ALLOWED_HOSTS: \"%.*s\" is not a "
                    "host[:port]",
                    (int)(n > 64 ? 64 : n), p);
            p += n;
            if (*p == ',')
                p++;
        }
        return 0;
    }
    if (strcmp(gw->cfg.host, "0.0.0.0") == 0) {
        /* Reached under names we cannot know: the token check guards it
         * (sandbox mode never listens beyond loopback). */
        gw->host_any = true;
        CV_LOG(CV_LOG_WARN, "GW-CONFIG",
               "listening on 0.0.0.0 without an allowed host list: the Host "
               "header is not checked; set CAVRA_GATEWAY_ALLOWED_HOSTS to "
               "the names clients use");
        return 0;
    }
    if (gw_hosts_add(gw, gw->cfg.host, strlen(gw->cfg.host)) != 0)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    if (gw->cfg.token_file == NULL) {
        static const char *const loopback[] = {"127.0.0.1", "localhost",
                                               "[::1]"};

        for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
            if (gw_hosts_add(gw, loopback[i], strlen(loopback[i])) != 0)
                return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < gw->n_hosts; i++)
        gw->hosts[i].port = GW_PORT_SELF;
    return 0;
}

/* The port an entry stands for: -1 any, else a port. */
static int
gw_host_port(const gw_server *gw, const gw_host *h)
{
    return h->port == GW_PORT_SELF ? atomic_load((atomic_int *)&gw->self_port)
                                   : h->port;
}

/* A Host header names the gateway when its name is in the list and its
 * port, if both say one, agrees. The name is what DNS rebinding forges;
 * a Host without a port (a probe's "localhost") cannot point elsewhere. */
static bool
gw_host_allowed(const gw_server *gw, const char *value)
{
    gw_host h;

    if (gw->host_any)
        return true;
    if (gw_host_parse(value, strlen(value), &h) != 0)
        return false;
    for (size_t i = 0; i < gw->n_hosts; i++)
        if (strcmp(gw->hosts[i].name, h.name) == 0 &&
            (h.port < 0 || gw_host_port(gw, &gw->hosts[i]) < 0 ||
             h.port == gw_host_port(gw, &gw->hosts[i])))
            return true;
    return false;
}

/* Parses an Origin "http(s)://name[:port]" into *o (the port made
 * explicit from the scheme) and *https. Returns 0, or -1 when it is not
 * one ("null", other schemes, paths). */
static int
gw_origin_parse(const char *origin, size_t len, gw_host *o, bool *https)
{
    size_t skip;

    while (len > 0 && (origin[0] == ' ' || origin[0] == '\t'))
        origin++, len--;
    if (len >= 7 && strncasecmp(origin, "http://", 7) == 0)
        skip = 7, *https = false;
    else if (len >= 8 && strncasecmp(origin, "https://", 8) == 0)
        skip = 8, *https = true;
    else
        return -1;
    if (gw_host_parse(origin + skip, len - skip, o) != 0)
        return -1;
    if (o->port < 0)
        o->port = *https ? 443 : 80;
    return 0;
}

/* An Origin is the gateway's own when it is http(s)://name[:port] with a
 * name and port the gateway serves (the port that the scheme implies
 * when it says none). Without a list (wildcard listen), it must name
 * what the Host header names. "null" and anything else are foreign. */
static bool
gw_origin_allowed(const gw_server *gw, const char *origin, const char *host)
{
    gw_host o, h;
    bool https;

    if (gw_origin_parse(origin, strlen(origin), &o, &https) != 0)
        return false;
    if (gw->host_any) {
        if (host == NULL || gw_host_parse(host, strlen(host), &h) != 0)
            return false;
        return strcmp(o.name, h.name) == 0 &&
               o.port == (h.port < 0 ? (https ? 443 : 80) : h.port);
    }
    for (size_t i = 0; i < gw->n_hosts; i++)
        if (strcmp(gw->hosts[i].name, o.name) == 0 &&
            (gw_host_port(gw, &gw->hosts[i]) < 0 ||
             gw_host_port(gw, &gw->hosts[i]) == o.port))
            return true;
    return false;
}

/* The configured CORS origin an Origin header names exactly (scheme,
 * name, port), or NULL. */
static const gw_cors_origin *
gw_cors_match(const gw_server *gw, const char *origin)
{
    gw_host o;
    bool https;

    if (origin == NULL || gw->n_cors == 0 ||
        gw_origin_parse(origin, strlen(origin), &o, &https) != 0)
        return NULL;
    for (size_t i = 0; i < gw->n_cors; i++)
        if (gw->cors[i].https == https &&
            strcmp(gw->cors[i].host.name, o.name) == 0 &&
            gw->cors[i].host.port == o.port)
            return &gw->cors[i];
    return NULL;
}

/* CAVRA_GATEWAY_CORS_ORIGINS: comma-separated http(s)://name[:port]. */
static int
gw_cors_init(gw_server *gw, cv_error *err)
{
    const char *list = gw->cfg.cors_origins;

    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ","), text_len;
        gw_cors_origin c, *grown;

        if (gw_origin_parse(p, n, &c.host, &c.https) != 0)
            return cv_error_set(
                err, CV_INVALID_ARGUMENT,
                "CAVRA_GATEWAY_CORS_ORIGINS: \"%.*s\" is not an "
                "http(s)://host[:port] origin",
                (int)(n > 64 ? 64 : n), p);
        /* Answered back as the browser writes it: no default port. */
        snprintf(c.text, sizeof(c.text), "%s://%s", c.https ? "https" : "http",
                 c.host.name);
        text_len = strlen(c.text);
        if (c.host.port != (c.https ? 443 : 80))
            snprintf(c.text + text_len, sizeof(c.text) - text_len, ":%d",
                     c.host.port);
        if ((grown = realloc(gw->cors, (gw->n_cors + 1) * sizeof(*grown))) ==
            NULL)
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        gw->cors = grown;
        gw->cors[gw->n_cors++] = c;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---- RPC completion ---- */

static void
gw_resume(gw_request *r)
{
    gw_server *gw = r->gw;

    r->state = GW_REQ_DONE;
    MHD_resume_connection(r->conn);
    pthread_mutex_lock(&gw->mtx);
    if (--gw->in_flight == 0)
        pthread_cond_broadcast(&gw->drained);
    pthread_mutex_unlock(&gw->mtx);
}

/* Counts one more request waiting for services, unless the gateway is
 * stopping or has too many waiting. Returns -1, or the gw_503_cause to
 * answer with. */
static int
gw_flight_begin(gw_server *gw)
{
    int cause = -1;

    pthread_mutex_lock(&gw->mtx);
    if (gw->stopping)
        cause = GW_503_STOPPING;
    else if (gw->in_flight >= gw->cfg.max_in_flight)
        cause = GW_503_OVERLOADED;
    else
        gw->in_flight++;
    pthread_mutex_unlock(&gw->mtx);
    return cause;
}

static enum MHD_Result
gw_queue_flight_refused(gw_request *r, int cause)
{
    return gw_queue_503(r, (enum gw_503_cause)cause,
                        cause == GW_503_STOPPING
                            ? "gateway is stopping"
                            : "gateway is overloaded; retry later");
}

static void
gw_rpc_done_cb(void *arg, cv_rpc_result *res)
{
    gw_request *r = arg;

    if (r == NULL || res == NULL) {
        /* Not a call of ours: nothing to resume, only the reply to free. */
        if (res != NULL && res->reply != NULL)
            cv__rpc_reply__free_unpacked(res->reply, NULL);
        return;
    }
    r->result = *res;
    res->reply = NULL; /* now owned by the request */
    gw_resume(r);
}

/* ---- dispatch ---- */

/* Suspends the connection and starts one RPC carrying `payload`. */
static enum MHD_Result
gw_start_rpc(gw_request *r, enum gw_service svc, const char *method,
             const ProtobufCMessage *payload, const char *idem_key,
             cv_rpc_done_cb cb, void *cb_arg)
{
    gw_server *gw = r->gw;
    Cv__RpcRequest env = CV__RPC_REQUEST__INIT;
    cv_error err;
    uint8_t *buf;
    size_t len = protobuf_c_message_get_packed_size(payload);
    int timeout_ms = r->route != NULL && r->route->timeout_ms > 0
                         ? r->route->timeout_ms
                         : gw->cfg.rpc_timeout_ms;
    int rv, cause;

    if ((buf = malloc(len > 0 ? len : 1)) == NULL)
        return MHD_NO;
    if ((cause = gw_flight_begin(gw)) >= 0) {
        free(buf);
        return gw_queue_flight_refused(r, cause);
    }
    protobuf_c_message_pack(payload, buf);
    env.method = (char *)method;
    env.request_id = r->request_id;
    env.has_deadline_unix_ms = 1;
    env.deadline_unix_ms = cv_now_us() / 1000 + timeout_ms;
    env.idempotency_key = (char *)idem_key;
    env.actor = r->actor;
    env.has_payload = 1;
    env.payload.data = buf;
    env.payload.len = len;

    r->state = GW_REQ_WAITING;
    MHD_suspend_connection(r->conn);
    cv_error_clear(&err);
    pthread_rwlock_rdlock(&gw->clients_lock);
    if (gw->clients[svc] != NULL)
        rv = cv_rpc_call_start(gw->clients[svc], &env, timeout_ms, cb, cb_arg,
                               &err);
    else
        rv = cv_error_set(&err, CV_UNAVAILABLE, "gateway is stopping");
    pthread_rwlock_unlock(&gw->clients_lock);
    free(buf);
    if (rv != 0) {
        /* The callback will never run: answer with the start error. */
        r->result.code = rv;
        snprintf(r->result.message, sizeof(r->result.message), "%s", err.msg);
        gw_resume(r);
    }
    return MHD_YES;
}

typedef struct gw_query_ctx {
    ProtobufCMessage *msg;
    cv_error *err;
    int rv;
} gw_query_ctx;

static enum MHD_Result
gw_query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
    gw_query_ctx *q = cls;

    char name[64], *text;
    size_t len = value != NULL ? strlen(value) : 0;

    (void)kind;
    if (q->rv != 0 || key == NULL)
        return MHD_YES;
    /* Unknown query keys are ignored, like unknown JSON keys. */
    if (gw_percent_decode(key, strlen(key), name, sizeof(name), true) != 0 ||
        protobuf_c_message_descriptor_get_field_by_name(q->msg->descriptor,
                                                        name) == NULL)
        return MHD_YES;
    if ((text = malloc(len + 1)) == NULL) {
        q->rv = cv_error_set(q->err, CV_INTERNAL, "out of memory");
        return MHD_NO;
    }
    if (gw_percent_decode(value != NULL ? value : "", len, text, len + 1,
                          true) != 0) {
        free(text);
        q->rv = cv_error_set(q->err, CV_INVALID_ARGUMENT,
                             "%s has a malformed percent escape", name);
        return MHD_NO;
    }
    q->rv = cv_message_set_field_text(q->msg, name, text, q->err);
    free(text);
    return q->rv == 0 ? MHD_YES : MHD_NO;
}

static enum MHD_Result
gw_dispatch_route(gw_request *r, const gw_route *route,
                  const gw_path_param *params, size_t n_params)
{
    ProtobufCMessage *msg = NULL;
    cv_error err;
    const char *idem;
    enum MHD_Result ret;

    cv_error_clear(&err);
    r->route = route;
    if (r->gw->auth != NULL &&
        gw_auth_check(r->gw->auth,
                      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                  "Authorization"),
                      route->roles, &r->actor, &err) != 0)
        return gw_queue_cv_error(r, &err);
    /* Keys matter on POST only (docs/api.md); reads ignore them. */
    idem = strcmp(route->http_method, "POST") == 0
               ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                             "Idempotency-Key")
               : NULL;
    if (idem != NULL && !gw_idempotency_key_sane(idem))
        return gw_queue_error(r, 400, CV_INVALID_ARGUMENT,
                              "Idempotency-Key must be 1 to 255 printable "
                              "ASCII characters",
                              NULL);
    if (strcmp(route->http_method, "POST") == 0) {
        const char *ct = MHD_lookup_connection_value(
            r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

        if (r->too_large)
            return gw_queue_error(r, 413, CV_RESOURCE_EXHAUSTED,
                                  "request body must be at most 65536 bytes",
                                  NULL);
        /* An empty body too: a cross-site no-cors fetch can send any
         * body, but never this header (it would need a preflight). */
        if (!gw_content_type_json(ct))
            return gw_queue_error(r, 415, CV_INVALID_ARGUMENT,
                                  "Content-Type header must be "
                                  "application/json",
                                  NULL);
        if (cv_json_text_to_message(route->request, r->body, r->len, &msg,
                                    &err) != 0)
            return gw_queue_cv_error(r, &err);
    } else {
        gw_query_ctx q = {NULL, &err, 0};

        if ((msg = cv_message_new(route->request)) == NULL)
            return MHD_NO;
        q.msg = msg;
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, gw_query_cb,
                                  &q);
        if (q.rv != 0) {
            protobuf_c_message_free_unpacked(msg, NULL);
            return gw_queue_cv_error(r, &err);
        }
    }
    /* Path parameters win over body keys of the same name. */
    for (size_t i = 0; i < n_params; i++) {
        if (cv_message_set_field_text(msg, params[i].name, params[i].value,
                                      &err) != 0) {
            protobuf_c_message_free_unpacked(msg, NULL);
            return gw_queue_cv_error(r, &err);
        }
    }
    ret = gw_start_rpc(r, route->service, route->rpc, msg, idem, gw_rpc_done_cb,
                       r);
    protobuf_c_message_free_unpacked(msg, NULL);
    return ret;
}

/* ---- readiness: every service's Health RPC, in parallel ---- */

typedef struct gw_probe {
    gw_request *req;
    int svc;
} gw_probe;

/* Stores one probe's outcome; the last one resumes the connection. */
static void
gw_readyz_probe_done(gw_request *r, int svc, cv_rpc_result *res)
{
    bool last;

    pthread_mutex_lock(&r->probe_mtx);
    r->probe_ok[svc] = res->code == CV_OK;
    if (res->code == CV_OK && res->reply != NULL && res->reply->has_payload) {
        Cv__HealthReply *hr = cv__health_reply__unpack(
            NULL, res->reply->payload.len, res->reply->payload.data);
        r->probe_db_ok[svc] = hr != NULL && hr->database_ok;
        if (hr != NULL)
            cv__health_reply__free_unpacked(hr, NULL);
    }
    last = --r->probes_left == 0;
    pthread_mutex_unlock(&r->probe_mtx);
    if (last)
        gw_resume(r);
}

static void
gw_readyz_done_cb(void *arg, cv_rpc_result *res)
{
    gw_probe *p = arg;
    Cv__RpcReply *reply = res != NULL ? res->reply : NULL;

    /* NULL-safe: without a probe there is nothing to resume. */
    if (p != NULL && res != NULL)
        gw_readyz_probe_done(p->req, p->svc, res);
    if (reply != NULL)
        cv__rpc_reply__free_unpacked(reply, NULL);
    free(p);
}

static enum MHD_Result
gw_dispatch_readyz(gw_request *r)
{
    gw_server *gw = r->gw;
    Cv__HealthRequest hreq = CV__HEALTH_REQUEST__INIT;
    uint8_t empty[1];
    char method[32];
    int cause, rv;

    if ((cause = gw_flight_begin(gw)) >= 0)
        return gw_queue_flight_refused(r, cause);
    pthread_mutex_init(&r->probe_mtx, NULL);
    r->probes_left = GW_SVC_COUNT;
    r->probes_started = true;
    r->state = GW_REQ_WAITING;
    MHD_suspend_connection(r->conn);
    (void)protobuf_c_message_pack(&hreq.base, empty);
    for (int i = 0; i < GW_SVC_COUNT; i++) {
        Cv__RpcRequest env = CV__RPC_REQUEST__INIT;
        gw_probe *p = malloc(sizeof(*p));
        cv_rpc_result failed;

        snprintf(method, sizeof(method), "%s.Health", gw_service_names[i]);
        env.method = method;
        env.request_id = r->request_id;
        env.has_payload = 1;
        env.payload.len = 0;
        env.payload.data = empty;
        memset(&failed, 0, sizeof(failed));
        failed.code = CV_UNAVAILABLE;
        if (p == NULL) {
            gw_readyz_probe_done(r, i, &failed);
            continue;
        }
        p->req = r;
        p->svc = i;
        pthread_rwlock_rdlock(&gw->clients_lock);
        rv = gw->clients[i] != NULL
                 ? cv_rpc_call_start(gw->clients[i], &env, 2000,
                                     gw_readyz_done_cb, p, NULL)
                 : CV_UNAVAILABLE;
        pthread_rwlock_unlock(&gw->clients_lock);
        if (rv != 0)
            gw_readyz_done_cb(p, &failed);
    }
    return MHD_YES;
}

static enum MHD_Result
gw_respond_readyz(gw_request *r)
{
    json_t *services = json_object();
    bool ready = true, db_ok = true;
    int answered = 0;

    /* The database is judged by the services that answered: a dead
     * service says nothing about PostgreSQL. */
    for (int i = 0; i < GW_SVC_COUNT; i++) {
        json_object_set_new(services, gw_service_names[i],
                            json_pack("{s:b, s:b}", "ok", r->probe_ok[i],
                                      "database_ok", r->probe_db_ok[i]));
        ready = ready && r->probe_ok[i];
        if (r->probe_ok[i]) {
            answered++;
            db_ok = db_ok && r->probe_db_ok[i];
        }
    }
    db_ok = db_ok && answered > 0;
    ready = ready && db_ok;
    if (!ready)
        r->cause = GW_503_NOT_READY;
    return gw_queue_json(r, ready ? 200 : 503,
                         json_pack("{s:s, s:b, s:o, s:s}", "status",
                                   ready ? "ready" : "not_ready", "database",
                                   db_ok, "services", services, "request_id",
                                   r->request_id),
                         NULL);
}

/*
 * A raw reply (cv_method_raw_reply): the message's `body` bytes as they
 * are, with its `content_type` (application/octet-stream when unset).
 * Generic over the descriptor, like the JSON transcoder; frees msg.
 */
static enum MHD_Result
gw_respond_raw(gw_request *r, ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *fb =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor,
                                                        "body");
    const ProtobufCFieldDescriptor *ft =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor,
                                                        "content_type");
    const ProtobufCBinaryData *body = NULL;
    const char *type = NULL;
    char content_type[128], *copy;
    enum MHD_Result ret;

    if (fb != NULL && fb->type == PROTOBUF_C_TYPE_BYTES)
        body = (const ProtobufCBinaryData *)((const char *)msg + fb->offset);
    if (ft != NULL && ft->type == PROTOBUF_C_TYPE_STRING)
        type = *(char *const *)((const char *)msg + ft->offset);
    snprintf(content_type, sizeof(content_type), "%s",
             type != NULL && type[0] != '\0' ? type
                                             : "application/octet-stream");
    copy = malloc(body != NULL && body->len > 0 ? body->len : 1);
    if (copy == NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return MHD_NO;
    }
    if (body != NULL && body->len > 0)
        memcpy(copy, body->data, body->len);
    ret = gw_queue_text(r, (unsigned int)r->route->status, content_type, copy,
                        body != NULL ? body->len : 0, NULL);
    protobuf_c_message_free_unpacked(msg, NULL);
    return ret;
}

/* Turns a stored RPC outcome into the HTTP answer. */
static enum MHD_Result
gw_respond_rpc(gw_request *r)
{
    cv_rpc_result *res = &r->result;
    ProtobufCMessage *msg;
    json_t *doc;

    if (res->code != CV_OK || res->reply == NULL) {
        cv_error err;

        /* Transport failures mean the service is down: 503 / 504. */
        cv_error_set(&err, res->code != CV_OK ? res->code : CV_INTERNAL, "%s",
                     res->message[0] != '\0' ? res->message : "request failed");
        if (err.code == CV_CANCELLED)
            err.code = CV_UNAVAILABLE;
        if (err.code == CV_UNAVAILABLE) {
            gw_metrics_rpc_unavailable();
            /* A reply means the service itself said UNAVAILABLE (its
             * database); no reply, that the service was not reached. */
            r->cause = res->reply != NULL   ? GW_503_DATABASE
                       : gw_stopping(r->gw) ? GW_503_STOPPING
                                            : GW_503_SERVICE_UNAVAILABLE;
        }
        return gw_queue_cv_error(r, &err);
    }
    msg = protobuf_c_message_unpack(
        r->route->reply, NULL,
        res->reply->has_payload ? res->reply->payload.len : 0,
        res->reply->payload.data);
    if (msg == NULL || !protobuf_c_message_check(msg)) {
        if (msg != NULL)
            protobuf_c_message_free_unpacked(msg, NULL);
        return gw_queue_error(r, 500, CV_INTERNAL,
                              "malformed reply from service", NULL);
    }
    if (cv_method_raw_reply(r->route->method))
        return gw_respond_raw(r, msg);
    doc = cv_message_to_json(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    return gw_queue_json(r,
                         res->reply->replayed || res->reply->existing
                             ? 200
                             : (unsigned int)r->route->status,
                         doc, NULL);
}

static enum MHD_Result
gw_dispatch(gw_request *r, const char *url, const char *method)
{
    gw_path_param params[GW_MAX_PATH_PARAMS];
    size_t n_params = 0;
    bool path_known;
    char allow[64];
    const gw_route *route;

    if (strcmp(method, "GET") == 0 && strcmp(url, "/metrics") == 0) {
        size_t len;
        char *text;

        r->builtin = GW_METRIC_METRICS;
        pthread_mutex_lock(&r->gw->mtx);
        len = (size_t)r->gw->in_flight;
        pthread_mutex_unlock(&r->gw->mtx);
        if ((text = gw_metrics_render(
                 (int)len, atomic_load(&r->gw->connections), &len)) == NULL)
            return MHD_NO;
        return gw_queue_text(r, 200, "text/plain; version=0.0.4", text, len,
                             NULL);
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/openapi.json") == 0) {
        char *copy = malloc(r->gw->openapi_len);

        r->builtin = GW_METRIC_OPENAPI;
        if (copy == NULL)
            return MHD_NO;
        memcpy(copy, r->gw->openapi, r->gw->openapi_len);
        return gw_queue_text(r, 200, "application/json", copy,
                             r->gw->openapi_len, NULL);
    }
    if (strcmp(url, "/healthz") == 0)
        r->builtin = GW_METRIC_HEALTHZ;
    if (strcmp(url, "/readyz") == 0)
        r->builtin = GW_METRIC_READYZ;
    if (strcmp(url, "/healthz") == 0 && strcmp(method, "GET") == 0)
        return gw_queue_json(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
    if (strcmp(url, "/readyz") == 0 && strcmp(method, "GET") == 0)
        return gw_dispatch_readyz(r);
    if (strcmp(method, "GET") == 0) {
        char *text;
        size_t len;
        const char *type;

        if (gw_console_lookup(r->gw->cfg.console_dir, url, &text, &len,
                              &type) == 0) {
            r->builtin = GW_METRIC_CONSOLE;
            return gw_queue_text(r, 200, type, text, len, NULL);
        }
    }
    route = gw_route_match(method, url, params, &n_params, &path_known, allow,
                           sizeof(allow));
    if (route != NULL)
        return gw_dispatch_route(r, route, params, n_params);
    if (path_known)
        return gw_queue_error(r, 405, CV_UNIMPLEMENTED, "method not allowed",
                              allow);
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0)
        return gw_queue_error(r, 405, CV_UNIMPLEMENTED, "method not allowed",
                              "GET");
    return gw_queue_error(r, 404, CV_NOT_FOUND, "not found", NULL);
}

/* A CORS preflight of a configured origin: 204, what it may send. */
static enum MHD_Result
gw_queue_preflight(gw_request *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    gw_add_cors_headers(r, resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Authorization, Content-Type, Idempotency-Key, "
                            "X-Request-Id");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->status = 204;
    ret = MHD_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Refusals judged on the headers alone, on a request's first call, so
 * that no byte of its body is read (MHD answers at once and closes the
 * connection). Returns true when an answer was queued in *ret. */
static bool
gw_refuse_on_headers(gw_request *r, const char *url, const char *method,
                     enum MHD_Result *ret)
{
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_HOST);
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_ORIGIN);
    const char *clen = MHD_lookup_connection_value(
        r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    bool probe = strcmp(method, "GET") == 0 &&
                 (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0);

    /* No Host at all (HTTP/1.0) is served: browsers always send one. */
    if (host != NULL && !probe && !gw_host_allowed(r->gw, host)) {
        *ret = gw_queue_error(r, 421, CV_FAILED_PRECONDITION,
                              "Host header does not name an address this "
                              "gateway serves (CAVRA_GATEWAY_ALLOWED_HOSTS)",
                              NULL);
        return true;
    }
    r->cors = gw_cors_match(r->gw, origin);
    if (r->cors != NULL && strcmp(method, "OPTIONS") == 0 &&
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                    "Access-Control-Request-Method") != NULL) {
        *ret = gw_queue_preflight(r);
        return true;
    }
    if (strcmp(method, "POST") == 0 && origin != NULL && r->cors == NULL &&
        !gw_origin_allowed(r->gw, origin, host)) {
        *ret = gw_queue_error(r, 403, CV_PERMISSION_DENIED,
                              "Origin header is not this gateway's own "
                              "origin: cross-site requests are refused",
                              NULL);
        return true;
    }
    if (clen != NULL && strtoull(clen, NULL, 10) > GW_BODY_MAX) {
        *ret = gw_queue_error(r, 413, CV_RESOURCE_EXHAUSTED,
                              "request body must be at most 65536 bytes "
                              "(Content-Length)",
                              NULL);
        return true;
    }
    return false;
}

static enum MHD_Result
gw_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
             const char *method, const char *version, const char *upload_data,
             size_t *upload_data_size, void **con_cls)
{
    gw_request *r = *con_cls;

    (void)version;
    if (r == NULL) {
        const char *rid;
        enum MHD_Result early;

        if ((r = calloc(1, sizeof(*r))) == NULL)
            return MHD_NO;
        r->gw = cls;
        r->started_us = cv_now_us();
        r->builtin = GW_METRIC_UNMATCHED;
        r->conn = conn;
        r->state = GW_REQ_BODY;
        r->cause = -1;
        snprintf(r->method, sizeof(r->method), "%s", method);
        /* The path only: MHD keeps the query string apart. */
        snprintf(r->path, sizeof(r->path), "%s", url);
        rid =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (gw_request_id_sane(rid))
            snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
        else
            cv_rpc_new_request_id(r->request_id, sizeof(r->request_id));
        *con_cls = r;
        if (gw_refuse_on_headers(r, url, method, &early)) {
            r->state = GW_REQ_ANSWERED;
            return early;
        }
        return MHD_YES;
    }
    switch (r->state) {
    case GW_REQ_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;

            if (!r->too_large && r->len + n > GW_BODY_MAX)
                r->too_large = true;
            if (r->too_large) {
                /* MHD 0.9.75 cannot answer in the middle of a body (only
                 * on the first call or after the end): a chunked body
                 * over the limit is counted, not stored, and answered 413
                 * at its end; one that goes on past GW_DISCARD_MAX is
                 * cut by closing the connection. */
                r->discarded += n;
                if (r->discarded > GW_DISCARD_MAX)
                    return MHD_NO;
            }
            if (!r->too_large) {
                if (r->len + n + 1 > r->cap) {
                    size_t cap = (r->len + n + 1) * 2;
                    char *body = realloc(
                        r->body, cap > GW_BODY_MAX + 1 ? GW_BODY_MAX + 1 : cap);
                    if (body == NULL)
                        return MHD_NO;
                    r->body = body;
                    r->cap = cap > GW_BODY_MAX + 1 ? GW_BODY_MAX + 1 : cap;
                }
                memcpy(r->body + r->len, upload_data, n);
                r->len += n;
                r->body[r->len] = '\0';
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        return gw_dispatch(r, url, method);
    case GW_REQ_DONE:
        return r->route != NULL ? gw_respond_rpc(r) : gw_respond_readyz(r);
    case GW_REQ_WAITING:
        /* Called again while suspended: nothing to do until resumed. */
        return MHD_YES;
    case GW_REQ_ANSWERED:
        /* Refused on its headers; MHD discards whatever body follows. */
        *upload_data_size = 0;
        return MHD_YES;
    default:
        abort();
    }
}

static const char *const gw_builtin_routes[GW_METRIC_BUILTIN_COUNT] = {
    "/healthz", "/readyz", "/metrics", "/openapi.json", "console", NULL};

static const char *
gw_termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return NULL;
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client_abort";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "read_error";
    default:
        return "error";
    }
}

/* The request's one log line: what was asked, by whom, how it ended.
 * Never the body, the query string, tokens or the raw path of a route
 * (its ids): the route pattern stands for it. */
static void
gw_log_request(const gw_request *r, enum MHD_RequestTerminationCode toe,
               int64_t latency_us)
{
    int level = r->status >= 500 ? CV_LOG_WARN : CV_LOG_INFO;
    const char *route = NULL, *ended = gw_termination_name(toe);
    json_t *line;

    if (!CV_LOG_ENABLED(level))
        return;
    if (r->route != NULL)
        route = r->route->pattern;
    else if (r->builtin >= 0 && r->builtin < GW_METRIC_BUILTIN_COUNT)
        route = gw_builtin_routes[r->builtin];
    line = json_pack(
        "{s:s, s:s, s:s?, s:o, s:f, s:s?, s:s?}", "request_id", r->request_id,
        "method", r->method, "route", route, "status",
        r->status != 0 ? json_integer(r->status) : json_null(), "latency_ms",
        (double)latency_us / 1000.0, "service",
        r->route != NULL ? gw_service_names[r->route->service] : NULL, "actor",
        r->actor != NULL && r->actor->actor != NULL ? r->actor->actor : NULL);
    if (line == NULL)
        return;
    /* An unmatched or console path has no ids of ours: the path says
     * what was asked. */
    if (r->route == NULL && r->builtin != GW_METRIC_HEALTHZ &&
        r->builtin != GW_METRIC_READYZ && r->builtin != GW_METRIC_METRICS &&
        r->builtin != GW_METRIC_OPENAPI)
        json_object_set_new(line, "path", json_string(r->path));
    if (r->status == 503)
        json_object_set_new(line, "cause",
                            json_string(gw_503_cause_name(
                                r->cause >= 0 ? (enum gw_503_cause)r->cause
                                              : GW_503_SERVICE_UNAVAILABLE)));
    if (r->status >= 500 && r->detail[0] != '\0')
        json_object_set_new(line, "detail", json_string(r->detail));
    if (ended != NULL)
        json_object_set_new(line, "ended", json_string(ended));
    cv_log_json(level, "GW-REQUEST", line);
}

static void
gw_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                enum MHD_RequestTerminationCode toe)
{
    gw_request *r = *con_cls;
    int64_t latency_us;

    (void)cls;
    (void)conn;
    if (r == NULL)
        return;
    latency_us = cv_now_us() - r->started_us;
    if (r->status != 0)
        gw_metrics_record(r->route != NULL ? (int)(r->route - gw_routes) : -1,
                          r->builtin, r->status, latency_us);
    gw_log_request(r, toe, latency_us);
    if (r->probes_started)
        pthread_mutex_destroy(&r->probe_mtx);
    if (r->result.reply != NULL)
        cv__rpc_reply__free_unpacked(r->result.reply, NULL);
    if (r->actor != NULL)
        cv__actor__free_unpacked(r->actor, NULL);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* MHD would percent-decode paths and query values before the handler;
 * decoding them again in the router would let "%252F" become "/". Keep
 * them raw: gw_percent_decode decodes each exactly once. */
static size_t
gw_unescape_none_cb(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* True for MHD messages about a single connection's ordinary end. */
static bool
gw_mhd_routine(const char *line)
{
    static const char *const routine[] = {
        "closed by remote side",  "timed out",           "Connection reset",
        "Failed to receive data", "Failed to send data", "Broken pipe",
        "Socket disconnected",    "incomplete request"};

    for (size_t i = 0; i < sizeof(routine) / sizeof(routine[0]); i++)
        if (strstr(line, routine[i]) != NULL)
            return true;
    return false;
}

/* MHD's messages. A refused connection is counted, and logged at most
 * once a second: a flood must not turn into a flood of log lines. */
static void
gw_mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
    gw_server *gw = cls;
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    if (strstr(line, "reached connection limit") != NULL) {
        int64_t now = cv_now_us();
        long long last = atomic_load(&gw->rejected_logged_us);

        gw_metrics_connection_rejected();
        if (now - last < 1000000 ||
            !atomic_compare_exchange_strong(&gw->rejected_logged_us, &last,
                                            (long long)now))
            return;
        CV_LOG(CV_LOG_WARN, "GW-CONN-LIMIT",
               "refusing connections: a client is at its limit of %d or all "
               "clients at %d (cavra_http_connections_rejected_total counts "
               "them)",
               gw->cfg.per_ip_connections, gw->cfg.max_connections);
        return;
    }
    /* One client's connection ending badly (closed mid-request, timed
     * out, reset) is routine under load: debug only. */
    CV_LOG(gw_mhd_routine(line) ? CV_LOG_DEBUG : CV_LOG_WARN, "GW-HTTP", "%s",
           line);
}

static void
gw_connection_cb(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                 enum MHD_ConnectionNotificationCode code)
{
    gw_server *gw = cls;

    (void)conn;
    (void)socket_ctx;
    atomic_fetch_add(&gw->connections,
                     code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

/* The global connection limit, lowered to what RLIMIT_NOFILE allows. */
static int
gw_connection_limit(int wanted)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return wanted;
    if ((rlim_t)wanted + GW_FD_RESERVE > rl.rlim_cur) {
        int fit = rl.rlim_cur > 2 * GW_FD_RESERVE
                      ? (int)(rl.rlim_cur - GW_FD_RESERVE)
                      : (int)(rl.rlim_cur / 2);

        CV_LOG(CV_LOG_WARN, "GW-CONN-LIMIT",
               "open file limit is %llu: at most %d connections instead of "
               "%d",
               (unsigned long long)rl.rlim_cur, fit, wanted);
        return fit;
    }
    return wanted;
}

/* One HTTP thread per CPU. The threads never block (a request waiting
 * for its service is suspended), so more threads than CPUs only add
 * wake-ups: on 2 CPUs, 4 threads cost 5.9 voluntary context switches per
 * acknowledgement against 4.6 with 2 (bench/profile_ack.sh, issue 12). */
static int
gw_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int
gw_server_start(const gw_config *cfg, gw_server **out, cv_error *err)
{
    gw_server *gw;
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;

    *out = NULL;
    if ((gw = calloc(1, sizeof(*gw))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    gw->cfg = *cfg;
    if (gw->cfg.threads <= 0)
        gw->cfg.threads = gw_default_threads();
    if (gw->cfg.rpc_timeout_ms <= 0)
        gw->cfg.rpc_timeout_ms = 10000;
    if (gw->cfg.max_connections <= 0)
        gw->cfg.max_connections = GW_DEFAULT_MAX_CONNECTIONS;
    gw->cfg.max_connections = gw_connection_limit(gw->cfg.max_connections);
    if (gw->cfg.per_ip_connections <= 0)
        gw->cfg.per_ip_connections = GW_DEFAULT_PER_IP;
    if (gw->cfg.per_ip_connections > gw->cfg.max_connections)
        gw->cfg.per_ip_connections = gw->cfg.max_connections;
    if (gw->cfg.idle_timeout_s <= 0)
        gw->cfg.idle_timeout_s = GW_DEFAULT_IDLE_TIMEOUT_S;
    if (gw->cfg.max_in_flight <= 0)
        gw->cfg.max_in_flight = GW_DEFAULT_MAX_IN_FLIGHT;
    gw->listen_fd = MHD_INVALID_SOCKET;
    pthread_mutex_init(&gw->mtx, NULL);
    pthread_cond_init(&gw->drained, NULL);
    pthread_rwlock_init(&gw->clients_lock, NULL);
    if (cfg->token_file != NULL &&
        gw_auth_load(cfg->token_file, &gw->auth, err) != 0)
        goto fail;
    {
        json_t *doc = gw_openapi_document();

        gw->openapi = doc != NULL ? json_dumps(doc, CV_JSON_OUTPUT) : NULL;
        json_decref(doc);
        if (gw->openapi == NULL) {
            cv_error_set(err, CV_INTERNAL, "out of memory");
            goto fail;
        }
        gw->openapi_len = strlen(gw->openapi);
    }
    for (int i = 0; i < GW_SVC_COUNT; i++)
        if (cv_rpc_client_open(cfg->service_url[i], &gw->clients[i], err) != 0)
            goto fail;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        cv_error_set(err, CV_INVALID_ARGUMENT,
                     "listen address %s is not an IPv4 address", cfg->host);
        goto fail;
    }
    /* Before the daemon runs: its threads read the list. */
    atomic_store(&gw->self_port, cfg->port);
    if (gw_hosts_init(gw, err) != 0 || gw_cors_init(gw, err) != 0)
        goto fail;
    gw->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        (uint16_t)cfg->port, NULL, NULL, gw_access_cb, gw,
        MHD_OPTION_EXTERNAL_LOGGER, gw_mhd_log_cb, gw,
        MHD_OPTION_UNESCAPE_CALLBACK, gw_unescape_none_cb, gw,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)gw->cfg.threads,
        MHD_OPTION_NOTIFY_COMPLETED, gw_completed_cb, gw,
        MHD_OPTION_NOTIFY_CONNECTION, gw_connection_cb, gw,
        /* An inactivity timeout: a connection silent this long without a
         * complete request (new, half-sent or keep-alive) is closed.
         * Suspended connections are exempt (the RPC timeout bounds them). */
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)gw->cfg.idle_timeout_s,
        /* Split evenly over the pool's threads by MHD. */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)gw->cfg.max_connections,
        /* Counted over all threads: one client cannot fill the global
         * limit, and what it opens beyond its share is closed at once. */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)gw->cfg.per_ip_connections, MHD_OPTION_END);
    if (gw->daemon == NULL) {
        cv_error_set(err, CV_UNAVAILABLE, "cannot listen on %s:%d", cfg->host,
                     cfg->port);
        goto fail;
    }
    info = MHD_get_daemon_info(gw->daemon, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = info != NULL ? info->port : cfg->port;
    atomic_store(&gw->self_port, gw->port);
    *out = gw;
    return 0;

fail:
    gw_server_stop(gw);
    return err->code;
}

int
gw_server_port(const gw_server *gw)
{
    return gw->port;
}

/* Waits until no request is in flight or until ms passed; returns the
 * number still in flight. */
static int
gw_wait_drained(gw_server *gw, int ms)
{
    struct timespec until;
    int left;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&gw->mtx);
    while (gw->in_flight > 0)
        if (pthread_cond_timedwait(&gw->drained, &gw->mtx, &until) != 0)
            break;
    left = gw->in_flight;
    pthread_mutex_unlock(&gw->mtx);
    return left;
}

void
gw_server_stop(gw_server *gw)
{
    int left;

    if (gw == NULL)
        return;
    /* 1. No new connections. */
    if (gw->daemon != NULL)
        gw->listen_fd = MHD_quiesce_daemon(gw->daemon);
    /* 2. No new calls: requests still arriving on open connections are
     * answered 503 (stopping) without touching a client. */
    pthread_mutex_lock(&gw->mtx);
    gw->stopping = true;
    pthread_mutex_unlock(&gw->mtx);
    /* 3. Calls under way get a short grace to finish normally. */
    gw_wait_drained(gw, GW_STOP_GRACE_MS);
    /* 4. Close the clients. The write lock waits for any call being
     * started; NNG then completes the pending ones as cancelled, and
     * their callbacks resume the connections (MHD still runs). */
    pthread_rwlock_wrlock(&gw->clients_lock);
    for (int i = 0; i < GW_SVC_COUNT; i++) {
        cv_rpc_client_close(gw->clients[i]);
        gw->clients[i] = NULL;
    }
    pthread_rwlock_unlock(&gw->clients_lock);
    /* 5. Every callback has resumed its connection before MHD stops: MHD
     * must never be stopped with a suspended connection. */
    if ((left = gw_wait_drained(gw, GW_STOP_CANCEL_MS)) > 0)
        CV_LOG(CV_LOG_ERROR, "GW-STOP",
               "%d requests still wait for a service after their calls "
               "were cancelled",
               left);
    if (gw->daemon != NULL && left == 0)
        MHD_stop_daemon(gw->daemon);
    if (gw->listen_fd != MHD_INVALID_SOCKET)
        close(gw->listen_fd);
    if (left > 0)
        return; /* MHD threads may still run: leak rather than free */
    pthread_rwlock_destroy(&gw->clients_lock);
    pthread_mutex_destroy(&gw->mtx);
    pthread_cond_destroy(&gw->drained);
    gw_auth_free(gw->auth);
    free(gw->openapi);
    free(gw->hosts);
    free(gw->cors);
    free(gw);
}
