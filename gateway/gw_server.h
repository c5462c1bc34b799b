/*
 * gw_server.h -- the REST gateway: libmicrohttpd in front of the NNG RPCs.
 *
 * Design notes:
 *  - MHD runs epoll with an internal thread pool. A request whose body is
 *    complete is transcoded (JSON -> protobuf), its connection suspended,
 *    and its RPC started; the RPC callback (an NNG thread) stores the
 *    reply and resumes the connection; MHD then calls the handler again,
 *    which transcodes the reply (protobuf -> JSON) and queues it. No thread
 *    ever waits for an RPC.
 *  - Every suspended connection is resumed exactly once, because every
 *    started RPC completes exactly once (cv_rpc.h callback contract).
 *  - Shutdown: quiesce (no new connections), close the RPC clients (pending
 *    calls complete and resume their connections), wait for in-flight
 *    calls to drain, then stop MHD.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "cv_error.h"
#include "gw_routes.h"

typedef struct gw_config {
    const char *host;                      /* listen address, IPv4 */
    int port;                              /* 0: any free port */
    const char *service_url[GW_SVC_COUNT]; /* NNG URLs of the services */
    int threads;                           /* MHD thread pool size */
    int rpc_timeout_ms;
    const char *console_dir; /* folder of the console page */
    const char *token_file;  /* NULL: sandbox mode, no authentication */
} gw_config;

typedef struct gw_server gw_server;

/* Starts the gateway; returns 0 and *out, or an error. */
int gw_server_start(const gw_config *cfg, gw_server **out, cv_error *err);

/* The port actually bound (useful when cfg->port was 0). */
int gw_server_port(const gw_server *gw);

/* Stops and frees; NULL-safe. */
void gw_server_stop(gw_server *gw);

#endif
