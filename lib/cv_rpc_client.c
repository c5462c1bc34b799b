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
 *  - Replicas: the URL may list several addresses, comma-separated (one
 *    per replica of the service). Each gets its own REQ socket and dialer
 *    (a "link"); a call goes to the connected link with the fewest calls
 *    in flight. One socket per replica rather than one socket dialing all
 *    of them, because (1) a session (below) belongs to one service
 *    process, so the client must know where a request goes, and (2) when
 *    a replica dies, NNG's REQ would resend the calls in flight on it to
 *    another pipe, and the dead one may already have committed them: with
 *    a socket per replica those calls fail as UNAVAILABLE instead (the
 *    caller retries with its Idempotency-Key), and new calls go to the
 *    living replicas.
 *  - Sessions (docs/rpc.md): with an identity, the first call on a link
 *    is signed (Ed25519) and offers a session; once the service granted
 *    one, calls on that link carry an HMAC-SHA256 under the session key
 *    instead of a signature. A session is dropped with its pipe, before
 *    it expires, or when the service no longer knows it (the call is then
 *    sent once more, signed). CAVRA_RPC_SESSIONS=0 signs every call.
 */
#include "cv_rpc.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <openssl/crypto.h>
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

#define CV_RPC_MAX_LINKS 16

/* An unanswered offer is given up after this long (another may go). */
#define CV_RPC_OFFER_WAIT_US (5 * 1000000LL)

/* One replica: its own REQ socket, dialer, session. */
typedef struct cv_rpc_link {
    struct cv_rpc_client *cli;
    nng_socket sock;
    atomic_int pipes;           /* connected service pipes (0 or 1) */
    atomic_bool ever_connected; /* a service pipe has been up at least once */
    atomic_int in_flight;       /* calls started on this link, unanswered */
    /* Redial watchdog (see cv_rpc_link_redial): the dialer, its URL,
     * when the last pipe went away and when we last replaced the dialer. */
    pthread_mutex_t dial_mtx;
    nng_dialer dialer;
    char *url;
    _Atomic int64_t no_pipe_since_us;
    int64_t redialed_us;
    /* The session with the service process behind this link. */
    pthread_mutex_t sess_mtx;
    bool has_session;
    uint8_t session_id[CV_SESSION_ID_LEN];
    uint8_t session_key[CV_SESSION_KEY_LEN];
    int64_t session_until_us; /* stop using it then */
    uint32_t session_pipe;    /* the pipe it was granted on */
    bool offering;            /* an offer is in flight */
    int64_t offer_since_us;
    int64_t no_offer_until_us; /* the service granted none: sign a while */
} cv_rpc_link;

struct cv_rpc_client {
    cv_rpc_link links[CV_RPC_MAX_LINKS];
    int n_links;
    atomic_uint next_link; /* round robin among equally busy links */
    int64_t opened_us;     /* when the client was opened */
    bool sessions;         /* CAVRA_RPC_SESSIONS is not 0 */
    /* Calls in flight: when a link's service goes away its calls are
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
    cv_rpc_link *link;
    struct cv_rpc_pending *prev, *next; /* the client's in-flight calls */
    bool lost; /* cancelled because the link's service pipe went away */
    bool has_offer;
    cv_session_offer offer;
    /* A session-authenticated call keeps its envelope: when the service
     * no longer knows the session, it is sent once more, signed. */
    nng_msg *resend;
    uint8_t session_id[CV_SESSION_ID_LEN]; /* what the envelope names */
    const cv_identity *id;
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

/* Forgets the link's session (when granted on pipe, or any when pipe is
 * 0). */
static void
cv_rpc_link_drop_session(cv_rpc_link *l, uint32_t pipe)
{
    pthread_mutex_lock(&l->sess_mtx);
    if (l->has_session && (pipe == 0 || l->session_pipe == pipe)) {
        l->has_session = false;
        OPENSSL_cleanse(l->session_key, sizeof(l->session_key));
    }
    pthread_mutex_unlock(&l->sess_mtx);
}

static void
cv_rpc_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    cv_rpc_link *l = arg;
    cv_rpc_client *cli = l->cli;

    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_store(&l->ever_connected, true);
        atomic_fetch_add(&l->pipes, 1);
        return;
    }
    /* A session belongs to the service process behind its pipe. */
    cv_rpc_link_drop_session(l, (uint32_t)nng_pipe_id(pipe));
    if (atomic_fetch_sub(&l->pipes, 1) == 1) {
        atomic_store(&l->no_pipe_since_us, cv_now_us());
        /* The lock is recursive: a cancelled call may complete inside
         * nng_aio_cancel on this thread. */
        struct cv_rpc_pending *p, *next;

        pthread_mutex_lock(&cli->pend_mtx);
        for (p = cli->pending; p != NULL; p = next) {
            next = p->next; /* p may finish (and unlink) right here */
            if (p->link != l)
                continue;
            p->lost = true;
            nng_aio_cancel(p->aio);
        }
        pthread_mutex_unlock(&cli->pend_mtx);
    }
}

