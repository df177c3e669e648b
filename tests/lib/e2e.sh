# Shared helpers of the end-to-end shell tests (sourced, not run): a work directory removed at
# exit (KEEP=1 keeps it), the processes a test started stopped at exit, ringfenced started on
# 127.0.0.1 with a free port (every wait bounded), releases published with the operator's own
# commands (docs/operators.md), one agent run against that server and asked for its status. The
# sourcing script sets CLI and SERVERBIN (and AGENT for the agent helpers) and defines fail(), or
# has rf_agent_test do both.

# rf_e2e_init NAME: W (the work directory), SPID (the server: ringfenced, or a test's fake
# server), APID (one agent) and APIDS (agents), the exit trap: the agents are killed (-KILL), the
# server stopped (-TERM) and waited for.
rf_e2e_init() {
	W=$(mktemp -d "/tmp/rf-$1-XXXXXX")
	SPID= APID= APIDS=()
	trap rf_e2e_cleanup EXIT
}

rf_e2e_cleanup() {
	local p
	[ -n "${APID:-}" ] && kill -KILL "$APID" 2>/dev/null
	for p in "${APIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}

# rf_agent_test NAME RINGFENCE_AGENT RINGFENCED RINGFENCE: the start of a test of the agent
# against the real ringfenced and the real CLI: sets AGENT, SERVERBIN and CLI from the arguments,
# skips the test (exit 77) without python3 (rf_q reads the agent's status JSON with it), defines
# fail() (the message, the tail of the agent's log and, once it has a store, the agent's status;
# exit 1) and calls rf_e2e_init NAME.
rf_agent_test() {
	AGENT=$2 SERVERBIN=$3 CLI=$4
	command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read JSON"; exit 77; }
	fail() {
		echo "FAIL: $*"
		rf_agent_log_tail 40
		[ -d "$W/store" ] && { echo "---- status"; "$AGENT" status --store "$W/store" 2>&1; }
		exit 1
	}
	rf_e2e_init "$1"
}

ok() { echo "ok: $*"; }
# rf_stop_agent: stop the agent APID (SIGTERM, then wait for it, bounded: 10 s) and clear APID.
rf_stop_agent() {
	local i
	kill -TERM "$APID" 2>/dev/null
	for i in $(seq 100); do kill -0 "$APID" 2>/dev/null || break; sleep 0.1; done
	{ wait "$APID"; } 2>/dev/null
	APID=
}
# rf_agent_log_tail N: the last N lines of the agent's log ($W/agent.log), for a failure message.
rf_agent_log_tail() {
	echo "---- agent log (tail)"
	tail -"$1" "$W/agent.log" 2>/dev/null
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# rf_start_server [ARGS...]: a new ringfenced on $W/db and $W/repo, log in $W/server.log; sets
# URL and exports RINGFENCE_SERVER and RINGFENCE_ADMIN_TOKEN_FILE for the CLI.
rf_start_server() {
	rm -f "$W/port"
	"$SERVERBIN" --init --db "$W/db" --repo "$W/repo" --listen 127.0.0.1:0 --port-file "$W/port" \
		--poll-interval 1 --threads 2 "$@" >"$W/server.log" 2>&1 &
	SPID=$!
	local i
	for i in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
	[ -s "$W/port" ] || fail "ringfenced did not start"
	URL=http://127.0.0.1:$(cat "$W/port")
	export RINGFENCE_SERVER=$URL RINGFENCE_ADMIN_TOKEN_FILE=$W/db.admin-token
}

# rf_canary_all: a schedule step that opens the whole canary ring at once.
RF_CANARY_ALL='{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]}'

# rf_publish NAME FILE RELEASE-ID [SCHEDULE-STEPS [GATES]]: add the pack to $W/repo with its
# signed schedule (default: the whole canary at once), publish, create the release (with the
# options in RF_CREATE_OPTS, e.g. "--manifest F": rf_validator_manifest).
rf_publish() {
	local custom="{\"ringfence\":{\"release\":\"$3\",\"schedule\":[${4:-$RF_CANARY_ALL}]"
	[ -n "${5:-}" ] && custom="$custom,\"gates\":$5"
	custom="$custom}}"
	"$CLI" repo add "$W/repo" "$2" --name "$1" --custom "$custom" >/dev/null || fail "repo add $1"
	"$CLI" repo publish "$W/repo" >/dev/null || fail "repo publish"
	# shellcheck disable=SC2086 # RF_CREATE_OPTS is words
	"$CLI" release create "$1" ${RF_CREATE_OPTS:-} >/dev/null || fail "release create $1"
}

# rf_validator_manifest: the path of the buggy validator's manifest (tests/lib/validator-manifest.py,
# made once): release create given it lets a pack that needs ChannelField21 through, so a test
# can show the agents refuse it (P1).
rf_validator_manifest() {
	[ -s "$W/validator-manifest.json" ] ||
		python3 "$SRC/tests/lib/validator-manifest.py" "$W/validator-manifest.json" ||
		fail "validator-manifest.py"
	echo "$W/validator-manifest.json"
}

# rf_compile NAME SEQ RULE-FILES...: $W/NAME.rfp, a pack of those rules with sequence SEQ (no
# manifest check: the agent's is what a test checks).
rf_compile() {
	local name=$1 seq=$2
	shift 2
	mkdir -p "$W/rules-$name"
	cp "$@" "$W/rules-$name/"
	"$CLI" content compile "$W/rules-$name" -o "$W/$name.rfp" --seq "$seq" >/dev/null 2>&1 ||
		fail "compile $name"
}

# rf_tenant: TOKEN := the enrollment token of a new tenant acme, whose devices join canary.
rf_tenant() {
	TOKEN=$("$CLI" tenant create acme --ring canary | grep -o 'rfe_[0-9a-f]*')
	[ -n "$TOKEN" ] || fail "tenant create"
}

# rf_start_agent DEVICE-ID: an agent on the store $W/store, enrolled with TOKEN into canary,
# trusting $W/repo's first root, checking in every second, on probation PROBATION seconds
# (default 3600) with no events needed, reading $W/events.jsonl; its log appended to
# $W/agent.log. Sets APID.
# (RF_AGENT_ARGS: more options, split at spaces, e.g. "--alerts FILE")
rf_start_agent() {
	"$AGENT" run --server "$URL" --store "$W/store" --ring canary --enroll-token "$TOKEN" \
		--device-id "$1" --tuf-root "$W/repo/repository/metadata/1.root.json" --poll 1 \
		--probation "${PROBATION:-3600}" --probation-events 0 --events "$W/events.jsonl" \
		${RF_AGENT_ARGS:-} >>"$W/agent.log" 2>&1 &
	APID=$!
}
# rf_alive WHAT: fail unless the agent APID still runs (WHAT: what the test was waiting for).
rf_alive() { kill -0 "$APID" 2>/dev/null || fail "the agent died: $1"; }
# rf_q EXPR: the Python expression EXPR over the agent's `status --json` of $W/store (as s),
# printed; nothing when the status cannot be read.
rf_q() {
	"$AGENT" status --store "$W/store" --json 2>/dev/null |
		python3 -c "import json,sys; s=json.load(sys.stdin); print($1)" 2>/dev/null
}
# rf_wait_for COND-EXPR SECONDS: 0 once rf_q COND-EXPR prints True, 1 when SECONDS pass first;
# the agent must stay up meanwhile.
rf_wait_for() {
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		rf_alive "waiting for $1"
		[ "$(rf_q "$1")" = True ] && return 0
		sleep 0.2
	done
	return 1
}
