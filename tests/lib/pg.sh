#!/usr/bin/env bash
# Run one command against a private, throw-away PostgreSQL server: initdb in a temp dir, the
# server listening only on a unix socket in that dir (listen_addresses=''), the command run with
# RF_TEST_DB set to a libpq URI of its maintenance database ("postgres") and RF_TEST_PG_CTL to
# this script's control file, then the server stopped and the dir removed, whatever the command
# did. Exits with the command's status (77, meson's "skipped", when PostgreSQL is not installed).
#
# PostgreSQL refuses to run as root: as root (CI), the server runs as the unprivileged user
# nobody (runuser), which owns the temp dir; the client side (the command) stays as it is.
# Every wait is bounded (pg_ctl -w -t 60). Used by meson test registrations (tests/server).
#
# RF_PG_CONF, when set, is appended to postgresql.conf (settings of a benchmark: bench/server).
#
# Usage: tests/lib/pg.sh COMMAND [ARGS...]
#        tests/lib/pg.sh --ctl CTLFILE stop|start   (from a test: stop or start that server)
set -uo pipefail

bindir=
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && bindir=$d
done
if [ -z "$bindir" ]; then
  echo "pg.sh: PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): skipped" >&2
  exit 77
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-}" = "--ctl" ]; then
  # shellcheck disable=SC1090
  . "$2"
  case "$3" in
    stop) as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null ;;
    start) as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >/dev/null ;;
    *) echo "pg.sh: --ctl FILE stop|start" >&2; exit 2 ;;
  esac
  exit $?
fi
[ $# -ge 1 ] || { echo "usage: pg.sh COMMAND [ARGS...]" >&2; exit 2; }

dir=$(mktemp -d /tmp/rf-pg-XXXXXX) || exit 1
chmod 0700 "$dir"
[ "$(id -u)" -eq 0 ] && chown nobody "$dir"
user=$(as_owner id -un)

cleanup() {
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! as_owner "$bindir/initdb" -D "$dir/data" -U "$user" --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
  echo "pg.sh: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1
fi
# Only the socket in $dir; fsync stays on (the tests kill servers and expect what was committed).
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
max_connections = 100
shared_buffers = 32MB
logging_collector = off
CONF
[ -n "${RF_PG_CONF:-}" ] && printf '%s\n' "$RF_PG_CONF" >>"$dir/data/postgresql.conf"
if ! as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >/dev/null; then
  echo "pg.sh: PostgreSQL did not start:" >&2; cat "$dir/log" >&2; exit 1
fi
printf 'dir=%q\n' "$dir" >"$dir/ctl"
chmod 0644 "$dir/ctl"

export RF_TEST_DB="postgresql://$user@/postgres?host=$dir&port=5432"
export RF_TEST_PG_CTL="$dir/ctl"
export RF_TEST_PG_SCRIPT="$(readlink -f "$0")"
"$@"
status=$?
if [ $status -ne 0 ] && [ -n "${RF_TEST_VERBOSE:-}" ]; then
  echo "pg.sh: PostgreSQL log:" >&2; tail -n 50 "$dir/log" >&2
fi
exit $status
