/*
 * gw_metrics.c -- Prometheus text exposition of the gateway's counters.
 */
#include "gw_metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_routes.h"

#define GW_METRIC_MAX_ROUTES 32

static const unsigned int gw_metric_statuses[] = {
    200, 201, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 501, 503, 504};
#define GW_METRIC_STATUS_COUNT                                                 \
    (sizeof(gw_metric_statuses) / sizeof(gw_metric_statuses[0]))
#define GW_METRIC_STATUS_OTHER GW_METRIC_STATUS_COUNT

/* Histogram bucket upper bounds, in seconds and microseconds. */
static const double gw_metric_bounds_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,    2.5,   5,    10};
#define GW_METRIC_BUCKETS                                                      \
    (sizeof(gw_metric_bounds_s) / sizeof(gw_metric_bounds_s[0]))

#define GW_METRIC_SLOTS (GW_METRIC_MAX_ROUTES + GW_METRIC_BUILTIN_COUNT)

static atomic_ullong gw_metric_requests[GW_METRIC_SLOTS]
                                       [GW_METRIC_STATUS_COUNT + 1];
static atomic_ullong gw_metric_buckets[GW_METRIC_SLOTS][GW_METRIC_BUCKETS];
static atomic_ullong gw_metric_count[GW_METRIC_SLOTS];
static atomic_ullong gw_metric_sum_us[GW_METRIC_SLOTS];
static atomic_ullong gw_metric_unavailable;
static atomic_ullong gw_metric_503[GW_503_CAUSE_COUNT];
static atomic_ullong gw_metric_conn_rejected;

static const char *const gw_metric_503_names[GW_503_CAUSE_COUNT] = {
    "service_unavailable", "database", "overloaded", "stopping", "not_ready"};

static const char *const gw_metric_builtin_names[] = {
    "healthz", "readyz", "metrics", "openapi", "console", "unmatched"};

static int
gw_metric_slot(int route_index, int builtin)
{
    if (route_index >= 0 && route_index < GW_METRIC_MAX_ROUTES)
        return route_index;
    if (builtin < 0 || builtin >= GW_METRIC_BUILTIN_COUNT)
        builtin = GW_METRIC_UNMATCHED;
    return GW_METRIC_MAX_ROUTES + builtin;
}

void
gw_metrics_record(int route_index, int builtin, unsigned int status,
                  int64_t duration_us)
{
    int slot = gw_metric_slot(route_index, builtin);
    size_t s = GW_METRIC_STATUS_OTHER;

    for (size_t i = 0; i < GW_METRIC_STATUS_COUNT; i++)
        if (gw_metric_statuses[i] == status)
            s = i;
    atomic_fetch_add_explicit(&gw_metric_requests[slot][s], 1,
                              memory_order_relaxed);
    if (duration_us < 0)
        duration_us = 0;
    for (size_t b = 0; b < GW_METRIC_BUCKETS; b++)
        if ((double)duration_us <= gw_metric_bounds_s[b] * 1e6)
            atomic_fetch_add_explicit(&gw_metric_buckets[slot][b], 1,
                                      memory_order_relaxed);
    atomic_fetch_add_explicit(&gw_metric_count[slot], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&gw_metric_sum_us[slot],
                              (unsigned long long)duration_us,
                              memory_order_relaxed);
}

void
gw_metrics_rpc_unavailable(void)
{
    atomic_fetch_add_explicit(&gw_metric_unavailable, 1, memory_order_relaxed);
}

const char *
gw_503_cause_name(enum gw_503_cause cause)
{
    if ((int)cause < 0 || cause >= GW_503_CAUSE_COUNT)
        return "unknown";
    return gw_metric_503_names[cause];
}

void
gw_metrics_503(enum gw_503_cause cause)
{
    if ((int)cause < 0 || cause >= GW_503_CAUSE_COUNT)
        return;
    atomic_fetch_add_explicit(&gw_metric_503[cause], 1, memory_order_relaxed);
}

void
gw_metrics_connection_rejected(void)
{
    atomic_fetch_add_explicit(&gw_metric_conn_rejected, 1,
                              memory_order_relaxed);
}

/* Appends printf output to a growing buffer; returns -1 on OOM. */
static int gw_metrics_append(char **buf, size_t *len, size_t *cap,
                             const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
gw_metrics_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return 0;
        }
        {
            size_t cap2 = (*cap + (size_t)n + 1) * 2;
            char *b2 = realloc(*buf, cap2);

            if (b2 == NULL)
                return -1;
            *buf = b2;
            *cap = cap2;
        }
    }
}

