/*
 * cavra-gateway -- the REST gateway and Evidence Console server.
 *
 * Run: CAVRA_GATEWAY_HOST=127.0.0.1 CAVRA_GATEWAY_PORT=8000 \
 *      CAVRA_ACK_URL=tcp://127.0.0.1:7101 CAVRA_RETRY_URL=... \
 *      CAVRA_REPORT_URL=... ./cavra-gateway
 * Without a token file (CAVRA_TOKEN_FILE) it is a local sandbox and
 * refuses to listen anywhere but loopback. Stops on SIGINT/SIGTERM.
 *
 * Connection limits (see gw_server.h):
 *   CAVRA_GATEWAY_MAX_CONNECTIONS     all clients together (default 16384)
 *   CAVRA_GATEWAY_PER_IP_CONNECTIONS  one client address (default 256)
 *   CAVRA_GATEWAY_IDLE_TIMEOUT_S      a silent connection is closed after
 *                                     this many seconds (default 5)
 *   CAVRA_GATEWAY_MAX_IN_FLIGHT       requests waiting for services; more
 *                                     are answered 503 (default 4096)
 * The open file limit is raised to its hard limit at start-up.
 *
 * Browser safety (see gw_server.h):
 *   CAVRA_GATEWAY_ALLOWED_HOSTS  comma-separated host[:port] the Host
 *                                header may name; default: the listen
 *                                address and port, plus 127.0.0.1,
 *                                localhost and [::1] with that port in
 *                                sandbox mode; others get 421. POSTs from
 *                                a foreign Origin get 403.
 *   CAVRA_GATEWAY_CORS_ORIGINS   comma-separated http(s)://host[:port]
 *                                origins allowed to call from a browser
 *                                (CORS headers, preflight); default none.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cv_env.h"
#include "cv_log.h"
#include "gw_server.h"

#ifndef GW_DEFAULT_CONSOLE_DIR
#define GW_DEFAULT_CONSOLE_DIR "console"
#endif

static const char *
gw_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : fallback;
}

/* A positive integer from the environment, fallback when unset; -1 when
 * set to something else. */
static long
gw_env_count(const char *name, long fallback)
{
    long n;

    if (cv_env_long(name, 1, 1000000, fallback, &n) != 0) {
        CV_LOG(CV_LOG_ERROR, "GW-CONFIG", "%s must be an integer in 1..1000000",
               name);
        return -1;
    }
    return n;
}

/* Every connection is a file descriptor: take all the hard limit allows. */
static void
gw_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        CV_LOG(CV_LOG_WARN, "GW-CONFIG", "cannot raise the open file limit");
}

static int
gw_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0;
}

int
main(void)
{
    gw_config cfg;
    gw_server *gw = NULL;
    cv_error err;
    sigset_t set;
    int sig;
    char *end;
    long port;

    cv_log_init("cavra-gateway");
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&cfg, 0, sizeof(cfg));
    cfg.host = gw_env("CAVRA_GATEWAY_HOST", "127.0.0.1");
    port = strtol(gw_env("CAVRA_GATEWAY_PORT", "8000"), &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) {
        CV_LOG(CV_LOG_ERROR, "GW-CONFIG", "CAVRA_GATEWAY_PORT is not a port");
        return 1;
    }
    cfg.port = (int)port;
    cfg.service_url[GW_SVC_ACK] =
        gw_env("CAVRA_ACK_URL", "tcp://127.0.0.1:7101");
    cfg.service_url[GW_SVC_RETRY] =
        gw_env("CAVRA_RETRY_URL", "tcp://127.0.0.1:7102");
    cfg.service_url[GW_SVC_REPORT] =
        gw_env("CAVRA_REPORT_URL", "tcp://127.0.0.1:7103");
    cfg.threads =
        atoi(gw_env("CAVRA_GATEWAY_THREADS", "0")); /* 0: one per CPU */
    cfg.rpc_timeout_ms = atoi(gw_env("CAVRA_RPC_TIMEOUT_MS", "10000"));
    cfg.console_dir = gw_env("CAVRA_CONSOLE_DIR", GW_DEFAULT_CONSOLE_DIR);
    {
        long maxc = gw_env_count("CAVRA_GATEWAY_MAX_CONNECTIONS", 16384);
        long per_ip = gw_env_count("CAVRA_GATEWAY_PER_IP_CONNECTIONS", 256);
        long idle = gw_env_count("CAVRA_GATEWAY_IDLE_TIMEOUT_S", 5);
        long flight = gw_env_count("CAVRA_GATEWAY_MAX_IN_FLIGHT", 4096);

        if (maxc < 0 || per_ip < 0 || idle < 0 || flight < 0)
            return 1;
        cfg.max_connections = (int)maxc;
        cfg.per_ip_connections = (int)per_ip;
        cfg.idle_timeout_s = (int)idle;
        cfg.max_in_flight = (int)flight;
    }
    gw_raise_nofile();
    cfg.allowed_hosts = gw_env("CAVRA_GATEWAY_ALLOWED_HOSTS", NULL);
    cfg.cors_origins = gw_env("CAVRA_GATEWAY_CORS_ORIGINS", NULL);

    cfg.token_file = getenv("CAVRA_TOKEN_FILE");
    if (cfg.token_file != NULL && cfg.token_file[0] == '\0')
        cfg.token_file = NULL;
    if (cfg.token_file == NULL) {
        if (!gw_is_loopback(cfg.host)) {
            CV_LOG(CV_LOG_ERROR, "GW-SANDBOX",
                   "no CAVRA_TOKEN_FILE: refusing to listen on %s; without "
                   "tokens the gateway only listens on loopback",
                   cfg.host);
            return 1;
        }
        CV_LOG(CV_LOG_INFO, "GW-SANDBOX",
               "no CAVRA_TOKEN_FILE: local sandbox mode, loopback only, "
               "no authentication");
    }
    cv_error_clear(&err);
    if (gw_server_start(&cfg, &gw, &err) != 0) {
        CV_LOG(CV_LOG_ERROR, "GW-START", "cannot start gateway: %s", err.msg);
        return 1;
    }
    CV_LOG(CV_LOG_INFO, "GW-LISTEN", "gateway listening on http://%s:%d/",
           cfg.host, gw_server_port(gw));
    sigwait(&set, &sig);
    CV_LOG(CV_LOG_INFO, "GW-STOP", "gateway stopping (signal %d)", sig);
    gw_server_stop(gw);
    return 0;
}
