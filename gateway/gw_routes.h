/*
 * gw_routes.h -- the REST route table: each documented path is one RPC.
 *
 * A route names its HTTP method, a path pattern whose `{name}` segments
 * are copied into the request message field of that name, the target
 * service, the RPC method and the request/reply message types. The
 * generic transcoder does the rest; there is no per-endpoint code.
 */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

enum gw_service {
    GW_SVC_ACK = 0,
    GW_SVC_RETRY = 1,
    GW_SVC_REPORT = 2,
    GW_SVC_COUNT = 3,
};

typedef struct gw_route {
    const char *http_method; /* "GET", "POST" */
    const char *pattern;
    enum gw_service service;
    const char *rpc;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
    int status;          /* on success: 201 or 200 */
    unsigned int roles;  /* GW_ROLE_* bits that may call it (admin always) */
    const char *summary; /* one line, for OpenAPI */
    int timeout_ms;      /* 0: the gateway default (CAVRA_RPC_TIMEOUT_MS) */
} gw_route;

extern const gw_route gw_routes[];
extern const size_t gw_route_count;

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
 * Finds the route for (method, path). Returns the route and fills params
 * (percent-decoded) when both match; NULL otherwise, with *path_known set
 * when some route matched the path under another method (a 405), and
 * allow filled with the methods that path accepts ("GET, POST").
 */
const gw_route *gw_route_match(const char *method, const char *path,
                               gw_path_param *params, size_t *n_params,
                               bool *path_known, char *allow, size_t allow_len);

#endif
