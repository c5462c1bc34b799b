/*
 * cv_service.h -- start-up of a service daemon: configuration from the
 * environment, the RPC server, and waiting for SIGINT/SIGTERM.
 *
 * Environment: CAVRA_DATABASE_URL, <URL_ENV> (the service's listen URL),
 * CAVRA_RPC_CONTEXTS (default 64), CAVRA_DB_WORKERS (default 4),
 * CAVRA_SEQUENCER (off disables this process's evidence sequencer),
 * CAVRA_SEQUENCER_INTERVAL_MS (default 200), and for the checkpoint signer
 * CAVRA_EVIDENCE_KEY_FILE, CAVRA_EVIDENCE_ORIGIN, CAVRA_WITNESS_DIR,
 * CAVRA_CHECKPOINT_INTERVAL_MS (default 1000), CAVRA_CHECKPOINT_IDLE_MS
 * (default 60000).
 *
 * Every service also runs the evidence sequencer (cv_chain.h) in a
 * background thread; the sequencer lock makes one of them work at a time.
 * A process given the evidence key also signs checkpoints (cv_tlog.h).
 */
#ifndef CV_SERVICE_H
#define CV_SERVICE_H

#include "cv_rpc.h"

/* Optional hooks run after the server started / before it stops (for
 * background work such as the report scheduler). Each returns 0 or an
 * error. */
typedef struct cv_service_hooks {
    int (*start)(void *service, cv_error *err);
    void (*stop)(void *service);
    /* Database workers added on top of CAVRA_DB_WORKERS for a method the
     * service runs one at a time (report: evidence verification), so the
     * slow method never takes a worker the other methods count on. */
    int extra_db_workers;
} cv_service_hooks;

/*
 * Runs a service until SIGINT or SIGTERM: blocks the signals, reads the
 * environment into cfg (url from url_env, else default_url), starts the
 * server and the hooks, waits, stops everything. Returns the process exit
 * status (0 after a clean stop, 1 when start-up failed). Logs its own
 * start-up and shutdown lines.
 */
int cv_service_run(cv_rpc_server_config *cfg, const char *url_env,
                   const char *default_url, const cv_service_hooks *hooks);

#endif
