/*
 * cavra-supervise -- keeps the CAVRA processes running (`make run`, the
 * fault tests).
 *
 *   cavra-supervise [--log-dir DIR] [--pid-dir DIR] [--stop-timeout MS]
 *                   NAME=PROGRAM [NAME=PROGRAM ...]
 *
 * Starts every PROGRAM (no arguments; it inherits our environment) in the
 * order given. When one exits or dies, it is started again after a delay:
 * 0.2 s, doubled at each consecutive restart up to 5 s, and back to 0.2 s
 * once the process had run for 30 s. Each restart is logged on stderr (and
 * in the process's log) as one line:
 *   cavra-supervise: cavra-ack exited (killed by signal 9) after 4.1 s;
 *   restart #1 in 0.2 s
 * SIGINT, SIGTERM or SIGHUP stops everything, one process at a time in
 * the reverse order (the gateway, listed last, first): SIGTERM, then
 * SIGKILL if it still runs after --stop-timeout (default 10000 ms). Exits 0
 * when every process stopped with status 0, 1 otherwise, 2 on usage errors.
 *
 * --log-dir: each process's stdout and stderr go to DIR/NAME.log
 * (appended). --pid-dir: DIR/NAME.pid holds the running process's pid
 * (replaced atomically at each start, removed when it stops).
 *
 * Design notes:
 *  - Single-threaded: the signals we act on are blocked and taken with
 *    sigtimedwait, whose timeout is the next due restart; no handler runs
 *    asynchronously, so fork() is safe.
 *  - Each child gets its own process group: a terminal's Ctrl-C reaches
 *    only us, and we stop the children in order, instead of them racing
 *    our restart logic. PR_SET_PDEATHSIG makes them die with us should we
 *    be killed outright.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUP_MAX_CHILDREN    16
#define SUP_DELAY_MIN_MS    200
#define SUP_DELAY_MAX_MS    5000
#define SUP_STABLE_MS       30000
#define SUP_STOP_DEFAULT_MS 10000

typedef struct sup_child {
    char *name;
    const char *program;
    pid_t pid;         /* 0 when not running */
    long started_ms;   /* when the current run started */
    long restart_at;   /* when to start again; 0: not scheduled */
    long delay_ms;     /* delay before the next restart */
    unsigned restarts; /* restarts so far */
} sup_child;

static sup_child sup_children[SUP_MAX_CHILDREN];
static int sup_n;
static const char *sup_log_dir;
static const char *sup_pid_dir;

static long
sup_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line on stderr, and appended to child c's log when there is one. */
static void
sup_log(const sup_child *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    n = snprintf(line, sizeof(line), "cavra-supervise: ");
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
    if (c != NULL && sup_log_dir != NULL) {
        char path[PATH_MAX];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.log", sup_log_dir, c->name);
        if ((f = fopen(path, "a")) != NULL) {
            fprintf(f, "%s\n", line);
            fclose(f);
        }
    }
}

static void
sup_pid_path(const sup_child *c, char *out, size_t outlen, const char *suffix)
{
    snprintf(out, outlen, "%s/%s.pid%s", sup_pid_dir, c->name, suffix);
}

