/*
 * report_sql.h -- all SQL of the reporting service.
 */
#ifndef REPORT_SQL_H
#define REPORT_SQL_H

#include "cv_db.h"

extern const cv_db_statement report_sql_statements[];
extern const size_t report_sql_statement_count;

#endif
