/*
 * Content engine benchmark: for one pack, the verifier's time and memory, the engine's load time,
 * events/s on one core over a realistic process_creation mix (generated here from a fixed seed:
 * Windows image paths, command lines, parents, users, integrity levels, hashes), and the worst
 * case per event (every field of the largest event the engine accepts: all values together
 * RF_EVENT_LINE_MAX bytes, built from the pack's own pattern text so that as many atoms and rules
 * as possible fire). Prints figures; asserts nothing about time.
 *
 *   bench-content PACK [--manifest M] [--events N]
 *   bench-content PACK --manifest M --verify-only   (verification time only)
 *   bench-content PACK --manifest M --eval-only CACHE [--no-cache] [--unique|--unique-cmd]
 *                    (the realistic mix only, the engine loaded through the matcher cache: for
 *                    callgrind; --no-cache: a scratch without the value cache; --unique: the
 *                    unique mix, every string value of every event distinct; --unique-cmd:
 *                    the command-line mix, every CommandLine and ParentCommandLine distinct)
 *   bench-content --synthetic RULES [...]   (a pack of RULES synthetic rules of realistic shape,
 *                                            for when no compiled Sigma pack is available)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "content/engine.h"
#include "content/ir.h"
#include "content/pack.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

#define RNG_SEED 0x243f6a8885a308d3ull
static uint64_t rng = RNG_SEED;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

#define PICK(a) (a[rnd(sizeof(a) / sizeof(a[0]))])

/* Image, OriginalFileName, Description: benign programs first, then the LOLBins that make up
 * the suspicious 1 in 50. */
static const char *const images[][3] = {
    {"C:\\Windows\\System32\\svchost.exe", "svchost.exe", "Host Process for Windows Services"},
    {"C:\\Windows\\System32\\conhost.exe", "CONHOST.EXE", "Console Window Host"},
    {"C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe", "Host Process for Windows Tasks"},
    {"C:\\Windows\\System32\\backgroundTaskHost.exe", "backgroundTaskHost.exe",
     "Background Task Host"},
    {"C:\\Windows\\System32\\SearchProtocolHost.exe", "SearchProtocolHost.exe",
     "Microsoft Windows Search Protocol Host"},
    {"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "chrome.exe", "Google Chrome"},
    {"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", "msedge.exe",
     "Microsoft Edge"},
    {"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", "WinWord.exe",
     "Microsoft Word"},
    {"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "Outlook.exe",
     "Microsoft Outlook"},
    {"C:\\Users\\alice\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe", "Teams.exe",
     "Microsoft Teams"},
    {"C:\\Program Files\\Git\\cmd\\git.exe", "git.exe", "Git for Windows"},
    {"C:\\Windows\\System32\\RuntimeBroker.exe", "RuntimeBroker.exe", "Runtime Broker"},
    {"C:\\Program Files\\Microsoft VS Code\\Code.exe", "electron.exe", "Visual Studio Code"},
    /* suspicious */
    {"C:\\Windows\\System32\\cmd.exe", "Cmd.Exe", "Windows Command Processor"},
    {"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "PowerShell.EXE",
     "Windows PowerShell"},
    {"C:\\Windows\\System32\\rundll32.exe", "RUNDLL32.EXE", "Windows host process (Rundll32)"},
    {"C:\\Windows\\System32\\reg.exe", "reg.exe", "Registry Console Tool"},
    {"C:\\Windows\\System32\\schtasks.exe", "schtasks.exe", "Task Scheduler Configuration Tool"},
    {"C:\\Windows\\System32\\net.exe", "net.exe", "Net Command"},
    {"C:\\Windows\\System32\\whoami.exe", "whoami.exe",
     "whoami - displays logged on user information"},
    {"C:\\Windows\\System32\\certutil.exe", "CertUtil.exe", "CertUtil.exe"},
    {"C:\\Windows\\SysWOW64\\regsvr32.exe", "REGSVR32.EXE", "Microsoft(C) Register Server"},
    {"C:\\Windows\\System32\\mshta.exe", "MSHTA.EXE", "Microsoft (R) HTML Application host"},
};
#define NBENIGN_IMG 13
#define NIMG	    (sizeof(images) / sizeof(images[0]))
static const char *const parents[] = {"C:\\Windows\\explorer.exe",
				      "C:\\Windows\\System32\\services.exe",
				      "C:\\Windows\\System32\\svchost.exe",
				      "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"};

static const char *const args[] = {
    /* benign */
    "-k netsvcs -p -s Schedule",
    "0xffffffff -ForceV1",
    "-Embedding",
    "",
    "--type=renderer --field-trial-handle=1234,5678 --lang=en-US --disable-gpu-compositing",
    "/n \"C:\\Users\\bob\\Documents\\Quarterly report.docx\" /o \"\"",
    "status --porcelain",
    "-ServerName:App.AppXtk.mca",
    "-k LocalServiceNetworkRestricted -p",
    "/c \"C:\\Program Files\\Tools\\build.cmd\" release",
    "--profile-directory=Default",
    "-NoProfile -File C:\\scripts\\inventory.ps1",
    "/S /D=C:\\Program Files\\App",
    "--update-check --silent",
    "/autorun",
    "-k DcomLaunch -p",
    "commit -m \"fix build\"",
    /* suspicious (1 in 50 events) */
    "/c whoami /all",
    "-urlcache -split -f http://example.test/a.txt a.txt",
    "add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v Updater /d C:\\Tools\\upd.exe "
    "/f",
    "/create /tn Backup /tr C:\\Tools\\backup.bat /sc daily",
    "user /domain",
    "/s /u C:\\Windows\\System32\\scrobj.dll",
    "-nop -w hidden -enc SQBFAFgA",
    "C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\temp\\l.dmp full",
    "shadowcopy delete /nointeractive",
};
#define NBENIGN 17
#define NARGS	(sizeof(args) / sizeof(args[0]))

static const char *const users[] = {"CORP\\alice",
				    "CORP\\bob",
				    "NT AUTHORITY\\SYSTEM",
				    "NT AUTHORITY\\LOCAL SERVICE",
				    "NT AUTHORITY\\NETWORK SERVICE",
				    "CORP\\svc_backup"};
static const char *const levels[] = {"Medium", "High", "System", "Low"};
static const char *const dirs[] = {"C:\\Windows\\system32\\", "C:\\Users\\alice\\",
				   "C:\\Users\\bob\\Documents\\", "C:\\Program Files\\Git\\",
				   "C:\\Windows\\"};

static void json_esc(char **o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			*(*o)++ = '\\';
		*(*o)++ = *s;
	}
}

