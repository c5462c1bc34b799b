/*
 * gw_metrics.h -- request counters and latency histograms of the gateway,
 * exposed at GET /metrics in the Prometheus text format.
 *
 * Lock-free: every counter is a C11 atomic, so recording a request costs a
 * few relaxed increments on the MHD thread that answered it.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Labels of requests that are not routes of the table. */
enum gw_metric_builtin {
    GW_METRIC_HEALTHZ = 0,
    GW_METRIC_READYZ,
    GW_METRIC_METRICS,
    GW_METRIC_OPENAPI,
    GW_METRIC_CONSOLE,
    GW_METRIC_UNMATCHED,
    GW_METRIC_BUILTIN_COUNT,
};

/* Why the gateway answered 503 (cavra_http_503_total{cause}). */
enum gw_503_cause {
    GW_503_SERVICE_UNAVAILABLE = 0, /* no service connected, or the call was
                                       lost or cancelled in transport */
    GW_503_DATABASE,   /* the service answered UNAVAILABLE: its database
                          is down or its transaction retries ran out */
    GW_503_OVERLOADED, /* too many requests waiting for services */
    GW_503_STOPPING,   /* the gateway is shutting down */
    GW_503_NOT_READY,  /* GET /readyz: a service or the database is down */
    GW_503_CAUSE_COUNT,
};

/* The label value of a cause ("service_unavailable", ...). */
const char *gw_503_cause_name(enum gw_503_cause cause);

/* Counts one 503 answer. */
void gw_metrics_503(enum gw_503_cause cause);

/* Counts one TCP connection refused by the per-client or global
 * connection limit (MHD closes it before any request). */
void gw_metrics_connection_rejected(void);

/* Records one answered request: route index (>= 0) or -1 - builtin,
 * status and duration in microseconds. */
void gw_metrics_record(int route_index, int builtin, unsigned int status,
                       int64_t duration_us);

/* Counts a routed RPC call that ended UNAVAILABLE: no service connected,
 * lost or cancelled in transport, or answered UNAVAILABLE by the service. */
void gw_metrics_rpc_unavailable(void);

/* Renders the text exposition into a malloc'd string (caller frees);
 * in_flight is the current number of suspended requests, connections the
 * number of open client connections. */
char *gw_metrics_render(int in_flight, int connections, size_t *len);

#endif
