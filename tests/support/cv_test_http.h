/*
 * cv_test_http.h -- a tiny libcurl client for end-to-end tests.
 */
#ifndef CV_TEST_HTTP_H
#define CV_TEST_HTTP_H

#include <jansson.h>

typedef struct cv_http_response {
    long status;            /* HTTP status, 0 when the request failed */
    char *body;             /* NUL-terminated body (malloc'd) */
    json_t *json;           /* parsed body, NULL when not JSON */
    char request_id[160];   /* X-Request-Id response header */
    char content_type[160]; /* Content-Type response header */
    char allow[160];        /* Allow response header (405) */
    char replayed[32];      /* Idempotent-Replayed response header */
} cv_http_response;

/*
 * Sends one request. method "GET"/"POST"/...; body may be NULL;
 * content_type NULL means "application/json" when body is set or the
 * method is POST; headers is
 * a NULL-terminated list of extra "Name: value" lines (may be NULL).
 * Returns 0 when a response arrived (any status), -1 otherwise.
 * Free the response with cv_http_response_free.
 */
int cv_http_request(const char *method, const char *url,
                    const char *content_type, const char *body,
                    const char *const *headers, cv_http_response *out);

void cv_http_response_free(cv_http_response *r);

#endif
