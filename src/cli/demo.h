/*
 * `ringfence demo`, the parts shared by its files: the demo's state (the fleet of real agent
 * processes, the server, the packs), and the internals each file offers the others.
 *
 *   demo.c          setup (programs, examples, packs, work dir), the fleet's start, options, the
 *                   order of the acts, and the cleanup every exit path runs
 *   demo_fleet.c    the processes: spawning, supervising and rebooting hosts, the event
 *                   streams, narration and promise checks
 *   demo_publish.c  compiling packs and publishing them with a demo-scaled signed schedule
 *   demo_watch.c    what the demo reads back: the operator API, each agent's store and log,
 *                   progress lines and the conditions the acts wait for
 *   demo_acts.c     the acts and the summary
 *   demo_rapid.c    the last act: the rapid policy with real processes
 *
 * Invariants (demo.c's opening comment has the whole list): every "ok" is read back from real
 * state; every child runs in its own process group and is killed and reaped on every exit path;
 * only 127.0.0.1; every wait is bounded and ends early on rf__demo_stop_signal.
 */
#ifndef RF_CLI_DEMO_H
#define RF_CLI_DEMO_H

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ringfence/limits.h"

#define DEMO_AGENTS_MAX RF_DEMO_AGENTS_MAX
#define DEMO_PATH	512
#define DEMO_DIR_MAX	RF_DEMO_DIR_MAX
#define NRINGS		3
#define NPACKS		5

/* The releases, in the order the acts publish them. */
enum { PACK_GOOD, PACK_291, PACK_BUG, PACK_RAPID_GOOD, PACK_RAPID_BAD };

extern const char *const rf__demo_ring_names[NRINGS];

struct agent {
	pid_t pid;	     /* 0 while not running */
	int ring;	     /* index into rf__demo_ring_names */
	bool offline;	     /* --chaos: a host that is switched off, not restarted */
	unsigned deaths;     /* deaths the orchestrator saw (host crashes and chaos kills) */
	unsigned killed;     /* of which chaos kills */
	uint64_t restart_ms; /* a pending reboot, monotonic ms; 0 none */
	char id[32];
	char dir[DEMO_PATH];
};

struct pack {
	const char *target;
	const char *release;
	char file[DEMO_PATH];
	char hex[65];
	long long id;	      /* server release id */
	long long created_at; /* server time */
	long long halted_at;
	unsigned snapshots;	 /* server status snapshots watched while it rolled out */
	unsigned order_breaches; /* of which showed a ring with devices before the previous ring
				  * completed: the signed ring order broken (P6) */
	char halt_reason[256];
	bool rapid; /* published with the demo-scaled rapid schedule (rf__demo_rapid_ramp) */
	bool crashes_worker; /* its load crashes the agent's evaluation process, not the host */
	/* created with the buggy validator's manifest (demo_publish.c): it needs a field no agent
	 * supplies, which the server's own check of the pack would refuse */
	bool validator_bug;
};

struct demo {
	unsigned n;
	unsigned seed;
	unsigned poll;
	bool keep, chaos, quiet;
	const char *workdir_opt;
	char self[DEMO_PATH], agent_bin[DEMO_PATH], server_bin[DEMO_PATH], examples[DEMO_PATH];
	char work[DEMO_PATH], repo[DEMO_PATH], db[DEMO_PATH];
	char url[64];
	char admin[80], enroll[80];
	unsigned port;
	pid_t server;
	bool server_db_created; /* the first start ran with --init; restarts reuse the database */
	bool server_expected_down;
	struct agent *ag;
	unsigned nring[NRINGS];
	struct pack pk[NPACKS];
	int good; /* the newest good release, the one every agent should run as its LKG */
	unsigned broken;
	uint64_t t0_ms, last_event_ms, last_status_ms;
	unsigned event_line;
	char **events;
	size_t nevents;
	CURL *curl;
};

/* An agent's durable state, read from its store (rf__demo_agent_read). */
struct astate {
	bool ok; /* the store could be read */
	int mode;
	bool has_cur, has_lkg;
	uint8_t cur[32], lkg[32];
	bool quarantined[NPACKS], stored[NPACKS];
	size_t pending;
};

/* Set by SIGINT/SIGTERM/SIGHUP: every wait loop stops early. */
extern volatile sig_atomic_t rf__demo_stop_signal;

/* ---- demo_fleet.c ---- */

/* snprintf that reports truncation as -ENAMETOOLONG (paths are checked once at setup: the
 * work dir is at most DEMO_DIR_MAX bytes, so the composed paths always fit). */
