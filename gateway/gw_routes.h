/*
 * gw_routes.h -- the REST route table: each documented path is one RPC.
 *
 * The table is a view of the method registry (lib/cv_method.h): every
 * registry entry with a REST binding is one route, in registry order. A
 * route names its HTTP method, a path pattern whose `{name}` segments are
 * copied into the request message field of that name, the target
 * service, the RPC method and the request/reply message types. The
 * generic transcoder does the rest; there is no per-endpoint code.
 *
 * Design notes:
 *  - The view is built once, on first use, under pthread_once, and never
 *    changes or is freed afterwards, so any thread may read it without a
 *    lock. `gw_routes` and `gw_route_count` read like the array and count
 *    they used to be (gw_routes[i], &gw_routes[i], route - gw_routes).
 *  - A last segment `{name*}` takes the rest of the path, slashes and
 *    all (C2SP tile paths); OpenAPI shows it as `{name}`.
 *  - Matching: of the patterns that match a path, the one with a literal
 *    segment where the others have a `{name}` first wins (so
 *    ".../recovery-escalations/retry-plan" is not a plan id). The methods
 *    of the routes with that pattern are what the path accepts: another
 *    method is a 405 whose Allow lists them.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "cv_method.h"

/* The gateway's service slots are the registry's service ids. */
enum gw_service {
    GW_SVC_ACK = CV_SVC_ACK,
    GW_SVC_RETRY = CV_SVC_RETRY,
    GW_SVC_REPORT = CV_SVC_REPORT,
    GW_SVC_COUNT = CV_SVC_COUNT,
};

/* Registry entries with a REST binding may not exceed this. */
#define GW_ROUTE_MAX 64

typedef struct gw_route {
    const cv_method_info *method; /* the registry entry it is a view of */
    /* Copied or derived from *method once, for the request path: */
    const char *http_method; /* "GET", "POST" */
    const char *pattern;
    enum gw_service service;
    const char *rpc;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
    int status;          /* on success: 201 if it stores a record, else 200 */
    unsigned int roles;  /* CV_ROLE_* bits that may call it (admin always) */
    const char *summary; /* one line, for OpenAPI */
    int timeout_ms;      /* 0: the gateway default (CAVRA_RPC_TIMEOUT_MS) */
} gw_route;

/*
 * The route table, built from the registry on first call (thread-safe);
 * *count (when not NULL) gets the number of routes. The table lives until
 * exit. A registry with more than GW_ROUTE_MAX REST bindings, or a binding
 * without a path, is a build error and aborts with a message.
 */
const gw_route *gw_route_table(size_t *count);

/* The number of routes (gw_route_table's count). */
size_t gw_route_table_count(void);

/* Read-only views with the old array's spelling. */
#define gw_routes      (gw_route_table(NULL))
#define gw_route_count (gw_route_table_count())

#define GW_MAX_PATH_PARAMS 4

typedef struct gw_path_param {
    char name[32];
    char value[256];
} gw_path_param;

/*
 * Percent-decodes len bytes of s into out (outlen bytes with the NUL).
 * Returns 0, or -1 when an escape is malformed, the result does not fit,
 * or it decodes to NUL (or to '/' unless allow_slash). The gateway sees
 * URLs undecoded (MHD's unescaping is turned off), so this is the one
 * place paths and query values are decoded, exactly once.
 */
int gw_percent_decode(const char *s, size_t len, char *out, size_t outlen,
                      bool allow_slash);

/*
 * Finds the route for (method, path). The path resolves to the most
 * literal pattern that matches it (see the design notes). Returns the
 * route of that pattern under method and fills params (percent-decoded);
 * NULL otherwise. *path_known is set whenever the path resolved (so NULL
 * with *path_known is a 405), and allow (allow_len bytes, may be 0) gets
 * the methods that path accepts ("GET, POST"), in registry order.
 */
const gw_route *gw_route_match(const char *method, const char *path,
                               gw_path_param *params, size_t *n_params,
                               bool *path_known, char *allow, size_t allow_len);

#endif
