/*
 * cv_plan_ref.c -- checks of the recovery escalation plan a request
 * refers to (see the header), shared by the acknowledgement, retry and
 * reporting services.
 */
#include "cv_plan_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cv_db_statement cv_plan_ref_statements[] = {
    {"cv_plan_ref_providers",
     "SELECT unnest(providers) FROM escalation_plans WHERE plan_id = $1"},
    {"cv_plan_ref_exists", "SELECT 1 FROM escalation_plans WHERE plan_id = $1"},
};
const size_t cv_plan_ref_statement_count =
    sizeof(cv_plan_ref_statements) / sizeof(cv_plan_ref_statements[0]);

int
cv_plan_ref_check_id(const char *plan_id, cv_error *err)
{
    /* Plan ids come from paths and bodies: anything too long cannot
     * exist, and is not worth a query. */
    if (plan_id == NULL || plan_id[0] == '\0' ||
        strlen(plan_id) > CV_PLAN_ID_MAX)
        return cv_error_set(err, CV_NOT_FOUND, CV_PLAN_NOT_FOUND);
    return 0;
}

int
cv_plan_ref_exists(cv_db *db, const char *plan_id, cv_error *err)
{
    const char *params[1] = {plan_id};
    PGresult *res;
    int rv, rows;

    if ((rv = cv_plan_ref_check_id(plan_id, err)) != 0)
        return rv;
    if ((res = cv_db_exec(db, "cv_plan_ref_exists", 1, params, err)) == NULL)
        return err->code;
    rows = PQntuples(res);
    PQclear(res);
    if (rows == 0)
        return cv_error_set(err, CV_NOT_FOUND, CV_PLAN_NOT_FOUND);
    return 0;
}

void
cv_plan_ref_free_providers(char **providers, size_t n)
{
    if (providers == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(providers[i]);
    free(providers);
}

int
cv_plan_ref_providers(cv_db *db, const char *plan_id, char ***providers,
                      size_t *n, cv_error *err)
{
    const char *params[1] = {plan_id};
    PGresult *res;
    char **list;
    int rows;

    *providers = NULL;
    *n = 0;
    if ((res = cv_db_exec(db, "cv_plan_ref_providers", 1, params, err)) == NULL)
        return err->code;
    /* A stored plan routes to at least one provider: no rows, no plan. */
    if ((rows = PQntuples(res)) == 0) {
        PQclear(res);
        return cv_error_set(err, CV_NOT_FOUND, CV_PLAN_NOT_FOUND);
    }
    if ((list = calloc((size_t)rows, sizeof(char *))) == NULL) {
        PQclear(res);
        return cv_error_set(err, CV_INTERNAL, "out of memory");
    }
    for (int i = 0; i < rows; i++)
        if ((list[i] = strdup(PQgetvalue(res, i, 0))) == NULL) {
            PQclear(res);
            cv_plan_ref_free_providers(list, (size_t)rows);
            return cv_error_set(err, CV_INTERNAL, "out of memory");
        }
    PQclear(res);
    *providers = list;
    *n = (size_t)rows;
    return 0;
}

int
cv_plan_ref_check_provider(const char *plan_id, const char *provider,
                           char *const *providers, size_t n_providers,
                           cv_error *err)
{
    /* Half the message for the list, so the whole always fits. */
    char list[CV_ERROR_MSG_MAX / 2];
    size_t used = 0;

    for (size_t i = 0; i < n_providers; i++)
        if (strcmp(providers[i], provider) == 0)
            return 0;
    list[0] = '\0';
    for (size_t i = 0; i < n_providers && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%s",
                         i > 0 ? ", " : "", providers[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return cv_error_set(err, CV_INVALID_ARGUMENT,
                        "provider %s is not routed by recovery escalation "
                        "plan %s; the plan's providers are %s",
                        provider, plan_id, list);
}

int
cv_plan_ref_check_routed(cv_db *db, const char *plan_id, const char *provider,
                         cv_error *err)
{
    char **providers = NULL;
    size_t n = 0;
    int rv;

    if ((rv = cv_plan_ref_check_id(plan_id, err)) != 0 ||
        (rv = cv_plan_ref_providers(db, plan_id, &providers, &n, err)) != 0)
        return rv;
    rv = cv_plan_ref_check_provider(plan_id, provider, providers, n, err);
    cv_plan_ref_free_providers(providers, n);
    return rv;
}
