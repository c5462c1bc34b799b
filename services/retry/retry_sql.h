/*
 * retry_sql.h -- all SQL of the retry-planning service.
 */
#ifndef RETRY_SQL_H
#define RETRY_SQL_H

#include "cv_db.h"

extern const cv_db_statement retry_sql_statements[];
extern const size_t retry_sql_statement_count;

#endif
