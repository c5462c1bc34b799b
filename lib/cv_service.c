/*
 * cv_service.c -- the common main loop of the three service daemons.
 */
#include "cv_service.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_chain.h"
#include "cv_env.h"
#include "cv_log.h"
#include "cv_principal.h"
#include "cv_time.h"
#include "cv_tlog.h"

/*
 * The evidence sequencer runs in every service process; the sequencer
 * lock lets one work at a time, so any replica may stop without the log
 * stalling. Appending leaves needs no secret. Signing does: only a
 * process given CAVRA_EVIDENCE_KEY_FILE (and CAVRA_WITNESS_DIR) also
 * signs checkpoints, on the same thread and under the same lock (so two
 * signers never race on the witness): at most every
 * CAVRA_CHECKPOINT_INTERVAL_MS (default 1000) while the tree grows, and
 * at least every CAVRA_CHECKPOINT_IDLE_MS (default 60000) when it does
 * not. Failover: run the key on two processes sharing the witness folder
 * (or the same volume); whichever holds the lock signs, the other takes
 * over on its next round when the first stops.
 */
/* A sequencer round chains at least this many events when there are;
 * under a backlog its batches grow to CAVRA_SEQUENCER_BATCH_MAX (default
 * 10000). */
#define CV_SEQUENCER_BATCH_MIN 500

typedef struct cv_sequencer {
    pthread_t thread;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    atomic_int stopping; /* read without the lock between batches */
    int interval_ms;
    const char *database_url;
} cv_sequencer;

/* One signing round when one is due; logs a failure once per streak. */
static void
cv_sequencer_sign(cv_db *db, const cv_tlog_keys *keys, int64_t *last_try_us,
                  int64_t *last_signed_us, bool *failing)
{
    static const long max_ms = 3600 * 1000L;
    int64_t now = cv_now_us();
    long every_ms, idle_ms;
    int64_t size;
    cv_error err;

    (void)cv_env_long("CAVRA_CHECKPOINT_INTERVAL_MS", 10, max_ms, 1000,
                      &every_ms);
    (void)cv_env_long("CAVRA_CHECKPOINT_IDLE_MS", 10, max_ms, 60000, &idle_ms);
    if (now - *last_try_us < every_ms * 1000LL)
        return;
    *last_try_us = now;
    cv_error_clear(&err);
    if (cv_tlog_sign(db, keys, now - *last_signed_us >= idle_ms * 1000LL, &size,
                     &err) != 0) {
        /* Witness refusals are logged as ERROR by cv_tlog_sign. */
        if (!*failing)
            CV_LOG(CV_LOG_WARN, "SEQ-SIGN", "evidence checkpoint: %s", err.msg);
        *failing = true;
        return;
    }
    *failing = false;
    if (size >= 0)
        *last_signed_us = now;
}

/* The sequencer's own statements. Folding the read projections' counter
 * deltas (migration 0014) rides on its rounds: reads then sum a few
 * hundred rows at most, and no request pays for it. */
static const cv_db_statement cv_sequencer_statements[] = {
    {"cv_read_compact", "SELECT read_projections_compact()"},
};

