/*
 * Every hard limit in ringfence, with the reason for its value (SQLite's sqliteLimit.h is the
 * model). Going over one returns -E2BIG with a diagnostic; it never crashes and never allocates
 * without bound. Each part keeps its limits in its own section below.
 */
#ifndef RINGFENCE_LIMITS_H
#define RINGFENCE_LIMITS_H

/* ---- common ---------------------------------------------------------------------------- */

/* Largest file any ringfence program reads whole (packs, manifests, metadata, rule files).
 * 64 MiB is ~30x the pack of every SigmaHQ rule; anything larger is a mistake or an attack. */
#define RF_FILE_MAX (64u * 1024 * 1024)
/* HTTP requests (common/http.h) whose caller gives no timeout: connecting to a server that
 * answers takes well under a second even across the world, so 10 s means it is not there; a
 * small JSON exchange that has not finished in 30 s counts as failed. */
#define RF_HTTP_CONNECT_TIMEOUT_S 10u
#define RF_HTTP_TIMEOUT_S 30u
/* Largest Retry-After a client honours: the agents' longest backoff (RF_AGENT_BACKOFF_MAX_S,
 * 15 minutes); a server asking for more is treated as asking for that. */
#define RF_HTTP_RETRY_AFTER_MAX_S 900u

/* ---- content (pack, verifier, interpreter, compiler) ------------------------------------ */

/* Largest pack accepted (bytes). The pack of every SigmaHQ rule is ~2 MiB; 16 MiB leaves room
 * for an 8x larger rule set while keeping the agent's load-time memory small. */
#define RF_PACK_MAX (16u * 1024 * 1024)
/* Table counts. Each is an order of magnitude above the full SigmaHQ set (3,141 rules, ~20k
 * atoms): enough for any real content, small enough that per-table arrays stay a few MiB. */
#define RF_PACK_STRINGS_MAX (1u << 20)
#define RF_PACK_FIELDS_MAX 4096u
#define RF_PACK_ATOMS_MAX (1u << 20)   /* must stay below 2^24: an ATOM insn arg is 24 bits */
#define RF_PACK_RULES_MAX 65536u
#define RF_PACK_CODE_MAX (1u << 22)    /* instructions in the whole pack */
/* One string (id, title, author, field name, pattern). The longest SigmaHQ value is < 1 KiB;
 * 4 KiB bounds the regex Vectorscan must compile from one pattern. */
#define RF_PACK_STRING_MAX 4096u
/* One atom's pattern. The longest value in SigmaHQ is 346 bytes; 1 KiB keeps the regex the glob
 * becomes (<= 4 bytes per literal byte) far below Vectorscan's expression length limit. */
#define RF_PATTERN_MAX 1024u
/* Wildcards ('*', '?') in one pattern. Vectorscan refuses some patterns with ~256 '?' as "too
 * large" only at full compile (its parser accepts them), so the verifier bounds them instead;
 * SigmaHQ values use at most a handful. */
#define RF_PATTERN_WILDCARDS_MAX 64u
/* Instructions in one rule program. The largest SigmaHQ rule compiles to a few hundred; the
 * program's cost per event is bounded by this (P3). */
#define RF_RULE_CODE_MAX 4096u
/* Evaluation stack depth (bits). 64 lets the interpreter keep the stack in one machine word;
 * the deepest SigmaHQ condition needs < 10. */
#define RF_RULE_STACK_MAX 64u
/* Largest trigger set (atoms) the prefilter keeps per rule; a rule whose set would be larger
 * runs on every event of its type instead (correct, just slower). Sigma rules with long value
 * lists (hashes, tool names) need hundreds; the index costs one word per entry. */
#define RF_TRIGGER_SET_MAX 4096u
/* Agent manifest: event types, fields per event, name length. A Sysmon-style agent has ~30
 * event types with < 40 fields each. */
#define RF_MANIFEST_MAX (1u * 1024 * 1024)
#define RF_MANIFEST_EVENTS_MAX 256u
#define RF_MANIFEST_FIELDS_MAX 256u
/* Logsources one manifest event may be declared for (SigmaHQ writes the same log at most two
 * ways, e.g. kubernetes audit with and without category application). */
#define RF_MANIFEST_LOGSOURCES_MAX 8u
#define RF_NAME_MAX 128u
/* Events (JSON lines). A Windows command line is at most 32,767 UTF-16 units; a line of 256 KiB
 * holds any real event with room to spare. */
#define RF_EVENT_LINE_MAX (256u * 1024)
/* Fields in one event: Sysmon's widest event has ~25; over 128 is not an event we know. Members
 * with null values are dropped but their names are checked for duplicates: as many again. */
#define RF_EVENT_FIELDS_MAX 128u
/* Longest field value the engine evaluates. Every value is matched whole: an event with a longer
 * value is refused as a whole (counted as oversize, rf_engine_eval returns -E2BIG), never matched
 * on a cut value, because a cut value gives wrong answers (endswith, EQ, `not`). The longest real
 * value is a Windows command line: 32,767 UTF-16 units, at most 98,301 UTF-8 bytes; 128 KiB holds
 * it with room and still fits a line (RF_EVENT_LINE_MAX). The scan cost stays linear: all values
 * of one event together are also capped at RF_EVENT_LINE_MAX (docs/engine.md). */
