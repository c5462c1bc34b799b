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
 *  - Connection floods: one client (IP address) may hold at most
 *    per_ip_connections connections, all clients together max_connections
 *    (RLIMIT_NOFILE permitting); a connection that stays silent for
 *    idle_timeout_s without completing a request is closed. Suspended
 *    connections (waiting for an RPC) have no idle timeout: the RPC
 *    timeout bounds them. MHD refuses connections over a limit by closing
 *    them at once, so a flooding client cannot fill the accept queue that
 *    other clients wait in. How MHD 0.9.75 (epoll, thread pool) behaves
 *    under a flood: every pool thread has the listening socket in its
 *    epoll set (level-triggered) and accepts up to 10 connections a turn;
 *    the global limit is split evenly over the threads, and a thread at
 *    its share drops the listening socket until one of its connections
 *    closes (the old 1,000/30 s setting made /readyz wait 30 s that way);
 *    a per-IP refusal happens right after accept and never stops
 *    accepting; idle connections sit only in a timeout list ordered by
 *    last activity, so they cost a turn nothing.
 *  - Shutdown (gw_server_stop), in this order: quiesce (no new
 *    connections); mark the server stopping, after which no RPC starts
 *    (requests still arriving on open connections get 503); let in-flight
 *    calls finish for a short grace period; close the RPC clients (the
 *    rest complete as cancelled and resume their connections); wait until
 *    every callback has resumed its connection; only then stop MHD (which
 *    must not see a suspended connection) and free the rest. No MHD thread
 *    touches an RPC client after it is closed: starting a call holds a
 *    read lock that closing the clients takes for writing.
 *  - Browser safety (a web page the operator visits must not drive the
 *    gateway): the Host header must be one the gateway serves, else 421
 *    (DNS rebinding); a POST carrying an Origin that is not the gateway's
 *    own is 403; every POST declares Content-Type: application/json,
 *    empty body included, else 415 (a no-cors fetch cannot send it); a
 *    Content-Length over 64 KiB is 413 before any byte of the body is
 *    read. Host and Origin are judged on the first call of a request,
 *    before its body. No CORS headers are sent, except to an origin
 *    listed in cfg.cors_origins (which may then POST too). A request without a
 *    Host (only HTTP/1.0 may omit it) is served: browsers always send
 *    one, so it is no rebinding vector. /healthz and /readyz skip the
 *    Host check (container probes use whatever name they have).
 *  - Every request leaves one JSON line (GW-REQUEST) at info, or at warn
 *    for 5xx: method, route pattern, status, latency, service, actor;
 *    never bodies, tokens or query strings.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "cv_error.h"
#include "gw_routes.h"

typedef struct gw_config {
    const char *host;                      /* listen address, IPv4 */
    int port;                              /* 0: any free port */
    const char *service_url[GW_SVC_COUNT]; /* NNG URLs of the services */
    int threads; /* MHD thread pool size; 0: one per CPU */
    int rpc_timeout_ms;
    const char *console_dir; /* folder of the console page */
    const char *token_file;  /* NULL: sandbox mode, no authentication */
    /* Connection limits (0: the default of each). */
    int max_connections;    /* all clients; default 16384 */
    int per_ip_connections; /* one client address; default 256 */
    int idle_timeout_s;     /* silent connection closed after; default 5 */
    int max_in_flight;      /* requests waiting for services; default 4096;
                               more are answered 503 (overloaded) */
    /* Browser safety. Comma-separated host[:port] the Host header may
     * name (NULL: the listen address and port, plus the loopback names
     * with the gateway's port in sandbox mode; a wildcard listen address
     * without a list checks no Host, the token check still applies). */
    const char *allowed_hosts;
    /* Comma-separated http(s)://host[:port] origins that may call from
     * a browser (CORS); NULL: none, no CORS header is ever sent. */
    const char *cors_origins;
} gw_config;

typedef struct gw_server gw_server;

/* Starts the gateway; returns 0 and *out, or an error. */
int gw_server_start(const gw_config *cfg, gw_server **out, cv_error *err);

/* The port actually bound (useful when cfg->port was 0). */
int gw_server_port(const gw_server *gw);

/* Stops and frees; NULL-safe. */
void gw_server_stop(gw_server *gw);

#endif