/* Starts a dialer for l->url (non-blocking: the service may start
 * later); tls+tcp:// gets the deployment CA's settings first. */
static int
cv_rpc_link_dial(cv_rpc_link *l, nng_dialer *out, cv_error *err)
{
    nng_dialer d;
    int rv;

    if ((rv = nng_dialer_create(&d, l->sock, l->url)) != 0)
        return cv_error_set(err, CV_UNAVAILABLE, "cannot dial %s: %s", l->url,
                            nng_strerror(rv));
    if (cv_tls_url(l->url) && (rv = cv_tls_setup_dialer(d, l->url, err)) != 0) {
        nng_dialer_close(d);
        return rv;
    }
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(d);
        return cv_error_set(err, CV_UNAVAILABLE, "cannot dial %s: %s", l->url,
                            nng_strerror(rv));
    }
    *out = d;
    return 0;
}

/* Opens link l for url (NUL-terminated copy made here). */
static int
cv_rpc_link_open(cv_rpc_client *cli, cv_rpc_link *l, const char *url,
                 size_t url_len, cv_error *err)
{
    int rv;

    l->cli = cli;
    if ((l->url = strndup(url, url_len)) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    if ((rv = nng_req0_open(&l->sock)) != 0) {
        free(l->url);
        return cv_error_set(err, CV_UNAVAILABLE, "cannot open REQ socket: %s",
                            nng_strerror(rv));
    }
    nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, CV_RPC_REPLY_MAX);
    /* No timed resends: REQ would send a slow request again and the
     * service would store its record twice. */
    nng_socket_set_ms(l->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, 1000);
    nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST, cv_rpc_pipe_cb, l);
    nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, cv_rpc_pipe_cb, l);
    pthread_mutex_init(&l->dial_mtx, NULL);
    pthread_mutex_init(&l->sess_mtx, NULL);
    atomic_store(&l->no_pipe_since_us, cli->opened_us);
    if ((rv = cv_rpc_link_dial(l, &l->dialer, err)) != 0) {
        nng_close(l->sock);
        pthread_mutex_destroy(&l->dial_mtx);
        pthread_mutex_destroy(&l->sess_mtx);
        free(l->url);
        return rv;
    }
    return 0;
}

static void
cv_rpc_link_fini(cv_rpc_link *l)
{
    pthread_mutex_destroy(&l->dial_mtx);
    pthread_mutex_destroy(&l->sess_mtx);
    OPENSSL_cleanse(l->session_key, sizeof(l->session_key));
    free(l->url);
}