#define RF_EVENT_VALUE_MAX (128u * 1024)
/* Largest matcher cache file read (rf_engine_load_cached): the serialised Vectorscan databases of
 * the SigmaHQ process_creation pack are ~6 MiB; a file over 64 MiB is not one this agent wrote
 * for a pack it can load, so it is ignored (and rewritten, if the new one fits). */
#define RF_ENGINE_CACHE_MAX (64u * 1024 * 1024)
/* Events per rf_engine_eval_batch call. Scanning each field's database over a batch keeps it in
 * cache; 32 events amortise that while the per-thread scratch stays small (32 x (atoms / 8 +
 * 16 x fields) bytes, ~100 KiB for the SigmaHQ process_creation pack). */
#define RF_ENGINE_BATCH_MAX 32u
/* Sigma compiler (sigma.c): YAML from anyone. One rule file: the largest SigmaHQ rule is 295 KiB
 * (a hash list), process_creation ones < 32 KiB; 1 MiB bounds the parser's time and memory. */
#define RF_SIGMA_FILE_MAX (1024u * 1024)
/* YAML nodes per file (~10 bytes each at least, so 1 MiB cannot exceed ~100k) and nesting depth
 * (a Sigma rule nests 4-5 levels; the tree builder keeps one frame per level on the stack). */
#define RF_SIGMA_NODES_MAX 131072u
#define RF_SIGMA_YAML_DEPTH_MAX 32u
/* Entries in one YAML mapping: duplicate keys are checked pairwise, so this bounds that work. */
#define RF_SIGMA_MAP_MAX 1024u
/* Atoms (field predicates) per rule: the largest SigmaHQ rule has ~1,000 values (an emoji
 * list); each atom costs at least one instruction, so RF_RULE_CODE_MAX caps them anyway. */
#define RF_SIGMA_ATOMS_MAX 2048u
/* Parentheses and 'not' nesting in a condition: the parser recurses once per level; the deepest
 * SigmaHQ condition nests 3. Program length is RF_RULE_CODE_MAX, stack RF_RULE_STACK_MAX. */
#define RF_SIGMA_COND_DEPTH_MAX 32u
/* One value (pattern): what one pack atom may hold (RF_PATTERN_MAX), checked at compile time so
 * the author sees the rule and the line. */
#define RF_SIGMA_PATTERN_MAX RF_PATTERN_MAX
/* Dashes one windash value may vary: each becomes 5 variants (5^k atoms). SigmaHQ values vary
 * at most 2; 3 (125 atoms) bounds what one value can cost. */
#define RF_SIGMA_WINDASH_MAX 3u
/* Sigma `expand`: values one expanded value may become (the product over its placeholders), and
 * placeholders in one placeholders file. A placeholder lists a handful of users, hosts or
 * directories; 256 variants bound what one rule value can cost (each is at least one atom). */
#define RF_SIGMA_EXPAND_MAX 256u
#define RF_SIGMA_PLACEHOLDERS_MAX 1024u
/* Steps spent matching 'x of pattern*' against identifier names, per rule. Each match costs up to
 * name x pattern steps (both <= RF_NAME_MAX); real rules spend < 10,000 steps; 2^24 bounds an
 * adversarial condition to a few milliseconds. */
#define RF_SIGMA_MATCH_STEPS_MAX (1u << 24)

/* Sigma correlation rules (src/content/sigma_corr.c compiles them, src/content/correlate.c
 * evaluates them). Per pack: correlations, and per correlation the rules it refers to and its
 * group-by fields; SigmaHQ's correlations refer to 1-5 rules and group by 1-3 fields, so 16 and
 * 8 leave room while one correlation's table (refs + names + refs x group-by) stays 152 words. */
#define RF_CORR_MAX 1024u
#define RF_CORR_REFS_MAX 16u
#define RF_CORR_GROUP_MAX 8u
/* A correlation may refer to another (Sigma's chains); the evaluator follows a firing into the
 * correlations that refer to it recursively, so the depth bounds its stack (8 levels, each a
 * RF_CORR_KEY_MAX copy of the group's values). */
#define RF_CORR_CHAIN_MAX 8u
/* Longest timespan: 30 days. Detection windows are minutes to a day; the state a window holds
 * is bounded by the caps below whatever its length, so this only bounds the arithmetic. */
#define RF_CORR_TIMESPAN_MAX (30u * 86400)
/* Window entries one group holds (event times, or distinct values for value_count). A count
 * condition is decided exactly only up to this count, so the verifier refuses a condition over
 * it (gte/gt/eq at most 1024, an upper bound below it); real thresholds are 5 to a few hundred. */
#define RF_CORR_WINDOW_MAX 1024u
/* State of all correlations together in one agent: groups (distinct group-by values) and window
 * entries held at once. A group is ~950 bytes and an entry 24, so the caps hold the state under
 * ~5.2 MiB (allocated as it grows, never more). A host has a few hundred users, processes or
 * peers in any window; past a cap the least recently active group is dropped and counted
 * (rf_corr_stats: groups_dropped), never unbounded memory. */