/* Writes DIR/NAME.pid atomically (a reader never sees a partial file). */
static void
sup_pid_write(const sup_child *c)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    FILE *f;

    if (sup_pid_dir == NULL)
        return;
    sup_pid_path(c, tmp, sizeof(tmp), ".tmp");
    sup_pid_path(c, path, sizeof(path), "");
    if ((f = fopen(tmp, "w")) == NULL) {
        sup_log(NULL, "cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "%ld\n", (long)c->pid);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        sup_log(NULL, "cannot write %s: %s", path, strerror(errno));
}

static void
sup_pid_remove(const sup_child *c)
{
    char path[PATH_MAX];

    if (sup_pid_dir == NULL)
        return;
    sup_pid_path(c, path, sizeof(path), "");
    unlink(path);
}

/* In the child, after fork: signals back to normal, own process group,
 * output to the log, then exec. Only async-signal-safe calls. */
static void
sup_exec_child(const sup_child *c, pid_t parent)
{
    sigset_t none;
    char path[PATH_MAX];
    int fd;

    sigemptyset(&none);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) /* we died before prctl took effect */
        _exit(127);
    if ((fd = open("/dev/null", O_RDONLY)) >= 0) {
        dup2(fd, STDIN_FILENO);
        if (fd != STDIN_FILENO)
            close(fd);
    }
    if (sup_log_dir != NULL) {
        /* snprintf is not formally async-signal-safe; build by hand. */
        size_t n = 0;
        const char *parts[4] = {sup_log_dir, "/", c->name, ".log"};

        for (int i = 0; i < 4; i++)
            for (const char *p = parts[i]; *p != '\0' && n + 1 < sizeof(path);
                 p++)
                path[n++] = *p;
        path[n] = '\0';
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            if (fd > STDERR_FILENO)
                close(fd);
        }
    }
    execl(c->program, c->program, (char *)NULL);
    {
        static const char msg[] = "cavra-supervise: cannot execute ";
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);

        w = write(STDERR_FILENO, c->program, strlen(c->program));
        w = write(STDERR_FILENO, "\n", 1);
        (void)w;
    }
    _exit(127);
}

static int
sup_start(sup_child *c)
{
    pid_t parent = getpid();
    pid_t pid;

    fflush(stderr);
    if ((pid = fork()) < 0) {
        sup_log(c, "cannot start %s: %s; trying again in %.1f s", c->name,
                strerror(errno), c->delay_ms / 1000.0);
        c->restart_at = sup_now_ms() + c->delay_ms;
        return -1;
    }
    if (pid == 0)
        sup_exec_child(c, parent);
    /* Also here: no window in which a signal to the group misses it. */
    setpgid(pid, pid);
    c->pid = pid;
    c->started_ms = sup_now_ms();
    c->restart_at = 0;
    sup_pid_write(c);
    return 0;
}

/* "exited with status 3" / "killed by signal 9 (core dumped)". */
static void
sup_describe(int status, char *out, size_t outlen)
{
    if (WIFEXITED(status))
        snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, outlen, "killed by signal %d%s", WTERMSIG(status),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(out, outlen, "stopped with wait status %d", status);
}

/* Reaps every exited child; when running, schedules its restart. Returns
 * the number of children reaped with a non-zero status. */
static int
sup_reap(int stopping)
{
    int status, bad = 0;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < sup_n; i++) {
            sup_child *c = &sup_children[i];
            char how[96];
            long ran;

            if (c->pid != pid)
                continue;
            c->pid = 0;
            sup_pid_remove(c);
            sup_describe(status, how, sizeof(how));
            if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                bad++;
            if (stopping) {
                sup_log(c, "%s %s", c->name, how);
                break;
            }
            ran = sup_now_ms() - c->started_ms;
            if (ran >= SUP_STABLE_MS)
                c->delay_ms = SUP_DELAY_MIN_MS;
            c->restarts++;
            c->restart_at = sup_now_ms() + c->delay_ms;
            sup_log(c, "%s (pid %ld) %s after %.1f s; restart #%u in %.1f s",
                    c->name, (long)pid, how, ran / 1000.0, c->restarts,
                    c->delay_ms / 1000.0);
            c->delay_ms *= 2;
            if (c->delay_ms > SUP_DELAY_MAX_MS)
                c->delay_ms = SUP_DELAY_MAX_MS;
            break;
        }
    }
    return bad;
}

/* Stops the children one by one, the last started first (the gateway
 * before the services it calls): SIGTERM, then SIGKILL after timeout_ms.
 * Returns 0 when every child exited with status 0. */
