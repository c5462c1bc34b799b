/*
 * cv_rpc_server.c -- async NNG REP server with database workers.
 *
 * Design notes:
 *  - `contexts` work structs, each one nng_ctx + nng_aio, allocated at
 *    start-up. Flow of one work struct:
 *
 *        1. RECV: nng_ctx_recv; the callback queues the request for the
 *           database workers and returns at once (never blocks).
 *        2. WORK: a database worker thread, owning one PGconn, takes the
 *           requests queued together (up to CAVRA_RPC_GROUP_MAX, a fair
 *           share while other workers idle), unpacks and checks each
 *           envelope, runs reads and snapshot writes one transaction each
 *           and the READ COMMITTED writes as one group transaction (a
 *           SAVEPOINT per request, see cv_rpc_group_run), packs the
 *           replies and starts the sends (state SEND) after the COMMIT.
 *        3. SEND: the callback frees a message that failed to send and
 *           goes back to 1.
 *
 *  - Shutdown: nng_close() completes every pending aio with NNG_ECLOSED
 *    (callbacks then stop re-arming), the workers are told to stop and
 *    joined, queued requests are dropped, and the aios are stopped before
 *    they are freed.
 */
#include "cv_rpc.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cv_env.h"
#include "cv_idempotency.h"
#include "cv_log.h"
#include "cv_principal.h"
#include "cv_tls.h"
#include "cv_time.h"

enum cv_rpc_work_state {
    CV_RPC_WORK_RECV,
    CV_RPC_WORK_QUEUED,
    CV_RPC_WORK_SEND,
};

typedef struct cv_rpc_work {
    enum cv_rpc_work_state state;
    nng_aio *aio;
    nng_ctx ctx;
    nng_msg *msg;        /* the request while queued */
    uint64_t arrived_ns; /* CLOCK_MONOTONIC when the request was received */
    struct cv_rpc_server *srv;
    struct cv_rpc_work *next; /* queue link */
} cv_rpc_work;

struct cv_rpc_server {
    cv_rpc_server_config cfg;
    char health_method[64];
    nng_socket sock;
    cv_rpc_work *works;
    int n_works;
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    cv_rpc_work *head, *tail; /* requests waiting for a worker */
    size_t queued;            /* requests in that queue */
    int idle;                 /* workers waiting for requests */
    int group_max;       /* requests one worker takes at once (group commit) */
    int group_lock_ms;   /* lock_timeout inside a group (0: none) */
    int read_max_lag_ms; /* how long a read waits for the standby */
    /* The primary's WAL position read last for the read replica (see
     * cv_rpc_read_lsn), and when that query was sent; under mtx. */
    char read_lsn[64];
    uint64_t read_lsn_sent_ns;
    /* Reads sent to the primary because the standby lagged or failed:
     * all, and how many of them a log line has told about; under mtx. */
    uint64_t read_fallbacks, read_fallbacks_logged;
    uint64_t read_fallback_logged_ns;
    int stopping;
    cv_replay_cache *replay;    /* with principals: nonces seen */
    cv_session_store *sessions; /* with principals: granted sessions */
};

/* The monotonic clock in nanoseconds (arrival order of requests). */
static uint64_t
cv_rpc_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Live nonces a service remembers at most (each until its envelope's
 * deadline, 5 minutes at most): far above any sustained request rate. */
#define CV_RPC_REPLAY_MAX (1u << 21)

/* Live sessions a service holds at most (each for CV_SESSION_TTL_MS): a
 * caller holds one per service process it talks to. When full, callers
 * keep signing every envelope (slower, never refused). */
#define CV_RPC_SESSIONS_MAX (1u << 16)

const cv_rpc_method *
cv_rpc_find_method(const cv_rpc_method *methods, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(methods[i].name, name) == 0)
            return &methods[i];
    return NULL;
}

static void
cv_rpc_work_recv(cv_rpc_work *w)
{
    w->state = CV_RPC_WORK_RECV;
    nng_ctx_recv(w->ctx, w->aio);
}

static void
cv_rpc_work_cb(void *arg)
{
    cv_rpc_work *w = arg;
    cv_rpc_server *srv = w->srv;
    int rv = nng_aio_result(w->aio);

    switch (w->state) {
    case CV_RPC_WORK_RECV:
        if (rv != 0) {
            if (rv == NNG_ECLOSED)
                return;
            cv_rpc_work_recv(w);
            return;
        }
        w->msg = nng_aio_get_msg(w->aio);
        w->arrived_ns = cv_rpc_mono_ns();
        w->next = NULL;
        w->state = CV_RPC_WORK_QUEUED;
        pthread_mutex_lock(&srv->mtx);
        if (srv->tail != NULL)
            srv->tail->next = w;
        else
            srv->head = w;
        srv->tail = w;
        srv->queued++;
        pthread_cond_signal(&srv->cond);
        pthread_mutex_unlock(&srv->mtx);
        return;
    case CV_RPC_WORK_SEND:
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(w->aio));
            if (rv == NNG_ECLOSED)
                return;
        }
        cv_rpc_work_recv(w);
        return;
    default:
        /* QUEUED work has no aio operation pending. */
        abort();
    }
}

