/*
 * cv_rpc_client.c -- async NNG REQ client for the CAVRA RPCs.
 *
 * Design notes:
 *  - Each call owns one nng_ctx and one nng_aio (state SEND -> RECV), so
 *    calls never share state and need no lock.
 *  - The callback contract: cv_rpc_call_start either fails (no callback)
 *    or the user callback runs exactly once; the call's ctx is closed and
 *    its aio reaped (nng_aio_reap: an aio cannot free itself from its own
 *    callback).
 */
#include "cv_rpc.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_id.h"
#include "cv_principal.h"
#include "cv_tls.h"
#include "cv_time.h"

/* For this long after opening, a client has not had time to connect:
 * calls queue until the service answers. Later, a call made while no
 * service is connected fails at once as UNAVAILABLE (503) instead of
 * waiting out its whole timeout; NNG keeps redialing, so the next call
 * after the service is back goes through. */
#define CV_RPC_CONNECT_GRACE_US (2 * 1000000LL)

/* The identity this process signs with: loaded once from
 * $CAVRA_RPC_KEY_FILE, or set by cv_rpc_set_identity. */
static pthread_mutex_t cv_rpc_identity_mtx = PTHREAD_MUTEX_INITIALIZER;
static const cv_identity *cv_rpc_identity;
static cv_identity *cv_rpc_identity_owned;
static bool cv_rpc_identity_tried;

void
cv_rpc_set_identity(const cv_identity *id)
{
    pthread_mutex_lock(&cv_rpc_identity_mtx);
    cv_rpc_identity = id;
    cv_rpc_identity_tried = true;
    pthread_mutex_unlock(&cv_rpc_identity_mtx);
}

/* Loads $CAVRA_RPC_KEY_FILE the first time; a bad key file is an error
 * every time (a caller must not silently fall back to unsigned). */
static int
cv_rpc_identity_init(cv_error *err)
{
    const char *path;
    int rv = 0;

    pthread_mutex_lock(&cv_rpc_identity_mtx);
    if (!cv_rpc_identity_tried) {
        path = getenv("CAVRA_RPC_KEY_FILE");
        if (path != NULL && path[0] != '\0') {
            rv = cv_identity_load(path, &cv_rpc_identity_owned, err);
            cv_rpc_identity = cv_rpc_identity_owned;
        }
        cv_rpc_identity_tried = rv == 0;
    }
    pthread_mutex_unlock(&cv_rpc_identity_mtx);
    return rv;
}

const cv_identity *
cv_rpc_current_identity(void)
{
    const cv_identity *id;

    pthread_mutex_lock(&cv_rpc_identity_mtx);
    id = cv_rpc_identity;
    pthread_mutex_unlock(&cv_rpc_identity_mtx);
    return id;
}

struct cv_rpc_client {
    nng_socket sock;
    atomic_int pipes;           /* connected service pipes */
    atomic_bool ever_connected; /* a service pipe has been up at least once */
    int64_t opened_us;          /* when the client was opened */
    /* Redial watchdog (see cv_rpc_client_redial): the dialer, its URL,
     * when the last pipe went away and when we last replaced the dialer. */
    pthread_mutex_t dial_mtx;
    nng_dialer dialer;
    char *url;
    _Atomic int64_t no_pipe_since_us;
    int64_t redialed_us;
    /* Calls in flight: when the last service goes away they are
     * cancelled and answer UNAVAILABLE at once, instead of waiting out
     * their timeout for a service that may never come back (and being
     * resent to its successor, which could store them twice). */
    pthread_mutex_t pend_mtx;
    struct cv_rpc_pending *pending;
};

enum cv_rpc_pending_state {
    CV_RPC_PENDING_SEND,
    CV_RPC_PENDING_RECV,
};

typedef struct cv_rpc_pending {
    enum cv_rpc_pending_state state;
    nng_ctx ctx;
    nng_aio *aio;
    cv_rpc_done_cb cb;
    void *arg;
    struct cv_rpc_client *cli;
    struct cv_rpc_pending *prev, *next; /* the client's in-flight calls */
    bool lost; /* cancelled because the last service pipe went away */
} cv_rpc_pending;