#define RF_CORR_GROUPS_MAX 4096u
#define RF_CORR_ENTRIES_MAX 65536u
/* The group-by values of one group together (bytes, with 2 bytes of length each): user, host,
 * image path. An event whose values are longer is not counted (rf_corr_stats: skipped). */
#define RF_CORR_KEY_MAX 512u
/* Event times are the events' own (log lines, so possibly wrong or forged) and sources deliver
 * them out of order (CloudTrail by minutes). An event up to RF_CORR_LATE_MS older than the
 * newest accepted time still counts exactly (windows of upper-bounded conditions wait that long
 * after their end before they are decided); older, it is dropped and counted (late). An event
 * more than RF_CORR_SKEW_MS ahead of the caller's clock (rf_corr_set_clock) is dropped and
 * counted (future): 5 minutes is Kerberos' tolerated clock skew between hosts. */
#define RF_CORR_LATE_MS (5 * 60 * 1000)
#define RF_CORR_SKEW_MS (5 * 60 * 1000)
/* YAML documents in one Sigma file (a correlation with its base rules, `---` between them): the
 * specification's examples hold 2-4; 256 bounds the per-document work of a 1 MiB file. */
#define RF_SIGMA_DOCS_MAX 256u

/* ---- trust (TUF) ------------------------------------------------------------------------ */

/* Download ceilings per role (python-tuf's defaults: a root with a few hundred keys, a
 * snapshot/targets listing tens of thousands of entries; delegated roles count as targets). A
 * length given by the referring metadata can lower a ceiling, never raise it. Every byte past
 * a ceiling aborts the transfer with -E2BIG (the spec's "endless data" attack). */
#define RF_TUF_ROOT_MAX (512u * 1024)
#define RF_TUF_TIMESTAMP_MAX (16u * 1024)
#define RF_TUF_SNAPSHOT_MAX (2u * 1024 * 1024)
#define RF_TUF_TARGETS_MAX (5u * 1024 * 1024)
/* Root versions walked in one refresh: bounds a server that serves roots forever. */
#define RF_TUF_ROOT_ROTATIONS_MAX 256u
/* Delegated roles visited in one target search (python-tuf's max_delegations). */
#define RF_TUF_DELEGATIONS_MAX 32u
/* JSON nesting accepted by the canonicaliser: real metadata nests <= 6; bounds recursion. */
#define RF_TUF_JSON_DEPTH_MAX 64u
/* Keys, signatures, roles and targets in one metadata file: far above any real repository,
 * small enough that verification work per file stays bounded. */
#define RF_TUF_KEYS_MAX 1024u
#define RF_TUF_SIGNATURES_MAX 1024u
#define RF_TUF_ENTRIES_MAX 200000u
/* Longest role name or target path (bytes): file names derived from them must stay < 4096. */
#define RF_TUF_NAME_MAX 1024u
/* HTTP: connect timeout, and the whole-transfer timeout for one file (seconds). A transfer
 * slower than 1 KiB/s for 30 s is also aborted (slow-retrieval attack). */
#define RF_TUF_CONNECT_TIMEOUT_S 10
#define RF_TUF_TRANSFER_TIMEOUT_S 300

/* ---- rollout ---------------------------------------------------------------------------- */

/* Rings per schedule: real deployments use 3-6 (canary, early, broad...); 16 leaves room while
 * keeping struct rf_rollout_schedule a fixed-size value (~4 KiB) the simulator can copy. */
#define RF_ROLLOUT_RINGS_MAX 16
/* Ring name incl. NUL: short identifiers ([a-z0-9_-]), shown on dashboards. */
#define RF_ROLLOUT_RING_NAME_MAX 32
/* Ramp steps per ring: a ramp of 1, 2, 5, 10, 25, 50, 100 % is 7 steps. */
#define RF_ROLLOUT_STEPS_MAX 16
/* Release id incl. NUL: TUF target names / versions are far shorter. */
#define RF_ROLLOUT_RELEASE_ID_MAX 128
/* Halt reason text incl. NUL: one dashboard line. */
#define RF_ROLLOUT_REASON_MAX 160
/* Signed schedule JSON: the largest legal schedule formats to ~12 KiB; 64 KiB bounds parsing. */
#define RF_ROLLOUT_SCHEDULE_JSON_MAX (64u * 1024)
/* Cohort buckets: 10,000 gives 0.01 % granularity for the first canary step. */
#define RF_ROLLOUT_BUCKETS 10000u
/* Releases one decision looks at (oldest to newest): its index must fit the answer. */
#define RF_ROLLOUT_DECIDE_MAX 255
/* Largest ramp time (after, not_before, gate durations): year 10000, keeps sums overflow-free. */
#define RF_ROLLOUT_TIME_MAX 253402300799LL

/* ---- agent ------------------------------------------------------------------------------ */

/* Quarantine fingerprints the guard state holds (8 bytes each). The state must stay small:
 * the simulator holds millions; the store keeps every full hash (RF_AGENT_QUARANTINE_MAX). */
