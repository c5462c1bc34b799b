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

/* Records one answered request: route index (>= 0) or -1 - builtin,
 * status and duration in microseconds. */
void gw_metrics_record(int route_index, int builtin, unsigned int status,
                       int64_t duration_us);

/* Counts a call that found its service unreachable. */
void gw_metrics_rpc_unavailable(void);

/* Renders the text exposition into a malloc'd string (caller frees);
 * in_flight is the current number of suspended requests. */
char *gw_metrics_render(int in_flight, size_t *len);

#endif
