/*
 * cv_plan_ref.h -- the recovery escalation plan a request refers to.
 *
 * Acknowledgements, delivery attempts, retry plans and traces name a plan
 * by id, from the path or the body, and every service answers the same
 * way: an id that cannot exist or is not stored is CV_NOT_FOUND
 * "recovery escalation plan not found"; a provider the plan does not
 * route to is CV_INVALID_ARGUMENT naming the plan's providers. The SQL
 * these checks need lives in cv_plan_ref.c, in a statement table that
 * cv_db prepares on every connection.
 */
#ifndef CV_PLAN_REF_H
#define CV_PLAN_REF_H

#include <stddef.h>

#include "cv_db.h"

/* Plan ids longer than this cannot exist (the ids the acknowledgement
 * service makes are far shorter). */
#define CV_PLAN_ID_MAX 128

/* The message of every "no such plan" answer (docs/api.md, 5.2, 6). */
#define CV_PLAN_NOT_FOUND "recovery escalation plan not found"

/* The library's statements; cv_db prepares them on every connection. */
extern const cv_db_statement cv_plan_ref_statements[];
extern const size_t cv_plan_ref_statement_count;

/* Returns 0 when plan_id could name a stored plan (not NULL, not empty, at
 * most CV_PLAN_ID_MAX bytes), else CV_NOT_FOUND CV_PLAN_NOT_FOUND. No I/O. */
int cv_plan_ref_check_id(const char *plan_id, cv_error *err);

/* Returns 0 when the plan is stored, else CV_NOT_FOUND CV_PLAN_NOT_FOUND
 * (also for an id cv_plan_ref_check_id refuses) or a database error. */
int cv_plan_ref_exists(cv_db *db, const char *plan_id, cv_error *err);

/*
 * Loads the providers a stored plan routes to. Returns 0 with *providers
 * (a malloc'd array of *n malloc'd strings; free with
 * cv_plan_ref_free_providers), or CV_NOT_FOUND CV_PLAN_NOT_FOUND, a
 * database error or CV_INTERNAL, with *providers NULL and *n 0.
 */
int cv_plan_ref_providers(cv_db *db, const char *plan_id, char ***providers,
                          size_t *n, cv_error *err);

/* Frees what cv_plan_ref_providers returned. NULL-safe. */
void cv_plan_ref_free_providers(char **providers, size_t n);

/*
 * Checks that provider is one of the plan's providers. Returns 0, or
 * CV_INVALID_ARGUMENT "provider <p> is not routed by recovery escalation
 * plan <id>; the plan's providers are a, b" (a long list is cut to fit
 * the message). No I/O.
 */
int cv_plan_ref_check_provider(const char *plan_id, const char *provider,
                               char *const *providers, size_t n_providers,
                               cv_error *err);

/*
 * The whole check of a record about (plan_id, provider): the id
 * (cv_plan_ref_check_id), the stored plan's providers
 * (cv_plan_ref_providers) and the provider among them
 * (cv_plan_ref_check_provider), in that order. Returns 0 or the first
 * error.
 */
int cv_plan_ref_check_routed(cv_db *db, const char *plan_id,
                             const char *provider, cv_error *err);

#endif
