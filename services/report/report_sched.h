/*
 * report_sched.h -- the reporting service's scheduler: a background
 * thread that generates the run of every enabled schedule at each of its
 * window boundaries (docs/api.md), started and stopped through
 * cv_service_hooks.
 *
 * Environment: CAVRA_SCHEDULER_TICK_MS (1..1000, default 1000): how often
 * the thread wakes to look for due schedules.
 */
#ifndef REPORT_SCHED_H
#define REPORT_SCHED_H

#include <pthread.h>
#include <stdbool.h>

#include "cv_db.h"
#include "cv_error.h"

#define REPORT_SCHED_TICK_ENV     "CAVRA_SCHEDULER_TICK_MS"
#define REPORT_SCHED_TICK_DEFAULT 1000
#define REPORT_SCHED_TICK_MAX     1000

/*
 * Bounds of the reporting service, read once at start-up
 * (report_limits_from_env):
 *  - CAVRA_VERIFY_STATEMENT_TIMEOUT_MS (default 300000): the statement
 *    timeout of report.VerifyEvidence's transaction (SET LOCAL; every
 *    other statement keeps CAVRA_DB_STATEMENT_TIMEOUT_MS);
 *  - CAVRA_SCHEDULES_MAX (default 200): enabled schedules in the store;
 *  - CAVRA_SCHEDULES_PER_ACTOR_MAX (default 50): enabled schedules with
 *    one generated_by.
 * Beyond a cap, a schedule-run that would add an enabled schedule (a new
 * one, or one switched back on) is refused with RESOURCE_EXHAUSTED.
 */
#define REPORT_VERIFY_TIMEOUT_ENV      "CAVRA_VERIFY_STATEMENT_TIMEOUT_MS"
#define REPORT_VERIFY_TIMEOUT_DEFAULT  300000
#define REPORT_SCHEDULES_MAX_ENV       "CAVRA_SCHEDULES_MAX"
#define REPORT_SCHEDULES_MAX_DEFAULT   200
#define REPORT_SCHEDULES_ACTOR_ENV     "CAVRA_SCHEDULES_PER_ACTOR_MAX"
#define REPORT_SCHEDULES_ACTOR_DEFAULT 50

typedef struct report_limits {
    int verify_timeout_ms;
    int schedules_max;
    int schedules_per_actor_max;
} report_limits;

/* Fills l from the environment (out-of-range values: the default). */
void report_limits_from_env(report_limits *l);

/* The scheduler's state; zero it, then pass it as cv_rpc_server_config
 * .service and use report_sched_hooks. */
typedef struct report_sched {
    pthread_t thread;
    pthread_mutex_t mtx;
    pthread_cond_t cond; /* signalled on stop; waits use CLOCK_MONOTONIC */
    bool running;
    bool stopping;
    bool db_down; /* last tick could not reach the database */
    int tick_ms;
    cv_db db; /* the thread's own connection */
    /* The service's bounds (report_limits_from_env, set before start);
     * the handlers read them through cv_rpc_ctx.service. */
    report_limits limits;
} report_sched;

/* Starts the thread (hook signature: service is a report_sched). Returns
 * 0 or CV_INTERNAL. */
int report_sched_start(void *service, cv_error *err);

/* Stops the thread: wakes it, waits for the run it may be generating,
 * joins it and closes its connection. Safe when not started. */
void report_sched_stop(void *service);

/* One pass: generates the runs due at now (used by the thread; exposed
 * for tests). Returns how many runs it stored. */
int report_sched_tick(report_sched *sc);

#endif