int
cv_rpc_client_open(const char *url, cv_rpc_client **out, cv_error *err)
{
    cv_rpc_client *cli;
    const char *p, *sessions = getenv("CAVRA_RPC_SESSIONS");
    int rv = 0;

    *out = NULL;
    if ((rv = cv_rpc_identity_init(err)) != 0)
        return rv;
    if ((cli = calloc(1, sizeof(*cli))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    cli->opened_us = cv_now_us();
    cli->sessions = sessions == NULL || strcmp(sessions, "0") != 0;
    {
        pthread_mutexattr_t attr;

        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&cli->pend_mtx, &attr);
        pthread_mutexattr_destroy(&attr);
    }
    /* "url[,url...]": one link per replica; blanks around commas go. */
    for (p = url; rv == 0 && *p != '\0';) {
        size_t n = strcspn(p, ",");
        const char *q = p, *e = p + n;

        while (q < e && (*q == ' ' || *q == '\t'))
            q++;
        while (e > q && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > q) {
            if (cli->n_links == CV_RPC_MAX_LINKS)
                rv = cv_error_set(err, CV_INVALID_ARGUMENT,
                                  "at most %d service URLs", CV_RPC_MAX_LINKS);
            else if ((rv = cv_rpc_link_open(cli, &cli->links[cli->n_links], q,
                                            (size_t)(e - q), err)) == 0)
                cli->n_links++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (rv == 0 && cli->n_links == 0)
        rv = cv_error_set(err, CV_INVALID_ARGUMENT, "no service URL given");
    if (rv != 0) {
        for (int i = 0; i < cli->n_links; i++) {
            nng_close(cli->links[i].sock);
            cv_rpc_link_fini(&cli->links[i]);
        }
        pthread_mutex_destroy(&cli->pend_mtx);
        free(cli);
        return rv;
    }
    *out = cli;
    return 0;
}

/* Connected service pipes over every link. */
static int
cv_rpc_client_pipes(cv_rpc_client *cli)
{
    int n = 0;

    for (int i = 0; i < cli->n_links; i++)
        n += atomic_load(&cli->links[i].pipes);
    return n;
}

int
cv_rpc_client_wait_connected(cv_rpc_client *cli, int ms, cv_error *err)
{
    /* Polling is plenty for a tool's one-off wait; nng_msleep is 10 ms. */
    for (int waited = 0; cv_rpc_client_pipes(cli) == 0; waited += 10) {
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
 * 1.5.2, ipc), which left the gateway answering 503 forever. When a
 * link's service has been gone for CV_RPC_REDIAL_AFTER_US and calls keep
 * coming, replace its dialer (at most once per that interval).
 */
#define CV_RPC_REDIAL_AFTER_US (2 * 1000000LL)

static void
cv_rpc_link_redial(cv_rpc_link *l, int64_t now)
{
    nng_dialer fresh;

    if (atomic_load(&l->pipes) != 0 ||
        now - atomic_load(&l->no_pipe_since_us) < CV_RPC_REDIAL_AFTER_US)
        return;
    pthread_mutex_lock(&l->dial_mtx);
    if (atomic_load(&l->pipes) == 0 &&
        now - l->redialed_us >= CV_RPC_REDIAL_AFTER_US) {
        l->redialed_us = now;
        nng_dialer_close(l->dialer);
        if (cv_rpc_link_dial(l, &fresh, NULL) == 0)
            l->dialer = fresh;
    }
    pthread_mutex_unlock(&l->dial_mtx);
}

void
cv_rpc_client_close(cv_rpc_client *cli)
{
    if (cli == NULL)
        return;
    for (int i = 0; i < cli->n_links; i++)
        nng_close(cli->links[i].sock);
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
    for (int i = 0; i < cli->n_links; i++)
        cv_rpc_link_fini(&cli->links[i]);
    pthread_mutex_destroy(&cli->pend_mtx);
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
    atomic_fetch_sub(&p->link->in_flight, 1);
    if (p->has_offer) {
        /* Unanswered (or refused): another call may offer. */
        pthread_mutex_lock(&p->link->sess_mtx);
        p->link->offering = false;
        pthread_mutex_unlock(&p->link->sess_mtx);
        cv_session_offer_free(&p->offer);
    }
    if (p->resend != NULL)
        nng_msg_free(p->resend);
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

/* Takes the session the service granted for p's offer (reply msg came on
 * its pipe). An unusable answer only means no session. */
static void
cv_rpc_take_session(cv_rpc_pending *p, const Cv__RpcReply *r, nng_msg *msg)
{
    cv_rpc_link *l = p->link;
    uint8_t key[CV_SESSION_KEY_LEN];
    int64_t now = cv_now_us();

    pthread_mutex_lock(&l->sess_mtx);
    l->offering = false;
    if (!r->has_session_id || !r->has_session_pub ||
        cv_session_accept(&p->offer, cv_identity_key_id(p->id),
                          r->session_id.data, r->session_id.len,
                          r->session_pub.data, r->session_pub.len, key,
                          NULL) != 0) {
        /* A service without sessions (or with its store full): keep
         * signing for a while before offering again. */
        l->no_offer_until_us = now + 60 * 1000000LL;
    } else {
        memcpy(l->session_id, r->session_id.data, CV_SESSION_ID_LEN);
        memcpy(l->session_key, key, sizeof(key));
        OPENSSL_cleanse(key, sizeof(key));
        l->session_pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
        l->session_until_us = now + CV_SESSION_CLIENT_TTL_MS * 1000LL;
        l->has_session = true;
    }
    pthread_mutex_unlock(&l->sess_mtx);
    p->has_offer = false;
    cv_session_offer_free(&p->offer);
}

/* Signs a session-authenticated envelope the service did not know the
 * session of, and sends it once more on the same context. Returns 0 when
 * sent. */
static int
cv_rpc_resend_signed(cv_rpc_pending *p)
{
    Cv__RpcRequest *env, copy;
    cv_envelope_sig_buf sig;
    nng_msg *msg = p->resend;
    int rv = -1;

    p->resend = NULL;
    env = cv__rpc_request__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
    nng_msg_free(msg);
    if (env == NULL)
        return -1;
    /* Sign a shallow copy: the unpacked strings stay env's to free. */
    copy = *env;
    if (cv_envelope_sign(p->id, &copy, &sig, NULL) == 0 &&
        nng_msg_alloc(&msg, cv__rpc_request__get_packed_size(&copy)) == 0) {
        cv__rpc_request__pack(&copy, nng_msg_body(msg));
        rv = 0;
    }
    cv__rpc_request__free_unpacked(env, NULL);
    if (rv != 0)
        return rv;
    pthread_mutex_lock(&p->cli->pend_mtx);
    if (p->lost) {
        pthread_mutex_unlock(&p->cli->pend_mtx);
        nng_msg_free(msg);
        return -1;
    }
    p->state = CV_RPC_PENDING_SEND;
    nng_aio_set_msg(p->aio, msg);
    nng_ctx_send(p->ctx, p->aio);
    pthread_mutex_unlock(&p->cli->pend_mtx);
    return 0;
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
        if (res.reply == NULL || !protobuf_c_message_check(&res.reply->base)) {
            nng_msg_free(msg);
            if (res.reply != NULL)
                cv__rpc_reply__free_unpacked(res.reply, NULL);
            res.reply = NULL;
            res.code = CV_INTERNAL;
            snprintf(res.message, sizeof(res.message),
                     "malformed reply from service");
            cv_rpc_pending_finish(p, &res);
            return;
        }
        if (p->has_offer)
            cv_rpc_take_session(p, res.reply, msg);
        if (res.reply->has_session_unknown && res.reply->session_unknown &&
            p->resend != NULL) {
            /* The service process no longer holds our session (expired,
             * evicted): nothing was done; sign and send again. */
            cv_rpc_link_drop_session(p->link, 0);
            nng_msg_free(msg);
            cv__rpc_reply__free_unpacked(res.reply, NULL);
            res.reply = NULL;
            if (cv_rpc_resend_signed(p) == 0)
                return;
            res.code = CV_UNAVAILABLE;
            snprintf(res.message, sizeof(res.message), "service unavailable");
            cv_rpc_pending_finish(p, &res);
            return;
        }
        nng_msg_free(msg);
        res.code = res.reply->has_code ? res.reply->code : CV_UNKNOWN;
        snprintf(res.message, sizeof(res.message), "%s",
                 res.reply->message != NULL ? res.reply->message : "");
        cv_rpc_pending_finish(p, &res);
        return;
    default:
        abort();
    }
}

/* Picks the link for a call: the connected one with the fewest calls in
 * flight (round robin among ties); NULL when none is connected. */
static cv_rpc_link *
cv_rpc_pick_link(cv_rpc_client *cli)
{
    unsigned int start = atomic_fetch_add(&cli->next_link, 1);
    cv_rpc_link *best = NULL;
    int64_t now = cv_now_us();

    for (int k = 0; k < cli->n_links; k++) {
        cv_rpc_link *l =
            &cli->links[(start + (unsigned int)k) % (unsigned int)cli->n_links];

        if (atomic_load(&l->pipes) == 0) {
            cv_rpc_link_redial(l, now);
            continue;
        }
        if (best == NULL ||
            atomic_load(&l->in_flight) < atomic_load(&best->in_flight))
            best = l;
    }
    return best;
}

/*
 * Authenticates *copy (a shallow copy of the caller's envelope) for link
 * l: with the link's session when it has a live one (a MAC), else with a
 * signature, carrying an offer when sessions are on and no other offer is
 * in flight on the link. What copy points at lives in sig and p.
 */
static int
cv_rpc_authenticate(cv_rpc_client *cli, cv_rpc_link *l, const cv_identity *id,
                    Cv__RpcRequest *copy, cv_envelope_sig_buf *sig,
                    cv_rpc_pending *p, cv_error *err)
{
    uint8_t session_id[CV_SESSION_ID_LEN], key[CV_SESSION_KEY_LEN];
    bool use_session = false, offer = false;
    int64_t now = cv_now_us();
    int rv;

    if (cli->sessions) {
        pthread_mutex_lock(&l->sess_mtx);
        if (l->has_session && now >= l->session_until_us)
            l->has_session = false;
        if (l->has_session) {
            use_session = true;
            memcpy(session_id, l->session_id, sizeof(session_id));
            memcpy(key, l->session_key, sizeof(key));
        } else if ((!l->offering ||
                    now - l->offer_since_us > CV_RPC_OFFER_WAIT_US) &&
                   now >= l->no_offer_until_us) {
            offer = true;
            l->offering = true;
            l->offer_since_us = now;
        }
        pthread_mutex_unlock(&l->sess_mtx);
    }
    if (use_session) {
        /* The envelope points at p->session_id until it is packed. */
        memcpy(p->session_id, session_id, sizeof(session_id));
        rv = cv_envelope_mac(cv_identity_key_id(id), key, p->session_id, copy,
                             sig, err);
        OPENSSL_cleanse(key, sizeof(key));
        return rv;
    }
    if (offer) {
        if (cv_session_offer_new(&p->offer, NULL) == 0) {
            p->has_offer = true;
            copy->has_session_offer = 1;
            copy->session_offer.data = p->offer.pub;
            copy->session_offer.len = sizeof(p->offer.pub);
        } else {
            pthread_mutex_lock(&l->sess_mtx);
            l->offering = false;
            pthread_mutex_unlock(&l->sess_mtx);
        }
    }
    return cv_envelope_sign(id, copy, sig, err);
}

int
cv_rpc_call_start(cv_rpc_client *cli, const Cv__RpcRequest *req, int timeout_ms,
                  cv_rpc_done_cb cb, void *arg, cv_error *err)
{
    const cv_identity *id = cv_rpc_current_identity();
    Cv__RpcRequest copy;
    cv_envelope_sig_buf sig;
    cv_rpc_pending *p;
    cv_rpc_link *l;
    nng_msg *msg;
    int rv;

    if ((l = cv_rpc_pick_link(cli)) == NULL) {
        /* No replica connected. The start-up grace only covers the first
         * connection: a client that was connected and lost its services
         * fails fast from then on. */
        bool ever = false;

        for (int i = 0; i < cli->n_links; i++)
            ever = ever || atomic_load(&cli->links[i].ever_connected);
        if (ever || cv_now_us() - cli->opened_us > CV_RPC_CONNECT_GRACE_US)
            return cv_error_set(err, CV_UNAVAILABLE, "service unavailable");
        /* Queue on one of them until it connects. */
        l = &cli->links[atomic_fetch_add(&cli->next_link, 1) %
                        (unsigned int)cli->n_links];
    }
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    p->cb = cb;
    p->arg = arg;
    p->cli = cli;
    p->link = l;
    p->id = id;
    if (id != NULL) {
        /* Authenticate a shallow copy: the caller's envelope stays
         * untouched. An authenticated envelope always carries a deadline
         * (services refuse stale ones): the call's own timeout when the
         * caller gave none. */
        copy = *req;
        if (!copy.has_deadline_unix_ms) {
            copy.has_deadline_unix_ms = 1;
            copy.deadline_unix_ms =
                cv_now_us() / 1000 + (timeout_ms > 0 ? timeout_ms : 10000);
        }
        if ((rv = cv_rpc_authenticate(cli, l, id, &copy, &sig, p, err)) != 0)
            goto fail;
        req = &copy;
    }
    if ((rv = nng_aio_alloc(&p->aio, cv_rpc_pending_cb, p)) != 0) {
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }
    if ((rv = nng_ctx_open(&p->ctx, l->sock)) != 0) {
        nng_aio_free(p->aio);
        rv = cv_error_set(err, CV_UNAVAILABLE, "cannot open context: %s",
                          nng_strerror(rv));
        goto fail;
    }
    if (nng_msg_alloc(&msg, cv__rpc_request__get_packed_size(req)) != 0 ||
        (cv__rpc_request__pack(req, nng_msg_body(msg)),
         req->has_session_mac && nng_msg_dup(&p->resend, msg) != 0)) {
        nng_ctx_close(p->ctx);
        nng_aio_free(p->aio);
        rv = cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }
    nng_aio_set_timeout(p->aio, timeout_ms > 0 ? timeout_ms : 10000);
    nng_aio_set_msg(p->aio, msg);
    p->state = CV_RPC_PENDING_SEND;
    atomic_fetch_add(&l->in_flight, 1);
    /* Sent under the lock (recursive; the callback takes it too, so p
     * stays alive here): when the link lost its service between the pick
     * and now, the pipe callback may have missed this call, which would
     * then wait out its timeout; cancel it as lost instead. */
    pthread_mutex_lock(&cli->pend_mtx);
    p->next = cli->pending;
    if (p->next != NULL)
        p->next->prev = p;
    cli->pending = p;
    nng_ctx_send(p->ctx, p->aio);
    if (atomic_load(&l->pipes) == 0 && atomic_load(&l->ever_connected)) {
        p->lost = true;
        nng_aio_cancel(p->aio);
    }
    pthread_mutex_unlock(&cli->pend_mtx);
    return 0;

fail:
    if (p->has_offer) {
        pthread_mutex_lock(&l->sess_mtx);
        l->offering = false;
        pthread_mutex_unlock(&l->sess_mtx);
        cv_session_offer_free(&p->offer);
    }
    free(p);
    return rv;
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
