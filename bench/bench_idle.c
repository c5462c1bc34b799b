/*
 * bench_idle.c -- is the gateway still responsive while one client holds
 * thousands of idle connections?
 *
 * One "flooding" client (source address --flood-from, default 127.0.0.2)
 * opens --idle TCP connections to the gateway and sends nothing on them
 * (or, with --partial, only the first line of a request, as a slowloris
 * client would). While they are held, a second client (--client-from,
 * default 127.0.0.1) sends --requests GET requests, each on a fresh
 * connection, and times each from connect() to the end of the answer.
 *
 * Output, one line on stdout (like bench_http):
 *   NAME idle=N held_before=H held_after=A requests=R failures=F
 *        p50_ms=.. p99_ms=.. max_ms=.. open_ms=..
 * held_* count the idle connections the gateway still kept open before and
 * after the measurement (it may close those over its per-client limit at
 * once, and silent ones after its idle timeout). Exit status 1 when any
 * timed request failed or exceeded --timeout-ms.
 *
 * Run: bench_idle --port 8000 --idle 5000 --path /readyz --requests 200
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct bench_idle_opts {
    const char *name;
    const char *host;
    int port;
    int idle;
    const char *flood_from;
    const char *client_from;
    const char *path;
    int requests;
    int timeout_ms;
    int partial;
} bench_idle_opts;

static double
bench_idle_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
bench_idle_usage(void)
{
    fprintf(stderr,
            "usage: bench_idle --port P [--host 127.0.0.1] [--idle 5000]\n"
            "  [--flood-from 127.0.0.2] [--client-from 127.0.0.1]\n"
            "  [--path /readyz] [--requests 200] [--timeout-ms 5000]\n"
            "  [--partial] [--name NAME]\n");
}

/* A TCP socket bound to `from` and connected (or connecting, when
 * nonblocking) to the gateway; -1 on failure. */
static int
bench_idle_connect(const bench_idle_opts *o, const char *from, int nonblock)
{
    struct sockaddr_in src, dst;
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);

    if (fd < 0)
        return -1;
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
        inet_pton(AF_INET, o->host, &dst.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 &&
        !(nonblock && errno == EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 when the server still holds fd open (nothing to read, no EOF). */
static int
bench_idle_still_open(int fd)
{
    char c;
    ssize_t n;

    if (fd < 0)
        return 0;
    n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int
bench_idle_count_open(const int *fds, int n)
{
    int open = 0;

    for (int i = 0; i < n; i++)
        open += bench_idle_still_open(fds[i]);
    return open;
}

/* One timed GET on a fresh connection; returns ms, or -1 on failure (no
 * 2xx/503 status line, or no answer within timeout_ms). */
static double
bench_idle_request(const bench_idle_opts *o)
{
    char req[512], buf[4096];
    double t0 = bench_idle_now_ms(), left;
    size_t got = 0;
    int fd, status = 0;
    struct pollfd pfd;

    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
             o->path, o->host, o->port);
    if ((fd = bench_idle_connect(o, o->client_from, 0)) < 0)
        return -1;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    /* Read to EOF (Connection: close): the whole answer is timed. */
    for (;;) {
        ssize_t n;

        left = o->timeout_ms - (bench_idle_now_ms() - t0);
        pfd.fd = fd;
        pfd.events = POLLIN;
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        n = recv(fd, buf + (got < 64 ? got : 64),
                 sizeof(buf) - (got < 64 ? got : 64) - 1, 0);
        if (n <= 0) {
            if (got >= 12)
                status = atoi(buf + 9);
            close(fd);
            return status >= 200 && status < 600 ? bench_idle_now_ms() - t0
                                                 : -1;
        }
        got += (size_t)n;
        buf[got < 64 ? got : 64] = '\0';
    }
    close(fd);
    return -1;
}

static int
bench_idle_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
bench_idle_pct(const double *v, int n, double p)
{
    int i;

    if (n == 0)
        return 0;
    i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

int
main(int argc, char **argv)
{
    bench_idle_opts o = {"idle",      "127.0.0.1", 0,   5000, "127.0.0.2",
                         "127.0.0.1", "/readyz",   200, 5000, 0};
    struct rlimit rl;
    int *fds;
    double *lat, t0, open_ms;
    int ok = 0, failures = 0, held_before, held_after;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--partial") == 0) {
            o.partial = 1;
            continue;
        }
        if (v == NULL) {
            bench_idle_usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--port") == 0)
            o.port = atoi(v);
        else if (strcmp(a, "--idle") == 0)
            o.idle = atoi(v);
        else if (strcmp(a, "--flood-from") == 0)
            o.flood_from = v;
        else if (strcmp(a, "--client-from") == 0)
            o.client_from = v;
        else if (strcmp(a, "--path") == 0)
            o.path = v;
        else if (strcmp(a, "--requests") == 0)
            o.requests = atoi(v);
        else if (strcmp(a, "--timeout-ms") == 0)
            o.timeout_ms = atoi(v);
        else {
            bench_idle_usage();
            return 2;
        }
    }
    if (o.port <= 0 || o.idle < 0 || o.requests < 1 || o.timeout_ms < 1) {
        bench_idle_usage();
        return 2;
    }
    /* One descriptor per idle connection. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    fds = calloc((size_t)o.idle + 1, sizeof(int));
    lat = calloc((size_t)o.requests, sizeof(double));
    if (fds == NULL || lat == NULL) {
        fprintf(stderr, "bench_idle: out of memory\n");
        return 2;
    }

    /* 1. The flood: nonblocking connects, then wait until each is
     * established (or refused) so the measurement starts on a settled
     * gateway. */
    t0 = bench_idle_now_ms();
    for (int i = 0; i < o.idle; i++)
        fds[i] = bench_idle_connect(&o, o.flood_from, 1);
    for (int i = 0; i < o.idle; i++) {
        struct pollfd pfd = {fds[i], POLLOUT, 0};

        if (fds[i] < 0)
            continue;
        if (poll(&pfd, 1, 2000) != 1 || (pfd.revents & (POLLERR | POLLHUP))) {
            close(fds[i]);
            fds[i] = -1;
            continue;
        }
        if (o.partial)
            (void)send(fds[i], "GET / HTTP/1.1\r\n", 16, MSG_NOSIGNAL);
    }
    open_ms = bench_idle_now_ms() - t0;
    /* Give the gateway a moment to accept (or refuse) the last ones. */
    usleep(200 * 1000);
    held_before = bench_idle_count_open(fds, o.idle);

    /* 2. The other client, one request after the other. */
    for (int i = 0; i < o.requests; i++) {
        double ms = bench_idle_request(&o);

        if (ms < 0)
            failures++;
        else
            lat[ok++] = ms;
    }
    held_after = bench_idle_count_open(fds, o.idle);
    for (int i = 0; i < o.idle; i++)
        if (fds[i] >= 0)
            close(fds[i]);

    qsort(lat, (size_t)ok, sizeof(double), bench_idle_cmp);
    printf("%s idle=%d%s held_before=%d held_after=%d requests=%d "
           "failures=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f open_ms=%.0f\n",
           o.name, o.idle, o.partial ? " partial=1" : "", held_before,
           held_after, o.requests, failures, bench_idle_pct(lat, ok, 0.50),
           bench_idle_pct(lat, ok, 0.99), ok > 0 ? lat[ok - 1] : 0.0, open_ms);
    free(fds);
    free(lat);
    return failures > 0 ? 1 : 0;
}
