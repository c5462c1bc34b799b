/*
 * cv_test_http.c -- a tiny blocking HTTP client for the end-to-end tests,
 * on the libcurl easy API.
 *
 * One easy handle per request (no connection reuse), so every request is
 * independent and a test can never be confused by a half-read keep-alive
 * connection of an earlier one. A content_type of "" sends a body without
 * any Content-Type header. The headers the tests look at are
 * captured case-insensitively; when an interim response (100 Continue)
 * precedes the final one, only the final response's headers are kept.
 */
#include "cv_test_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CV_HTTP_TIMEOUT_MS 15000

/* A growing body buffer plus the captured headers. */
typedef struct cv_http_sink {
    char *buf;
    size_t len, cap;
    int oom;
    cv_http_response *resp;
} cv_http_sink;

static pthread_once_t cv_http_once = PTHREAD_ONCE_INIT;

static void
cv_http_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
cv_http_body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    cv_http_sink *sink = arg;
    size_t n = size * nmemb;

    if (sink->len + n + 1 > sink->cap) {
        size_t cap = sink->cap > 0 ? sink->cap : 4096;
        char *p;

        while (cap < sink->len + n + 1)
            cap *= 2;
        if ((p = realloc(sink->buf, cap)) == NULL) {
            sink->oom = 1;
            return 0; /* makes curl fail the transfer */
        }
        sink->buf = p;
        sink->cap = cap;
    }
    memcpy(sink->buf + sink->len, data, n);
    sink->len += n;
    sink->buf[sink->len] = '\0';
    return n;
}

/* Copies the value of a "Name: value\r\n" line into dst when the name
 * matches (case-insensitively), trimmed of white space. */
static void
cv_http_capture(const char *line, size_t len, const char *name, char *dst,
                size_t dstlen)
{
    size_t nl = strlen(name);
    size_t b, e;

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    b = nl + 1;
    e = len;
    while (b < e && (line[b] == ' ' || line[b] == '\t'))
        b++;
    while (e > b && (line[e - 1] == '\r' || line[e - 1] == '\n' ||
                     line[e - 1] == ' ' || line[e - 1] == '\t'))
        e--;
    if (e - b >= dstlen)
        e = b + dstlen - 1;
    memcpy(dst, line + b, e - b);
    dst[e - b] = '\0';
}

static size_t
cv_http_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    cv_http_sink *sink = arg;
    cv_http_response *r = sink->resp;
    size_t n = size * nmemb;

    /* A status line starts a new (possibly final) response. */
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->request_id[0] = '\0';
        r->content_type[0] = '\0';
        r->allow[0] = '\0';
        r->replayed[0] = '\0';
        return n;
    }
    cv_http_capture(data, n, "X-Request-Id", r->request_id,
                    sizeof(r->request_id));
    cv_http_capture(data, n, "Content-Type", r->content_type,
                    sizeof(r->content_type));
    cv_http_capture(data, n, "Allow", r->allow, sizeof(r->allow));
    cv_http_capture(data, n, "Idempotent-Replayed", r->replayed,
                    sizeof(r->replayed));
    return n;
}

int
cv_http_request(const char *method, const char *url, const char *content_type,
                const char *body, const char *const *headers,
                cv_http_response *out)
{
    CURL *curl;
    struct curl_slist *hdrs = NULL;
    cv_http_sink sink;
    char line[256];
    CURLcode cc;
    int rv = -1;

    memset(out, 0, sizeof(*out));
    memset(&sink, 0, sizeof(sink));
    sink.resp = out;
    pthread_once(&cv_http_once, cv_http_global_init);
    if ((curl = curl_easy_init()) == NULL) {
        fprintf(stderr, "cv_http_request: curl_easy_init failed\n");
        return -1;
    }

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)CV_HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cv_http_body_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, cv_http_header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);

    if (strcmp(method, "GET") == 0 && body == NULL) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else {
        /* POSTFIELDS makes curl send the body; CUSTOMREQUEST sets the
         * verb (also for PUT/DELETE/PATCH, or a GET with a body). */
        if (body != NULL) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)strlen(body));
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        } else if (strcmp(method, "POST") == 0) {
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        }
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }

    /* No 100-continue round trip: large bodies go out at once. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (content_type != NULL && content_type[0] == '\0') {
        /* "" (an extension of the header's contract): send the body
         * without any Content-Type; "Name:" removes curl's default. */
        hdrs = curl_slist_append(hdrs, "Content-Type:");
    } else if (content_type != NULL || body != NULL ||
               strcmp(method, "POST") == 0) {
        /* A POST declares JSON even with an empty body (the gateway
         * refuses any other POST with 415). */
        snprintf(line, sizeof(line), "Content-Type: %s",
                 content_type != NULL ? content_type : "application/json");
        hdrs = curl_slist_append(hdrs, line);
    } else {
        /* A read without a body sends no Content-Type at all. */
        hdrs = curl_slist_append(hdrs, "Content-Type:");
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hdrs = curl_slist_append(hdrs, headers[i]);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);

    cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        fprintf(stderr, "cv_http_request: %s %s: %s\n", method, url,
                curl_easy_strerror(cc));
        out->status = 0;
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = sink.buf != NULL ? sink.buf : strdup("");
    sink.buf = NULL;
    if (out->body == NULL) {
        fprintf(stderr, "cv_http_request: out of memory\n");
        goto out;
    }
    if (out->body[0] != '\0')
        out->json = json_loads(out->body, JSON_DECODE_ANY, NULL);
    rv = 0;
out:
    free(sink.buf);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    return rv;
}

void
cv_http_response_free(cv_http_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    if (r->json != NULL)
        json_decref(r->json);
    r->json = NULL;
}
