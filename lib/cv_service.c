/*
 * cv_service.c -- the common main loop of the three service daemons.
 */
#include "cv_service.h"

#include <signal.h>
#include <stdlib.h>

#include "cv_log.h"

static int
cv_service_env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (v == NULL || v[0] == '\0')
        return fallback;
    n = strtol(v, &end, 10);
    return (*end == '\0' && n > 0 && n <= 1024) ? (int)n : fallback;
}

int
cv_service_run(cv_rpc_server_config *cfg, const char *url_env,
               const char *default_url, const cv_service_hooks *hooks)
{
    cv_rpc_server *srv = NULL;
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
    cfg->contexts = cv_service_env_int("CAVRA_RPC_CONTEXTS", 16);
    cfg->db_workers = cv_service_env_int("CAVRA_DB_WORKERS", 4);

    cv_error_clear(&err);
    if (cv_rpc_server_start(cfg, &srv, &err) != 0) {
        CV_LOG(CV_LOG_ERROR, "SVC-START", "cannot start %s service: %s",
               cfg->service_name, err.msg);
        return 1;
    }
    if (hooks != NULL && hooks->start != NULL &&
        hooks->start(cfg->service, &err) != 0) {
        CV_LOG(CV_LOG_ERROR, "SVC-START", "cannot start %s background work: %s",
               cfg->service_name, err.msg);
        cv_rpc_server_stop(srv);
        return 1;
    }
    CV_LOG(CV_LOG_INFO, "SVC-LISTEN", "%s service listening on %s",
           cfg->service_name, cfg->url);
    sigwait(&set, &sig);
    CV_LOG(CV_LOG_INFO, "SVC-STOP", "%s service stopping (signal %d)",
           cfg->service_name, sig);
    if (hooks != NULL && hooks->stop != NULL)
        hooks->stop(cfg->service);
    cv_rpc_server_stop(srv);
    return 0;
}