static void *
cv_sequencer_main(void *arg)
{
    cv_sequencer *seq = arg;
    cv_db db;
    cv_error err;
    int failing = 0;
    int64_t last_expire_us = 0, last_sign_try_us = 0, last_signed_us = 0;
    bool sign_failing = false;
    cv_chain_sequencer state = {0};
    const cv_tlog_keys *keys = cv_tlog_process_keys();
    long batch_max;
    int batch = CV_SEQUENCER_BATCH_MIN;

    (void)cv_env_long("CAVRA_SEQUENCER_BATCH_MAX", CV_SEQUENCER_BATCH_MIN,
                      1000000, 10000, &batch_max);

    if (cv_db_init(&db, seq->database_url, cv_sequencer_statements,
                   sizeof(cv_sequencer_statements) /
                       sizeof(cv_sequencer_statements[0]),
                   &err) != 0)
        return NULL;
    pthread_mutex_lock(&seq->mtx);
    while (!seq->stopping) {
        struct timespec until;
        int chained = 0;

        pthread_mutex_unlock(&seq->mtx);
        cv_error_clear(&err);
        if (cv_db_ensure(&db, &err) == 0) {
            /* Drain the backlog, one batch per transaction; a checkpoint
             * falls due between batches too, so a sustained write load
             * never starves the signer. */
            do {
                if (cv_chain_sequence_with(&db, &state, batch, &chained,
                                           &err) != 0)
                    break;
                /* A full batch means a backlog: the next one doubles (up
                 * to the maximum), so a backlog is drained in few large
                 * transactions while a steady trickle keeps small ones. */
                batch =
                    chained >= batch
                        ? (batch * 2 < batch_max ? batch * 2 : (int)batch_max)
                        : CV_SEQUENCER_BATCH_MIN;
                if (keys != NULL)
                    cv_sequencer_sign(&db, keys, &last_sign_try_us,
                                      &last_signed_us, &sign_failing);
                /* Between batches too: a long backlog must not let the
                 * deltas pile up. */
                if (cv_db_run(&db, "cv_read_compact", 0, NULL, &err) != 0)
                    break;
            } while (chained > 0 && !atomic_load(&seq->stopping));
            /* Housekeeping rides on the same thread: expired
             * Idempotency-Keys go about once a minute. */
            if (err.code == CV_OK &&
                cv_now_us() - last_expire_us > 60 * 1000000LL) {
                last_expire_us = cv_now_us();
                cv_db_run(&db, "cv_idem_expire", 0, NULL, &err);
            }
        }
        if (err.code != CV_OK && !failing)
            CV_LOG(CV_LOG_WARN, "SEQ-ROUND", "evidence sequencer: %s", err.msg);
        failing = err.code != CV_OK;
        pthread_mutex_lock(&seq->mtx);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)seq->interval_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (!seq->stopping)
            pthread_cond_timedwait(&seq->cond, &seq->mtx, &until);
    }
    pthread_mutex_unlock(&seq->mtx);
    cv_db_fini(&db);
    return NULL;
}

static int
cv_sequencer_start(cv_sequencer *seq, const char *database_url, int interval_ms)
{
    memset(seq, 0, sizeof(*seq));
    seq->database_url = database_url;
    seq->interval_ms = interval_ms;
    pthread_mutex_init(&seq->mtx, NULL);
    pthread_cond_init(&seq->cond, NULL);
    return pthread_create(&seq->thread, NULL, cv_sequencer_main, seq);
}

static void
cv_sequencer_stop(cv_sequencer *seq)
{
    pthread_mutex_lock(&seq->mtx);
    seq->stopping = 1;
    pthread_cond_signal(&seq->cond);
    pthread_mutex_unlock(&seq->mtx);
    pthread_join(seq->thread, NULL);
    pthread_mutex_destroy(&seq->mtx);
    pthread_cond_destroy(&seq->cond);
}

static int
cv_service_env_int(const char *name, int fallback)
{
    long n;

    (void)cv_env_long(name, 1, 1024, fallback, &n);
    return (int)n;
}

/* True for URLs that stay on this host: ipc://, inproc:// and TCP on a
 * loopback address. */
static bool
cv_service_url_local(const char *url)
{
    static const char *const local[] = {
        "ipc://",           "inproc://",    "tcp://127.",
        "tcp://localhost:", "tcp://[::1]:", "tcp4://127.",
    };

    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strncmp(url, local[i], strlen(local[i])) == 0)
            return true;
    return false;
}

/*
 * A plain tcp:// listener beyond loopback carries envelopes (signed, but
 * readable) across hosts: it needs CAVRA_RPC_ALLOW_PLAINTEXT=1 and is
 * logged as a warning. Returns 0 to go on, 1 to refuse.
 */
static int
cv_service_transport(const char *url)
{
    const char *allow = getenv("CAVRA_RPC_ALLOW_PLAINTEXT");

    if (cv_service_url_local(url) || strncmp(url, "tls+tcp://", 10) == 0)
        return 0;
    if (allow == NULL || strcmp(allow, "1") != 0) {
        CV_LOG(CV_LOG_ERROR, "SVC-TRANSPORT",
               "refusing plain %s beyond loopback: use a loopback or ipc:// "
               "URL, or set CAVRA_RPC_ALLOW_PLAINTEXT=1 on a network you "
               "trust",
               url);
        return 1;
    }
    CV_LOG(CV_LOG_WARN, "SVC-TRANSPORT",
           "RPCs on %s cross the network unencrypted (signed, but readable): "
           "CAVRA_RPC_ALLOW_PLAINTEXT=1",
           url);
    return 0;
}

/*
 * Who may call: the principals file named by $CAVRA_PRINCIPALS_FILE.
 * Without one the service would take any envelope from anyone, so it
 * refuses to start unless CAVRA_RPC_INSECURE_NO_AUTH=1 says so on purpose
 * (and then only on a local URL). Returns 0 (*out may be NULL) or 1.
 */
