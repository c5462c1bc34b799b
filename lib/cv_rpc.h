/*
 * cv_rpc.h -- protobuf-c RPC over NNG req/rep: server and client.
 *
 * Wire: the client sends a packed cv.RpcRequest (method, request id,
 * deadline, actor, idempotency key, payload); the server answers with a
 * packed cv.RpcReply (gRPC code number, message, payload). Every unpacked
 * message passes protobuf_c_message_check before use.
 *
 * Server design notes:
 *  - A pool of `contexts` workers, each one nng_ctx + nng_aio + a state
 *    (RECV -> WORK -> SEND -> RECV). The aio callback never blocks: a
 *    received request is queued for the database workers.
 *  - `db_workers` threads each own one database connection. A worker takes
 *    a queued request, runs the handler with its connection, then starts
 *    the send on the request's context.
 *  - Every service answers "<service>.Health" without a handler of its own.
 *  - The server owns each request's transaction: it opens it in the mode
 *    the method registry declares, looks the Idempotency-Key up, runs the
 *    handler, stores the key with the reply and commits, all in one
 *    transaction (cv_db_transact), so the key and the record commit
 *    together or not at all; conflicts are retried, then 503. Handlers
 *    never begin or commit.
 *  - Every non-OK answer is logged once, with method, request id, code
 *    and the internal cause (which never reaches the client).
 *  - cv_rpc_server_stop closes the socket, waits for in-flight work, joins
 *    the workers and frees everything.
 *
 * Client design notes:
 *  - One REQ socket per client; every call opens its own context and aio,
 *    so any number of calls may be in flight from any threads.
 *  - A call has an explicit timeout and is never resent on a timer
 *    (NNG_OPT_REQ_RESENDTIME is infinite): a slow call must not run twice.
 *    A caller that must survive lost replies retries with the same
 *    Idempotency-Key, which replays instead of repeating.
 */
#ifndef CV_RPC_H
#define CV_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_db.h"
#include "cv_error.h"
#include "cv_method.h"
#include "rpc.pb-c.h"

#define CV_RPC_RECV_MAX (1024 * 1024) /* largest request a service takes */
/* Largest reply a client takes: reads (trace, retry plans over the whole
 * store) can be far larger than any request. */
#define CV_RPC_REPLY_MAX (64 * 1024 * 1024)

/* What a handler knows about the call besides its request message. */
typedef struct cv_rpc_ctx {
    const char *method;
    const char *request_id; /* never NULL; "" when unset */
    /* The actor the call is made for: the end user a delegating principal
     * (the gateway) names, else the calling principal itself; NULL only
     * in local sandbox mode (no principals, no token). */
    const Cv__Actor *actor;
    const char *principal;       /* the principal that carried the call, or NULL
                                    when the service runs without principals */
    const char *idempotency_key; /* NULL when not given */
    int64_t deadline_unix_ms;
    cv_db *db;     /* the worker's connection */
    void *service; /* cv_rpc_server_config.service */
    /* Output: set by a handler whose reply is a record that already
     * existed (REST then answers 200, not 201). */
    bool existing;
} cv_rpc_ctx;

/*
 * A handler gets the unpacked, checked request (owned by the server) and
 * runs inside the transaction the server opened (it may run again after a
 * conflict, so it keeps no state between runs). It returns 0 with *reply set to
 * a message it allocated (the server packs it and frees it with
 * protobuf_c_message_free_unpacked(*reply, NULL)), or an error code with err
 * filled (err->msg becomes RpcReply.message).
 */
typedef int (*cv_rpc_handler_fn)(cv_rpc_ctx *call,
                                 const ProtobufCMessage *request,
                                 ProtobufCMessage **reply, cv_error *err);

/* A service binds a handler to a method of the registry (cv_method.h) by
 * name; message types, roles and the transaction mode come from there. */
typedef struct cv_rpc_method {
    const char *name; /* "ack.Acknowledge" */
    cv_rpc_handler_fn handler;
} cv_rpc_method;

struct cv_principals;

typedef struct cv_rpc_server_config {
    const char *service_name; /* "ack": Health is "ack.Health" */
    const char *url;          /* e.g. "tcp://127.0.0.1:7101" */
    const char *database_url;
    /* A streaming standby for the methods whose registry mode is a read
     * (CV_TX_READ, CV_TX_READ_SNAPSHOT), or NULL: everything on the
     * primary. Each read waits until the standby has replayed what the
     * primary had when the read arrived (every answered write is
     * visible), up to $CAVRA_READ_MAX_LAG_MS, else runs on the primary. */
    const char *read_database_url;
    int contexts;   /* default 64 (requests in flight, so groups can form) */
    int db_workers; /* default 4 */
    const cv_rpc_method *methods;
    size_t n_methods;
    const cv_db_statement *statements; /* the service's SQL */
    size_t n_statements;
    void *service; /* passed to handlers */
    /* Who may call (signed envelopes, roles from the registry). NULL: no
     * authentication at all (tests of the RPC layer; cv_service_run only
     * allows it with an explicit opt-in). Must outlive the server. */
    const struct cv_principals *principals;
} cv_rpc_server_config;

typedef struct cv_rpc_server cv_rpc_server;

/* Group commit: a worker takes up to $CAVRA_RPC_GROUP_MAX requests that
 * arrived together and runs the READ COMMITTED writes among them in one
 * transaction, a SAVEPOINT each, answered after its COMMIT (1 = one
 * transaction per request, as before). */
