# Shared by the agent benchmarks (idle.sh, eval.sh): compile every SigmaHQ process_creation rule
# of $SIGMA against the agent's own manifest into $W/sigma.rfp, publish it in a TUF repository
# $W/repo, start a real ringfenced on 127.0.0.1 (a free port; its pid in SPID), and create a
# tenant (its enrolment token in TOKEN) and the release sigma-1 for the ring canary. Needs AGENT,
# SERVERBIN, CLI, SIGMA, W and die(); exports RINGFENCE_SERVER and RINGFENCE_ADMIN_TOKEN_FILE.
rf_bench_sigma_release() {
	local dirs i
	dirs=$(find "$SIGMA" -type d -name process_creation | sort)
	"$CLI" content compile $dirs -o "$W/sigma.rfp" --manifest <("$AGENT" manifest) \
		>"$W/compile.out" 2>&1
	[ -s "$W/sigma.rfp" ] || die "compile"
	"$CLI" repo init "$W/repo" >/dev/null || die "repo init"
	"$CLI" repo add "$W/repo" "$W/sigma.rfp" --name packs/sigma.rfp --custom \
		'{"ringfence":{"release":"sigma-1","schedule":[{"ring":"canary","not_before":0,"ramp":[{"after":0,"percent":100}]}]}}' >/dev/null &&
		"$CLI" repo publish "$W/repo" >/dev/null || die "publish"
	"$SERVERBIN" --init --db "$W/db" --repo "$W/repo" --listen 127.0.0.1:0 \
		--port-file "$W/port" --threads 1 >"$W/server.log" 2>&1 &
	SPID=$!
	for i in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
	[ -s "$W/port" ] || die "ringfenced did not start"
	export RINGFENCE_SERVER=http://127.0.0.1:$(cat "$W/port")
	export RINGFENCE_ADMIN_TOKEN_FILE=$W/db.admin-token
	TOKEN=$("$CLI" tenant create bench --ring canary | grep -o 'rfe_[0-9a-f]*')
	"$CLI" release create packs/sigma.rfp >/dev/null || die "release"
}