static int
cv_service_principals(const char *url, cv_principals **out)
{
    const char *path = getenv("CAVRA_PRINCIPALS_FILE");
    const char *insecure = getenv("CAVRA_RPC_INSECURE_NO_AUTH");
    cv_error err;

    *out = NULL;
    if (path != NULL && path[0] != '\0') {
        cv_error_clear(&err);
        if (cv_principals_load(path, out, &err) != 0) {
            CV_LOG(CV_LOG_ERROR, "SVC-PRINCIPALS", "%s", err.msg);
            return 1;
        }
        CV_LOG(CV_LOG_INFO, "SVC-PRINCIPALS",
               "%zu principals may call (from %s); envelopes must be signed",
               cv_principals_count(*out), path);
        return 0;
    }
    if (insecure == NULL || strcmp(insecure, "1") != 0) {
        CV_LOG(CV_LOG_ERROR, "SVC-PRINCIPALS",
               "no principals file: set CAVRA_PRINCIPALS_FILE (see "
               "docs/operations.md), or CAVRA_RPC_INSECURE_NO_AUTH=1 for an "
               "unauthenticated local sandbox");
        return 1;
    }
    if (!cv_service_url_local(url)) {
        CV_LOG(CV_LOG_ERROR, "SVC-PRINCIPALS",
               "CAVRA_RPC_INSECURE_NO_AUTH only works on a local URL, not %s",
               url);
        return 1;
    }
    CV_LOG(CV_LOG_WARN, "SVC-PRINCIPALS",
           "UNAUTHENTICATED SANDBOX: any local process may call this service "
           "as anyone (CAVRA_RPC_INSECURE_NO_AUTH=1)");
    return 0;
}

int
cv_service_run(cv_rpc_server_config *cfg, const char *url_env,
               const char *default_url, const cv_service_hooks *hooks)
{
    cv_rpc_server *srv = NULL;
    cv_principals *principals = NULL;
    cv_sequencer seq;
    int seq_on = 0;
    sigset_t set;
    cv_error err;
    int sig;
    const char *url = getenv(url_env);

    /* Block before any thread starts so only sigwait sees the signals. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    cfg->url = (url != NULL && url[0] != '\0') ? url : default_url;
    cfg->database_url = cv_db_default_url();
    cfg->contexts = cv_service_env_int("CAVRA_RPC_CONTEXTS", 64);
    cfg->db_workers = cv_service_env_int("CAVRA_DB_WORKERS", 4);
    if (hooks != NULL && hooks->extra_db_workers > 0)
        cfg->db_workers += hooks->extra_db_workers;
    if (cv_service_transport(cfg->url) != 0 ||
        cv_service_principals(cfg->url, &principals) != 0)
        return 1;
    cfg->principals = principals;

    cv_error_clear(&err);
    if (cv_rpc_server_start(cfg, &srv, &err) != 0) {
        CV_LOG(CV_LOG_ERROR, "SVC-START", "cannot start %s service: %s",
               cfg->service_name, err.msg);
        cv_principals_free(principals);
        return 1;
    }
    if (hooks != NULL && hooks->start != NULL &&
        hooks->start(cfg->service, &err) != 0) {
        CV_LOG(CV_LOG_ERROR, "SVC-START", "cannot start %s background work: %s",
               cfg->service_name, err.msg);
        cv_rpc_server_stop(srv);
        cv_principals_free(principals);
        return 1;
    }
    {
        const char *mode = getenv("CAVRA_SEQUENCER");

        seq_on = mode == NULL || strcmp(mode, "off") != 0;
        if (seq_on &&
            cv_sequencer_start(
                &seq, cfg->database_url,
                cv_service_env_int("CAVRA_SEQUENCER_INTERVAL_MS", 200)) != 0) {
            CV_LOG(CV_LOG_ERROR, "SVC-START",
                   "cannot start the evidence sequencer");
            seq_on = 0;
        }
    }
    CV_LOG(CV_LOG_INFO, "SVC-LISTEN", "%s service listening on %s",
           cfg->service_name, cfg->url);
    sigwait(&set, &sig);
    CV_LOG(CV_LOG_INFO, "SVC-STOP", "%s service stopping (signal %d)",
           cfg->service_name, sig);
    if (seq_on)
        cv_sequencer_stop(&seq);
    if (hooks != NULL && hooks->stop != NULL)
        hooks->stop(cfg->service);
    cv_rpc_server_stop(srv);
    cv_principals_free(principals);
    return 0;
}