static const char *
gw_metric_label(int slot)
{
    if (slot < GW_METRIC_MAX_ROUTES)
        return (size_t)slot < gw_route_count ? gw_routes[slot].rpc : NULL;
    return gw_metric_builtin_names[slot - GW_METRIC_MAX_ROUTES];
}

char *
gw_metrics_render(int in_flight, int connections, size_t *len)
{
    size_t cap = 8192;
    char *buf = malloc(cap);
    int rv = 0;

    *len = 0;
    if (buf == NULL)
        return NULL;
    buf[0] = '\0';
    rv |= gw_metrics_append(
        &buf, len, &cap,
        "# HELP cavra_http_requests_total HTTP requests answered, by route "
        "and status.\n# TYPE cavra_http_requests_total counter\n");
    for (int slot = 0; slot < GW_METRIC_SLOTS; slot++) {
        const char *label = gw_metric_label(slot);

        for (size_t s = 0; label != NULL && s <= GW_METRIC_STATUS_COUNT; s++) {
            unsigned long long v = atomic_load_explicit(
                &gw_metric_requests[slot][s], memory_order_relaxed);
            char status[8];

            if (v == 0)
                continue;
            if (s < GW_METRIC_STATUS_COUNT)
                snprintf(status, sizeof(status), "%u", gw_metric_statuses[s]);
            else
                snprintf(status, sizeof(status), "other");
            rv |= gw_metrics_append(
                &buf, len, &cap,
                "cavra_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                label, status, v);
        }
    }
    rv |= gw_metrics_append(
        &buf, len, &cap,
        "# HELP cavra_http_request_duration_seconds Time from request to "
        "answer.\n# TYPE cavra_http_request_duration_seconds histogram\n");
    for (int slot = 0; slot < GW_METRIC_SLOTS; slot++) {
        const char *label = gw_metric_label(slot);
        unsigned long long count =
            atomic_load_explicit(&gw_metric_count[slot], memory_order_relaxed);

        if (label == NULL || count == 0)
            continue;
        for (size_t b = 0; b < GW_METRIC_BUCKETS; b++)
            rv |= gw_metrics_append(
                &buf, len, &cap,
                "cavra_http_request_duration_seconds_bucket{route=\"%s\","
                "le=\"%g\"} %llu\n",
                label, gw_metric_bounds_s[b],
                atomic_load_explicit(&gw_metric_buckets[slot][b],
                                     memory_order_relaxed));
        rv |= gw_metrics_append(
            &buf, len, &cap,
            "cavra_http_request_duration_seconds_bucket{route=\"%s\","
            "le=\"+Inf\"} %llu\n"
            "cavra_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
            "cavra_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
            label, count, label,
            (double)atomic_load_explicit(&gw_metric_sum_us[slot],
                                         memory_order_relaxed) /
                1e6,
            label, count);
    }
    rv |= gw_metrics_append(
        &buf, len, &cap,
        "# HELP cavra_http_in_flight Requests waiting for a service.\n"
        "# TYPE cavra_http_in_flight gauge\ncavra_http_in_flight %d\n"
        "# HELP cavra_rpc_unavailable_total Routed calls that ended "
        "UNAVAILABLE (no service, lost in transport, or answered so).\n"
        "# TYPE cavra_rpc_unavailable_total counter\n"
        "cavra_rpc_unavailable_total %llu\n",
        in_flight,
        atomic_load_explicit(&gw_metric_unavailable, memory_order_relaxed));
    /* Every cause is always listed, so a rate() over it starts at 0. */
    rv |= gw_metrics_append(
        &buf, len, &cap,
        "# HELP cavra_http_503_total Answers of 503, by cause.\n"
        "# TYPE cavra_http_503_total counter\n");
    for (int c = 0; c < GW_503_CAUSE_COUNT; c++)
        rv |= gw_metrics_append(
            &buf, len, &cap, "cavra_http_503_total{cause=\"%s\"} %llu\n",
            gw_metric_503_names[c],
            atomic_load_explicit(&gw_metric_503[c], memory_order_relaxed));
    rv |= gw_metrics_append(
        &buf, len, &cap,
        "# HELP cavra_http_connections_open Client connections open.\n"
        "# TYPE cavra_http_connections_open gauge\n"
        "cavra_http_connections_open %d\n"
        "# HELP cavra_http_connections_rejected_total TCP connections closed "
        "at once by the per-client or global connection limit.\n"
        "# TYPE cavra_http_connections_rejected_total counter\n"
        "cavra_http_connections_rejected_total %llu\n",
        connections,
        atomic_load_explicit(&gw_metric_conn_rejected, memory_order_relaxed));
    if (rv != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
