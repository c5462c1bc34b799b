/*
 * report_sql.c -- the reporting service's statements.
 */
#include "report_sql.h"

const cv_db_statement report_sql_statements[] = {
    {"report_ping", "SELECT 1"},
};
const size_t report_sql_statement_count =
    sizeof(report_sql_statements) / sizeof(report_sql_statements[0]);
