/*
 * bench_http.c -- a small HTTP load generator for the CAVRA benchmarks.
 *
 *   bench_http --url URL | --url-file F  [--name NAME] [--method GET|POST]
 *              [--body S | --body-file F] [--header "K: V"]...
 *              [--threads N] [--requests M] [--warmup W]
 *              [--vary-json-field FIELD] [--timeout-ms T]
 *
 * Runs M timed requests (after W untimed warm-up requests) spread over N
 * threads, each with its own libcurl easy handle (keep-alive), and prints
 * one line:
 *
 *   NAME count=M failures=F median_ms=.. p90_ms=.. p99_ms=.. max_ms=..
 *   rps=..
 *
 * A failure is a transport error or a status outside 200..299; the first
 * failure's status and the start of its body go to stderr.
 *
 * Unique requests: in the URL, the body and every header, "{{n}}" becomes
 * the request's number (0..W+M-1) and "{{run}}" a per-process nonce, so
 * two runs never collide either. --vary-json-field FIELD appends
 * "-<run>-<n>" to the string value of the first "FIELD": "..." member of
 * the body (e.g. --vary-json-field schedule_id makes every schedule-run a
 * new schedule).
 *
 * --url-file F: one URL per line; request n uses line n modulo the number
 * of lines (e.g. acknowledgements spread over many plans). A line may go
 * on after the URL with a space and a value, which replaces "{{line}}" in
 * the body and headers of that line's requests (e.g. the provider of each
 * plan's route).
 *
 * Safety: every URL must point at loopback (127.0.0.1, localhost or [::1]);
 * threads <= 256, requests <= 1,000,000.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_HEADERS  32
#define BENCH_MAX_THREADS  256
#define BENCH_MAX_REQUESTS 1000000L
#define BENCH_MAX_BODY     (16 * 1024 * 1024)
#define BENCH_SNIPPET      300

typedef struct bench_opts {
    const char *name;
    const char *url;
    char **urls;  /* --url-file lines, or NULL */
    char **lines; /* their values after the URL ("" when none) */
    long n_urls;
    const char *method;
    char *body; /* NULL: no body */
    const char *headers[BENCH_MAX_HEADERS];
    int n_headers;
    const char *vary_field;
    long threads;
    long requests;
    long warmup;
    long timeout_ms;
    char run[32]; /* nonce for {{run}} */
} bench_opts;

typedef struct bench_shared {
    const bench_opts *opts;
    atomic_long next;     /* next request number to take */
    atomic_long failures; /* timed requests that failed */
    atomic_int reported;  /* a failure was printed */
    double *latency_ms;   /* per timed request, by request number - W */
    pthread_barrier_t start;
    struct timespec t0, t1; /* wall time of the timed phase */
} bench_shared;

/* Response body sink: keeps the first BENCH_SNIPPET bytes. */
typedef struct bench_sink {
    char buf[BENCH_SNIPPET + 1];
    size_t len;
} bench_sink;

static void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
bench_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "bench_http: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static double
bench_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 +
           (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Appends n bytes of s to the growing buffer *out (capacity *cap). */
static void
bench_append(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = (*len + n + 1) * 2;
        char *p = realloc(*out, want);

        if (p == NULL)
            bench_die("out of memory");
        *out = p;
        *cap = want;
    }
    memcpy(*out + *len, s, n);
    *len += n;
    (*out)[*len] = '\0';
}

/* Copy of tmpl with {{n}}, {{run}} and {{line}} replaced; caller frees. */
static char *
bench_expand(const char *tmpl, long n, const char *run, const char *line)
{
    char num[24];
    char *out = NULL;
    size_t len = 0, cap = 0;
    const char *p = tmpl;

    snprintf(num, sizeof(num), "%ld", n);
    bench_append(&out, &len, &cap, "", 0);
    while (*p != '\0') {
        if (strncmp(p, "{{n}}", 5) == 0) {
            bench_append(&out, &len, &cap, num, strlen(num));
            p += 5;
        } else if (strncmp(p, "{{run}}", 7) == 0) {
            bench_append(&out, &len, &cap, run, strlen(run));
            p += 7;
        } else if (strncmp(p, "{{line}}", 8) == 0) {
            bench_append(&out, &len, &cap, line, strlen(line));
            p += 8;
        } else {
            const char *q = p + 1;

            while (*q != '\0' && *q != '{')
                q++;
            bench_append(&out, &len, &cap, p, (size_t)(q - p));
            p = q;
        }
    }
    return out;
}