static int
sup_stop_all(const sigset_t *set, long timeout_ms)
{
    int bad = 0;

    for (int i = sup_n - 1; i >= 0; i--) {
        sup_child *c = &sup_children[i];
        long deadline = sup_now_ms() + timeout_ms;

        if (c->pid > 0)
            kill(c->pid, SIGTERM);
        while (c->pid > 0) {
            struct timespec ts = {0, 20 * 1000000L};

            if (sup_now_ms() >= deadline) {
                sup_log(c, "%s ignored SIGTERM for %ld ms; killing it", c->name,
                        timeout_ms);
                kill(c->pid, SIGKILL);
                deadline = LONG_MAX;
            }
            /* Further INT/TERM are swallowed: we are already stopping. */
            sigtimedwait(set, NULL, &ts);
            bad += sup_reap(1);
        }
    }
    bad += sup_reap(1);
    return bad > 0 ? 1 : 0;
}

static int
sup_usage(void)
{
    fprintf(stderr, "usage: cavra-supervise [--log-dir DIR] [--pid-dir DIR] "
                    "[--stop-timeout MS] NAME=PROGRAM [NAME=PROGRAM ...]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    long stop_timeout_ms = SUP_STOP_DEFAULT_MS;
    sigset_t set;
    int i;

    for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc)
            return sup_usage();
        if (strcmp(argv[i], "--log-dir") == 0)
            sup_log_dir = argv[++i];
        else if (strcmp(argv[i], "--pid-dir") == 0)
            sup_pid_dir = argv[++i];
        else if (strcmp(argv[i], "--stop-timeout") == 0) {
            char *end;

            stop_timeout_ms = strtol(argv[++i], &end, 10);
            if (*end != '\0' || stop_timeout_ms <= 0)
                return sup_usage();
        } else
            return sup_usage();
    }
    for (; i < argc; i++) {
        char *eq = strchr(argv[i], '=');

        if (eq == NULL || eq == argv[i] || eq[1] == '\0' ||
            sup_n == SUP_MAX_CHILDREN)
            return sup_usage();
        /* A copy: argv stays intact for ps. */
        sup_children[sup_n].name = strndup(argv[i], (size_t)(eq - argv[i]));
        if (sup_children[sup_n].name == NULL)
            return 1;
        sup_children[sup_n].program = eq + 1;
        sup_children[sup_n].delay_ms = SUP_DELAY_MIN_MS;
        sup_n++;
    }
    if (sup_n == 0)
        return sup_usage();

    /* A shell starts background jobs with SIGINT ignored; an ignored
     * signal is discarded even while blocked, so restore it first. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);

    for (i = 0; i < sup_n; i++)
        if (sup_start(&sup_children[i]) != 0)
            return sup_stop_all(&set, stop_timeout_ms), 1;
    sup_log(NULL, "started %d processes (pid %ld)", sup_n, (long)getpid());

    for (;;) {
        long now = sup_now_ms(), next = LONG_MAX;
        struct timespec ts;
        siginfo_t info;
        int sig;

        for (i = 0; i < sup_n; i++) {
            sup_child *c = &sup_children[i];

            if (c->pid == 0 && c->restart_at != 0 && c->restart_at <= now)
                sup_start(c); /* a failure schedules another try */
            if (c->pid == 0 && c->restart_at < next)
                next = c->restart_at;
        }
        /* Wake up at least once a second: a cheap guard against a
         * missed SIGCHLD coalesced with another. */
        if (next == LONG_MAX || next - now > 1000)
            next = now + 1000;
        if (next < now)
            next = now;
        ts.tv_sec = (next - now) / 1000;
        ts.tv_nsec = ((next - now) % 1000) * 1000000L;
        sig = sigtimedwait(&set, &info, &ts);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            sup_log(NULL, "got signal %d; stopping everything", sig);
            return sup_stop_all(&set, stop_timeout_ms);
        }
        sup_reap(0);
    }
}
