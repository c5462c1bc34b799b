/*
 * gw_routes.c -- the route table (a view of the method registry) and the
 * path matcher.
 */
#include "gw_routes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gw_route gw_route_storage[GW_ROUTE_MAX];
static size_t gw_route_n;
static pthread_once_t gw_route_once = PTHREAD_ONCE_INIT;

/* Fills gw_route_storage from the registry; runs once. */
static void
gw_route_build_once(void)
{
    for (size_t i = 0; i < cv_method_count; i++) {
        const cv_method_info *m = &cv_methods[i];
        gw_route *r;

        if (m->http_method == NULL)
            continue; /* RPC-only */
        if (gw_route_n >= GW_ROUTE_MAX || m->path == NULL ||
            m->path[0] != '/' || (unsigned)m->service >= GW_SVC_COUNT) {
            /* A registry row the gateway cannot serve: a programming
             * error caught by the first test that touches routes. */
            fprintf(stderr,
                    "gw_routes: registry entry %s has a REST binding the "
                    "gateway cannot serve (path, service or over %d "
                    "routes)\n",
                    m->name, GW_ROUTE_MAX);
            abort();
        }
        r = &gw_route_storage[gw_route_n++];
        r->method = m;
        r->http_method = m->http_method;
        r->pattern = m->path;
        r->service = (enum gw_service)m->service;
        r->rpc = m->name;
        r->request = m->request;
        r->reply = m->reply;
        r->status = m->stores_record ? 201 : 200;
        r->roles = m->roles;
        r->summary = m->summary != NULL ? m->summary : "";
        r->timeout_ms = m->timeout_ms;
    }
}

const gw_route *
gw_route_table(size_t *count)
{
    pthread_once(&gw_route_once, gw_route_build_once);
    if (count != NULL)
        *count = gw_route_n;
    return gw_route_storage;
}

size_t
gw_route_table_count(void)
{
    size_t n;

    gw_route_table(&n);
    return n;
}

static int
gw_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
gw_percent_decode(const char *s, size_t len, char *out, size_t outlen,
                  bool allow_slash)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            hi = gw_hex(s[i + 1]);
            lo = gw_hex(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
            if (c == 0 || (c == '/' && !allow_slash))
                return -1;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* True when the len bytes at seg are a `{name}` segment. */
static bool
gw_segment_is_param(const char *seg, size_t len)
{
    return len > 2 && seg[0] == '{' && seg[len - 1] == '}';
}

/* True when the len bytes at seg are a `{name*}` segment (the rest of
 * the path). */
static bool
gw_segment_is_rest(const char *seg, size_t len)
{
    return len > 3 && seg[0] == '{' && seg[len - 2] == '*' &&
           seg[len - 1] == '}';
}

/* Matches path against one pattern, segment by segment. */
static bool
gw_pattern_match(const char *pattern, const char *path, gw_path_param *params,
                 size_t *n_params)
{
    const char *p = pattern, *q = path;

    *n_params = 0;
    while (*p != '\0' && *q != '\0') {
        const char *pe = strchr(p + 1, '/'), *qe = strchr(q + 1, '/');
        size_t pl, ql;

        if (*p != '/' || *q != '/')
            return false;
        p++;
        q++;
        pl = pe != NULL ? (size_t)(pe - p) : strlen(p);
        ql = qe != NULL ? (size_t)(qe - q) : strlen(q);
        if (gw_segment_is_rest(p, pl) && p[pl] == '\0') {
            /* `{name*}`, last: the rest of the path, slashes included
             * (an escaped %2F is still refused). */
            gw_path_param *pp;

            ql = strlen(q);
            if (ql == 0 || *n_params >= GW_MAX_PATH_PARAMS)
                return false;
            pp = &params[(*n_params)++];
            snprintf(pp->name, sizeof(pp->name), "%.*s", (int)(pl - 3), p + 1);
            return gw_percent_decode(q, ql, pp->value, sizeof(pp->value),
                                     false) == 0;
        }
        if (gw_segment_is_param(p, pl)) {
            gw_path_param *pp;

            if (ql == 0 || *n_params >= GW_MAX_PATH_PARAMS)
                return false;
            pp = &params[(*n_params)++];
            snprintf(pp->name, sizeof(pp->name), "%.*s", (int)(pl - 2), p + 1);
            if (gw_percent_decode(q, ql, pp->value, sizeof(pp->value), false) !=
                0)
                return false;
        } else if (memchr(q, '%', ql) != NULL) {
            /* "retry%2Dplan" is "retry-plan" (RFC 3986 6.2.2.2): literal
             * segments compare decoded, like parameters. */
            char seg[256];

            if (gw_percent_decode(q, ql, seg, sizeof(seg), false) != 0 ||
                strlen(seg) != pl || strncmp(p, seg, pl) != 0)
                return false;
        } else if (pl != ql || strncmp(p, q, pl) != 0) {
            return false;
        }
        p += pl;
        q += ql;
    }
    return *p == '\0' && *q == '\0';
}

/*
 * Compares the shapes of two patterns that match the same path: > 0 when
 * a has a literal segment where b first has a parameter (a is the more
 * specific), < 0 for the reverse, 0 when they agree segment by segment.
 */
static int
gw_pattern_cmp(const char *a, const char *b)
{
    while (*a == '/' && *b == '/') {
        size_t al = strcspn(a + 1, "/"), bl = strcspn(b + 1, "/");
        bool ap = gw_segment_is_param(a + 1, al),
             bp = gw_segment_is_param(b + 1, bl);

        if (ap != bp)
            return ap ? -1 : 1;
        a += 1 + al;
        b += 1 + bl;
    }
    return 0;
}

/* Appends ", method" (or just "method" first) to allow unless it is
 * already listed; truncates, never overruns. */
static void
gw_allow_add(char *allow, size_t allow_len, const char *method)
{
    size_t used, mlen = strlen(method);

    if (allow_len == 0)
        return;
    for (const char *p = allow; *p != '\0';) {
        size_t n = strcspn(p, ",");

        if (n == mlen && strncmp(p, method, n) == 0)
            return;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    used = strlen(allow);
    if (used + 1 < allow_len)
        snprintf(allow + used, allow_len - used, "%s%s", used > 0 ? ", " : "",
                 method);
}

const gw_route *
gw_route_match(const char *method, const char *path, gw_path_param *params,
               size_t *n_params, bool *path_known, char *allow,
               size_t allow_len)
{
    size_t count;
    const gw_route *routes = gw_route_table(&count), *found = NULL;
    const char *best = NULL;
    bool matched[GW_ROUTE_MAX];

    *path_known = false;
    if (allow_len > 0)
        allow[0] = '\0';
    /* 1. The most literal pattern that matches the path. */
    for (size_t i = 0; i < count; i++) {
        gw_path_param tmp[GW_MAX_PATH_PARAMS];
        size_t n;

        matched[i] = gw_pattern_match(routes[i].pattern, path, tmp, &n);
        if (matched[i] &&
            (best == NULL || gw_pattern_cmp(routes[i].pattern, best) > 0))
            best = routes[i].pattern;
    }
    if (best == NULL)
        return NULL;
    /* 2. Its routes: the one under method, and every method for Allow. */
    *path_known = true;
    for (size_t i = 0; i < count; i++) {
        if (!matched[i] || gw_pattern_cmp(routes[i].pattern, best) != 0)
            continue;
        gw_allow_add(allow, allow_len, routes[i].http_method);
        if (found == NULL && strcmp(routes[i].http_method, method) == 0) {
            found = &routes[i];
            gw_pattern_match(found->pattern, path, params, n_params);
        }
    }
    return found;
}
