/*
 * retry_sql.c -- the retry-planning service's statements.
 */
#include "retry_sql.h"

const cv_db_statement retry_sql_statements[] = {
    {"retry_ping", "SELECT 1"},
};
const size_t retry_sql_statement_count =
    sizeof(retry_sql_statements) / sizeof(retry_sql_statements[0]);