/*
 * Appends "-<run>-<n>" to the string value of the first member "field"
 * of the JSON text body; when there is none, body is returned unchanged.
 * Takes ownership of body; returns the (possibly new) text.
 */
static char *
bench_vary_field(char *body, const char *field, long n, const char *run)
{
    size_t flen = strlen(field);
    char *p = body;

    while ((p = strchr(p, '"')) != NULL) {
        char *q = p + 1;

        if (strncmp(q, field, flen) == 0 && q[flen] == '"') {
            char *v = q + flen + 1;

            while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
                v++;
            if (*v == ':') {
                v++;
                while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
                    v++;
                if (*v == '"') {
                    char *end = v + 1;
                    char suffix[64];
                    char *out = NULL;
                    size_t len = 0, cap = 0;

                    while (*end != '\0' && *end != '"') {
                        if (*end == '\\' && end[1] != '\0')
                            end++;
                        end++;
                    }
                    if (*end != '"')
                        return body;
                    snprintf(suffix, sizeof(suffix), "-%s-%ld", run, n);
                    bench_append(&out, &len, &cap, body, (size_t)(end - body));
                    bench_append(&out, &len, &cap, suffix, strlen(suffix));
                    bench_append(&out, &len, &cap, end, strlen(end));
                    free(body);
                    return out;
                }
            }
        }
        p = q;
    }
    return body;
}

static size_t
bench_write(char *data, size_t size, size_t nmemb, void *arg)
{
    bench_sink *sink = arg;
    size_t n = size * nmemb;
    size_t room = BENCH_SNIPPET - sink->len;
    size_t take = n < room ? n : room;

    memcpy(sink->buf + sink->len, data, take);
    sink->len += take;
    sink->buf[sink->len] = '\0';
    return n;
}

/* One request; returns the HTTP status (0 on a transport error) and the
 * latency in ms. */
static long
bench_one(CURL *h, const bench_opts *o, long n, double *ms, bench_sink *sink,
          char *errbuf)
{
    const char *line = o->urls != NULL ? o->lines[n % o->n_urls] : "";
    char *url = bench_expand(o->urls != NULL ? o->urls[n % o->n_urls] : o->url,
                             n, o->run, line);
    char *body = NULL;
    struct curl_slist *hdrs = NULL;
    struct timespec a, b;
    long status = 0;
    CURLcode rc;

    for (int i = 0; i < o->n_headers; i++) {
        char *h1 = bench_expand(o->headers[i], n, o->run, line);
        struct curl_slist *next = curl_slist_append(hdrs, h1);

        free(h1);
        if (next == NULL)
            bench_die("out of memory");
        hdrs = next;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (o->body != NULL) {
        body = bench_expand(o->body, n, o->run, line);
        if (o->vary_field != NULL)
            body = bench_vary_field(body, o->vary_field, n, o->run);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
                     strcmp(o->method, "GET") == 0 ? NULL : o->method);
    sink->len = 0;
    sink->buf[0] = '\0';
    errbuf[0] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &a);
    rc = curl_easy_perform(h);
    clock_gettime(CLOCK_MONOTONIC, &b);
    *ms = bench_ms(&a, &b);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else if (errbuf[0] == '\0')
        snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    free(body);
    free(url);
    return status;
}

