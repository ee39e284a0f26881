// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The command line itself (issue 13): every command answers --help and
 * `help CMD` with exit 0, `version` says this build's version and the
 * pinned layout it uses, and a warning under --json stays a warning on
 * stderr: stdout carries the command's one result object, never an
 * {"error": ...} for something that did not fail.
 */
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "harness.h"
#include "moat_consts.h"

/* main.c's table, every entry */
static const char *const commands[] = {
	"attach", "detach", "status", "policy", "run", "unload", "events",
	"log", "daemon", "oci-hook", "upgrade", "enable", "disable",
	"unit-start", "version", "help", NULL,
};

KTEST(cli, every_command_answers_help)
{
	struct run_result r;

	moat(&r, "help");
	cr_expect_eq(r.status, 0, "help: exit %d: %s", r.status, r.err);
	for (int i = 0; commands[i]; i++) {
		char word[64];

		snprintf(word, sizeof(word), "  %s", commands[i]);
		cr_expect(strstr(r.err, word), "moat-bpf help does not list %s:\n%s",
			  commands[i], r.err);
	}
	run_free(&r);
	for (int i = 0; commands[i]; i++) {
		const char *forms[] = { "%s --help", "%s -h", "help %s" };

		for (int f = 0; f < 3; f++) {
			char args[64];

			snprintf(args, sizeof(args), forms[f], commands[i]);
			/* stdin closed: oci-hook must not wait for a state */
			moat(&r, "%s </dev/null", args);
			cr_expect_eq(r.status, 0, "moat-bpf %s: exit %d: %s", args,
				     r.status, r.err);
			cr_expect(strstr(r.err, "Usage:") || strstr(r.err, "usage:"),
				  "moat-bpf %s printed no usage:\n%s", args, r.err);
			cr_expect(!strstr(r.out, "\"error\""), "moat-bpf %s: %s",
				  args, r.out);
			run_free(&r);
		}
	}
	/* a command that does not exist is still an error */
	moat(&r, "help no-such-command");
	cr_expect_neq(r.status, 0, "help no-such-command: exit 0");
	run_free(&r);
	moat(&r, "attach --no-such-option x");
	cr_expect_neq(r.status, 0, "attach --no-such-option: exit 0");
	cr_expect(strstr(r.err, "--no-such-option"), "%s", r.err);
	run_free(&r);
}

KTEST(cli, version_says_version_and_layout)
{
	char want[64];
	struct run_result r;
	json_object *o, *v, *l;

	moat(&r, "version");
	cr_assert_eq(r.status, 0, "version: exit %d: %s", r.status, r.err);
	snprintf(want, sizeof(want), "(pinned layout v%d)\n", MOAT_LAYOUT_VERSION);
	cr_expect(!strncmp(r.out, "moat-bpf ", 9) && strstr(r.out, want) &&
		  count_lines(r.out) == 1, "version printed:\n%s", r.out);
	cr_expect(!strstr(r.out, "unknown"), "no version was built in: %s", r.out);
	run_free(&r);

	moat(&r, "--json version");
	cr_assert_eq(r.status, 0, "--json version: exit %d: %s", r.status, r.err);
	o = json_tokener_parse(r.out);
	cr_assert(o, "not JSON: %s", r.out);
	cr_expect(json_object_object_get_ex(o, "version", &v) &&
		  json_object_get_string_len(v) > 0, "%s", r.out);
	cr_expect(json_object_object_get_ex(o, "layout", &l) &&
		  json_object_get_int(l) == MOAT_LAYOUT_VERSION, "%s", r.out);
	json_object_put(o);
	run_free(&r);
}

/*
 * An unreadable --resolv-conf only warns (the resolver then has no
 * fallback upstream); the attach succeeds. Under --json the warning was
 * printed as {"error": "warning: ..."} on stdout, next to the result.
 */
KTEST(cli, warning_under_json_is_no_error)
{
	const char *cg = cg_make("json-warn");
	struct run_result r;
	json_object *o, *x;

	moat(&r, "--json attach %s --allow 198.51.100.7 --netns /proc/self/ns/net "
	     "--resolv-conf %s/no-such-resolv.conf", cg, H.tmpdir);
	cr_assert_eq(r.status, 0, "attach: exit %d: %s %s", r.status, r.out, r.err);
	cr_expect(strstr(r.err, "warning: cannot read nameservers"),
		  "no warning on stderr:\n%s", r.err);
	cr_expect(!strstr(r.out, "\"error\""), "stdout has an error:\n%s", r.out);
	cr_expect_eq(count_lines(r.out), 1, "stdout:\n%s", r.out);
	o = json_tokener_parse(r.out);
	cr_assert(o, "stdout is not one JSON object:\n%s", r.out);
	cr_expect(json_object_object_get_ex(o, "attached", &x), "%s", r.out);
	cr_expect(json_object_object_get_ex(o, "policy", &x), "%s", r.out);
	json_object_put(o);
	run_free(&r);
}