#define RF_GUARD_QUARANTINE_MAX 8
/* Loads a pack gets without surviving probation (issue 4: default 3). At most 255 (uint8_t). */
#define RF_GUARD_ATTEMPTS_DEFAULT 3
/* Probation: 10 minutes AND 1000 events in one run: long enough to see a crash on real load. */
#define RF_GUARD_PROBATION_MS_DEFAULT (10u * 60 * 1000)
#define RF_GUARD_PROBATION_EVENTS_DEFAULT 1000u
/* Full quarantined hashes with reasons kept in the store; = protocol's check-in list limit. */
#define RF_AGENT_QUARANTINE_MAX 64
/* Reports waiting to reach the server; past this the oldest are dropped (state still says). */
#define RF_AGENT_OUTBOX_MAX 64
/* Largest store state file: 64 quarantine entries + 64 reports with details fit in 64 KiB. */
#define RF_AGENT_STATE_MAX (256u * 1024)
/* Longest line read from an events stream; longer events are skipped and counted. The engine's
 * own line limit, so that every value up to RF_EVENT_VALUE_MAX reaches the engine whole. */
#define RF_AGENT_EVENT_LINE_MAX RF_EVENT_LINE_MAX
/* A check-in reply's reason name kept for the log (the rollout engine's longest is ~16). */
#define RF_AGENT_REASON_MAX 48
/* Largest check-in reply body accepted from the server. */
#define RF_AGENT_REPLY_MAX (64u * 1024)
/* TUF target names and device ids: the protocol's identifier limit (docs/protocol.md). */
#define RF_STORE_TARGET_MAX 128
/* Free-text detail kept with a report (protocol allows 1024; ours are short sentences). */
#define RF_STORE_DETAIL_MAX 256
/* Device credential: "rfd_" + 64 hex (protocol.md); room for a longer format later. */
#define RF_AGENT_CREDENTIAL_MAX 256
/* Check-in: poll interval accepted from the server (1 s .. 1 day), jitter +-20 %, and the
 * failure backoff (5 s doubling to 15 min, each randomised in [0.5, 1.5)) so a fleet that
 * restarts at once spreads its check-ins instead of stampeding the server. */
#define RF_AGENT_POLL_DEFAULT_S 300u
#define RF_AGENT_POLL_MAX_S 86400u
#define RF_AGENT_BACKOFF_MIN_S 5u
#define RF_AGENT_BACKOFF_MAX_S 900u
/* Seconds an HTTP exchange with the server may take before it counts as failed. */
#define RF_AGENT_HTTP_TIMEOUT_S 30u
/* Worker restarts after a crash are spaced by this base delay (ms, doubled per attempt). */
#define RF_AGENT_RESTART_DELAY_MS 200u
/* The verifier child (src/agent/verifier.h), bounded so no pack can stall the supervisor's
 * check-ins (P5). Verifying the largest real pack we know (1,239 rules, 690 KB) takes ~5 ms and
 * grows the heap by ~2.5 MiB (docs/engine.md); the largest legal pack (RF_PACK_MAX, 16 MiB) is
 * ~25 times that. Wall clock: 10 s is >50x the worst legal pack even under a sanitizer, and a
 * check-in that waits for it is still far inside the poll interval. CPU: the same 10 s, so a
 * spinning child dies even if its parent were stopped. Address space added to what the child
 * inherited: 512 MiB is ~8x the worst legal pack's peak and still a fraction of a small host. */
#define RF_AGENT_VERIFY_TIMEOUT_MS 10000u
#define RF_AGENT_VERIFY_CPU_S 10u
#define RF_AGENT_VERIFY_MEM_MAX (512ull * 1024 * 1024)
/* Bad offers remembered in one run (refused.h), so a release the server repeats at every
 * check-in is not downloaded and verified each time; the same bound holds the releases whose
 * delivery failed (retried with backoff, rf_transit). The server offers one release at a time,
 * so a few suffice; 32 full hashes are 1 KiB. Past it the oldest is forgotten: one more
 * download, never a load. */
#define RF_AGENT_REFUSED_MAX 32u
/* The process-creation source (src/agent/source_proc.h). Kernel socket buffer: 8 MiB holds
 * ~10,000 connector messages (each skb ~768 bytes of truesize) while the source reads /proc,
 * about three seconds of the fastest exec storm a 2-core host makes; set with SO_RCVBUFFORCE
 * (the source has CAP_NET_ADMIN anyway), so net.core.rmem_max does not cut it. */
#define RF_SOURCE_PROC_RCVBUF (8u * 1024 * 1024)
/* Bytes of a command line read from /proc/PID/cmdline. Linux allows ~2 MiB of arguments; 32 KiB
 * is Windows' whole command line, keeps a worst-case event (two command lines, every byte
 * escaped) near the event line limit, and costs one read. Longer ones are cut and counted. */
#define RF_SOURCE_PROC_CMDLINE_MAX (32u * 1024)
/* Processes whose parent the source remembers from fork events (8 bytes each), so a process
 * that exits before /proc is read still has its ParentProcessId. More live processes than this
 * on one host is rare; past it the table is cleared and refilled (counted). */
