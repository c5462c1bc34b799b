/*
 * dashboard_scale_dump.c -- prints one statement of a report_sql.c (for
 * bench/dashboard_scale.sh, which times the statements of two versions
 * side by side). Built by that script with -DREPORT_SQL_SRC="path":
 *   dump NAME   the SQL of statement NAME; exit 1 when there is none.
 */
#include <stdio.h>
#include <string.h>

#include REPORT_SQL_SRC

int
main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    for (size_t i = 0; i < report_sql_statement_count; i++)
        if (strcmp(report_sql_statements[i].name, argv[1]) == 0) {
            printf("%s\n", report_sql_statements[i].sql);
            return 0;
        }
    return 1;
}