/* The unique mix (uniq_mode 1): every string value of every event made distinct by a counter
 * (the value cache's miss path; docs/engine.md "Value cache"). The command-line mix (2): only
 * CommandLine and ParentCommandLine made distinct, the rest as in the realistic mix (a host
 * whose command lines never repeat: temporary paths, PIDs, GUIDs in every one). */
static int uniq_mode;
static unsigned uniq_id;

static size_t gen_event(char *out)
{
	char *o = out, xc[16] = "";
	if (uniq_mode)
		snprintf(xc, sizeof(xc), " ~%u", ++uniq_id);
	const char *x = uniq_mode == 1 ? xc : ""; /* xc: the command lines' */
	bool bad = rnd(50) == 0;
	const char *const *im =
	    images[bad ? NBENIGN_IMG + rnd(NIMG - NBENIGN_IMG) : rnd(NBENIGN_IMG)];
	const char *img = im[0], *par;
	/* Plausible parents: services start svchost, svchost starts the task and broker hosts,
	 * conhost belongs to a console program, the rest come from the shell or the browser. */
	if (strstr(img, "svchost"))
		par = parents[1];
	else if (strstr(img, "Host") || strstr(img, "Broker") || strstr(img, "taskhostw"))
		par = parents[2];
	else if (strstr(img, "conhost"))
		par = "C:\\Program Files\\Git\\cmd\\git.exe";
	else
		par = parents[rnd(2) ? 0 : 3];
	char cmd[1024];

	/* Most process starts are benign: 1 in 50 gets an argument string from the suspicious end
	 * of the list (LOLBins, persistence, discovery), the rest a benign one. */
	const char *arg = bad ? args[NBENIGN + rnd(NARGS - NBENIGN)] : args[rnd(NBENIGN)];
	snprintf(cmd, sizeof(cmd), "\"%s\"%s%s", img, *arg ? " " : "", arg);
	o += sprintf(o,
		     "{\"event\":\"process_creation\",\"UtcTime\":\"2024-07-19 04:%02u:%02u.%03u\","
		     "\"ProcessGuid\":\"{3f1c%04x-5d2e-66a0-1a02-000000002%03u}\",\"ProcessId\":%u,"
		     "\"Image\":\"",
		     rnd(60), rnd(60), rnd(1000), rnd(65536), rnd(1000), 100 + rnd(30000));
	json_esc(&o, img);
	o += sprintf(o,
		     "%s\",\"FileVersion\":\"10.0.19041.%u (WinBuild.160101.0800)\",\"Description\":"
		     "\"%s%s\",\"Product\":\"Microsoft\\u00ae Windows\\u00ae Operating "
		     "System%s\",\"Company\":\"Microsoft Corporation%s\",\"OriginalFileName\":"
		     "\"%s%s\",\"CommandLine\":\"",
		     x, rnd(5000), im[2], x, x, x, im[1], x);
	json_esc(&o, cmd);
	o += sprintf(o, "%s\",\"CurrentDirectory\":\"", xc);
	json_esc(&o, PICK(dirs));
	o += sprintf(o, "%s\",\"User\":\"", x);
	json_esc(&o, PICK(users));
	o += sprintf(o,
		     "%s\",\"LogonGuid\":\"{3f1c%04x-0000-0000-0000-000000000000}\",\"LogonId\":"
		     "\"0x%x\",\"TerminalSessionId\":%u,\"IntegrityLevel\":\"%s%s\",\"Hashes\":"
		     "\"SHA1=%08x%08x,MD5=%08x%08x,SHA256=%08x%08x%08x%08x,IMPHASH=%08x%08x\","
		     "\"ParentProcessGuid\":\"{3f1c%04x-5d2e-66a0-1a02-000000002%03u}\","
		     "\"ParentProcessId\":%u,\"ParentImage\":\"",
		     x, rnd(65536), rnd(1u << 20), rnd(3), PICK(levels), x, rnd(~0u), rnd(~0u), rnd(~0u),
		     rnd(~0u), rnd(~0u), rnd(~0u), rnd(~0u), rnd(~0u), rnd(~0u), rnd(~0u),
		     rnd(65536), rnd(1000), 100 + rnd(30000));
	json_esc(&o, par);
	o += sprintf(o, "%s\",\"ParentCommandLine\":\"", x);
	json_esc(&o, par);
	if (strstr(par, "svchost"))
		o += sprintf(o, " -k netsvcs -p");
	o += sprintf(o, "%s\",\"ParentUser\":\"", xc);
	json_esc(&o, PICK(users));
	o += sprintf(o, "%s\"}", x);
	return (size_t)(o - out);
}

