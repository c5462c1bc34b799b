/*
 * report_sched.c -- the scheduler thread of the reporting service.
 *
 * Design notes:
 *  - One thread with its own database connection wakes every tick
 *    (CAVRA_SCHEDULER_TICK_MS, at most a second), asks the store which
 *    enabled schedules have no run for their current window, and
 *    generates those runs with report_run_generate as "scheduler".
 *  - Several replicas may run this loop against one store. Exactly once
 *    per (schedule, window) is guaranteed by report_runs' unique
 *    constraint; the per-schedule advisory lock only spares replicas the
 *    duplicate work (a replica that does not get it skips the schedule
 *    this tick, and finds the run stored on the next).
 *  - A database outage is logged once, then retried every tick.
 *  - Stop: `stopping` is set under the mutex and the condition signalled;
 *    the thread finishes the run it is generating (one transaction), sees
 *    the flag and exits; report_sched_stop joins it.
 */
#include "report_sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_env.h"
#include "cv_id.h"
#include "cv_log.h"
#include "cv_time.h"
#include "report_plan.h"
#include "report_rpc.h"
#include "report_sql.h"

/* Schedules handled per tick at most; the rest wait for the next tick. */
#define REPORT_SCHED_BATCH 100

static bool
report_sched_stopping(report_sched *sc)
{
    bool stop;

    pthread_mutex_lock(&sc->mtx);
    stop = sc->stopping;
    pthread_mutex_unlock(&sc->mtx);
    return stop;
}

/* "scheduler-<16 hex of the run id>": the same on every replica. */
static void
report_sched_request_id(const report_schedule *s, int64_t now_us, char *out,
                        size_t outlen)
{
    int64_t ws, we;
    char start[CV_TIME_MAX], id[CV_ID_MAX];

    out[0] = '\0';
    if (report_window(now_us, s->interval_minutes, &ws, &we) != 0)
        return;
    cv_time_format(ws, start);
    if (report_run_id(s->schedule_id, start, id, sizeof(id)) != 0)
        return;
    snprintf(out, outlen, "scheduler-%s", id + strlen(REPORT_RUN_ID_PREFIX));
}

/* One scheduled generation: its own REPEATABLE READ transaction (the
 * scheduler owns it), run again by cv_db_transact after a conflict. */
typedef struct report_sched_gen {
    const report_schedule *s;
    int64_t now_us;
    const char *request_id;
    Cv__ScheduleRunReply *rep;
    bool existing;
} report_sched_gen;

static int
report_sched_generate_tx(cv_db *db, void *arg, cv_error *err)
{
    report_sched_gen *g = arg;

    if (g->rep != NULL)
        protobuf_c_message_free_unpacked(&g->rep->base, NULL);
    g->rep = NULL;
    g->existing = false;
    return report_run_generate(db, g->s, g->now_us, g->request_id, true,
                               &g->rep, &g->existing, err);
}

int
report_sched_tick(report_sched *sc)
{
    report_schedule *due = NULL;
    size_t n = 0;
    int64_t now_us;
    int made = 0;
    cv_error err;

    cv_error_clear(&err);
    if (cv_db_ensure(&sc->db, &err) != 0) {
        if (!sc->db_down)
            CV_LOG(CV_LOG_WARN, "REPORT-SCHED-DB",
                   "scheduler cannot reach the database: %s", err.msg);
        sc->db_down = true;
        return 0;
    }
    if (sc->db_down)
        CV_LOG(CV_LOG_INFO, "REPORT-SCHED-DB",
               "scheduler reached the database again");
    sc->db_down = false;
    now_us = cv_now_us();
    if (report_sql_due_schedules(&sc->db, now_us / 1000000, REPORT_SCHED_BATCH,
                                 &due, &n, &err) != 0) {
        CV_LOG(CV_LOG_WARN, "REPORT-SCHED-DUE", "cannot list due schedules: %s",
               err.msg);
        goto out;
    }
    for (size_t i = 0; i < n && !report_sched_stopping(sc); i++) {
        char rid[CV_ID_MAX + 16];
        report_sched_gen g = {.s = &due[i], .now_us = now_us};
        Cv__ScheduleRunReply *rep;
        int rv;

        report_sched_request_id(&due[i], now_us, rid, sizeof(rid));
        g.request_id = rid[0] != '\0' ? rid : NULL;
        rv = cv_db_transact(&sc->db, CV_TX_WRITE_SNAPSHOT,
                            report_sched_generate_tx, &g, &err);
        rep = g.rep;
        if (rv == 0 && !g.existing) {
            made++;
            CV_LOG(CV_LOG_INFO, "REPORT-SCHED-RUN",
                   "generated run %s of schedule %s for window %s",
                   rep->run->run_id, due[i].schedule_id,
                   rep->run->schedule->window_start);
        } else if (rv == CV_FAILED_PRECONDITION) {
            /* Another replica is on it; the next tick finds it stored. */
            CV_LOG(CV_LOG_DEBUG, "REPORT-SCHED-SKIP", "schedule %s: %s",
                   due[i].schedule_id, err.msg);
        } else if (rv != 0) {
            CV_LOG(CV_LOG_WARN, "REPORT-SCHED-FAIL",
                   "cannot generate the run of schedule %s: %s (%s)",
                   due[i].schedule_id, err.msg,
                   err.cause[0] != '\0' ? err.cause : "-");
        }
        if (rep != NULL)
            protobuf_c_message_free_unpacked(&rep->base, NULL);
    }
out:
    for (size_t i = 0; i < n; i++)
        report_schedule_fini(&due[i]);
    free(due);
    return made;
}