#define CV_RPC_GROUP_MAX_ENV     "CAVRA_RPC_GROUP_MAX"
#define CV_RPC_GROUP_MAX_DEFAULT 32
/* Each request's SAVEPOINT is a subtransaction: past 64 in one
 * transaction PostgreSQL's per-backend subtransaction cache overflows and
 * every other session's snapshots get slower. */
#define CV_RPC_GROUP_MAX_LIMIT 64
/* Two groups that lock the same rows in opposite orders deadlock, and
 * PostgreSQL only notices after deadlock_timeout (1 s, superuser-only).
 * Inside a group a lock wait gives up after this many milliseconds
 * instead; the waiting request rolls back to its savepoint and runs again
 * alone after the group commits (0: wait as long as it takes). */
#define CV_RPC_GROUP_LOCK_TIMEOUT_ENV     "CAVRA_RPC_GROUP_LOCK_TIMEOUT_MS"
#define CV_RPC_GROUP_LOCK_TIMEOUT_DEFAULT 50

/* Starts listening and serving. Returns 0 and *out, or an error (for
 * instance CV_UNAVAILABLE when the URL cannot be bound, CV_INTERNAL when a
 * method is not in the registry). The database may be down at start:
 * workers connect on demand. */
int cv_rpc_server_start(const cv_rpc_server_config *cfg, cv_rpc_server **out,
                        cv_error *err);

/* Stops and frees the server; NULL-safe. */
void cv_rpc_server_stop(cv_rpc_server *srv);

/* Looks a method up in a table; NULL when absent. */
const cv_rpc_method *cv_rpc_find_method(const cv_rpc_method *methods, size_t n,
                                        const char *name);

/* ---- client ---- */

struct cv_identity;

/* Sets the key every client of this process signs its envelopes with
 * (NULL: unsigned). Without a call, the first cv_rpc_client_open loads
 * $CAVRA_RPC_KEY_FILE when it is set. The caller keeps id alive while
 * clients run. */
void cv_rpc_set_identity(const struct cv_identity *id);

/* The identity in use, or NULL. */
const struct cv_identity *cv_rpc_current_identity(void);

typedef struct cv_rpc_client cv_rpc_client;

/* Opens a REQ socket dialing url (non-blocking dial: the service may start
 * later). url may list replicas, comma-separated ("ipc:///a,ipc:///b"):
 * one socket each, calls go to a connected one (see cv_rpc_client.c).
 * Returns 0 and *out, or an error (also when $CAVRA_RPC_KEY_FILE names a
 * key that cannot be loaded). */
int cv_rpc_client_open(const char *url, cv_rpc_client **out, cv_error *err);

/* Waits up to ms for the client to connect to a service. Returns 0, or
 * CV_UNAVAILABLE when none accepted in time (for tools that want to say
 * "no service there" at once rather than after their call's timeout). */
int cv_rpc_client_wait_connected(cv_rpc_client *cli, int ms, cv_error *err);

/* Closes the socket (pending calls complete with CV_CANCELLED) and frees
 * the client. NULL-safe. */
void cv_rpc_client_close(cv_rpc_client *cli);

/*
 * The outcome of a call. On transport failure code is CV_UNAVAILABLE or
 * CV_DEADLINE_EXCEEDED and reply is NULL. Otherwise reply is the service's
 * answer (code copied from it). The callback owns `reply` and frees it
 * with cv__rpc_reply__free_unpacked(reply, NULL).
 */
typedef struct cv_rpc_result {
    int code;
    char message[CV_ERROR_MSG_MAX];
    Cv__RpcReply *reply;
} cv_rpc_result;

typedef void (*cv_rpc_done_cb)(void *arg, cv_rpc_result *res);

/*
 * Starts an asynchronous call. req->payload must already hold the packed
 * request. Returns 0 when started: cb then runs exactly once, on an NNG
 * thread (it must not block). Returns an error when the call could not be
 * started: cb never runs.
 */
int cv_rpc_call_start(cv_rpc_client *cli, const Cv__RpcRequest *req,
                      int timeout_ms, cv_rpc_done_cb cb, void *arg,
                      cv_error *err);

/* Options of the blocking convenience call (tests, tools). */
typedef struct cv_rpc_call_opts {
    const char *request_id;      /* NULL: generated */
    const Cv__Actor *actor;      /* NULL: none */
    const char *idempotency_key; /* NULL: none */
    int timeout_ms;              /* 0: 10000 */
    /* Outputs, when not NULL: the reply's RpcReply.existing / .replayed
     * flags (a record that already existed; an idempotent replay). */
    bool *existing;
    bool *replayed;
} cv_rpc_call_opts;

/*
 * Blocking call for tests and tools: packs req, waits for the reply and
 * unpacks it as reply_desc. Returns 0 with *reply set (free with
 * protobuf_c_message_free_unpacked(*reply, NULL)), or the service's or
 * transport's code with err->msg set from the reply message.
 */
int cv_rpc_call(cv_rpc_client *cli, const char *method,
                const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc,
                ProtobufCMessage **reply, const cv_rpc_call_opts *opts,
                cv_error *err);

/* Writes a fresh random request id ("req-" + 16 hex) into out (>= 24). */
void cv_rpc_new_request_id(char *out, size_t outlen);

#endif
