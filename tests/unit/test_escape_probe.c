// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The escape suite's mechanism probe (moat-escape --probe and the
 * MOAT_ESC_MECH_* variables), both branches. No machine can take both for
 * real: one kind refuses int $0x80, another allows it. So the answer is
 * forced each way and the technique's verdict checked: forced absent, it
 * is n/a with the given reason and never runs; forced present, it runs and
 * is judged (unenforced, as here, that is an escape whichever way the
 * machine answers: a socket, or the crash that a missing compat entry
 * causes, which must never be read as a block). Only i386-compat-vsock is
 * used: it creates a socket and sends nothing anywhere.
 *
 * MOAT_ESCAPE names the binary (make unit-test sets it); without it,
 * build/tests/moat-escape.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "table.h"

static const char *escape_bin(void)
{
	const char *p = getenv("MOAT_ESCAPE");

	p = p && *p ? p : "build/tests/moat-escape";
	cr_assert(access(p, X_OK) == 0, "%s is not executable (make tests, or set "
		  "MOAT_ESCAPE)", p);
	return p;
}

/* Run moat-escape with ENV (NAME=VALUE or NULL: unset) and ARGS; its stdout. */
static void run_escape(const char *env, const char *args, char *out, size_t len)
{
	char cmd[1024];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "env -u MOAT_ESC_MECH_I386 -u MOAT_ESC_MECH_SCTP %s "
		 "'%s' %s 2>/dev/null", env ? env : "", escape_bin(), args);
	f = popen(cmd, "r");
	cr_assert(f, "popen %s", cmd);
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	pclose(f);
}

struct probe_row {
	const char *desc;
	const char *env;
	const char *want;	/* the verdict line starts with this */
	const char *want_in;	/* and contains this, or NULL */
};

static const struct probe_row rows[] = {
	{ "forced absent: n/a with the given reason, the technique never runs",
	  "MOAT_ESC_MECH_I386='absent:forced by the test'",
	  "TECHNIQUE i386-compat-vsock: n/a (forced by the test)", NULL },
	{ "forced present: the technique runs and, unenforced, escapes (a crash "
	  "included)", "MOAT_ESC_MECH_I386=present",
	  "TECHNIQUE i386-compat-vsock: escaped (", NULL },
	{ "a malformed value is not a verdict: the probe decides",
	  "MOAT_ESC_MECH_I386=maybe", "TECHNIQUE i386-compat-vsock: ", NULL },
	{ "SCTP forced absent", "MOAT_ESC_MECH_SCTP='absent:no sctp here'",
	  "TECHNIQUE sctp: n/a (no sctp here)", NULL },
};

ParameterizedTestParameters(escape_probe, forced)
{
	ROW_INDICES(rows);
}

ParameterizedTest(size_t *i, escape_probe, forced)
{
	const struct probe_row *r = &rows[*i];
	const char *only = strstr(r->want, "sctp") ? "sctp" : "i386-compat-vsock";
	char args[128], out[4096];

	snprintf(args, sizeof(args), "--only %s", only);
	run_escape(r->env, args, out, sizeof(out));
	cr_expect(!strncmp(out, r->want, strlen(r->want)), "%s: got '%s'", r->desc, out);
	if (strstr(r->env, "=present"))
		cr_expect(!strstr(out, ": n/a") && !strstr(out, ": blocked"),
			  "%s: a technique run unenforced cannot be n/a or blocked: '%s'",
			  r->desc, out);
}

/* Unforced, the technique follows the machine: n/a exactly when --probe
 * says absent, and then with the probe's reason. */
Test(escape_probe, follows_the_machine)
{
	char probe[4096], out[4096], *line, want[600];

	run_escape(NULL, "--probe", probe, sizeof(probe));
	line = strstr(probe, "PROBE i386 MOAT_ESC_MECH_I386 ");
	cr_assert(line, "--probe printed no i386 line: '%s'", probe);
	line += strlen("PROBE i386 MOAT_ESC_MECH_I386 ");
	line[strcspn(line, "\n")] = 0;
	run_escape(NULL, "--only i386-compat-vsock", out, sizeof(out));
	if (!strncmp(line, "absent:", 7)) {
		snprintf(want, sizeof(want), "TECHNIQUE i386-compat-vsock: n/a (%s)",
			 line + 7);
		cr_expect(!strncmp(out, want, strlen(want)), "probe '%s', got '%s'", line, out);
	} else {
		cr_expect_str_eq(line, "present", "probe line '%s'", line);
		cr_expect(!strncmp(out, "TECHNIQUE i386-compat-vsock: escaped (", 38),
			  "probe present, got '%s'", out);
	}
}
