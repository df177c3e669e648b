/*
 * Tests of `ringfence content verify|inspect|eval|manifest` through the real program (argv[1]):
 * exit codes, the 291 message on stderr, alerts as JSON lines with line numbers, a malformed
 * event line reported and skipped, --help everywhere. Packs are made with the pack builder so
 * these tests do not depend on the Sigma compiler.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "content/ir.h"

static const char *rf, *root;
static char dir[256], pack[300], events[300], out[300], err[300], m10[512], m11[512];

#define A(f, t, o, fl, p)                                                                          \
	{                                                                                          \
		f, t, o, fl, (const uint8_t *)(p), sizeof(p) - 1                                   \
	}

/* Run `ringfence ARGS` with stdout/stderr to files; return the exit code. */
static int run(const char *args)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' %s >'%s' 2>'%s'", rf, args, out, err);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
	uint8_t *b = NULL;
	size_t n;
	assert_int_equal(rf_file_read(path, 1 << 20, &b, &n), 0);
	return (char *)b;
}

static bool file_has(const char *path, const char *s)
{
	char *t = slurp(path);
	bool r = strstr(t, s) != NULL;
	if (!r)
		print_message("'%s' not found in:\n%s\n", s, t);
	free(t);
	return r;
}

static int setup(void **state)
{
	struct rf_ir_atom a[] = {A("ParentUser", RF_FT_STRING, RF_OP_CONTAINS, 0, "SYSTEM"),
				 A("Image", RF_FT_STRING, RF_OP_ENDSWITH, 0, "\\cmd.exe")};
	uint32_t code[] = {RF_INSN(RF_I_ATOM, 0), RF_INSN(RF_I_ATOM, 1), RF_INSN(RF_I_AND, 0)};
	struct rf_ir_rule r = {"4e1c0a1b-0000-4000-8000-000000000291",
			       "Suspicious Parent User",
			       "high",
			       "Jane \"Q\" Doe",
			       "process_creation",
			       a,
			       2,
			       code,
			       3};
	struct rf_pack_builder *b;
	struct rf_diag d = {0};
	uint8_t *p;
	size_t n;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/rf-cli-content-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(pack, sizeof(pack), "%s/p.pack", dir);
	snprintf(events, sizeof(events), "%s/e.jsonl", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	snprintf(m10, sizeof(m10), "%s/manifests/ringfence-agent-1.0.0.json", root);
	snprintf(m11, sizeof(m11), "%s/manifests/ringfence-agent-1.1.0.json", root);
	assert_int_equal(rf_pack_builder_new(&b), 0);
	assert_int_equal(rf_pack_builder_add(b, &r, &d), 0);
	assert_int_equal(rf_pack_builder_finish(b, 3, &p, &n), 0);
	assert_int_equal(rf_file_write_atomic(pack, p, n, 0644), 0);
	rf_pack_builder_free(b);
	free(p);
	f = fopen(events, "w");
	fprintf(f,
		"{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\cmd.exe\","
		"\"ParentUser\":\"NT AUTHORITY\\\\SYSTEM\"}\n"
		"{\"event\":\"process_creation\",\"Image\":{\"nested\":1}}\n"
		"\n"
		"{\"event\":\"process_creation\",\"Image\":\"C:\\\\Windows\\\\notepad.exe\","
		"\"ParentUser\":\"NT AUTHORITY\\\\SYSTEM\"}\n"
		"{\"event\":\"process_creation\",\"Image\":\"c:\\\\x\\\\CMD.EXE\",\"ParentUser\":"
		"\"system\"}\n");
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_verify_291(void **state)
{
	char args[2048];

	snprintf(args, sizeof(args), "content verify '%s' --manifest '%s' --manifest '%s'", pack,
		 m11, m10);
	assert_int_equal(run(args), 1);
	assert_true(file_has(out, "verifies against ringfence-agent 1.1.0"));
	assert_true(
	    file_has(err, "rule 4e1c0a1b-0000-4000-8000-000000000291 \"Suspicious Parent User\": "
			  "field 'ParentUser' (input 1) is not supplied by ringfence-agent 1.0.0 "
			  "(event process_creation supplies 21 fields)"));
	assert_true(file_has(err, "rejected by ringfence-agent 1.0.0"));
	snprintf(args, sizeof(args), "content verify '%s' --manifest '%s'", pack, m11);
	assert_int_equal(run(args), 0);
	/* Usage and I/O errors are 2. */
	assert_int_equal(run("content verify"), 2);
	snprintf(args, sizeof(args), "content verify '%s'", pack);
	assert_int_equal(run(args), 2);
	snprintf(args, sizeof(args), "content verify '%s/missing.pack' --manifest '%s'", dir, m11);
	assert_int_equal(run(args), 2);
	/* A corrupted pack is rejected (1) with a diagnostic. */
	char bad[400];
	snprintf(bad, sizeof(bad), "%s/bad.pack", dir);
	assert_int_equal(rf_file_write_atomic(bad, "RFPK\x02\x00", 6, 0644), 0);
	snprintf(args, sizeof(args), "content verify '%s' --manifest '%s'", bad, m11);
	assert_int_equal(run(args), 1);
	assert_true(file_has(err, "shorter than the 104-byte header"));
}

static void test_eval(void **state)
{
	char args[2048];

	/* The older agent refuses to load the pack. */
	snprintf(args, sizeof(args), "content eval '%s' --manifest '%s' '%s'", pack, m10, events);
	assert_int_equal(run(args), 1);
	assert_true(file_has(err, "is not supplied by ringfence-agent 1.0.0"));
	assert_true(file_has(err, "not loaded"));
	/* The newer one evaluates: alerts for lines 1 and 5, line 2 reported and skipped. */
	snprintf(args, sizeof(args), "content eval '%s' --manifest '%s' '%s'", pack, m11, events);
	assert_int_equal(run(args), 0);
	assert_true(file_has(out,
			     "{\"line\":1,\"rule\":\"4e1c0a1b-0000-4000-8000-000000000291\","
			     "\"title\":\"Suspicious Parent User\",\"level\":\"high\","
			     "\"author\":\"Jane \\\"Q\\\" Doe\",\"event\":\"process_creation\"}\n"
			     "{\"line\":5,"));
	assert_false(file_has(out, "\"line\":4"));
	assert_true(file_has(err, "e.jsonl:2: byte 36: member 'Image' is an object or array"));
	assert_true(file_has(err, "5 lines, 3 events, 1 malformed, 0 unknown event type, 0 wrong "
				  "field type, 0 refused (value over 131072 bytes), 2 alerts"));
	/* Default manifest is this build's (1.1.0); events from stdin. */
	snprintf(args, sizeof(args), "content eval '%s' - < '%s'", pack, events);
	assert_int_equal(run(args), 0);
	assert_true(file_has(out, "{\"line\":5,"));
}

/* Issue 12 item 5: what the engine passes over is named per line and counted; a value over
 * RF_EVENT_VALUE_MAX refuses its event (named, counted, no alert from a cut value). */
static void test_eval_diagnostics(void **state)
{
	char args[2048], ev2[320];
	FILE *f;

	snprintf(ev2, sizeof(ev2), "%s/e2.jsonl", dir);
	f = fopen(ev2, "w");
	assert_non_null(f);
	fprintf(f, "{\"event\":\"proces_creation\",\"Image\":\"C:\\\\cmd.exe\"}\n"
		   "{\"event\":\"process_creation\",\"ProcessId\":\"12ab\",\"Image\":\"x\"}\n"
		   "{\"event\":\"network_connection\",\"DestinationPort\":true}\n"
		   "{\"event\":\"process_creation\",\"ParentUser\":\"SYSTEM\",\"Image\":\"");
	for (unsigned i = 0; i < 131072; i++)
		fputc('a', f);
	fprintf(f, "\\\\cmd.exe\"}\n"
		   "{\"event\":\"process_creation\",\"ParentUser\":\"SYSTEM\",\"Image\":\"c:\\\\cmd.exe\"}\n");
	fclose(f);
	snprintf(args, sizeof(args), "content eval '%s' --manifest '%s' '%s'", pack, m11, ev2);
	assert_int_equal(run(args), 0);
	assert_true(file_has(err, "e2.jsonl:1: event type 'proces_creation' is not supplied by "
				  "ringfence-agent 1.1.0: no rule can match it"));
	assert_true(file_has(err, "e2.jsonl:2: field 'ProcessId' is int in ringfence-agent 1.1.0 "
				  "but its value '12ab' is not"));
	assert_true(file_has(err, "e2.jsonl:3: field 'DestinationPort' is int in ringfence-agent "
				  "1.1.0 but its value 'true' is not"));
	assert_true(file_has(err, "e2.jsonl:4: field 'Image': value of 131080 bytes is over 131072 "
				  "(RF_EVENT_VALUE_MAX): event refused"));
	assert_true(file_has(err, "5 lines, 5 events, 0 malformed, 1 unknown event type, 2 wrong "
				  "field type, 1 refused (value over 131072 bytes), 1 alerts"));
	assert_true(file_has(out, "{\"line\":5,"));
	assert_false(file_has(out, "{\"line\":4,"));
}

static void test_inspect_and_manifest(void **state)
{
	char args[2048];

	snprintf(args, sizeof(args), "content inspect '%s' --json", pack);
	assert_int_equal(run(args), 0);
	assert_true(file_has(out, "{\"format_version\":1,\"seq\":3,"));
	assert_true(file_has(out, "\"rules\":[{\"id\":\"4e1c0a1b-0000-4000-8000-000000000291\""));
	snprintf(args, sizeof(args), "content inspect '%s'", pack);
	assert_int_equal(run(args), 0);
	assert_true(file_has(out, "1 rules, 3 instructions"));
	assert_int_equal(run("content manifest"), 0);
	char *a = slurp(out), *b = slurp(m11);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* A pack records each rule's Sigma logsource product, and the verifier refuses it for a manifest
 * that supplies another one, even when the pack was compiled without a manifest: a Windows rule
 * never loads on a Linux agent (docs/pack-format.md, rules). */
static void test_verify_product(void **state)
{
	char args[2048], yml[320], wpack[320], lnx[512], win[512];
	FILE *f;

	snprintf(yml, sizeof(yml), "%s/win.yml", dir);
	snprintf(wpack, sizeof(wpack), "%s/win.rfp", dir);
	snprintf(lnx, sizeof(lnx), "%s/manifests/ringfence-agent-linux-1.3.0.json", root);
	snprintf(win, sizeof(win), "%s/manifests/ringfence-agent-windows-1.2.0.json", root);
	f = fopen(yml, "w");
	assert_non_null(f);
	fprintf(f, "title: Windows encoded command\n"
		   "id: 77777777-0000-0000-0000-000000000001\n"
		   "logsource: {category: process_creation, product: windows}\n"
		   "detection:\n"
		   "  sel:\n"
		   "    CommandLine|contains: ' -enc '\n"
		   "  condition: sel\n"
		   "level: high\n");
	fclose(f);
	snprintf(args, sizeof(args), "content compile '%s' -o '%s'", yml, wpack);
	assert_int_equal(run(args), 0);

	snprintf(args, sizeof(args), "content verify '%s' --manifest '%s'", wpack, lnx);
	assert_int_equal(run(args), 1);
	assert_true(file_has(err, "rule 77777777-0000-0000-0000-000000000001 \"Windows encoded "
				  "command\": logsource product 'windows' is not supplied by "
				  "ringfence-agent-linux 1.3.0 (it supplies product 'linux' for event "
				  "process_creation)"));
	/* The proc agent's embedded manifest names its product too. */
	snprintf(args, sizeof(args),
		 "content verify '%s' --manifest '%s/manifests/ringfence-agent-linux-1.2.0.json'",
		 wpack, root);
	assert_int_equal(run(args), 1);
	assert_true(file_has(err, "is not supplied by ringfence-agent-linux 1.2.0"));

	/* A Linux event, evaluated as a Linux agent would: the pack does not load, no alert. */
	f = fopen(events, "w");
	assert_non_null(f);
	fprintf(f, "{\"event\":\"process_creation\",\"Image\":\"/usr/bin/openssl\","
		   "\"CommandLine\":\"openssl base64 -enc -in x\"}\n");
	fclose(f);
	snprintf(args, sizeof(args), "content eval '%s' --manifest '%s' '%s'", wpack, lnx, events);
	assert_int_not_equal(run(args), 0);
	assert_false(file_has(out, "77777777"));

	/* The Windows manifest, and one that names no product (any), accept it. */
	snprintf(args, sizeof(args), "content verify '%s' --manifest '%s' --manifest '%s'", wpack,
		 win, m11);
	assert_int_equal(run(args), 0);
	snprintf(args, sizeof(args), "content eval '%s' --manifest '%s' '%s'", wpack, win, events);
	assert_int_equal(run(args), 0);
	assert_true(file_has(out, "77777777-0000-0000-0000-000000000001"));
}

static void test_help_and_usage(void **state)
{
	static const char *const cmds[] = {"content --help", "content verify --help",
					   "content inspect --help", "content eval --help",
					   "content manifest --help"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		assert_int_equal(run(cmds[i]), 0);
		assert_true(file_has(out, "usage: ringfence content"));
	}
	assert_int_equal(run("content"), 2);
	assert_int_equal(run("content frobnicate"), 2);
	assert_int_equal(run("content inspect"), 2);
	assert_int_equal(run("content eval"), 2);
	assert_int_equal(run("content manifest extra"), 2);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_291),
	    cmocka_unit_test(test_eval),
	    cmocka_unit_test(test_eval_diagnostics),
	    cmocka_unit_test(test_inspect_and_manifest),
	    cmocka_unit_test(test_verify_product),
	    cmocka_unit_test(test_help_and_usage),
	};
	if (argc < 2) {
		fprintf(stderr, "usage: test-cli-content RINGFENCE\n");
		return 2;
	}
	rf = argv[1];
	root = getenv("RF_SOURCE_ROOT") ? getenv("RF_SOURCE_ROOT") : ".";
	return cmocka_run_group_tests(tests, setup, teardown);
}