static void *
report_sched_main(void *arg)
{
    report_sched *sc = arg;

    for (;;) {
        struct timespec until;

        if (report_sched_stopping(sc))
            break;
        report_sched_tick(sc);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)sc->tick_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&sc->mtx);
        while (!sc->stopping &&
               pthread_cond_timedwait(&sc->cond, &sc->mtx, &until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&sc->mtx);
    }
    return NULL;
}

/* CAVRA_SCHEDULER_TICK_MS, or the default when unset or out of range. */
static int
report_sched_tick_ms(void)
{
    long n;

    if (cv_env_long(REPORT_SCHED_TICK_ENV, 1, REPORT_SCHED_TICK_MAX,
                    REPORT_SCHED_TICK_DEFAULT, &n) != 0)
        CV_LOG(CV_LOG_WARN, "REPORT-SCHED-TICK",
               "%s must be 1..%d milliseconds; using %d", REPORT_SCHED_TICK_ENV,
               REPORT_SCHED_TICK_MAX, REPORT_SCHED_TICK_DEFAULT);
    return (int)n;
}

static int
report_limit_env(const char *name, int fallback, int max)
{
    long n;

    (void)cv_env_long(name, 1, max, fallback, &n);
    return (int)n;
}

void
report_limits_from_env(report_limits *l)
{
    l->verify_timeout_ms = report_limit_env(REPORT_VERIFY_TIMEOUT_ENV,
                                            REPORT_VERIFY_TIMEOUT_DEFAULT,
                                            CV_DB_STATEMENT_TIMEOUT_MAX_MS);
    l->schedules_max = report_limit_env(REPORT_SCHEDULES_MAX_ENV,
                                        REPORT_SCHEDULES_MAX_DEFAULT, 1000000);
    l->schedules_per_actor_max = report_limit_env(
        REPORT_SCHEDULES_ACTOR_ENV, REPORT_SCHEDULES_ACTOR_DEFAULT, 1000000);
}

int
report_sched_start(void *service, cv_error *err)
{
    report_sched *sc = service;
    pthread_condattr_t attr;
    int rv;

    if ((rv = cv_db_init(&sc->db, cv_db_default_url(), report_sql_statements,
                         report_sql_statement_count, err)) != 0)
        return rv;
    sc->tick_ms = report_sched_tick_ms();
    sc->stopping = false;
    sc->db_down = false;
    pthread_mutex_init(&sc->mtx, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sc->cond, &attr);
    pthread_condattr_destroy(&attr);
    if ((rv = pthread_create(&sc->thread, NULL, report_sched_main, sc)) != 0) {
        pthread_cond_destroy(&sc->cond);
        pthread_mutex_destroy(&sc->mtx);
        cv_db_fini(&sc->db);
        return cv_error_set(err, CV_INTERNAL,
                            "cannot start the scheduler thread: %s",
                            strerror(rv));
    }
    sc->running = true;
    CV_LOG(CV_LOG_INFO, "REPORT-SCHED-START", "scheduler started (tick %d ms)",
           sc->tick_ms);
    return 0;
}

void
report_sched_stop(void *service)
{
    report_sched *sc = service;

    if (sc == NULL || !sc->running)
        return;
    pthread_mutex_lock(&sc->mtx);
    sc->stopping = true;
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->mtx);
    pthread_join(sc->thread, NULL);
    sc->running = false;
    pthread_cond_destroy(&sc->cond);
    pthread_mutex_destroy(&sc->mtx);
    cv_db_fini(&sc->db);
    CV_LOG(CV_LOG_INFO, "REPORT-SCHED-STOP", "scheduler stopped");
}