void
cv_rpc_new_request_id(char *out, size_t outlen)
{
    unsigned char raw[8];
    char hex[17];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        uint64_t t = (uint64_t)cv_now_us();
        memcpy(raw, &t, sizeof(raw));
    }
    cv_hex_encode(raw, sizeof(raw), hex);
    snprintf(out, outlen, "req-%s", hex);
}

static void
cv_rpc_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    cv_rpc_client *cli = arg;

    (void)pipe;
    if (ev == NNG_PIPE_EV_ADD_POST)
        atomic_store(&cli->ever_connected, true);
    if (atomic_fetch_add(&cli->pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1) ==
            1 &&
        ev != NNG_PIPE_EV_ADD_POST) {
        atomic_store(&cli->no_pipe_since_us, cv_now_us());
        /* The lock is recursive: a cancelled call may complete inside
         * nng_aio_cancel on this thread. */
        struct cv_rpc_pending *p, *next;

        pthread_mutex_lock(&cli->pend_mtx);
        for (p = cli->pending; p != NULL; p = next) {
            next = p->next; /* p may finish (and unlink) right here */
            p->lost = true;
            nng_aio_cancel(p->aio);
        }
        pthread_mutex_unlock(&cli->pend_mtx);
    }
}

/* Starts a dialer for cli->url (non-blocking: the service may start
 * later); tls+tcp:// gets the deployment CA's settings first. */
static int
cv_rpc_client_dial(cv_rpc_client *cli, nng_dialer *out, cv_error *err)
{
    nng_dialer d;
    int rv;

    if ((rv = nng_dialer_create(&d, cli->sock, cli->url)) != 0)
        return cv_error_set(err, CV_UNAVAILABLE, "cannot dial %s: %s", cli->url,
                            nng_strerror(rv));
    if (cv_tls_url(cli->url) &&
        (rv = cv_tls_setup_dialer(d, cli->url, err)) != 0) {
        nng_dialer_close(d);
        return rv;
    }
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(d);
        return cv_error_set(err, CV_UNAVAILABLE, "cannot dial %s: %s", cli->url,
                            nng_strerror(rv));
    }
    *out = d;
    return 0;
}