#define RF_SOURCE_PROC_PIDS (64u * 1024)
/* CPUs whose connector sequence numbers are tracked to count messages the kernel lost. */
#define RF_SOURCE_PROC_CPUS 4096u
/* User names cached (uid -> name), so a burst does not read /etc/passwd per event. */
#define RF_SOURCE_PROC_USERS 64u
/* Events queued between a source and its consumer (the worker, or stdout): 4 MiB is ~4,000
 * typical process events, a few seconds of a storm. Past it new events are dropped and counted,
 * never buffered without bound; the kernel socket buffer sits in front of it. */
#define RF_SOURCE_QUEUE_MAX (4u * 1024 * 1024)
/* The kernel acknowledges a subscription synchronously, inside our send(); 2 s is generous
 * even on a loaded host, and an unanswered one means a namespace the connector ignores. */
#define RF_SOURCE_PROC_ACK_TIMEOUT_MS 2000
/* The audit source (src/agent/source_audit.h). Kernel socket buffer: 8 MiB holds ~20,000 typical
 * records (a few hundred bytes each) while the consumer catches up; a larger backlog waits in the
 * kernel's own audit queue (its backlog_limit), which auditd shares. */
#define RF_SOURCE_AUDIT_RCVBUF (8u * 1024 * 1024)
/* One record: the kernel's MAX_AUDIT_MESSAGE_LENGTH is 8,970 bytes; 64 KiB leaves room for any
 * future growth, and a longer datagram is cut (the record then fails to parse and is counted). */
#define RF_SOURCE_AUDIT_RECORD_MAX (64u * 1024)
/* The log-file source (source_log.h). A line up to the largest value the engine matches whole
 * (a CloudTrail record is at most 256 KB by AWS's own limit but nearly always far less; a longer
 * line is refused whole and counted); at most 16 files per source; polled four times a second
 * (a new line waits at most that long; an idle poll is one fstat and one stat per file); at most
 * 1 MiB read per file per read call, so one huge line cannot hold the loop. */
#define RF_SOURCE_LOG_LINE_MAX	RF_EVENT_VALUE_MAX
#define RF_SOURCE_LOG_FILES_MAX 16u
#define RF_SOURCE_LOG_POLL_MS	250u
#define RF_SOURCE_LOG_READ_MAX	(1024u * 1024)
/* The bytes just before a file's read offset that the source remembers and reads again (one pread)
 * when the file has grown, to notice a truncation followed by a regrow past the offset between two
 * looks (copytruncate on a busy log): 64 bytes are a line's end or more of most logs' lines
 * (timestamps, ids), so the same bytes at the same place in new content are unlikely, and the
 * cost stays one small pread per look that finds growth. */
#define RF_SOURCE_LOG_FINGERPRINT 64u
/* EXECVE arguments supplied as fields a0..a63: SigmaHQ's rules name up to a7; 64 arguments cover
 * real command lines while keeping the event under RF_EVENT_FIELDS_MAX. Later ones are counted
 * as lost fields (the record's PROCTITLE still has the first 128 bytes of the whole line). */
#define RF_SOURCE_AUDIT_ARGS 64u
/* Serials below the highest seen that may still arrive (records of concurrent events interleave
 * on their way from each CPU to the kernel's queue): one 64-bit word of history. */
#define RF_SOURCE_AUDIT_REORDER 64u
/* The kernel answers AUDIT_GET inside our sendto(); 1 s is generous on a loaded host. */
#define RF_SOURCE_AUDIT_GET_TIMEOUT_MS 1000
/* The agent's source child (src/agent/events.c): its "ready" must come within 5 s (its own
 * subscription gives up after 2 s); a dead source is restarted after 1 s, a failed restart
 * retried every 10 s; drops are logged (and made durable) at most once a minute, not per event. */
#define RF_AGENT_SOURCE_READY_TIMEOUT_MS 5000
#define RF_AGENT_SOURCE_RESTART_DELAY_MS 1000
#define RF_AGENT_SOURCE_RETRY_MS 10000
#define RF_AGENT_SOURCE_WARN_EVERY_MS 60000
/* The sample of an event time that does not parse, as the worker's warning shows it (quoted:
 * \xNN for a byte that is not printable ASCII, so up to 4 bytes each): every time format in use
 * is under 40 characters, and the sample must fit the worker's status line (600 bytes). */
#define RF_AGENT_TIME_SAMPLE_MAX 64u
/* How often the supervisor looks whether --alerts FILE was rotated (one stat() of the path):
 * logrotate renames and creates in one go, so alerts reach the new file about a second after;
 * SIGHUP (logrotate's postrotate) makes it look at once. */
#define RF_AGENT_ALERTS_CHECK_MS 1000

/* ---- server ----------------------------------------------------------------------------- */

/* Device request bodies (enroll, check-in, report). A full check-in is ~1 KiB with 64
 * quarantined hashes; 16 KiB leaves room for growth and caps what one connection can make us hold. */
#define RF_SRV_DEVICE_BODY_MAX (16u * 1024)
/* Operator request bodies: a release's schedule is the largest, well under 256 KiB. */
#define RF_SRV_ADMIN_BODY_MAX (256u * 1024)
/* Agent manifests an operator may name at release create (its fleet's agent builds: a few
 * versions in the field at once, N and N-1 of each platform); each is a few KiB to 130 KiB, so
 * 8 of the larger ones may not fit the body above, the tighter bound (the CLI says so, with how
 * many fit, before sending: the server can only answer 413 on a body it does not read). */