/* Fills a reply envelope with an error. */
static void
cv_rpc_reply_error(Cv__RpcReply *rep, const cv_error *err)
{
    rep->has_code = 1;
    rep->code = err->code != CV_OK ? err->code : CV_UNKNOWN;
    rep->message = (char *)err->msg;
}

/* Built-in "<svc>.Health": the service is up; says whether its database
 * answers. */
static ProtobufCMessage *
cv_rpc_health(cv_rpc_server *srv, cv_db *db)
{
    Cv__HealthReply *hr = malloc(sizeof(*hr));
    cv_error err;

    if (hr == NULL)
        return NULL;
    cv__health_reply__init(hr);
    hr->service = strdup(srv->cfg.service_name);
    hr->has_database_ok = 1;
    hr->database_ok = cv_db_ping(db, &err) == 0;
    hr->status = strdup(hr->database_ok ? "ok" : "degraded");
    return &hr->base;
}

/* One request's state across the attempts of its transaction. */
typedef struct cv_rpc_call_state {
    cv_rpc_server *srv;
    const cv_rpc_method *m;
    const cv_method_info *info;
    const Cv__RpcRequest *req;
    const Cv__Actor *actor; /* resolved: see cv_rpc_authorize */
    const char *principal;
    const ProtobufCMessage *request;
    bool keyed;
    cv_idempotency idem;
    /* Outputs of the attempt that committed. */
    uint8_t *buf; /* packed reply payload */
    size_t len;
    bool existing, replayed;
} cv_rpc_call_state;

/* The body of a request's transaction (a cv_db_tx_fn): the key lookup,
 * the handler and the key's stored reply, all in the caller's
 * transaction. Leaves st->buf set only on success. */
