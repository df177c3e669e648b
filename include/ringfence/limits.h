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

/* ---- content (pack, verifier, interpreter, compiler) ------------------------------------ */

/* ---- trust (TUF) ------------------------------------------------------------------------ */

/* ---- rollout ---------------------------------------------------------------------------- */

/* ---- agent ------------------------------------------------------------------------------ */

/* ---- server ----------------------------------------------------------------------------- */

/* ---- sim -------------------------------------------------------------------------------- */

#endif