#define RF_SRV_RELEASE_MANIFESTS_MAX 8
/* JSON nesting depth: the deepest legitimate document (check-in state) nests 3 levels. */
#define RF_SRV_JSON_DEPTH_MAX 8
/* Identifiers (device id, tenant, ring, report id, target name): a hostname or UUID fits. */
#define RF_SRV_ID_MAX 128
/* Free text (report detail, halt reason): a sentence or a short error, not a log dump. */
#define RF_SRV_TEXT_MAX 1024
/* Quarantined hashes listed in one check-in (the agent keeps more; it sends the newest). */
#define RF_SRV_QUARANTINE_MAX 64
/* Rings: a handful in practice (canary, early, broad...). */
#define RF_SRV_RINGS_MAX 32
/* Tenants, releases and devices one ringfenced keeps in memory: 8.5 M devices (the fleet of
 * docs/design.md) at under 200 bytes each is under 1.7 GiB (docs/server.md "Scale"); more than this
 * needs several processes. Device indexes and times are 32-bit in memory. */
#define RF_SRV_TENANTS_MAX 65535u /* a 16-bit index in each device */
#define RF_SRV_RELEASES_MAX 100000u
#define RF_SRV_DEVICES_MAX 10000000u
/* Distinct ring names, agent versions and manifest hashes the server interns (16-bit indexes
 * keep a device small): a fleet runs a few dozen agent builds; a device that reports a new
 * value when the table is full keeps its old one in memory (check-in still answered). */
#define RF_SRV_STRINGS_MAX 65535u
/* Concurrent HTTP connections (default of --max-connections): bounded so a flood cannot
 * exhaust file descriptors (ringfenced raises its descriptor limit to fit). An agent holds one
 * short connection per check-in, so 4096 serves a fleet far larger than the CPU can answer. */
#define RF_SRV_CONNECTIONS_MAX 4096u
/* Concurrent connections from one IP address (default of --per-ip-connections): a client that
 * opens slow connections (slowloris) fills only its own share and every other address is still
 * served. 64 is far above what one agent (1) or a site of thousands of agents behind one NAT
 * address needs (each check-in takes milliseconds, so even 10,000 agents polling every 300 s
 * hold a few connections at once). Behind a reverse proxy every connection comes from the proxy:
 * raise it to the proxy's upstream pool or set 0 (no per-address limit). */
#define RF_SRV_PER_IP_CONNECTIONS 64u
/* Seconds a connection may stay idle before it is closed. Every byte restarts it, so a client
 * sending one byte every few seconds is held off by the per-IP limit, not by this. */
#define RF_SRV_CONN_TIMEOUT_S 30u
/* Longest request path (bytes before decoding): the longest real path is an operator path with
 * a 128-byte identifier, or a repository target of a few hundred bytes. */
#define RF_SRV_PATH_MAX 2048u
/* libmicrohttpd's memory pool of one connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT): it holds
 * the request line and headers as they are read (a bigger request is answered 431 or 414),
 * the reply's headers, and body bytes as they stream through (bodies are copied out at once,
 * so their limits are RF_SRV_DEVICE_BODY_MAX and RF_SRV_ADMIN_BODY_MAX, not this). 16 KiB
 * holds a request line with a path of RF_SRV_PATH_MAX and 8 KiB of headers
 * (RF_SRV_HEADERS_MAX), far more than an agent, the CLI or a proxy in front send. Not
 * larger: libmicrohttpd zeroes the whole pool after every request, so its size is paid on
 * every check-in (its default, 32 KiB, was 6 to 7 % of ringfenced's CPU under load, docs/
 * server.md "Scale"). */
#define RF_SRV_CONN_MEMORY (16u * 1024)
/* Request headers (all header lines together) a request may carry and still be served. */
#define RF_SRV_HEADERS_MAX (8u * 1024)
/* Largest file served from the TUF repository under /repo/ (packs are far smaller). */
#define RF_SRV_REPO_FILE_MAX (64u * 1024 * 1024)
/* JSON values in one check-in body: ~40 members plus RF_SRV_QUARANTINE_MAX hashes; more is not
 * a check-in, and the bound keeps the scanner's duplicate-key check small. */
#define RF_SRV_CHECKIN_VALUES_MAX 512
/* Audit entries in one page of GET /v1/admin/audit (default 50): a screenful to a few hundred;
 * older entries are reached with ?before=ID, so a large trail never makes one huge reply. */
#define RF_SRV_AUDIT_PAGE_MAX 500u
/* Audit entries the dashboard shows in one release's timeline (newest first). */
#define RF_SRV_TIMELINE_MAX 30u
/* Halted releases listed in a check-in reply: the newest few are all an agent acts on. */
#define RF_SRV_HALTED_NOTICES_MAX 8
/* PostgreSQL backend (store_pg.c). Devices per INSERT of one devices_put batch: 17 parameters a
 * device, so 1,000 devices is 17,000 parameters (the protocol allows 65,535) and about 200 KB
 * of statement, large enough that a flush of 100,000 devices is 100 round trips, small enough
 * that one statement never holds megabytes on either side. */