/* A synthetic pack of realistic shape: per rule 2-4 selections of 1-6 values on Image,
 * CommandLine, ParentImage, OriginalFileName with endswith/contains/startswith/eq, AND/OR/NOT. */
static int synthetic_pack(size_t nrules, uint8_t **ret, size_t *ret_len)
{
	static const char *const fields[] = {
	    "Image",	   "CommandLine", "ParentImage", "OriginalFileName",
	    "CommandLine", "CommandLine", "Image"};
	static const char *const words[] = {"\\rundll32.exe",
					    "javascript:",
					    "-enc",
					    "downloadstring",
					    "\\temp\\",
					    "\\appdata\\",
					    "comsvcs",
					    "minidump",
					    "-nop",
					    "bypass",
					    "\\mshta.exe",
					    "vbscript",
					    "/transfer",
					    "shadow",
					    "delete",
					    "\\regsvr32.exe",
					    "scrobj",
					    "http",
					    "\\users\\public\\",
					    "iex",
					    "invoke-",
					    "whoami",
					    "net1",
					    "certutil",
					    "-decode",
					    "procdump",
					    "lsass",
					    ".hta",
					    "\\windows\\tasks\\",
					    "wmic"};
	struct rf_pack_builder *b;
	struct rf_diag d = {0};
	int r = rf_pack_builder_new(&b);

	if (r < 0)
		return r;
	for (size_t i = 0; i < nrules; i++) {
		struct rf_ir_atom atoms[32];
		uint32_t code[64];
		char pats[32][64], id[64];
		size_t na = 0, nc = 0, nsel = 2 + rnd(3);
		for (size_t s = 0; s < nsel; s++) {
			size_t nv = 1 + rnd(6);
			const char *f = PICK(fields);
			uint32_t op = RF_OP_EQ + rnd(4);
			for (size_t v = 0; v < nv && na < 32; v++) {
				snprintf(pats[na], sizeof(pats[na]), "%s%u", PICK(words),
					 rnd(4) ? 0 : rnd(100));
				if (pats[na][strlen(pats[na]) - 1] == '0')
					pats[na][strlen(pats[na]) - 1] = '\0';
				atoms[na] = (struct rf_ir_atom){f,
								RF_FT_STRING,
								op,
								0,
								(const uint8_t *)pats[na],
								strlen(pats[na])};
				code[nc++] = RF_INSN(RF_I_ATOM, na);
				if (v)
					code[nc++] = RF_INSN(RF_I_OR, 0);
				na++;
			}
			if (s == 2)
				code[nc++] = RF_INSN(RF_I_NOT, 0);
			if (s)
				code[nc++] = RF_INSN(RF_I_AND, 0);
		}
		snprintf(id, sizeof(id), "synthetic-%zu", i);
		struct rf_ir_rule rule = {
		    id, "Synthetic rule", "medium", "bench", "process_creation", atoms, na, code,
		    nc};
		if ((r = rf_pack_builder_add(b, &rule, &d)) < 0) {
			fprintf(stderr, "synthetic rule %zu: %s\n", i, d.first);
			rf_pack_builder_free(b);
			return r;
		}
	}
	r = rf_pack_builder_finish(b, 1, ret, ret_len);
	rf_pack_builder_free(b);
	return r;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void no_alert(void *ud, size_t i, const struct rf_rule_info *r)
{
}

/* The realistic mix: 4096 distinct events, replayed in passes until nevents; prints the
 * figures. Returns 0 or -1. */
static int realistic_mix(const struct rf_engine *e, struct rf_engine_scratch *s, size_t nevents,
			 const char *label)
{
	struct rf_diag d = {0};
	struct rf_pack_summary sum;
	rf_pack_summary(rf_engine_pack(e), &sum);
	/* Realistic mix: 4096 distinct events, replayed. */
	enum { NDISTINCT = 4096 };
	rng = RNG_SEED; /* every mix the same events (the unique mix with the same counters) */
	uniq_id = 0;
	char **lines = calloc(NDISTINCT, sizeof(*lines));
	size_t *lens = calloc(NDISTINCT, sizeof(*lens));
	char buf[8192];
	size_t bytes = 0;
	for (int i = 0; i < NDISTINCT; i++) {
		lens[i] = gen_event(buf);
		lines[i] = malloc(lens[i]);
		memcpy(lines[i], buf, lens[i]);
		bytes += lens[i];
	}
	uint8_t *scratch = malloc(RF_EVENT_LINE_MAX);
	static struct rf_event ev;
	struct rf_engine_stats st0;
	rf_engine_scratch_stats(s, &st0);
	/* The machine may be shared: each figure is the best of many passes over the 4096 events
	 * (thread CPU time), which filters out preemption and cache pollution by other processes.
	 * One kind of pass parses only, the other parses and evaluates; the difference is the
	 * evaluation. nevents bounds the total work. */
	uint64_t alerts = 0, bparse = UINT64_MAX, bboth = UINT64_MAX;
	size_t passes = nevents / NDISTINCT + 1;
	for (size_t pass = 0; pass < passes; pass++) {
		uint64_t a0 = cpu_ns();
		for (size_t k = 0; k < NDISTINCT; k++)
			if (rf_event_parse((uint8_t *)lines[k], lens[k], scratch, RF_EVENT_LINE_MAX,
					   &ev, &d) < 0) {
				fprintf(stderr, "bench: generated event does not parse: %s\n",
					d.first);
				return -1;
			}
		uint64_t a1 = cpu_ns();
		for (size_t k = 0; k < NDISTINCT; k++) {
			if (rf_event_parse((uint8_t *)lines[k], lens[k], scratch, RF_EVENT_LINE_MAX,
					   &ev, &d) < 0)
				return -1;
			int r = rf_engine_eval(e, &ev, s, no_alert, NULL, NULL);
			if (r < 0)
				return -1;
			alerts += (uint64_t)r;
		}
		uint64_t a2 = cpu_ns();
		if (a1 - a0 < bparse)
			bparse = a1 - a0;
		if (a2 - a1 < bboth)
			bboth = a2 - a1;
	}
	struct rf_engine_stats st;
	rf_engine_scratch_stats(s, &st); /* of the one-at-a-time passes */
	st.atoms -= st0.atoms, st.rules_run -= st0.rules_run;
	st.cache_hits -= st0.cache_hits, st.cache_misses -= st0.cache_misses;
	st.cache_paused -= st0.cache_paused;
	/* The same passes through rf_engine_eval_batch, RF_ENGINE_BATCH_MAX events at a time. */
	static struct rf_event bev[RF_ENGINE_BATCH_MAX];
	const struct rf_event *bptr[RF_ENGINE_BATCH_MAX];
	uint8_t *bscratch = malloc((size_t)RF_ENGINE_BATCH_MAX * 8192);
	uint64_t bbatch = UINT64_MAX, balerts = 0;
	for (size_t pass = 0; pass < passes; pass++) {
		uint64_t a0 = cpu_ns();
		for (size_t k = 0; k < NDISTINCT; k += RF_ENGINE_BATCH_MAX) {
			size_t nb = 0;
			for (; nb < RF_ENGINE_BATCH_MAX && k + nb < NDISTINCT; nb++) {
				size_t j = k + nb;
				if (rf_event_parse((uint8_t *)lines[j], lens[j],
						   bscratch + nb * 8192, 8192, &bev[nb], &d) < 0)
					return -1;
				bptr[nb] = &bev[nb];
			}
			int r = rf_engine_eval_batch(e, bptr, nb, s, NULL, NULL, NULL);
			if (r < 0)
				return -1;
			if (pass == 0)
				balerts += (uint64_t)r;
		}
		uint64_t t = cpu_ns() - a0;
		if (t < bbatch)
			bbatch = t;
	}
	double tbatch = (double)bbatch / NDISTINCT;
	free(bscratch);
	nevents = passes * NDISTINCT;
	double tparse = (double)bparse / NDISTINCT, tboth = (double)bboth / NDISTINCT;
	double teval = tboth > tparse ? tboth - tparse : 0;
	uint64_t looked = st.cache_hits + st.cache_misses;
	printf(
	    "%s: %zu process_creation events (avg %zu bytes), %llu alerts, %.1f atoms "
	    "matched/event, %.1f rules run/event after the prefilter (of %zu)\n",
	    label, nevents, bytes / NDISTINCT, (unsigned long long)alerts,
	    (double)st.atoms / (double)nevents, (double)st.rules_run / (double)nevents,
	    sum.n_rules);
	if (looked + st.cache_paused)
		printf("  value cache: %.1f %% of lookups hit (%.1f hits, %.1f misses, %.1f values "
		       "not looked up (field paused) per event)\n",
		       looked ? 100.0 * (double)st.cache_hits / (double)looked : 0.0,
		       (double)st.cache_hits / (double)nevents,
		       (double)st.cache_misses / (double)nevents,
		       (double)st.cache_paused / (double)nevents);
	else
		printf("  value cache: off\n");
	printf("  parse: %.2f us/event; evaluate: %.2f us/event; parse + evaluate: %.2f us/event = "
	       "%.0f events/s on one core (best of %zu passes, thread CPU time)\n",
	       tparse / 1e3, teval / 1e3, tboth / 1e3, 1e9 / tboth, passes);
	printf("  batches of %u (rf_engine_eval_batch): parse + evaluate %.2f us/event = %.0f "
	       "events/s on one core (%llu alerts per pass, %llu one at a time)\n",
	       RF_ENGINE_BATCH_MAX, tbatch / 1e3, 1e9 / tbatch, (unsigned long long)balerts,
	       (unsigned long long)(alerts / passes));
	for (int i = 0; i < NDISTINCT; i++)
		free(lines[i]);
	free(lines);
	free(lens);
	free(scratch);
	return 0;
}

int main(int argc, char **argv)
{
	const char *packpath = NULL, *mpath = NULL, *evalonly = NULL;
	bool verify_only = false, nocache = false;
	int unique = 0;
	size_t synthetic = 0, nevents = 300000;
	uint8_t *pack = NULL, *mb = NULL;
	size_t plen = 0, mlen = 0;
	struct rf_manifest *m = NULL;
	struct rf_diag d = {0};

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--manifest") && i + 1 < argc)
			mpath = argv[++i];
		else if (!strcmp(argv[i], "--events") && i + 1 < argc)
			nevents = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--no-cache"))
			nocache = true; /* --eval-only: a scratch without the value cache */
		else if (!strcmp(argv[i], "--unique"))
			unique = 1; /* --eval-only: the unique mix */
		else if (!strcmp(argv[i], "--unique-cmd"))
			unique = 2; /* --eval-only: the command-line mix */
		else if (!strcmp(argv[i], "--verify-only"))
			verify_only = true; /* time rf_pack_verify only (the largest pack) */
		else if (!strcmp(argv[i], "--eval-only") && i + 1 < argc)
			evalonly = argv[++i]; /* matcher cache file: load fast, skip to the mix */
		else if (!strcmp(argv[i], "--synthetic") && i + 1 < argc)
			synthetic = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--dump") && i + 1 < argc) {
			/* Print N events of the realistic mix as JSON lines (for eval and
			 * inspection). */
			char buf[8192];
			for (unsigned long k = strtoul(argv[++i], NULL, 10); k; k--) {
				size_t n = gen_event(buf);
				printf("%.*s\n", (int)n, buf);
			}
			return 0;
		} else if (!strcmp(argv[i], "--help")) {
			printf("usage: bench-content PACK|--synthetic N [--manifest M] [--events "
			       "N]\n");
			return 0;
		} else
			packpath = argv[i];
	}
	if (!packpath && !synthetic) {
		fprintf(stderr,
			"usage: bench-content PACK|--synthetic N [--manifest M] [--events N]\n");
		return 2;
	}
	if (mpath) {
		if (rf_file_read(mpath, RF_MANIFEST_MAX, &mb, &mlen) < 0 ||
		    rf_manifest_parse(mb, mlen, &m, &d) < 0) {
			fprintf(stderr, "bench: %s: bad manifest %s\n", mpath, d.first);
			return 2;
		}
	} else {
		const uint8_t *b = rf_content_builtin_manifest(&mlen);
		if (rf_manifest_parse(b, mlen, &m, &d) < 0)
			return 2;
	}
	if (synthetic) {
		if (synthetic_pack(synthetic, &pack, &plen) < 0)
			return 2;
		printf("pack: %zu synthetic rules of realistic shape (no compiled Sigma pack)\n",
		       synthetic);
	} else if (rf_file_read(packpath, RF_PACK_MAX, &pack, &plen) < 0) {
		fprintf(stderr, "bench: cannot read %s\n", packpath);
		return 2;
	}

	/* --eval-only CACHE: only the realistic mix, the engine loaded through the matcher cache
	 * (for instruction counts under callgrind: --toggle-collect=rf_engine_eval_batch). */
	if (evalonly) {
		struct rf_engine *e;
		struct rf_engine_scratch *s;
		if (rf_engine_load_cached(pack, plen, m, evalonly, &e, NULL, &d) < 0 ||
		    rf_engine_scratch_new(e, &s) < 0) {
			fprintf(stderr, "bench: load failed: %s\n", d.first);
			return 1;
		}
		if (nocache) {
			rf_engine_scratch_free(s);
			if (rf__engine_scratch_new_cache(e, 0, 0, 0, &s) < 0)
				return 1;
		}
		uniq_mode = unique;
		int r = realistic_mix(e, s, nevents,
				      unique == 1   ? "unique mix (every string value distinct)"
				      : unique == 2 ? "command-line mix (every command line distinct)"
						    : "realistic mix");
		rf_engine_scratch_free(s);
		rf_engine_free(e);
		rf_manifest_free(m);
		free(pack);
		free(mb);
		return r;
	}
	/* Verifier: time (best of 5) and memory (peak RSS growth on the first run). */
	const struct rf_manifest *ms[] = {m};
	long rss0 = maxrss_kb();
	uint64_t best = UINT64_MAX;
	for (int k = 0; k < 5; k++) {
		struct rf_diag vd = {0};
		uint64_t t0 = rf_now_mono_ns();
		int r = rf_pack_verify(pack, plen, ms, 1, &vd);
		uint64_t t = rf_now_mono_ns() - t0;
		if (r < 0) {
			fprintf(stderr, "bench: pack does not verify: %s\n", vd.first);
			return 1;
		}
		if (t < best)
			best = t;
	}
	long rss1 = maxrss_kb();
	/* Heap held by the verified pack (the verifier's working set; its other buffers are
	 * O(fields) or transient): in-use bytes before and after rf_pack_open. */
	struct rf_pack *vp = NULL;
	size_t heap0 = mallinfo2().uordblks;
	if (rf_pack_open(pack, plen, &vp, &d) < 0)
		return 1;
	size_t heap1 = mallinfo2().uordblks;
	if (verify_only) {
		struct rf_pack_summary vs;
		rf_pack_summary(vp, &vs);
		printf(
		    "verify %s (%zu bytes, %zu rules, %zu atoms; structure + manifest + wildcard "
		    "patterns through Vectorscan's parser): %.2f ms (best of 5; goal < 100 ms), "
		    "verified pack holds %zu KiB of heap\n",
		    packpath, vs.total_len, vs.n_rules, vs.n_atoms, best / 1e6,
		    (heap1 - heap0) / 1024);
		rf_pack_free(vp);
		rf_manifest_free(m);
		free(pack);
		free(mb);
		return 0;
	}
	rf_pack_free(vp);
	struct rf_engine *e;
	struct rf_engine_scratch *s;
	uint64_t t0 = rf_now_mono_ns();
	if (rf_engine_load(pack, plen, m, &e, &d) < 0 || rf_engine_scratch_new(e, &s) < 0) {
		fprintf(stderr, "bench: load failed: %s\n", d.first);
		return 1;
	}
	uint64_t tload = rf_now_mono_ns() - t0;
	long rss2 = maxrss_kb();
	struct rf_pack_summary sum;
	rf_pack_summary(rf_engine_pack(e), &sum);
	printf("pack: %zu bytes, %zu rules, %zu atoms, %zu fields, %zu instructions\n",
	       sum.total_len, sum.n_rules, sum.n_atoms, sum.n_fields, sum.n_code);
	printf(
	    "verify (structure + manifest + wildcard patterns through Vectorscan's parser): "
	    "%.2f ms (best of 5), verified pack holds %zu KiB of heap (%.1fx the pack), peak RSS "
	    "growth %ld KiB\n",
	    best / 1e6, (heap1 - heap0) / 1024, (double)(heap1 - heap0) / (double)plen,
	    rss1 - rss0);
	printf("load (verify + compile matchers): %.1f ms, peak RSS growth %ld KiB\n", tload / 1e6,
	       rss2 - rss1);
	/* A worker (re)start: rf_engine_load_cached with the matcher cache beside the pack, as
	 * src/agent/worker.c does. The first load compiles and writes the cache; the next ones
	 * verify the pack and deserialise the matchers (best of 5). */
	{
		char cpath[4096];
		const char *bdir = getenv("RF_BUILD_ROOT");
		snprintf(cpath, sizeof(cpath), "%s/bench-content-cache-%ld.hsdb", bdir ? bdir : ".",
			 (long)getpid());
		unlink(cpath);
		struct rf_engine *ce = NULL;
		int hit = -1;
		uint64_t c0 = rf_now_mono_ns();
		if (rf_engine_load_cached(pack, plen, m, cpath, &ce, &hit, &d) < 0) {
			fprintf(stderr, "bench: cached load failed: %s\n", d.first);
			return 1;
		}
		uint64_t tcold = rf_now_mono_ns() - c0, twarm = UINT64_MAX;
		rf_engine_free(ce);
		struct stat cst;
		long csize = stat(cpath, &cst) == 0 ? (long)cst.st_size : -1;
		for (int k = 0; k < 5; k++) {
			struct rf_engine_scratch *cs = NULL;
			c0 = rf_now_mono_ns();
			if (rf_engine_load_cached(pack, plen, m, cpath, &ce, &hit, &d) < 0 ||
			    rf_engine_scratch_new(ce, &cs) < 0) {
				fprintf(stderr, "bench: cached load failed: %s\n", d.first);
				return 1;
			}
			uint64_t t = rf_now_mono_ns() - c0;
			if (t < twarm)
				twarm = t;
			rf_engine_scratch_free(cs);
			rf_engine_free(ce);
		}
		unlink(cpath);
		printf("worker start, first (verify + compile + write the matcher cache, %ld KiB): "
		       "%.1f ms; restart (verify + matchers from the cache%s): %.1f ms (best of 5; "
		       "goal < 100 ms)\n",
		       csize / 1024, tcold / 1e6, hit == 1 ? "" : ": CACHE NOT USED", twarm / 1e6);
	}

	/* The realistic mix with the value cache (as the agent runs), then without it; then the
	 * unique mix (the cache's miss path), with and without. */
	{
		struct rf_engine_scratch *ns;
		if (rf__engine_scratch_new_cache(e, 0, 0, 0, &ns) < 0)
			return 1;
		if (realistic_mix(e, s, nevents, "realistic mix") < 0 ||
		    realistic_mix(e, ns, nevents, "realistic mix, value cache off") < 0)
			return 1;
		uniq_mode = 2;
		struct rf_engine_scratch *cs;
		if (rf_engine_scratch_new(e, &cs) < 0)
			return 1;
		if (realistic_mix(e, cs, nevents, "command-line mix (every command line distinct)") <
			0 ||
		    realistic_mix(e, ns, nevents,
				  "command-line mix (every command line distinct), value cache off") < 0)
			return 1;
		rf_engine_scratch_free(cs);
		uniq_mode = 1;
		struct rf_engine_scratch *us;
		if (rf_engine_scratch_new(e, &us) < 0)
			return 1;
		if (realistic_mix(e, us, nevents, "unique mix (every string value distinct)") < 0 ||
		    realistic_mix(e, ns, nevents,
				  "unique mix (every string value distinct), value cache off") < 0)
			return 1;
		uniq_mode = 0;
		rf_engine_scratch_free(us);
		rf_engine_scratch_free(ns);
	}

	/* Worst case: every supplied field, all values together at the cap the engine accepts
	 * (RF_EVENT_LINE_MAX), filled with the pack's own pattern text. */
	const struct rf_pack *pk = rf_engine_pack(e);
	static char val[19][RF_EVENT_LINE_MAX / 19 + 1];
	static struct rf_event wev;
	const char *pcf[] = {"UtcTime",	    "ProcessGuid",	 "Image",     "FileVersion",
			     "Description", "Product",		 "Company",   "OriginalFileName",
			     "CommandLine", "CurrentDirectory",	 "User",      "LogonGuid",
			     "LogonId",	    "IntegrityLevel",	 "Hashes",    "ParentProcessGuid",
			     "ParentImage", "ParentCommandLine", "ParentUser"};
	const int nf = (int)(sizeof(pcf) / sizeof(pcf[0]));
	const size_t cap = RF_EVENT_LINE_MAX / 19;
	_Static_assert(sizeof(pcf) / sizeof(pcf[0]) == 19, "val[] is sized for 19 fields");
	for (int mode = 0; mode < 2; mode++) {
		wev.type = (const uint8_t *)"process_creation";
		wev.type_len = 16;
		wev.n_fields = 0;
		for (int f = 0; f < nf; f++) {
			size_t o = 0;
			if (mode == 0) {
				memset(val[f], 'A', cap);
				o = cap;
			} else {
				/* Concatenate every pattern literal of the pack (globs removed). */
				for (uint32_t a = 0; o < cap;
				     a = (a + 1) % (pk->n_atoms ? pk->n_atoms : 1)) {
					const struct rf_pstr *p =
					    pk->n_atoms ? &pk->strings[pk->atoms[a].pattern] : NULL;
					if (!p || p->len == 0) {
						val[f][o++] = '\\';
						continue;
					}
					for (uint32_t j = 0; j < p->len && o < cap; j++)
						if (p->s[j] != '*' && p->s[j] != '?')
							val[f][o++] = p->s[j];
				}
			}
			wev.fields[wev.n_fields++] =
			    (struct rf_event_field){(const uint8_t *)pcf[f], strlen(pcf[f]),
						    (const uint8_t *)val[f], o, true};
		}
		struct rf_engine_stats st0, st1;
		rf_engine_scratch_stats(s, &st0);
		uint64_t worst = 0, total = 0;
		int reps = 200, hits = 0;
		for (int k = 0; k < reps; k++) {
			uint64_t a = cpu_ns();
			hits = rf_engine_eval(e, &wev, s, no_alert, NULL, NULL);
			uint64_t t = cpu_ns() - a;
			total += t;
			if (t > worst)
				worst = t;
		}
		rf_engine_scratch_stats(s, &st1);
		printf("worst case (%s, %d fields x %u bytes): %.1f us/event mean, %.1f us max, %d "
		       "alerts, "
		       "%.0f rules run/event\n",
		       mode == 0 ? "filler bytes" : "the pack's own pattern text", nf,
		       (unsigned)cap, total / 1e3 / reps, worst / 1e3, hits,
		       (double)(st1.rules_run - st0.rules_run) / reps);
	}
	struct rf_engine_stats st;
	rf_engine_scratch_stats(s, &st);
	printf("run-time violations: %llu\n", (unsigned long long)st.violations);
	rf_engine_scratch_free(s);
	rf_engine_free(e);
	rf_manifest_free(m);
	free(pack);
	free(mb);
	return 0;
}
