/*
 * Test databases for the server tests (testdb.h). The PostgreSQL side talks to the server
 * started by tests/lib/pg.sh through libpq: each new database is CREATE DATABASE on the
 * maintenance database RF_TEST_DB names, with a name unique to this process and call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testdb.h"

bool rf_testdb_pg(void)
{
	const char *u = getenv("RF_TEST_DB");
	return u && (!strncmp(u, "postgresql://", 13) || !strncmp(u, "postgres://", 11));
}

int rf_testdb_sql(const char *uri, const char *sql)
{
	PGconn *c = PQconnectdb(uri);
	PGresult *res;
	int r = 0;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "testdb: connect %s: %s", uri, PQerrorMessage(c));
		PQfinish(c);
		return -EIO;
	}
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "testdb: %s: %s", sql, PQerrorMessage(c));
		r = -EIO;
	}
	PQclear(res);
	PQfinish(c);
	return r;
}

int rf_testdb_new(const char *dir, const char *file, char *out, size_t n)
{
	static unsigned seq;
	const char *base = getenv("RF_TEST_DB");
	PQconninfoOption *o, *opts;
	const char *host = "", *user = "", *port = "5432";
	char name[64], sql[128];
	int r;

	if (!rf_testdb_pg()) {
		if ((size_t)snprintf(out, n, "%s/%s", dir, file) >= n)
			return -EIO;
		return 0;
	}
	snprintf(name, sizeof(name), "rf_test_%ld_%u", (long)getpid(), seq++);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	r = rf_testdb_sql(base, sql);
	if (r < 0)
		return r;
	opts = PQconninfoParse(base, NULL);
	if (!opts)
		return -EIO;
	for (o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
	}
	r = (size_t)snprintf(out, n, "postgresql://%s@/%s?host=%s&port=%s", user, name, host,
			     port) >= n
		? -EIO
		: 0;
	PQconninfoFree(opts);
	return r;
}

int rf_testdb_server(bool up)
{
	const char *script = getenv("RF_TEST_PG_SCRIPT"), *ctl = getenv("RF_TEST_PG_CTL");
	char cmd[1024];

	if (!script || !ctl)
		return -EIO;
	snprintf(cmd, sizeof(cmd), "'%s' --ctl '%s' %s", script, ctl, up ? "start" : "stop");
	return system(cmd) == 0 ? 0 : -EIO;
}
