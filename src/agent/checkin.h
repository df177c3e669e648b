/*
 * The agent's side of the device API (docs/protocol.md): request bodies for enroll, check-in
 * and report, and parsers for the server's replies.
 *
 * Replies are untrusted input (a compromised or confused server, a proxy): the parsers take
 * (p, n), bound every string, accept only identifiers of the protocol's alphabet, write their
 * output only on success and report the member at fault through struct rf_diag. Nothing a
 * reply says is acted on without the TUF client and the content verifier: a reply can only
 * make the agent try (P9, P1). fuzz/agent/fuzz_checkin.c fuzzes both parsers.
 */
#ifndef RF_AGENT_CHECKIN_H
#define RF_AGENT_CHECKIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/store.h"
#include "ringfence/error.h"
#include "ringfence/limits.h"

enum rf_checkin_action {
	RF_CHECKIN_STAY = 0,
	RF_CHECKIN_INSTALL = 1,
	RF_CHECKIN_ROLLBACK = 2,
};

struct rf_checkin_release {
	uint64_t id;
	uint64_t version;
	uint64_t length;
	char target[RF_STORE_TARGET_MAX + 1];
	uint8_t sha256[32];
};

struct rf_checkin_reply {
	enum rf_checkin_action action;
	/* the server's reason name ("new-release", "waiting-for-fix", ...), for the log only;
	 * "" when absent, unknown-shaped or over the limit (an unknown name is kept as is) */
	char reason[RF_AGENT_REASON_MAX + 1];
	bool has_release;
	struct rf_checkin_release release;
	bool has_rollback_to;
	struct rf_checkin_release rollback_to;
	uint32_t poll_interval; /* seconds; 0 if the reply gave none */
	int64_t server_time;
};

struct rf_enroll_reply {
	char device_id[RF_STORE_TARGET_MAX + 1];
	char ring[RF_STORE_TARGET_MAX + 1];
	char credential[RF_AGENT_CREDENTIAL_MAX + 1];
	uint32_t poll_interval;
};

/* What the agent says about itself in every request. */
struct rf_agent_identity {
	const char *device_id;
	const char *ring; /* may be NULL or "" */
	const char *agent_version;
	const char *manifest_hash; /* 64 hex */
};

/* An identifier per docs/protocol.md: 1..128 bytes of [A-Za-z0-9._:/-], not starting with '.'
 * or '/'. */
bool rf_checkin_id_valid(const char *s, size_t n);

/*
 * Request bodies (NUL-terminated JSON, malloc'ed into *ret; caller frees). The check-in body
 * carries the store's state (current, last good, trial with attempts, quarantine, safe mode)
 * and health (crashes, rollbacks from the guard; events, alerts from the store counters).
 * Returns 0, -EINVAL (an identity member missing or invalid), -ENOMEM.
 */
int rf_checkin_body_enroll(const struct rf_agent_identity *id, char **ret) RF_WUR;
int rf_checkin_body_checkin(const struct rf_agent_identity *id, const struct rf_store *st,
			    char **ret) RF_WUR;
int rf_checkin_body_report(const struct rf_agent_identity *id, const struct rf_store_report *r,
			   char **ret) RF_WUR;

/* Parse a 200 check-in reply / a 201 enroll reply. Returns 0, -EBADMSG (d names the member),
 * -E2BIG (over RF_AGENT_REPLY_MAX). *ret is written only on success. */
int rf_checkin_reply_parse(const uint8_t *p, size_t n, struct rf_checkin_reply *ret,
			   struct rf_diag *d) RF_WUR;
int rf_checkin_enroll_parse(const uint8_t *p, size_t n, struct rf_enroll_reply *ret,
			    struct rf_diag *d) RF_WUR;

/* The "message" of a server's error reply ({"error": {"message": ...}}) into out (cap > 0),
 * control bytes replaced by '?'; when the body is not one, as much of the body as fits, made
 * printable the same way. Never fails. */
void rf_checkin_error_message(const uint8_t *p, size_t n, char *out, size_t cap);

/* Whether a refused request's reply (status, body p/n) says the server no longer takes the
 * credential as this device's, so enrolling again is the way back (docs/protocol.md, Errors):
 * 401 (no such device or credential), or a 403 whose error is about the credential and the
 * device (servers before 401 was used for it answered 403 "this credential does not belong
 * to this device"). Any other 403 (another tenant's...) is not: enrolling would not help. */
bool rf_checkin_credential_rejected(int status, const uint8_t *p, size_t n);

/*
 * Check-in timing. r is a uniformly random 64-bit value (the caller's generator), so these are
 * pure and testable. rf_checkin_delay_ms: the poll interval (seconds, 0 means the default)
 * with +-20 % jitter. rf_checkin_backoff_ms: after the (failures+1)-th failure in a row, a wait
 * drawn uniformly from [0.5, 1.5) of base = RF_AGENT_BACKOFF_MIN_S * 2^failures capped at
 * RF_AGENT_BACKOFF_MAX_S (and the first retry no later than a normal poll), so a fleet that
 * restarts at once spreads out instead of stampeding the server.
 */
uint64_t rf_checkin_delay_ms(uint32_t poll_s, uint64_t r);
uint64_t rf_checkin_backoff_ms(unsigned failures, uint32_t poll_s, uint64_t r);

#endif
