#!/usr/bin/env bash
# The Debian packages (scripts/make-deb, `make deb`) build, install with dpkg -i, and work as
# installed: every program answers --version and --help; `ringfence sim` runs an installed
# scenario from /usr/share/ringfence (not from this source tree); the installed examples
# compile against the installed manifests; the server package created its database, owned by
# its own user, and ringfenced serves it without --init; every Documentation= of the units
# names an installed file; `systemd-analyze verify` accepts both units. Then the packages are
# purged. Installs on this machine: CI's machine is throwaway. Skips (77) when not root.
# Needs RF_SOURCE_ROOT and RF_BUILD_ROOT (meson sets both).
set -uo pipefail

src=${RF_SOURCE_ROOT:?RF_SOURCE_ROOT not set}
b=${RF_BUILD_ROOT:?RF_BUILD_ROOT not set}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: installing packages needs root (CI runs make check as root)"
	exit 77
fi
for t in dpkg-deb dpkg readelf curl setpriv; do
	command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
pkgs=(ringfence-tools ringfence-server ringfence-agent)
for p in "${pkgs[@]}"; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		echo "SKIP: $p is installed on this machine already; not touching it"
		exit 77
	fi
done
work=$(mktemp -d "${TMPDIR:-/tmp}/rf-deb.XXXXXX")
had_state=0
[ -e /var/lib/ringfenced ] && had_state=1
had_user=0
getent passwd ringfence >/dev/null && had_user=1
had_agent_user=0
getent passwd ringfence-agent >/dev/null && had_agent_user=1
server_pid=
cleanup() {
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null
	dpkg --purge "${pkgs[@]}" >/dev/null 2>&1
	[ $had_state = 1 ] || rm -rf /var/lib/ringfenced
	[ $had_user = 1 ] || userdel ringfence 2>/dev/null
	[ $had_agent_user = 1 ] || userdel ringfence-agent 2>/dev/null
	rmdir /etc/ringfence 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# ---- build --------------------------------------------------------------------------------
if ! "$src/scripts/make-deb" "$b/deb" "$b/deb-out" >"$work/build.log" 2>&1; then
	cat "$work/build.log"
	echo "FAIL: scripts/make-deb"
	exit 1
fi
debs=()
for p in "${pkgs[@]}"; do
	f=$(ls "$b/deb-out/${p}_"*.deb 2>/dev/null | head -1)
	[ -n "$f" ] || { echo "FAIL: no $p package built"; exit 1; }
	debs+=("$f")
done
ok "built ${debs[*]##*/}"

# ---- install ------------------------------------------------------------------------------
if ! dpkg -i "${debs[@]}" >"$work/install.log" 2>&1; then
	cat "$work/install.log"
	echo "FAIL: dpkg -i"
	exit 1
fi
ok "dpkg -i"

# ---- the installed programs -----------------------------------------------------------------
for p in ringfence ringfenced ringfence-agent; do
	v=$(/usr/bin/$p --version 2>&1) && [[ $v == "$p "[0-9]* ]] && ok "$p --version: $v" ||
		fail "$p --version: $v"
	/usr/bin/$p --help >"$work/help" 2>&1 && grep -q "^usage: $p" "$work/help" &&
		ok "$p --help" || fail "$p --help: $(head -3 "$work/help")"
done
/usr/bin/ringfence-tuf-client --help >/dev/null 2>&1 && ok "ringfence-tuf-client --help" ||
	fail "ringfence-tuf-client --help"
/usr/bin/ringfence sim --help | grep -qx 'Data directory: $RINGFENCE_SIM_DIR, else /usr/share/ringfence/scenarios' &&
	ok "ringfence sim looks in /usr/share/ringfence" ||
	fail "ringfence sim --help: $(/usr/bin/ringfence sim --help | tail -1)"
rc=0
(cd "$work" && env -u RINGFENCE_SIM_DIR -u RINGFENCE_DATADIR /usr/bin/ringfence sim \
	crowdstrike-2024-07-19 --devices 2000 --out out >sim.out 2>sim.err) || rc=$?
if [ $rc -eq 0 ] && [ -s "$work/out/crowdstrike-2024-07-19--default.svg" ] &&
	grep -qF "to $work/out/" "$work/sim.out"; then
	ok "installed ringfence sim ran the installed scenario"
else
	fail "installed ringfence sim: exit $rc: $(cat "$work/sim.err") $(tail -3 "$work/sim.out")"
fi
/usr/bin/ringfence sim --list >"$work/list" 2>&1
grep -q "^  crowdstrike-2024-07-19$" "$work/list" && grep -q "^  default$" "$work/list" &&
	ok "sim --list: installed scenarios and policies" || fail "sim --list: $(head -3 "$work/list")"
rc=0
/usr/bin/ringfence content compile /usr/share/ringfence/examples/rules -o "$work/r.rfp" \
	--manifest /usr/share/ringfence/manifests/ringfence-agent-1.0.0.json >"$work/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] && ok "the installed examples compile against the installed manifest" ||
	fail "content compile of the installed examples: exit $rc: $(tail -3 "$work/c.out")"
[ -f /usr/share/ringfence/docs/operators.md ] && ok "docs under /usr/share/ringfence/docs" ||
	fail "no /usr/share/ringfence/docs/operators.md"

# ---- the server's database, user and first start ------------------------------------------------
db=/var/lib/ringfenced/ringfenced.db
if [ $had_state = 0 ]; then
	owner=$(stat -c '%U %a' "$db" 2>/dev/null)
	[ "$owner" = "ringfence 600" ] && ok "the package created $db (ringfence, 0600)" ||
		fail "$db: '$owner', want 'ringfence 600'"
	setpriv --reuid=ringfence --regid=ringfence --init-groups /usr/bin/ringfenced --db "$db" \
		--listen 127.0.0.1:0 --port-file /var/lib/ringfenced/test-port >"$work/srv.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do
		[ -s /var/lib/ringfenced/test-port ] && break
		kill -0 $server_pid 2>/dev/null || break
		sleep 0.1
	done
	port=$(cat /var/lib/ringfenced/test-port 2>/dev/null)
	if [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics"; then
		ok "ringfenced serves the installed database without --init, as user ringfence"
	else
		fail "ringfenced on the installed database: $(tail -3 "$work/srv.log")"
	fi
	kill $server_pid 2>/dev/null
	wait $server_pid 2>/dev/null
	server_pid=
	rm -f /var/lib/ringfenced/test-port
fi

# ---- the units ----------------------------------------------------------------------------------
units=(/lib/systemd/system/ringfenced.service /lib/systemd/system/ringfence-agent.service)
for u in "${units[@]}"; do
	[ -f "$u" ] || { fail "$u not installed"; continue; }
	for d in $(sed -n 's/^Documentation=//p' "$u"); do
		f=${d#file://}
		[ "$f" != "$d" ] && [ -f "$f" ] && ok "$u: Documentation= $f is installed" ||
			fail "$u: Documentation=$d is not an installed file"
	done
	for k in NoNewPrivileges=yes ProtectSystem=strict User=; do
		grep -q "^$k" "$u" || fail "$u has no $k"
	done
done
if command -v systemd-analyze >/dev/null; then
	if systemd-analyze verify "${units[@]}" >"$work/verify" 2>&1 && [ ! -s "$work/verify" ]; then
		ok "systemd-analyze verify: both units"
	else
		fail "systemd-analyze verify: $(cat "$work/verify")"
	fi
else
	echo "skipped: systemd-analyze is not installed (Debian package systemd); units not verified"
fi

# ---- remove ---------------------------------------------------------------------------------
if dpkg --purge "${pkgs[@]}" >"$work/purge.log" 2>&1 && [ ! -e /usr/bin/ringfence ] &&
	[ ! -e /usr/bin/ringfenced ] && [ ! -e /lib/systemd/system/ringfenced.service ]; then
	ok "dpkg --purge removed them"
else
	fail "dpkg --purge: $(tail -3 "$work/purge.log")"
fi

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