int
cv_rpc_client_open(const char *url, cv_rpc_client **out, cv_error *err)
{
    cv_rpc_client *cli;
    int rv;

    *out = NULL;
    if ((rv = cv_rpc_identity_init(err)) != 0)
        return rv;
    if ((cli = calloc(1, sizeof(*cli))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cli->opened_us = cv_now_us();
    if ((rv = nng_req0_open(&cli->sock)) != 0) {
        free(cli);
        return cv_error_set(err, CV_UNAVAILABLE, "cannot open REQ socket: %s",
                            nng_strerror(rv));
    }
    nng_socket_set_size(cli->sock, NNG_OPT_RECVMAXSZ, CV_RPC_REPLY_MAX);
    /* No timed resends: REQ would send a slow request again and the
     * service would store its record twice. */
    nng_socket_set_ms(cli->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(cli->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(cli->sock, NNG_OPT_RECONNMAXT, 1000);
    nng_pipe_notify(cli->sock, NNG_PIPE_EV_ADD_POST, cv_rpc_pipe_cb, cli);
    nng_pipe_notify(cli->sock, NNG_PIPE_EV_REM_POST, cv_rpc_pipe_cb, cli);
    pthread_mutex_init(&cli->dial_mtx, NULL);
    {
        pthread_mutexattr_t attr;

        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&cli->pend_mtx, &attr);
        pthread_mutexattr_destroy(&attr);
    }
    atomic_store(&cli->no_pipe_since_us, cli->opened_us);
    if ((cli->url = strdup(url)) == NULL)
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
    else
        rv = cv_rpc_client_dial(cli, &cli->dialer, err);
    if (rv != 0) {
        nng_close(cli->sock);
        pthread_mutex_destroy(&cli->dial_mtx);
        pthread_mutex_destroy(&cli->pend_mtx);
        free(cli->url);
        free(cli);
        return rv;
    }
    *out = cli;
    return 0;
}

int
cv_rpc_client_wait_connected(cv_rpc_client *cli, int ms, cv_error *err)
{
    /* Polling is plenty for a tool's one-off wait; nng_msleep is 10 ms. */
    for (int waited = 0; atomic_load(&cli->pipes) == 0; waited += 10) {
        if (waited >= ms)
            return cv_error_set(err, CV_UNAVAILABLE,
                                "no service accepted a connection within "
                                "%d ms (is it running?)",
                                ms);
        nng_msleep(10);
    }
    return 0;
}

/*
 * The redial watchdog. NNG's dialer normally reconnects by itself, but we
 * have seen one stop redialing a restarted service for good (libnng
 * 1.5.2, ipc), which left the gateway answering 503 forever. When no
 * service has been connected for CV_RPC_REDIAL_AFTER_US and calls keep
 * coming, replace the dialer (at most once per that interval).
 */
#define CV_RPC_REDIAL_AFTER_US (2 * 1000000LL)

static void
cv_rpc_client_redial(cv_rpc_client *cli)
{
    int64_t now = cv_now_us();
    nng_dialer fresh;

    if (now - atomic_load(&cli->no_pipe_since_us) < CV_RPC_REDIAL_AFTER_US)
        return;
    pthread_mutex_lock(&cli->dial_mtx);
    if (atomic_load(&cli->pipes) == 0 &&
        now - cli->redialed_us >= CV_RPC_REDIAL_AFTER_US) {
        cli->redialed_us = now;
        nng_dialer_close(cli->dialer);
        if (cv_rpc_client_dial(cli, &fresh, NULL) == 0)
            cli->dialer = fresh;
    }
    pthread_mutex_unlock(&cli->dial_mtx);
}

void
cv_rpc_client_close(cv_rpc_client *cli)
{
    if (cli == NULL)
        return;
    nng_close(cli->sock);
    /* nng_close aborts the calls in flight, but their callbacks run on
     * NNG's threads and unlink themselves from cli: wait for them. */
    for (int waited = 0; waited < 10000; waited++) {
        bool empty;

        pthread_mutex_lock(&cli->pend_mtx);
        empty = cli->pending == NULL;
        pthread_mutex_unlock(&cli->pend_mtx);
        if (empty)
            break;
        nng_msleep(1);
    }
    pthread_mutex_destroy(&cli->dial_mtx);
    pthread_mutex_destroy(&cli->pend_mtx);
    free(cli->url);
    free(cli);
}

static void
cv_rpc_pending_finish(cv_rpc_pending *p, cv_rpc_result *res)
{
    cv_rpc_client *cli = p->cli;

    pthread_mutex_lock(&cli->pend_mtx);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        cli->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    pthread_mutex_unlock(&cli->pend_mtx);
    p->cb(p->arg, res);
    nng_ctx_close(p->ctx);
    nng_aio_reap(p->aio);
    free(p);
}

static int
cv_rpc_transport_code(int rv)
{
    switch (rv) {
    case NNG_ETIMEDOUT:
        return CV_DEADLINE_EXCEEDED;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return CV_CANCELLED;
    default:
        return CV_UNAVAILABLE;
    }
}

static void
cv_rpc_pending_cb(void *arg)
{
    cv_rpc_pending *p = arg;
    int rv = nng_aio_result(p->aio);
    cv_rpc_result res;
    nng_msg *msg;

    memset(&res, 0, sizeof(res));
    if (rv != 0) {
        if (p->state == CV_RPC_PENDING_SEND)
            nng_msg_free(nng_aio_get_msg(p->aio));
        res.code = cv_rpc_transport_code(rv);
        if (rv == NNG_ECANCELED && p->lost)
            res.code = CV_UNAVAILABLE; /* the service went away */
        snprintf(res.message, sizeof(res.message), "service %s",
                 res.code == CV_DEADLINE_EXCEEDED ? "did not answer in time"
                                                  : "unavailable");
        cv_rpc_pending_finish(p, &res);
        return;
    }
    switch (p->state) {
    case CV_RPC_PENDING_SEND:
        /* Under the lock, so a pipe loss either sees the receive started
         * (and cancels it) or is seen here: never a receive that waits
         * out its whole timeout for a service that is gone. */
        pthread_mutex_lock(&p->cli->pend_mtx);
        if (p->lost) {
            pthread_mutex_unlock(&p->cli->pend_mtx);
            res.code = CV_UNAVAILABLE;
            snprintf(res.message, sizeof(res.message), "service unavailable");
            cv_rpc_pending_finish(p, &res);
            return;
        }
        p->state = CV_RPC_PENDING_RECV;
        nng_ctx_recv(p->ctx, p->aio);
        pthread_mutex_unlock(&p->cli->pend_mtx);
        return;
    case CV_RPC_PENDING_RECV:
        msg = nng_aio_get_msg(p->aio);
        res.reply =
            cv__rpc_reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
        nng_msg_free(msg);
        if (res.reply == NULL || !protobuf_c_message_check(&res.reply->base)) {
            if (res.reply != NULL)
                cv__rpc_reply__free_unpacked(res.reply, NULL);
            res.reply = NULL;
            res.code = CV_INTERNAL;
            snprintf(res.message, sizeof(res.message),
                     "malformed reply from service");
        } else {
            res.code = res.reply->has_code ? res.reply->code : CV_UNKNOWN;
            snprintf(res.message, sizeof(res.message), "%s",
                     res.reply->message != NULL ? res.reply->message : "");
        }
        cv_rpc_pending_finish(p, &res);
        return;
    default:
        abort();
    }
}

int
cv_rpc_call_start(cv_rpc_client *cli, const Cv__RpcRequest *req, int timeout_ms,
                  cv_rpc_done_cb cb, void *arg, cv_error *err)
{
    const cv_identity *id = cv_rpc_current_identity();
    Cv__RpcRequest signed_req;
    cv_envelope_sig_buf sig;
    cv_rpc_pending *p;
    nng_msg *msg;
    int rv;

    if (id != NULL) {
        /* Sign a shallow copy: the caller's envelope stays untouched. A
         * signed envelope always carries a deadline (services refuse
         * stale ones): the call's own timeout when the caller gave none. */
        signed_req = *req;
        if (!signed_req.has_deadline_unix_ms) {
            signed_req.has_deadline_unix_ms = 1;
            signed_req.deadline_unix_ms =
                cv_now_us() / 1000 + (timeout_ms > 0 ? timeout_ms : 10000);
        }
        if ((rv = cv_envelope_sign(id, &signed_req, &sig, err)) != 0)
            return rv;
        req = &signed_req;
    }
    /* The start-up grace only covers the first connection: a client that
     * was connected and lost its service fails fast from then on. */
    if (atomic_load(&cli->pipes) == 0 &&
        (atomic_load(&cli->ever_connected) ||
         cv_now_us() - cli->opened_us > CV_RPC_CONNECT_GRACE_US)) {
        cv_rpc_client_redial(cli);
        return cv_error_set(err, CV_UNAVAILABLE, "service unavailable");
    }
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    p->cb = cb;
    p->arg = arg;
    if ((rv = nng_aio_alloc(&p->aio, cv_rpc_pending_cb, p)) != 0) {
        free(p);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    if ((rv = nng_ctx_open(&p->ctx, cli->sock)) != 0) {
        nng_aio_free(p->aio);
        free(p);
        return cv_error_set(err, CV_UNAVAILABLE, "cannot open context: %s",
                            nng_strerror(rv));
    }
    if ((rv = nng_msg_alloc(&msg, cv__rpc_request__get_packed_size(req))) !=
        0) {
        nng_ctx_close(p->ctx);
        nng_aio_free(p->aio);
        free(p);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    cv__rpc_request__pack(req, nng_msg_body(msg));
    nng_aio_set_timeout(p->aio, timeout_ms > 0 ? timeout_ms : 10000);
    nng_aio_set_msg(p->aio, msg);
    p->state = CV_RPC_PENDING_SEND;
    p->cli = cli;
    pthread_mutex_lock(&cli->pend_mtx);
    p->next = cli->pending;
    if (p->next != NULL)
        p->next->prev = p;
    cli->pending = p;
    pthread_mutex_unlock(&cli->pend_mtx);
    nng_ctx_send(p->ctx, p->aio);
    return 0;
}

/* ---- blocking convenience call ---- */

typedef struct cv_rpc_waiter {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    int done;
    cv_rpc_result res;
} cv_rpc_waiter;

static void
cv_rpc_waiter_cb(void *arg, cv_rpc_result *res)
{
    cv_rpc_waiter *w = arg;

    pthread_mutex_lock(&w->mtx);
    w->res = *res;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mtx);
}

int
cv_rpc_call(cv_rpc_client *cli, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *reply_desc,
            ProtobufCMessage **reply, const cv_rpc_call_opts *opts,
            cv_error *err)
{
    Cv__RpcRequest env = CV__RPC_REQUEST__INIT;
    cv_rpc_waiter w;
    char rid[32];
    uint8_t *buf;
    size_t len;
    int rv;
    int timeout =
        opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms : 10000;

    *reply = NULL;
    len = protobuf_c_message_get_packed_size(req);
    if ((buf = malloc(len > 0 ? len : 1)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    protobuf_c_message_pack(req, buf);
    if (opts != NULL && opts->request_id != NULL)
        snprintf(rid, sizeof(rid), "%s", opts->request_id);
    else
        cv_rpc_new_request_id(rid, sizeof(rid));
    env.method = (char *)method;
    env.request_id = rid;
    env.has_deadline_unix_ms = 1;
    env.deadline_unix_ms = cv_now_us() / 1000 + timeout;
    env.actor = opts != NULL ? (Cv__Actor *)opts->actor : NULL;
    env.idempotency_key = opts != NULL ? (char *)opts->idempotency_key : NULL;
    env.has_payload = 1;
    env.payload.data = buf;
    env.payload.len = len;

    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mtx, NULL);
    pthread_cond_init(&w.cond, NULL);
    rv = cv_rpc_call_start(cli, &env, timeout, cv_rpc_waiter_cb, &w, err);
    free(buf);
    if (rv != 0)
        goto out;
    pthread_mutex_lock(&w.mtx);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.mtx);
    pthread_mutex_unlock(&w.mtx);

    rv = w.res.code;
    if (rv != CV_OK) {
        cv_error_set(err, rv, "%s", w.res.message);
    } else {
        Cv__RpcReply *r = w.res.reply;

        if (opts != NULL && opts->existing != NULL)
            *opts->existing = r->has_existing && r->existing;
        if (opts != NULL && opts->replayed != NULL)
            *opts->replayed = r->has_replayed && r->replayed;
        *reply = protobuf_c_message_unpack(reply_desc, NULL,
                                           r->has_payload ? r->payload.len : 0,
                                           r->payload.data);
        if (*reply == NULL || !protobuf_c_message_check(*reply)) {
            if (*reply != NULL)
                protobuf_c_message_free_unpacked(*reply, NULL);
            *reply = NULL;
            rv = cv_error_set(err, CV_INTERNAL, "malformed reply payload");
        }
    }
    if (w.res.reply != NULL)
        cv__rpc_reply__free_unpacked(w.res.reply, NULL);
out:
    pthread_mutex_destroy(&w.mtx);
    pthread_cond_destroy(&w.cond);
    return rv;
}