int rf__demo_pathf(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t rf__demo_now_ms(void);
/* Narration: a timestamped line; an act's title. */
void rf__demo_say(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rf__demo_act(struct demo *d, const char *title);
/* A promise checked against real state: "ok" or "BROKEN" (which makes the exit code 1).
 * Returns ok. */
bool rf__demo_check(struct demo *d, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rf__demo_kill_group(pid_t pid, int sig);
/* Run a tool to completion (bounded: 120 s), output appended to work/logname; 0 when it
 * exited 0, -ETIMEDOUT, -EIO, or a negative errno from fork. */
int rf__demo_run_tool(struct demo *d, char *const argv[], const char *logname);
void rf__demo_agent_paths(const struct agent *a, const char *leaf, char *out, size_t outsz);
int rf__demo_agent_start(struct demo *d, struct agent *a);
int rf__demo_server_start(struct demo *d);
void rf__demo_stop_all(struct demo *d);
int rf__demo_load_events(struct demo *d);
/* Reap children, reboot hosts whose agent died, feed events. Called by every wait loop. */
void rf__demo_tick(struct demo *d);
/* Sleep ms while ticking. */
void rf__demo_nap(struct demo *d, unsigned ms);

/* ---- demo_watch.c ---- */

long rf__demo_api(struct demo *d, const char *method, const char *path, json_t *body, json_t **ret);
long long rf__demo_jint(json_t *o, const char *k);
const char *rf__demo_jstr(json_t *o, const char *k);
json_t *rf__demo_release_get(struct demo *d, const struct pack *pk);
json_t *rf__demo_ring_of(json_t *rel, int ring);
long long rf__demo_ring_health(json_t *rel, int ring, const char *k);
void rf__demo_agent_read(struct demo *d, const struct agent *a, struct astate *s);
bool rf__demo_on_good(struct demo *d, const struct astate *s);
unsigned rf__demo_log_count(const struct agent *a, const char *needle);
unsigned rf__demo_loads_of(struct demo *d, const struct agent *a, int k);
unsigned rf__demo_crashes_of(struct demo *d, const struct agent *a, int k);
bool rf__demo_saw(struct demo *d, const struct agent *a, int k);
void rf__demo_show_rings(struct demo *d, struct pack *pk);
bool rf__demo_wait_for(struct demo *d, unsigned timeout_s, struct pack *pk,
		       bool (*pred)(struct demo *, struct pack *));
bool rf__demo_all_enrolled(struct demo *d, struct pack *pk);
bool rf__demo_everyone_on_good(struct demo *d, struct pack *pk);
bool rf__demo_halted(struct demo *d, struct pack *pk);
bool rf__demo_canary_healed(struct demo *d, struct pack *pk);
/* A bad release was just created: say so ("Release N created" then `watching`), wait up to
 * timeout_s for the server to halt it by itself, show the rings and check that it did.
 * Returns the check's verdict. */
bool rf__demo_watch_gate(struct demo *d, struct pack *pk, unsigned timeout_s,
			 const char *watching);

/* ---- demo_publish.c ---- */

int rf__demo_compile_pack(struct demo *d, const char *rules, struct pack *pk, const char *seq);
int rf__demo_publish(struct demo *d, struct pack *pk);

/* The rapid policy's gates and ramps as the demo signs them (scaled like Act 1's: 10 minutes
 * of probation are 4 s, so rapid's 5-minute steps and bake are 2 s; see demo_publish.c). */
#define DEMO_RAPID_MIN_HEALTHY 5
#define DEMO_RAPID_BAKE_S      2
/* The ramp of one ring of ring_size agents under the demo-scaled rapid schedule: JSON steps into
 * out, the same in words into text (may be NULL). Returns the percent of its first step. */
unsigned rf__demo_rapid_ramp(int ring, unsigned ring_size, char *out, size_t outsz, char *text,
			     size_t textsz);

/* ---- demo_acts.c ---- */

unsigned *rf__demo_snapshot_deaths(struct demo *d);
bool rf__demo_act_good(struct demo *d);
bool rf__demo_act_291(struct demo *d);
bool rf__demo_act_bug(struct demo *d);
/* Act 4 (demo_rapid.c): the good release under the rapid schedule, then the bad one. */
bool rf__demo_act_rapid(struct demo *d);
bool rf__demo_act_rapid_bad(struct demo *d);
/* Nothing outside canary ever saw pack k: agents' logs and stores, and the server's rings. */
void rf__demo_check_contained(struct demo *d, int k);
void rf__demo_summary(struct demo *d, unsigned *const deaths0[NPACKS]);

#endif