static void *
bench_thread(void *arg)
{
    bench_shared *sh = arg;
    const bench_opts *o = sh->opts;
    long total = o->warmup + o->requests;
    char errbuf[CURL_ERROR_SIZE];
    bench_sink sink;
    CURL *h = curl_easy_init();

    if (h == NULL)
        bench_die("curl_easy_init failed");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bench_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");

    /* Warm-up, then everyone starts the timed phase together. */
    for (;;) {
        long n = atomic_fetch_add(&sh->next, 1);
        double ms;

        if (n >= o->warmup)
            break;
        bench_one(h, o, n, &ms, &sink, errbuf);
    }
    if (pthread_barrier_wait(&sh->start) == PTHREAD_BARRIER_SERIAL_THREAD) {
        atomic_store(&sh->next, o->warmup);
        clock_gettime(CLOCK_MONOTONIC, &sh->t0);
    }
    pthread_barrier_wait(&sh->start);
    for (;;) {
        long n = atomic_fetch_add(&sh->next, 1);
        double ms;
        long status;

        if (n >= total)
            break;
        status = bench_one(h, o, n, &ms, &sink, errbuf);
        sh->latency_ms[n - o->warmup] = ms;
        if (status < 200 || status > 299) {
            atomic_fetch_add(&sh->failures, 1);
            if (atomic_exchange(&sh->reported, 1) == 0)
                fprintf(stderr,
                        "bench_http: %s: first failure: status %ld%s%s"
                        ": %s\n",
                        o->name, status, errbuf[0] != '\0' ? " " : "", errbuf,
                        sink.buf);
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

static int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y ? 1 : 0;
}

/* Nearest-rank percentile of sorted v (q in (0, 1]). */
static double
bench_pct(const double *v, long n, double q)
{
    long rank = (long)(q * (double)n + 0.999999);

    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static long
bench_long(const char *flag, const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi) {
        fprintf(stderr, "bench_http: %s must be an integer in %ld..%ld\n", flag,
                lo, hi);
        exit(2);
    }
    return v;
}

static char *
bench_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL)
        bench_die("cannot open %s", path);
    if ((buf = malloc(BENCH_MAX_BODY + 1)) == NULL)
        bench_die("out of memory");
    n = fread(buf, 1, BENCH_MAX_BODY, f);
    if (!feof(f))
        bench_die("%s is larger than 16 MiB", path);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static bool bench_loopback(const char *url);

/* Reads the non-empty lines of path into o->urls. */
static void
bench_read_urls(bench_opts *o, const char *path)
{
    char *text = bench_read_file(path);
    char *save = NULL;
    long cap = 0;

    for (char *line = strtok_r(text, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *value;

        if (*line == '\0')
            continue;
        if ((value = strchr(line, ' ')) != NULL)
            *value++ = '\0';
        else
            value = line + strlen(line);
        if (!bench_loopback(line))
            bench_die("refusing %s: only loopback URLs are allowed", line);
        if (o->n_urls == cap) {
            char **p;

            cap = cap > 0 ? cap * 2 : 64;
            if ((p = realloc(o->urls, (size_t)cap * sizeof(*p))) == NULL)
                bench_die("out of memory");
            o->urls = p;
            if ((p = realloc(o->lines, (size_t)cap * sizeof(*p))) == NULL)
                bench_die("out of memory");
            o->lines = p;
        }
        if ((o->urls[o->n_urls] = strdup(line)) == NULL ||
            (o->lines[o->n_urls] = strdup(value)) == NULL)
            bench_die("out of memory");
        o->n_urls++;
    }
    free(text);
    if (o->n_urls == 0)
        bench_die("--url-file %s has no URL", path);
}

/* True when url's host is loopback. */
static bool
bench_loopback(const char *url)
{
    static const char *const ok[] = {"127.0.0.1", "localhost", "[::1]"};
    const char *p = strstr(url, "://");

    if (p == NULL ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return false;
    p += 3;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t l = strlen(ok[i]);

        if (strncmp(p, ok[i], l) == 0 &&
            (p[l] == ':' || p[l] == '/' || p[l] == '\0'))
            return true;
    }
    return false;
}

static void
bench_usage(FILE *to)
{
    fprintf(to,
            "usage: bench_http --url URL | --url-file F [--name NAME]\n"
            "       [--method GET|POST]\n"
            "       [--body S | --body-file F] [--header 'K: V']...\n"
            "       [--threads N] [--requests M] [--warmup W]\n"
            "       [--vary-json-field FIELD] [--timeout-ms T]\n"
            "{{n}} (request number) and {{run}} (per-process nonce) are\n"
            "replaced in the URL, the body and the headers; {{line}} by\n"
            "what follows the URL (after a space) on its --url-file line.\n");
}

int
main(int argc, char **argv)
{
    bench_opts o = {.name = "request",
                    .method = NULL,
                    .threads = 1,
                    .requests = 100,
                    .warmup = 0,
                    .timeout_ms = 60000};
    bench_shared sh;
    pthread_t tid[BENCH_MAX_THREADS];
    struct timespec now;
    double *sorted, wall, median;
    long failures;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            bench_usage(stdout);
            return 0;
        }
        if (v == NULL) {
            bench_usage(stderr);
            bench_die("%s needs a value", a);
        }
        i++;
        if (strcmp(a, "--url") == 0)
            o.url = v;
        else if (strcmp(a, "--url-file") == 0)
            bench_read_urls(&o, v);
        else if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--method") == 0)
            o.method = v;
        else if (strcmp(a, "--body") == 0)
            o.body = strdup(v);
        else if (strcmp(a, "--body-file") == 0)
            o.body = bench_read_file(v);
        else if (strcmp(a, "--header") == 0) {
            if (o.n_headers == BENCH_MAX_HEADERS)
                bench_die("at most 32 --header options");
            o.headers[o.n_headers++] = v;
        } else if (strcmp(a, "--threads") == 0)
            o.threads = bench_long(a, v, 1, BENCH_MAX_THREADS);
        else if (strcmp(a, "--requests") == 0)
            o.requests = bench_long(a, v, 1, BENCH_MAX_REQUESTS);
        else if (strcmp(a, "--warmup") == 0)
            o.warmup = bench_long(a, v, 0, BENCH_MAX_REQUESTS);
        else if (strcmp(a, "--timeout-ms") == 0)
            o.timeout_ms = bench_long(a, v, 1, 3600000L);
        else if (strcmp(a, "--vary-json-field") == 0)
            o.vary_field = v;
        else {
            bench_usage(stderr);
            bench_die("unknown option %s", a);
        }
    }
    if ((o.url == NULL) == (o.urls == NULL)) {
        bench_usage(stderr);
        bench_die("give exactly one of --url and --url-file");
    }
    if (o.url != NULL && !bench_loopback(o.url))
        bench_die("refusing %s: only loopback URLs are allowed", o.url);
    if (o.method == NULL)
        o.method = o.body != NULL ? "POST" : "GET";
    if (o.vary_field != NULL && o.body == NULL)
        bench_die("--vary-json-field needs a body");
    if (o.threads > o.requests)
        o.threads = o.requests;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(o.run, sizeof(o.run), "%lx%lx", (unsigned long)getpid(),
             (unsigned long)now.tv_nsec);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        bench_die("curl_global_init failed");
    memset(&sh, 0, sizeof(sh));
    sh.opts = &o;
    atomic_init(&sh.next, 0);
    atomic_init(&sh.failures, 0);
    atomic_init(&sh.reported, 0);
    if ((sh.latency_ms = calloc((size_t)o.requests, sizeof(double))) == NULL)
        bench_die("out of memory");
    if (pthread_barrier_init(&sh.start, NULL, (unsigned)o.threads) != 0)
        bench_die("pthread_barrier_init failed");
    for (long t = 0; t < o.threads; t++)
        if (pthread_create(&tid[t], NULL, bench_thread, &sh) != 0)
            bench_die("pthread_create failed");
    for (long t = 0; t < o.threads; t++)
        pthread_join(tid[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &sh.t1);
    pthread_barrier_destroy(&sh.start);
    curl_global_cleanup();

    sorted = sh.latency_ms;
    qsort(sorted, (size_t)o.requests, sizeof(double), bench_cmp_double);
    median = o.requests % 2 == 1
                 ? sorted[o.requests / 2]
                 : (sorted[o.requests / 2 - 1] + sorted[o.requests / 2]) / 2.0;
    wall = bench_ms(&sh.t0, &sh.t1);
    failures = atomic_load(&sh.failures);
    printf("%s count=%ld failures=%ld median_ms=%.2f p90_ms=%.2f "
           "p99_ms=%.2f max_ms=%.2f rps=%.1f\n",
           o.name, o.requests, failures, median,
           bench_pct(sorted, o.requests, 0.90),
           bench_pct(sorted, o.requests, 0.99), sorted[o.requests - 1],
           wall > 0.0 ? (double)o.requests * 1000.0 / wall : 0.0);
    fflush(stdout);
    free(sh.latency_ms);
    free(o.body);
    for (long i = 0; i < o.n_urls; i++) {
        free(o.urls[i]);
        free(o.lines[i]);
    }
    free(o.urls);
    free(o.lines);
    return failures == 0 ? 0 : 1;
}
