/*
 * The database a server test runs on: a SQLite file by default, or, when the test runs under
 * tests/lib/pg.sh (RF_TEST_DB set to a PostgreSQL URI), a new PostgreSQL database created for
 * each call on that private server, so every test starts from nothing on either backend.
 */
#ifndef RF_TESTS_TESTDB_H
#define RF_TESTS_TESTDB_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the tests run against PostgreSQL. */
bool rf_testdb_pg(void);

/* A new, empty database: PostgreSQL, a created database's URI; SQLite, dir/file. Writes the
 * spec for --db (or rf_db_open) to out[n]. Returns 0, or -EIO (stderr says why). */
int rf_testdb_new(const char *dir, const char *file, char *out, size_t n);

/* Run sql (one or more statements, no parameters) on the PostgreSQL database uri.
 * Returns 0, or -EIO (stderr says why). */
int rf_testdb_sql(const char *uri, const char *sql);

/* Stop (false) or start (true) the test's PostgreSQL server (pg.sh --ctl); 0 or -EIO. */
int rf_testdb_server(bool up);

#endif