static int
cv_rpc_call_tx(cv_db *db, void *arg, cv_error *err)
{
    cv_rpc_call_state *st = arg;
    const Cv__RpcRequest *req = st->req;
    ProtobufCMessage *reply = NULL;
    int rv;

    free(st->buf);
    st->buf = NULL;
    st->len = 0;
    st->existing = st->replayed = false;
    if (st->keyed) {
        const char *scope = st->actor != NULL ? st->actor->actor : NULL;

        if ((rv = cv_idempotency_lookup(
                 db, &st->idem, scope, req->method, req->idempotency_key,
                 req->payload.data, req->has_payload ? req->payload.len : 0,
                 &st->buf, &st->len, &st->existing, err)) != 0)
            return rv;
        if (st->buf != NULL) {
            /* A replay: the stored reply, and nothing new is stored. */
            st->replayed = true;
            return 0;
        }
    }
    {
        cv_rpc_ctx call = {
            .method = req->method,
            .request_id = req->request_id != NULL ? req->request_id : "",
            .actor = st->actor,
            .principal = st->principal,
            .idempotency_key = req->idempotency_key,
            .deadline_unix_ms = req->deadline_unix_ms,
            .db = db,
            .service = st->srv->cfg.service,
        };

        if ((rv = st->m->handler(&call, st->request, &reply, err)) != 0) {
            if (reply != NULL)
                protobuf_c_message_free_unpacked(reply, NULL);
            return err != NULL && err->code != CV_OK
                       ? rv
                       : cv_error_set(err, CV_INTERNAL, "handler failed");
        }
        st->existing = call.existing;
    }
    if (reply == NULL)
        return cv_error_set(err, CV_INTERNAL, "handler gave no reply");
    st->len = protobuf_c_message_get_packed_size(reply);
    if ((st->buf = malloc(st->len > 0 ? st->len : 1)) != NULL)
        protobuf_c_message_pack(reply, st->buf);
    protobuf_c_message_free_unpacked(reply, NULL);
    if (st->buf == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    /* The key and the record commit together, or neither does. */
    if (st->keyed && (rv = cv_idempotency_store(db, &st->idem, st->buf, st->len,
                                                st->existing, err)) != 0) {
        free(st->buf);
        st->buf = NULL;
        return rv;
    }
    return 0;
}

/* Logs a non-OK answer once: client errors at info, the rest at warn,
 * with the internal cause the client never sees. */
static void
cv_rpc_log_failure(const char *method, const char *request_id,
                   const cv_error *err)
{
    int level =
        cv_code_http_status(err->code) >= 500 ? CV_LOG_WARN : CV_LOG_INFO;

    CV_LOG(level, "RPC-FAIL",
           "method=%s request_id=%s code=%s detail=\"%s\" cause=\"%s\"",
           method != NULL ? method : "-",
           request_id != NULL && request_id[0] != '\0' ? request_id : "-",
           cv_code_name(err->code), err->msg,
           err->cause[0] != '\0' ? err->cause : "-");
}

/* An actor made from a principal that acts as itself. */
typedef struct cv_rpc_self_actor {
    Cv__Actor actor;
    char *roles[CV_ROLE_COUNT];
} cv_rpc_self_actor;

/* The CV_ROLE_* bits of an actor's role names (unknown names count for
 * nothing). */
static unsigned int
cv_rpc_actor_roles(const Cv__Actor *a)
{
    unsigned int bits = 0;

    for (size_t i = 0; a != NULL && i < a->n_roles; i++)
        if (a->roles[i] != NULL)
            bits |= cv_role_bit(a->roles[i], strlen(a->roles[i]));
    return bits;
}

/* What the envelope check says about sessions, for the reply. */
typedef struct cv_rpc_session_reply {
    bool granted; /* a session was granted for the envelope's offer */
    bool unknown; /* the envelope named a session this process lacks */
    uint8_t id[CV_SESSION_ID_LEN];
    uint8_t pub[32];
} cv_rpc_session_reply;

/*
 * Who sent the envelope: a signature (cv_envelope_verify) or, without
 * one, a session MAC (cv_session_verify); then the nonce, never seen
 * before its deadline, whichever way it came. A verified signed envelope
 * with an offer gets a session (reported in *sr); a full store only means
 * no session, the request itself stands.
 */
static int
cv_rpc_authenticate(cv_rpc_server *srv, const Cv__RpcRequest *req,
                    int64_t now_ms, const cv_principal **who,
                    cv_rpc_session_reply *sr, cv_error *err)
{
    int rv;

    if (!req->has_signature && (req->has_session_id || req->has_session_mac))
        rv = cv_session_verify(srv->sessions, req, now_ms, who, &sr->unknown,
                               err);
    else
        rv = cv_envelope_verify(srv->cfg.principals, req, now_ms, who, err);
    if (rv != 0 ||
        (rv = cv_replay_check(srv->replay, req->key_id, req->nonce,
                              req->deadline_unix_ms, now_ms, err)) != 0)
        return rv;
    if (req->has_signature && req->has_session_offer) {
        cv_error gerr;

        cv_error_clear(&gerr);
        if (cv_session_grant(srv->sessions, *who, req, now_ms, sr->id, sr->pub,
                             &gerr) == 0) {
            sr->granted = true;
            /* Once per caller link and session lifetime: cheap to log. */
            CV_LOG(CV_LOG_INFO, "RPC-SESSION", "principal=%s session granted",
                   (*who)->name);
        } else
            CV_LOG(CV_LOG_INFO, "RPC-SESSION",
                   "principal=%s no session granted: %s", (*who)->name,
                   gerr.msg);
    }
    return 0;
}

/*
 * The trust boundary, before anything else reads the request: the
 * envelope's signature or session MAC, deadline and nonce; who the call
 * is for; and the method's roles (info NULL: Health, any principal).
 * Without principals (cfg.principals NULL) everything passes as before.
 * Returns 0 with st->actor and st->principal set, or
 * UNAUTHENTICATED/PERMISSION_DENIED.
 */
static int
cv_rpc_authorize(cv_rpc_server *srv, const Cv__RpcRequest *req,
                 const cv_method_info *info, cv_rpc_call_state *st,
                 cv_rpc_self_actor *self, cv_rpc_session_reply *sr,
                 cv_error *err)
{
    const cv_principal *who;
    int64_t now_ms = cv_now_us() / 1000;
    unsigned int roles, need;
    int rv;

    st->actor = req->actor;
    st->principal = NULL;
    if (srv->cfg.principals == NULL)
        return 0;
    if ((rv = cv_rpc_authenticate(srv, req, now_ms, &who, sr, err)) != 0)
        return rv;
    st->principal = who->name;
    if (who->delegate) {
        /* The gateway names the token-verified end user, whose roles count
         * (never beyond the gateway's own); no actor: its own roles. */
        roles =
            req->actor != NULL ? cv_rpc_actor_roles(req->actor) : who->roles;
        if (!(who->roles & CV_ROLE_ADMIN))
            roles &= who->roles;
    } else {
        if (req->actor != NULL && req->actor->actor != NULL &&
            strcmp(req->actor->actor, who->name) != 0)
            return cv_error_set(err, CV_PERMISSION_DENIED,
                                "principal %s may not act for another actor",
                                who->name);
        cv__actor__init(&self->actor);
        self->actor.actor = (char *)who->name;
        for (unsigned int bit = 1; bit & CV_ROLE_ANY; bit <<= 1)
            if (who->roles & bit)
                self->roles[self->actor.n_roles++] = (char *)cv_role_name(bit);
        self->actor.roles = self->roles;
        st->actor = &self->actor;
        roles = who->roles;
    }
    if (info == NULL)
        return 0;
    need = info->roles | CV_ROLE_ADMIN;
    if ((roles & need) == 0) {
        char text[160];

        cv_roles_text(need, " or ", text, sizeof(text));
        return cv_error_set(err, CV_PERMISSION_DENIED, "%s needs the role %s",
                            info->name, text);
    }
    return 0;
}

/* Adds the session outcome to a reply: a granted session (whatever the
 * call's own outcome: the offer was authenticated), or "unknown session"
 * so the caller signs and offers again. */
static void
cv_rpc_session_answer(Cv__RpcReply *rep, cv_rpc_session_reply *sr)
{
    if (sr->granted) {
        rep->has_session_id = 1;
        rep->session_id.data = sr->id;
        rep->session_id.len = sizeof(sr->id);
        rep->has_session_pub = 1;
        rep->session_pub.data = sr->pub;
        rep->session_pub.len = sizeof(sr->pub);
    }
    if (sr->unknown) {
        rep->has_session_unknown = 1;
        rep->session_unknown = 1;
    }
}

/* One received request on its way through a worker: what the checks
 * before the transaction found, and the reply once it is known. */
typedef struct cv_rpc_job {
    cv_rpc_work *w;
    Cv__RpcRequest *req;
    ProtobufCMessage *request, *health;
    cv_rpc_call_state st;
    cv_rpc_self_actor self;
    cv_rpc_session_reply sr; /* the session outcome for the reply */
    cv_error err;
    bool ready; /* checks passed: the request waits for its transaction */
    bool alone; /* to run in a transaction of its own (conflict in a group) */
} cv_rpc_job;

/*
 * Everything before the transaction: unpack, the trust boundary, the
 * deadline, the method and its payload; Health answers here. Leaves
 * c->ready set when the request must run its transaction, else c->err or
 * c->health holds the answer.
 */
static void
cv_rpc_prepare(cv_rpc_server *srv, cv_db *db, nng_msg *in, cv_rpc_job *c)
{
    Cv__RpcRequest *req;

    c->st.srv = srv;
    cv_error_clear(&c->err);
    req = c->req =
        cv__rpc_request__unpack(NULL, nng_msg_len(in), nng_msg_body(in));
    if (req == NULL || !protobuf_c_message_check(&req->base) ||
        req->method == NULL) {
        cv_error_set(&c->err, CV_INVALID_ARGUMENT, "malformed RPC envelope");
        return;
    }
    if (strcmp(req->method, srv->health_method) != 0) {
        c->st.m = cv_rpc_find_method(srv->cfg.methods, srv->cfg.n_methods,
                                     req->method);
        c->st.info = c->st.m != NULL ? cv_method_find(req->method) : NULL;
    }
    /* The signature comes first: an unauthenticated caller learns
     * nothing, not even which methods exist. */
    if (cv_rpc_authorize(srv, req, c->st.info, &c->st, &c->self, &c->sr,
                         &c->err) != 0)
        return;
    if (req->has_deadline_unix_ms &&
        cv_now_us() / 1000 > req->deadline_unix_ms) {
        cv_error_set(&c->err, CV_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }
    if (strcmp(req->method, srv->health_method) == 0) {
        if ((c->health = cv_rpc_health(srv, db)) == NULL)
            cv_error_set(&c->err, CV_INTERNAL, "out of memory");
        return;
    }
    if (c->st.info == NULL) {
        cv_error_set(&c->err, CV_UNIMPLEMENTED, "unknown method");
        return;
    }
    c->request = protobuf_c_message_unpack(
        c->st.info->request, NULL, req->has_payload ? req->payload.len : 0,
        req->payload.data);
    if (c->request == NULL || !protobuf_c_message_check(c->request)) {
        cv_error_set(&c->err, CV_INVALID_ARGUMENT, "malformed request payload");
        return;
    }
    c->st.req = req;
    c->st.request = c->request;
    c->st.keyed = c->st.info->keyed && req->idempotency_key != NULL &&
                  req->idempotency_key[0] != '\0';
    c->ready = true;
}

/* The request's own transaction (cv_db_transact: conflicts retried). */
static void
cv_rpc_run_alone(cv_db *db, cv_rpc_job *c)
{
    cv_error_clear(&c->err);
    db->principal = c->st.principal;
    if (cv_db_transact(db, c->st.info->tx, cv_rpc_call_tx, &c->st, &c->err) !=
        0) {
        free(c->st.buf);
        c->st.buf = NULL;
    }
    db->principal = NULL;
}

/*
 * Packs the answer of a finished call into a reply message (NULL only
 * when out of memory) and frees what the call held.
 */
static nng_msg *
cv_rpc_finish(cv_rpc_job *c)
{
    Cv__RpcReply rep = CV__RPC_REPLY__INIT;
    nng_msg *out = NULL;
    size_t len;

    if (c->health != NULL) {
        c->st.len = protobuf_c_message_get_packed_size(c->health);
        if ((c->st.buf = malloc(c->st.len > 0 ? c->st.len : 1)) == NULL)
            cv_error_set(&c->err, CV_INTERNAL, "out of memory");
        else
            protobuf_c_message_pack(c->health, c->st.buf);
        protobuf_c_message_free_unpacked(c->health, NULL);
        c->health = NULL;
    }
    if (c->st.buf != NULL) {
        rep.has_code = 1;
        rep.code = CV_OK;
        rep.has_payload = 1;
        rep.payload.data = c->st.buf;
        rep.payload.len = c->st.len;
        rep.has_existing = c->st.existing;
        rep.existing = c->st.existing;
        rep.has_replayed = c->st.replayed;
        rep.replayed = c->st.replayed;
    } else {
        if (c->err.code == CV_OK)
            cv_error_set(&c->err, CV_INTERNAL, "no reply");
        cv_rpc_reply_error(&rep, &c->err);
        cv_rpc_log_failure(c->req != NULL ? c->req->method : NULL,
                           c->req != NULL ? c->req->request_id : NULL, &c->err);
    }
    cv_rpc_session_answer(&rep, &c->sr);
    len = cv__rpc_reply__get_packed_size(&rep);
    if (nng_msg_alloc(&out, len) == 0)
        cv__rpc_reply__pack(&rep, nng_msg_body(out));
    free(c->st.buf);
    c->st.buf = NULL;
    if (c->request != NULL)
        protobuf_c_message_free_unpacked(c->request, NULL);
    if (c->req != NULL)
        cv__rpc_request__free_unpacked(c->req, NULL);
    c->request = NULL;
    c->req = NULL;
    return out;
}

/* True when the call only reads (it may run on the read replica). */
static bool
cv_rpc_is_read(const cv_rpc_job *c)
{
    return c->st.info->tx == CV_TX_READ ||
           c->st.info->tx == CV_TX_READ_SNAPSHOT;
}

/* True while the worker's connection is usable. */
static bool cv_rpc_db_ok(const cv_db *db);

/*
 * Writes into lsn a WAL position of the primary taken after the request
 * c arrived, so at or past the commit of every write answered before it
 * (cv_db_wal_lsn). One query serves every read that arrived before it was
 * sent: a worker reuses the position another worker (or this one, for an
 * earlier read of the batch) read when that query was sent after c
 * arrived, so reads that queue together cost one primary round trip, and
 * the guarantee is the same as one query per read.
 */
static int
cv_rpc_read_lsn(cv_rpc_server *srv, cv_db *db, const cv_rpc_job *c, char *lsn,
                size_t lsnlen, cv_error *err)
{
    uint64_t sent;
    int rv;

    pthread_mutex_lock(&srv->mtx);
    if (srv->read_lsn[0] != '\0' && srv->read_lsn_sent_ns >= c->w->arrived_ns) {
        snprintf(lsn, lsnlen, "%s", srv->read_lsn);
        pthread_mutex_unlock(&srv->mtx);
        return 0;
    }
    pthread_mutex_unlock(&srv->mtx);
    sent = cv_rpc_mono_ns();
    if ((rv = cv_db_wal_lsn(db, lsn, lsnlen, err)) != 0)
        return rv;
    pthread_mutex_lock(&srv->mtx);
    if (sent > srv->read_lsn_sent_ns) {
        snprintf(srv->read_lsn, sizeof(srv->read_lsn), "%s", lsn);
        srv->read_lsn_sent_ns = sent;
    }
    pthread_mutex_unlock(&srv->mtx);
    return 0;
}

/* Counts a read sent to the primary; says so in the log at most every
 * 10 s (a broken standby must not flood it), with how many since. */
static void
cv_rpc_read_fallback(cv_rpc_server *srv, const cv_error *e)
{
    uint64_t now = cv_rpc_mono_ns(), n = 0;

    pthread_mutex_lock(&srv->mtx);
    srv->read_fallbacks++;
    if (srv->read_fallbacks_logged == 0 ||
        now - srv->read_fallback_logged_ns >= 10000000000u) {
        n = srv->read_fallbacks - srv->read_fallbacks_logged;
        srv->read_fallbacks_logged = srv->read_fallbacks;
        srv->read_fallback_logged_ns = now;
    }
    pthread_mutex_unlock(&srv->mtx);
    if (n > 0)
        cv_log_write(CV_LOG_WARN, "CV-READ-REPLICA",
                     "%llu read(s) ran on the primary: %s%s%s",
                     (unsigned long long)n, e->msg, e->cause[0] ? ": " : "",
                     e->cause);
}

/*
 * A read on the standby rdb, once it has replayed the primary's WAL up to
 * where it stood when the read arrived: every write answered before then
 * is visible (read-your-writes for every caller, as on the primary). A
 * standby that lags more than read_max_lag_ms, cannot be reached, or
 * breaks during the read sends the read to the primary instead.
 */
static void
cv_rpc_run_read(cv_rpc_server *srv, cv_db *db, cv_db *rdb, cv_rpc_job *c)
{
    char lsn[64];
    cv_error e;

    cv_error_clear(&e);
    if (cv_rpc_read_lsn(srv, db, c, lsn, sizeof(lsn), &e) == 0 &&
        cv_db_wait_replay(rdb, lsn, srv->read_max_lag_ms, &e) == 0) {
        cv_rpc_run_alone(rdb, c);
        if (c->st.buf != NULL || cv_rpc_db_ok(rdb))
            return;
        cv_error_set(&e, CV_UNAVAILABLE, "the read replica failed");
    }
    cv_rpc_read_fallback(srv, &e);
    cv_rpc_run_alone(db, c);
}

/* True when the call may share a group transaction: a READ COMMITTED
 * write. Snapshot writes (retry plans, schedule runs) must see the store
 * as of their own start, and reads keep their per-request path. */
static bool
cv_rpc_groupable(const cv_rpc_job *c)
{
    return c->ready && c->st.info->tx == CV_TX_WRITE;
}

/* True while the worker's connection is usable. */
static bool
cv_rpc_db_ok(const cv_db *db)
{
    return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

/*
 * Application-level group commit: the ready write calls of one batch run
 * in one READ COMMITTED transaction, each inside its own SAVEPOINT, so a
 * call that fails rolls back alone (its record and its idempotency key
 * with it) and the others go on. One COMMIT (one WAL flush) makes them
 * all durable; no call is answered before it. A call that hits a
 * deadlock or serialization failure is rolled back to its savepoint and
 * run again afterwards in a transaction of its own (cv_db_transact), so
 * nothing is applied twice. When the group itself cannot go on (lost
 * connection, failed BEGIN or COMMIT conflict), nothing of it committed:
 * every call still open runs alone.
 */
static void
cv_rpc_group_run(cv_rpc_server *srv, cv_db *db, cv_rpc_job **calls, size_t n)
{
    cv_error gerr;
    size_t i;
    int rv;

    cv_error_clear(&gerr);
    /* BEGIN, the lock timeout and each SAVEPOINT/RELEASE are deferred:
     * they travel with the next statement, so a call costs the round
     * trips of its own statements only (cv_db.h). */
    if (cv_db_ensure(db, &gerr) != 0 ||
        cv_db_tx_begin_deferred(db, CV_TX_WRITE, &gerr) != 0)
        goto alone;
    if (srv->group_lock_ms > 0 &&
        cv_db_set_lock_timeout(db, srv->group_lock_ms, &gerr) != 0)
        goto broken;
    for (i = 0; i < n; i++) {
        cv_rpc_job *c = calls[i];
        int level;

        /* The previous call's savepoint, when it succeeded, is released
         * together with the opening of this one (one round trip); the
         * last one is released by the COMMIT. */
        if (db->savepoints > 0)
            rv = cv_db_savepoint_next(db, &gerr);
        else
            rv = cv_db_savepoint(db, &gerr);
        if (rv != 0)
            goto broken;
        level = db->savepoints;
        cv_error_clear(&c->err);
        db->principal = c->st.principal;
        rv = cv_rpc_call_tx(db, &c->st, &c->err);
        db->principal = NULL;
        if (rv == 0)
            continue;
        free(c->st.buf);
        c->st.buf = NULL;
        if (!cv_rpc_db_ok(db))
            goto broken;
        /* Unwind savepoints the handler left open, then the call's own. */
        while (db->savepoints >= level)
            if (cv_db_savepoint_rollback(db, &gerr) != 0)
                goto broken;
        if (rv == CV_ABORTED) {
            /* Visible at debug level: tests count these lines to see
             * that a lock timeout really took the rerun path. */
            CV_LOG(CV_LOG_DEBUG, "RPC-GROUP-RERUN",
                   "method=%s request_id=%s cause=\"%s\"", c->req->method,
                   c->req->request_id != NULL ? c->req->request_id : "-",
                   c->err.cause[0] != '\0' ? c->err.cause : c->err.msg);
            c->alone = true;
        } else {
            c->ready = false; /* answered with its own error */
        }
    }
    if ((rv = cv_db_tx_commit(db, &gerr)) != 0) {
        if (rv == CV_ABORTED || (rv == CV_UNAVAILABLE && !cv_rpc_db_ok(db)))
            goto alone;
        /* As a single request's failed COMMIT: an error answer, nothing
         * stored. */
        for (i = 0; i < n; i++) {
            if (calls[i]->ready && !calls[i]->alone) {
                free(calls[i]->st.buf);
                calls[i]->st.buf = NULL;
                calls[i]->err = gerr;
                calls[i]->ready = false;
            }
        }
    } else {
        for (i = 0; i < n; i++)
            if (calls[i]->ready && !calls[i]->alone)
                calls[i]->ready = false; /* committed: answer */
    }
    for (i = 0; i < n; i++)
        if (calls[i]->alone)
            cv_rpc_run_alone(db, calls[i]);
    return;

broken:
    cv_db_tx_rollback(db);
alone:
    /* Nothing of the group committed: every call still open runs by
     * itself (a lost connection is re-established there, or answered). */
    for (i = 0; i < n; i++) {
        if (calls[i]->ready || calls[i]->alone) {
            free(calls[i]->st.buf);
            calls[i]->st.buf = NULL;
            cv_rpc_run_alone(db, calls[i]);
        }
    }
}

/* Sends a finished call's reply, or (out of memory) drops the request so
 * the client times out or resends. */
static void
cv_rpc_reply(cv_rpc_job *c)
{
    cv_rpc_work *w = c->w;
    nng_msg *out = cv_rpc_finish(c);

    nng_msg_free(w->msg);
    w->msg = NULL;
    if (out == NULL) {
        cv_rpc_work_recv(w);
        return;
    }
    w->state = CV_RPC_WORK_SEND;
    nng_aio_set_msg(w->aio, out);
    nng_ctx_send(w->ctx, w->aio);
}

/*
 * Serves one batch of requests taken from the queue together: the checks
 * of each; then reads, snapshot writes and check failures one by one
 * (their per-request path); then the READ COMMITTED writes as one group.
 */
static void
cv_rpc_serve_batch(cv_rpc_server *srv, cv_db *db, cv_db *rdb, cv_rpc_work **ws,
                   size_t n)
{
    cv_rpc_job *calls = calloc(n, sizeof(*calls));
    cv_rpc_job **group = calloc(n, sizeof(*group));
    size_t n_group = 0;

    if (calls == NULL || group == NULL) {
        /* Out of memory: drop the batch; the clients time out or resend. */
        free(calls);
        free(group);
        for (size_t i = 0; i < n; i++) {
            nng_msg_free(ws[i]->msg);
            ws[i]->msg = NULL;
            cv_rpc_work_recv(ws[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cv_rpc_job *c = &calls[i];

        c->w = ws[i];
        cv_rpc_prepare(srv, db, ws[i]->msg, c);
        if (c->ready && cv_rpc_groupable(c) && n > 1) {
            group[n_group++] = c;
            continue;
        }
        if (c->ready) {
            if (rdb != NULL && cv_rpc_is_read(c))
                cv_rpc_run_read(srv, db, rdb, c);
            else
                cv_rpc_run_alone(db, c);
            c->ready = false;
        }
        cv_rpc_reply(c);
    }
    if (n_group == 1)
        cv_rpc_run_alone(db, group[0]);
    else if (n_group > 1)
        cv_rpc_group_run(srv, db, group, n_group);
    for (size_t i = 0; i < n_group; i++)
        cv_rpc_reply(group[i]);
    free(group);
    free(calls);
}

static void *
cv_rpc_worker_main(void *arg)
{
    cv_rpc_server *srv = arg;
    cv_rpc_work **batch;
    cv_db db, rdb_store, *rdb = NULL;
    cv_error err;

    if ((batch = calloc((size_t)srv->group_max, sizeof(*batch))) == NULL)
        return NULL;
    if (cv_db_init(&db, srv->cfg.database_url, srv->cfg.statements,
                   srv->cfg.n_statements, &err) != 0) {
        free(batch);
        return NULL;
    }
    if (srv->cfg.read_database_url != NULL &&
        srv->cfg.read_database_url[0] != '\0' &&
        cv_db_init(&rdb_store, srv->cfg.read_database_url, srv->cfg.statements,
                   srv->cfg.n_statements, &err) == 0)
        rdb = &rdb_store;
    /* Connect eagerly so the first request is fast; failure is fine. */
    (void)cv_db_ensure(&db, &err);
    if (rdb != NULL)
        (void)cv_db_ensure(rdb, &err);
    for (;;) {
        size_t n = 0, share;

        pthread_mutex_lock(&srv->mtx);
        while (srv->head == NULL && !srv->stopping) {
            srv->idle++;
            pthread_cond_wait(&srv->cond, &srv->mtx);
            srv->idle--;
        }
        if (srv->stopping) {
            pthread_mutex_unlock(&srv->mtx);
            break;
        }
        /* Whatever arrived together, up to the bound, and no more than a
         * fair share while other workers wait idle (reads in the queue
         * then run in parallel). No waiting for more: a lone request is
         * never delayed. */
        share = (srv->queued + (size_t)srv->idle) / ((size_t)srv->idle + 1);
        if (share > (size_t)srv->group_max)
            share = (size_t)srv->group_max;
        while (srv->head != NULL && n < share) {
            batch[n++] = srv->head;
            srv->head = srv->head->next;
            srv->queued--;
        }
        if (srv->head == NULL)
            srv->tail = NULL;
        else
            pthread_cond_signal(&srv->cond);
        pthread_mutex_unlock(&srv->mtx);

        cv_rpc_serve_batch(srv, &db, rdb, batch, n);
    }
    cv_db_fini(&db);
    cv_db_fini(rdb);
    free(batch);
    return NULL;
}

static int
cv_rpc_nng_error(cv_error *err, int rv, const char *what)
{
    return cv_error_set(err, CV_UNAVAILABLE, "%s: %s", what, nng_strerror(rv));
}

int
cv_rpc_server_start(const cv_rpc_server_config *cfg, cv_rpc_server **out,
                    cv_error *err)
{
    cv_rpc_server *srv;
    int rv;

    *out = NULL;
    if ((srv = calloc(1, sizeof(*srv))) == NULL)
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    srv->cfg = *cfg;
    if (srv->cfg.contexts <= 0)
        srv->cfg.contexts = 64;
    if (srv->cfg.db_workers <= 0)
        srv->cfg.db_workers = 4;
    {
        long g;

        (void)cv_env_long(CV_RPC_GROUP_MAX_ENV, 1, CV_RPC_GROUP_MAX_LIMIT,
                          CV_RPC_GROUP_MAX_DEFAULT, &g);
        srv->group_max = (int)g;
        (void)cv_env_long(CV_RPC_GROUP_LOCK_TIMEOUT_ENV, 0, 60000,
                          CV_RPC_GROUP_LOCK_TIMEOUT_DEFAULT, &g);
        srv->group_lock_ms = (int)g;
        (void)cv_env_long(CV_DB_READ_MAX_LAG_ENV, 0, 60000,
                          CV_DB_READ_MAX_LAG_DEFAULT, &g);
        srv->read_max_lag_ms = (int)g;
    }
    snprintf(srv->health_method, sizeof(srv->health_method), "%s.Health",
             cfg->service_name);
    /* Every handler must be declared in the registry: a method the gateway,
     * the docs and cavra-rpc do not know would be a hidden door. */
    for (size_t i = 0; i < cfg->n_methods; i++) {
        if (cv_method_find(cfg->methods[i].name) == NULL) {
            cv_error_set(err, CV_INTERNAL, "method %s is not in the registry",
                         cfg->methods[i].name);
            free(srv);
            return CV_INTERNAL;
        }
    }
    pthread_mutex_init(&srv->mtx, NULL);
    pthread_cond_init(&srv->cond, NULL);
    if (cfg->principals != NULL &&
        ((srv->replay = cv_replay_cache_new(CV_RPC_REPLAY_MAX)) == NULL ||
         (srv->sessions = cv_session_store_new(CV_RPC_SESSIONS_MAX)) == NULL)) {
        cv_replay_cache_free(srv->replay);
        free(srv);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }

    if ((rv = nng_rep0_open(&srv->sock)) != 0) {
        cv_replay_cache_free(srv->replay);
        cv_session_store_free(srv->sessions);
        free(srv);
        return cv_rpc_nng_error(err, rv, "cannot open REP socket");
    }
    nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, CV_RPC_RECV_MAX);
    srv->works = calloc((size_t)srv->cfg.contexts, sizeof(cv_rpc_work));
    srv->threads = calloc((size_t)srv->cfg.db_workers, sizeof(srv->threads[0]));
    if (srv->works == NULL || srv->threads == NULL) {
        cv_error_set(err, CV_INTERNAL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < srv->cfg.contexts; i++) {
        cv_rpc_work *w = &srv->works[i];

        w->srv = srv;
        if ((rv = nng_aio_alloc(&w->aio, cv_rpc_work_cb, w)) != 0 ||
            (rv = nng_ctx_open(&w->ctx, srv->sock)) != 0) {
            cv_rpc_nng_error(err, rv, "cannot set up context");
            goto fail;
        }
        srv->n_works++;
    }
    {
        nng_listener l;

        /* tls+tcp:// gets the deployment CA's certificates first. */
        if ((rv = nng_listener_create(&l, srv->sock, cfg->url)) != 0) {
            cv_error_set(err, CV_UNAVAILABLE, "cannot listen on %s: %s",
                         cfg->url, nng_strerror(rv));
            goto fail;
        }
        if (cv_tls_url(cfg->url) && cv_tls_setup_listener(l, err) != 0)
            goto fail;
        if ((rv = nng_listener_start(l, 0)) != 0) {
            cv_error_set(err, CV_UNAVAILABLE, "cannot listen on %s: %s",
                         cfg->url, nng_strerror(rv));
            goto fail;
        }
    }
    for (int i = 0; i < srv->cfg.db_workers; i++) {
        if (pthread_create(&srv->threads[i], NULL, cv_rpc_worker_main, srv) !=
            0) {
            cv_error_set(err, CV_INTERNAL, "cannot start worker thread");
            goto fail;
        }
        srv->n_threads++;
    }
    for (int i = 0; i < srv->n_works; i++)
        cv_rpc_work_recv(&srv->works[i]);
    *out = srv;
    return 0;

fail:
    cv_rpc_server_stop(srv);
    return err != NULL ? err->code : CV_INTERNAL;
}

void
cv_rpc_server_stop(cv_rpc_server *srv)
{
    if (srv == NULL)
        return;
    nng_close(srv->sock);
    pthread_mutex_lock(&srv->mtx);
    srv->stopping = 1;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->mtx);
    for (int i = 0; i < srv->n_threads; i++)
        pthread_join(srv->threads[i], NULL);
    if (srv->read_fallbacks > srv->read_fallbacks_logged)
        cv_log_write(CV_LOG_WARN, "CV-READ-REPLICA",
                     "%llu read(s) ran on the primary since the last note",
                     (unsigned long long)(srv->read_fallbacks -
                                          srv->read_fallbacks_logged));
    for (int i = 0; i < srv->n_works; i++) {
        cv_rpc_work *w = &srv->works[i];

        nng_aio_stop(w->aio);
        if (w->msg != NULL)
            nng_msg_free(w->msg);
        nng_aio_free(w->aio);
    }
    pthread_mutex_destroy(&srv->mtx);
    pthread_cond_destroy(&srv->cond);
    cv_replay_cache_free(srv->replay);
    cv_session_store_free(srv->sessions);
    free(srv->works);
    free(srv->threads);
    free(srv);
}