#define RF_PG_DEVICES_PER_STATEMENT 1000u
/* Reconnect attempts after PostgreSQL went away: the first at once, then doubling up to 5 s,
 * so a database that is back is used again within 5 s and a dead one costs at most one failed
 * connect per 5 s (each bounded by RF_PG_CONNECT_TIMEOUT_S). */
#define RF_PG_RESET_BACKOFF_MIN_MS 100u
#define RF_PG_RESET_BACKOFF_MAX_MS 5000u
/* connect_timeout given to libpq unless the URI sets its own: the store's callers hold the
 * server's lock, so a connect to an unreachable host must not hang for the kernel's TCP timeout
 * (minutes); 3 s is far above a LAN round trip. */
#define RF_PG_CONNECT_TIMEOUT_S 3u
/* Milliseconds unacknowledged data may wait before libpq's TCP connection counts as dead
 * (tcp_user_timeout; keepalives every 2 s after 5 s idle do the same for an idle connection):
 * a statement sent to a database host that vanished fails after 10 s instead of the kernel's
 * ~15 minutes of retransmissions, which the server would spend holding its lock. No suffix:
 * it is passed to libpq as text. */
#define RF_PG_TCP_DEAD_MS 10000
/* Several instances on one database: seconds between re-reads of the rings, tenants and
 * releases when no announcement came (a NOTIFY lost with a connection). A change made on
 * another instance shows within about a second through the announcement; this bounds the
 * delay when it was lost. */
#define RF_SRV_REREAD_S 10
/* Several instances: device rows other instances wrote are read from the database without the
 * server's lock, then applied under it at most this many at a time (the lock is let go between
 * chunks), so check-ins wait for one chunk (about a millisecond) rather than for a second's
 * worth of another instance's writes (thousands of rows at fleet scale). */
#define RF_SRV_TAIL_CHUNK 256

/* Between two early reads of announcements (rf_server_wait): a burst of NOTIFYs (an operator
 * script, gate decisions) costs at most 20 re-reads a second of the small tables, while a
 * single change still shows on the other instances within this many milliseconds. */
#define RF_SRV_NOTIFY_GAP_MS 50

/* Several instances: how long an operator change (release create, hold, halt, resume, rollback,
 * rings, tenants) waits, after its commit and announcement, for every live instance to have
 * applied it before it is acknowledged: the bound for a change to take effect on all
 * instances. Past it the answer names the instances still pending (docs/server.md). */
#define RF_SRV_PROPAGATE_MS 2000
/* Between two looks at the other instances' heartbeats while waiting: an instance applies an
 * announced change within about RF_SRV_NOTIFY_GAP_MS, so the wait usually ends at the second
 * or third look; 100 looks at most (RF_SRV_PROPAGATE_MS / this), each a one-row-an-instance
 * read. */
#define RF_SRV_PROPAGATE_POLL_MS 20
/* An instance is live while its last heartbeat (written every tick, about a second) is at most
 * this old by the database's clock; a write does not wait for one that is not (it is named as
 * not live instead). Above the gate lease's 3 s idle timeout: an instance's tick on this
 * loaded 2-core machine was seen more than a second late, and a live instance counted dead
 * would be skipped by a halt. No suffix: sent to PostgreSQL as text. */
#define RF_SRV_LIVE_MS 5000
/* Seconds after which an instance's heartbeat row is deleted (no longer named as not live): a
 * restarted process is a new instance (a new id), so the rows of old ones would pile up. */
#define RF_SRV_INSTANCE_FORGET_S 3600
/* Group commit (device.c): reports of concurrent requests written in one transaction, at most
 * this many. A batch is as large as the reports waiting when the previous commit returned
 * (about one per HTTP worker thread); 64 bounds the transaction and the stack arrays it is
 * built in (about 20 KB) while one commit still serves 64 reports. */
#define RF_SRV_GROUP_COMMIT_MAX 64
/* Reports stored per device per release (report.c): the reports that name one release (reports
 * naming no release the server knows share one more allowance). An agent sends about eight
 * reports a try of a release (installed, intent, trial_started, a crash per load up to
 * RF_GUARD_ATTEMPTS_DEFAULT, rolled_back, quarantined, healthy) and takes a release again only
 * after a resume, so 64 is eight tries; a device that posts more (a loop, a stolen credential)
 * gets 409 "report_limit" for the rest, and the table holds at most 64 rows of it per release.
 * A report over the bound that still changes what the gates count for the device (a first
 * crash, a rollback, healthy) is recorded anyway in place of that device's oldest report of
 * the release: the table does not grow and the gates never miss evidence. */
#define RF_SRV_REPORTS_PER_RELEASE 64u
/* Retention (the tick): reports received more than 90 days ago are deleted, at most
 * RF_SRV_REPORTS_PURGE_CHUNK a tick (one short transaction). The gates never read the reports
 * table (a device's per-release outcomes are its devices row, kept as long as the device), so
 * deleting old reports changes no count; 90 days outlives any rollout and its audit questions,
 * and bounds the table at devices x releases of 90 days x RF_SRV_REPORTS_PER_RELEASE. */
#define RF_SRV_REPORTS_RETENTION_S (90 * 86400)
/* 1000 rows a second deletes 86 million rows a day, more than a fleet of 8.5 million devices
 * sends, in transactions of a few milliseconds. */
#define RF_SRV_REPORTS_PURGE_CHUNK 1000u
/* Devices written per transaction by the periodic flush (persist.c); the server's lock is
 * released while each chunk is written, so a release wave that changed a million devices is
 * 245 transactions of a few hundred milliseconds each with check-ins answered in between,
 * not one transaction that holds the lock for minutes. */
#define RF_SRV_FLUSH_CHUNK 4096u
/* Several instances: milliseconds the gate leader's control session may stay idle before
 * PostgreSQL ends it (idle_session_timeout), which releases the lease. The leader touches it
 * every tick (a second), so only a leader that hangs (stopped, a stuck disk, a tick blocked for
 * seconds) loses it; the others try for it every tick, so one leads within about 4 s of the
 * hang (the bound is 5). A leader whose tick is blocked longer than this merely hands
 * the lease on. No suffix: it is sent to PostgreSQL as text. */
#define RF_PG_LEASE_IDLE_MS 3000
/* Several instances: times an enrolment or a report re-reads its device row and applies itself
 * again after the row's compare-and-set failed (another instance wrote the device meanwhile),
 * before it answers 503 (Retry-After). A conflict needs two instances writing one device in the
 * same few milliseconds; three in a row means a storm, which the device's retry spreads out. */
#define RF_SRV_DEVICE_CAS_TRIES 3
/* Times a PostgreSQL write transaction (a group commit of reports, a chunk of the device flush)
 * is run again after PostgreSQL aborted it for a deadlock (SQLSTATE 40P01) or a serialization
 * failure (40001) before the error is returned (then 503). Writes lock device rows in id order,
 * so two of ringfenced's own transactions never deadlock; what remains is a cycle with a
 * transaction of something else (an operator's psql, a migration), which PostgreSQL breaks
 * by aborting one side: the other then goes on, so the second try normally succeeds and five
 * covers a few such cycles in a row without keeping a request waiting for long (each abort
 * costs PostgreSQL's deadlock_timeout, 1 s by default). */
#define RF_PG_TX_TRIES 5
/* Storage errors ringfenced logs (server.c): at most this many lines in a window of
 * RF_SRV_STORE_LOG_WINDOW_S seconds, then one line with the number left out. Every error that
 * became a 503 is then explained in the log, and a database that is away (every request fails
 * the same way) costs a line a second, not one a request. */
#define RF_SRV_STORE_LOG_BURST	  10u
#define RF_SRV_STORE_LOG_WINDOW_S 10u
/* Seconds a 503 asks clients to wait (Retry-After; no suffix: the transport makes it header
 * text). The database away (PostgreSQL) is the usual cause: about one
 * reconnect period, so clients come back when the database may be back. */
#define RF_SRV_RETRY_AFTER_S 5

/* ---- sim -------------------------------------------------------------------------------- */

/* Largest fleet one run simulates. 8.5 M is the 2024-07-19 fleet; 64 M leaves room for bigger
 * what-ifs while keeping per-device state (a few dozen bytes) under ~4 GB. */
#define RF_SIM_DEVICES_MAX (64u * 1000 * 1000)
/* Longest simulated span: 30 days covers the slowest manual recovery on record (~10 days). */
#define RF_SIM_DURATION_MAX (30u * 86400)
/* Releases per scenario: a flapping feature file regenerated every 5 min for 12 h is 144. */
#define RF_SIM_RELEASES_MAX 256u
/* Rings per policy and ramp steps per ring: real programs use 3-6 rings and a handful of steps. */
#define RF_SIM_RINGS_MAX 8u
#define RF_SIM_RAMP_MAX 8u
/* Points of a manual-repair curve (cumulative fraction repaired over time). */
#define RF_SIM_REPAIR_POINTS_MAX 16u
/* Timeline rows written to the CSV and drawn in the SVG, whatever the duration. */
#define RF_SIM_TIMELINE_MAX 2000u
/* Largest scenario or policy file: they are a few KB of JSON. */
#define RF_SIM_FILE_MAX (1024u * 1024)

/* ---- demo (ringfence demo) ------------------------------------------------------------------ */

/* Agents one demo starts: the pid and file-descriptor budget of one machine, two processes per
 * agent (supervisor and worker) plus their pipes; 500 is the size the demo is tested at. */
#define RF_DEMO_AGENTS_MAX 2000
/* Longest work or examples directory: leaves room for every path the demo composes under it in
 * its fixed-size path buffers (checked once at setup, so no composed path can be cut). */
#define RF_DEMO_DIR_MAX 200
/* Largest operator API reply the demo reads: the release list and status of its three packs
 * are a few KiB; 8 MiB also holds a tenant with every agent listed. */
#define RF_DEMO_REPLY_MAX (8u * 1024 * 1024)

#endif
