// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * policy_compile(): each row compiles a small rule set and checks one map
 * entry (its port/protocol union and flags) plus the size of each table.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"

#include "table.h"

#define MAX_RULES 12

enum table { EXACT, ALLOW, DENY };

static const char *const table_name[] = { "exact", "allow", "deny" };

struct entry_row {
	const char *desc;
	const char *allow[MAX_RULES];	/* NULL-terminated */
	const char *deny[MAX_RULES];
	enum table table;
	const char *entry;	/* as rule_prefix_format() prints it */
	const char *ranges;	/* rendered by render(); NULL: entry absent */
	__u32 flags;
	size_t n[3];		/* expected n_exact, n_allow, n_deny */
};

/* Every row also gets the two built-in denies unless an allow drops one. */
static const struct entry_row rows[] = {
	{ "/32 inside an allowed /24 carries both",
	  { "tcp://198.51.100.0/24:443", "udp://198.51.100.7:53" }, { },
	  EXACT, "198.51.100.7", "udp:53 tcp:443", 0, { 1, 1, 2 } },
	{ "the /24 itself keeps only its own rule",
	  { "tcp://198.51.100.0/24:443", "udp://198.51.100.7:53" }, { },
	  ALLOW, "198.51.100.0/24", "tcp:443", 0, { 1, 1, 2 } },
	{ "same port, both protocols fuse",
	  { "tcp://198.51.100.0/24:443", "udp://198.51.100.7:443" }, { },
	  EXACT, "198.51.100.7", "all:443", 0, { 1, 1, 2 } },
	{ "nested /16 and /24: outer",
	  { "10.1.0.0/16:80", "tcp://10.1.2.0/24:443" }, { },
	  ALLOW, "10.1.0.0/16", "all:80", 0, { 0, 2, 2 } },
	{ "nested /16 and /24: inner holds both",
	  { "10.1.0.0/16:80", "tcp://10.1.2.0/24:443" }, { },
	  ALLOW, "10.1.2.0/24", "all:80 tcp:443", 0, { 0, 2, 2 } },
	{ "three levels: /32 collects /8 /16 /24",
	  { "10.0.0.0/8:1", "10.1.0.0/16:2", "10.1.2.0/24:3", "10.1.2.3:4",
	    "10.2.0.0/16:5" }, { },
	  EXACT, "10.1.2.3", "all:1-4", 0, { 1, 4, 2 } },
	{ "sibling prefix not included",
	  { "10.0.0.0/8:1", "10.1.0.0/16:2", "10.2.0.0/16:5" }, { },
	  ALLOW, "10.2.0.0/16", "all:1 all:5", 0, { 0, 3, 2 } },
	{ "duplicate rules make one entry",
	  { "192.0.2.1:80", "192.0.2.1:80", "192.0.2.1/32:443" }, { },
	  EXACT, "192.0.2.1", "all:80 all:443", 0, { 1, 0, 2 } },
	{ "adjacent tcp ranges merge, udp fuses",
	  { "tcp://192.0.2.1:80-90", "tcp://192.0.2.1:91-100",
	    "udp://192.0.2.1:80-100" }, { },
	  EXACT, "192.0.2.1", "all:80-100", 0, { 1, 0, 2 } },
	{ "overlapping ranges of different protocols",
	  { "192.0.2.0/24:100-200", "tcp://192.0.2.0/24:150-300" }, { },
	  ALLOW, "192.0.2.0/24", "udp:100-200 tcp:100-300", 0, { 0, 1, 2 } },
	{ "every port absorbs narrower rules",
	  { "192.0.2.5", "tcp://192.0.2.5:443", "192.0.2.0/24:22" }, { },
	  EXACT, "192.0.2.5", "all:0-65535", 0, { 1, 1, 2 } },
	{ "IPv6 host inside IPv6 prefix",
	  { "[2001:db8::]/32:443", "udp://[2001:db8::1]:53" }, { },
	  EXACT, "[2001:db8::1]", "udp:53 all:443", 0, { 1, 1, 2 } },
	{ "IPv4 and IPv6 never mix",
	  { "0.0.0.0/0:80", "[2001:db8::1]:53" }, { },
	  EXACT, "[2001:db8::1]", "all:53", 0, { 1, 1, 2 } },
	{ "v4-mapped rule compiles to IPv4",
	  { "[::ffff:198.51.100.0]/120:443" }, { },
	  ALLOW, "198.51.100.0/24", "all:443", 0, { 0, 1, 2 } },
	{ "v4-mapped host is an IPv4 exact entry",
	  { "tcp://198.51.100.0/24:443", "udp://[::ffff:198.51.100.7]:53" },
	  { }, EXACT, "198.51.100.7", "udp:53 tcp:443", 0, { 1, 1, 2 } },
	{ "domain rules produce no entries",
	  { "example.com", "*.example.org:443" }, { "bad.example" },
	  EXACT, "192.0.2.1", NULL, 0, { 0, 0, 2 } },
	{ "default deny for IPv4 metadata", { }, { },
	  DENY, "169.254.169.254", "all:0-65535", MOAT_AV_DEFAULT_DENY,
	  { 0, 0, 2 } },
	{ "default deny for IPv6 metadata", { }, { },
	  DENY, "[fd00:ec2::254]", "all:0-65535", MOAT_AV_DEFAULT_DENY,
	  { 0, 0, 2 } },
	{ "exact allow drops the metadata deny",
	  { "tcp://169.254.169.254:80" }, { },
	  DENY, "169.254.169.254", NULL, 0, { 1, 0, 1 } },
	{ "exact allow becomes an exact entry",
	  { "tcp://169.254.169.254:80" }, { },
	  EXACT, "169.254.169.254", "tcp:80", 0, { 1, 0, 1 } },
	{ "the other default deny stays",
	  { "tcp://169.254.169.254:80" }, { },
	  DENY, "[fd00:ec2::254]", "all:0-65535", MOAT_AV_DEFAULT_DENY,
	  { 1, 0, 1 } },
	{ "exact IPv6 allow drops the IPv6 metadata deny",
	  { "[fd00:ec2::254]:80" }, { },
	  DENY, "[fd00:ec2::254]", NULL, 0, { 1, 0, 1 } },
	{ "prefix allow does not drop the default deny",
	  { "169.254.0.0/16" }, { },
	  DENY, "169.254.169.254", "all:0-65535", MOAT_AV_DEFAULT_DENY,
	  { 0, 1, 2 } },
	{ "explicit deny of the same address is not a default",
	  { }, { "tcp://169.254.169.254:80" },
	  DENY, "169.254.169.254", "all:0-65535", 0, { 0, 0, 2 } },
	{ "deny prefix around a default deny",
	  { }, { "udp://169.254.0.0/16:53" },
	  DENY, "169.254.0.0/16", "udp:53", 0, { 0, 0, 3 } },
	{ "deny rules union: /25 takes the /24",
	  { }, { "tcp://203.0.113.0/24:22", "udp://203.0.113.128/25:53",
		 "203.0.113.129:1000-2000" },
	  DENY, "203.0.113.128/25", "tcp:22 udp:53", 0, { 0, 0, 5 } },
	{ "deny rules union: /32 takes /24 and /25",
	  { }, { "tcp://203.0.113.0/24:22", "udp://203.0.113.128/25:53",
		 "203.0.113.129:1000-2000" },
	  DENY, "203.0.113.129", "tcp:22 udp:53 all:1000-2000", 0,
	  { 0, 0, 5 } },
	{ "deny rules do not leak into allow entries",
	  { "203.0.113.129:443" }, { "tcp://203.0.113.0/24:22" },
	  EXACT, "203.0.113.129", "all:443", 0, { 1, 0, 3 } },
	{ "exactly the range limit fits",
	  { "tcp://192.0.2.1:1", "tcp://192.0.2.1:3", "tcp://192.0.2.1:5",
	    "tcp://192.0.2.1:7", "udp://192.0.2.1:9", "udp://192.0.2.1:11",
	    "udp://192.0.2.1:13", "udp://192.0.2.1:15" }, { },
	  EXACT, "192.0.2.1",
	  "tcp:1 tcp:3 tcp:5 tcp:7 udp:9 udp:11 udp:13 udp:15", 0,
	  { 1, 0, 2 } },
};

static void render(const struct moat_addr_val *v, char *buf, size_t len)
{
	static const char *const proto[] = { "?", "tcp", "udp", "all" };
	const struct moat_port_range *r;
	size_t used = 0;
	__u32 i;

	buf[0] = '\0';
	for (i = 0; i < v->n_ranges && i < MOAT_MAX_PORT_RANGES; i++) {
		r = &v->ranges[i];
		used += (size_t)snprintf(buf + used, len - used, "%s%s:%u",
					 i ? " " : "", proto[r->protos & 3],
					 r->first);
		if (r->last != r->first)
			used += (size_t)snprintf(buf + used, len - used, "-%u",
						 r->last);
	}
}

static void add_rules(struct moat_policy_spec *p, int deny,
		      const char *const *rules)
{
	struct moat_err err = { "" };

	for (; *rules; rules++)
		cr_assert_eq(policy_add_rule(p, deny, *rules, &err), 0, "%s",
			     err.msg);
}

static const struct compiled_entry *find(const struct moat_compiled *c,
					 enum table t, const char *want)
{
	const struct compiled_entry *e[] = { c->exact, c->allow, c->deny };
	const size_t n[] = { c->n_exact, c->n_allow, c->n_deny };
	char buf[64];
	size_t i;

	for (i = 0; i < n[t]; i++) {
		rule_prefix_format(e[t][i].family, e[t][i].addr,
				   e[t][i].prefixlen, buf, sizeof(buf));
		if (!strcmp(buf, want))
			return &e[t][i];
	}
	return NULL;
}

/* Properties every compiled entry must have, whatever the rules. */
static void check_invariants(const char *desc, const struct moat_compiled *c)
{
	const struct compiled_entry *e[] = { c->exact, c->allow, c->deny };
	const size_t n[] = { c->n_exact, c->n_allow, c->n_deny };
	size_t t, i;

	for (t = 0; t < 3; t++) {
		for (i = 0; i < n[t]; i++) {
			const struct compiled_entry *x = &e[t][i];
			unsigned int full = x->family == AF_INET6 ? 128 : 32;

			cr_expect_eq(x->val.expires_ns, 0, "%s: expires", desc);
			cr_expect(x->val.n_ranges >= 1 &&
				  x->val.n_ranges <= MOAT_MAX_PORT_RANGES,
				  "%s: %zu ranges", desc,
				  (size_t)x->val.n_ranges);
			cr_expect(t != EXACT || x->prefixlen == full,
				  "%s: short exact entry", desc);
			cr_expect(t != ALLOW || x->prefixlen < full,
				  "%s: full-length allow trie entry", desc);
		}
	}
}

static void compile_row(const struct entry_row *v, struct moat_compiled *c)
{
	struct moat_err err = { "" };
	struct moat_policy_spec p;

	policy_init(&p);
	add_rules(&p, 0, v->allow);
	add_rules(&p, 1, v->deny);
	cr_assert_eq(policy_compile(&p, c, &err), 0, "%s: %s", v->desc,
		     err.msg);
	policy_free(&p);
}

ParameterizedTestParameters(compile, entries)
{
	ROW_INDICES(rows);
}

ParameterizedTest(size_t *i, compile, entries)
{
	const struct entry_row *v = &rows[*i];
	const struct compiled_entry *e;
	struct moat_compiled c;
	char got[256];

	compile_row(v, &c);
	check_invariants(v->desc, &c);
	cr_expect_eq(c.n_exact, v->n[EXACT], "%s: %zu exact", v->desc,
		     c.n_exact);
	cr_expect_eq(c.n_allow, v->n[ALLOW], "%s: %zu allow", v->desc,
		     c.n_allow);
	cr_expect_eq(c.n_deny, v->n[DENY], "%s: %zu deny", v->desc,
		     c.n_deny);
	e = find(&c, v->table, v->entry);
	if (!v->ranges) {
		cr_expect_null(e, "%s: %s in %s table", v->desc, v->entry,
			       table_name[v->table]);
	} else {
		cr_assert_not_null(e, "%s: no %s in %s table", v->desc,
				   v->entry, table_name[v->table]);
		render(&e->val, got, sizeof(got));
		cr_expect_str_eq(got, v->ranges, "%s: ranges '%s'", v->desc,
				 got);
		cr_expect_eq(e->val.flags, v->flags, "%s: flags %u", v->desc,
			     e->val.flags);
	}
	compiled_free(&c);
}

struct error_row {
	const char *desc;
	const char *allow[MAX_RULES];
	const char *deny[MAX_RULES];
	const char *msg;
};

static const struct error_row errors[] = {
	{ "nine ranges on one host",
	  { "tcp://192.0.2.1:1", "tcp://192.0.2.1:3", "tcp://192.0.2.1:5",
	    "tcp://192.0.2.1:7", "tcp://192.0.2.1:9", "tcp://192.0.2.1:11",
	    "tcp://192.0.2.1:13", "tcp://192.0.2.1:15", "tcp://192.0.2.1:17" },
	  { }, "192.0.2.1: the rules covering it need 9 port ranges, more than the limit of 8" },
	{ "nine ranges on a prefix",
	  { "192.0.2.0/24:1", "192.0.2.0/24:3", "192.0.2.0/24:5",
	    "192.0.2.0/24:7", "192.0.2.0/24:9", "192.0.2.0/24:11",
	    "192.0.2.0/24:13", "192.0.2.0/24:15", "192.0.2.0/24:17" },
	  { }, "192.0.2.0/24: the rules covering it need 9" },
	{ "host inherits too many from its prefix",
	  { "192.0.2.0/24:1", "192.0.2.0/24:3", "192.0.2.0/24:5",
	    "192.0.2.0/24:7", "192.0.2.0/24:9", "192.0.2.7:11",
	    "192.0.2.7:13", "192.0.2.7:15", "192.0.2.7:17" },
	  { }, "192.0.2.7: the rules covering it need 9" },
	{ "split protocols count twice",
	  { "tcp://192.0.2.0/24:1", "tcp://192.0.2.0/24:3",
	    "tcp://192.0.2.0/24:5", "tcp://192.0.2.0/24:7",
	    "tcp://192.0.2.0/24:9", "udp://192.0.2.0/24:1-3",
	    "udp://192.0.2.0/24:5-7", "udp://192.0.2.0/24:9-11",
	    "udp://192.0.2.0/24:13" },
	  { }, "192.0.2.0/24: the rules covering it need 9" },
	{ "deny table over the limit",
	  { }, { "[2001:db8::]/32:1", "[2001:db8::]/32:3", "[2001:db8::]/32:5",
		 "[2001:db8::]/32:7", "[2001:db8::]/32:9", "[2001:db8::]/48:11",
		 "[2001:db8::]/48:13", "[2001:db8::]/48:15",
		 "[2001:db8::]/48:17" },
	  "[2001:db8::]/48: the rules covering it need 9" },
};

ParameterizedTestParameters(compile, errors)
{
	ROW_INDICES(errors);
}

ParameterizedTest(size_t *i, compile, errors)
{
	const struct error_row *v = &errors[*i];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	struct moat_compiled c;
	int ret;

	policy_init(&p);
	add_rules(&p, 0, v->allow);
	add_rules(&p, 1, v->deny);
	ret = policy_compile(&p, &c, &err);
	cr_expect_eq(ret, -E2BIG, "%s: returned %d", v->desc, ret);
	cr_expect(strstr(err.msg, v->msg), "%s: message '%s' lacks '%s'",
		  v->desc, err.msg, v->msg);
	cr_expect(strstr(err.msg, "command line: "), "%s: no source in '%s'",
		  v->desc, err.msg);
	/* Left empty and freeable on failure. */
	cr_expect_null(c.exact, "%s", v->desc);
	cr_expect_eq(c.n_deny, 0, "%s", v->desc);
	compiled_free(&c);
	policy_free(&p);
}

struct flags_row {
	const char *desc;
	int mode;
	enum loopback_mode loopback;
	enum socket_perm raw, ping, other;
	__u32 flags;
};

static const struct flags_row flag_rows[] = {
	{ "defaults", MOAT_MODE_ENFORCE, LOOPBACK_DEFAULT, SOCKET_DENY,
	  SOCKET_DENY, SOCKET_DENY, 0 },
	{ "audit mode", MOAT_MODE_AUDIT, LOOPBACK_DEFAULT, SOCKET_DENY,
	  SOCKET_DENY, SOCKET_DENY, 0 },
	{ "loopback allow", MOAT_MODE_ENFORCE, LOOPBACK_ALLOW, SOCKET_DENY,
	  SOCKET_DENY, SOCKET_DENY, MOAT_POL_LOOPBACK_ALLOW },
	{ "loopback deny means rules only", MOAT_MODE_ENFORCE, LOOPBACK_DENY,
	  SOCKET_DENY, SOCKET_DENY, SOCKET_DENY, MOAT_POL_LOOPBACK_RULES },
	{ "raw allowed", MOAT_MODE_ENFORCE, LOOPBACK_DEFAULT, SOCKET_ALLOW,
	  SOCKET_DENY, SOCKET_DENY, MOAT_POL_RAW_ALLOW },
	{ "ping allowed", MOAT_MODE_AUDIT, LOOPBACK_DEFAULT, SOCKET_DENY,
	  SOCKET_ALLOW, SOCKET_DENY, MOAT_POL_PING_ALLOW },
	{ "other protocols allowed", MOAT_MODE_ENFORCE, LOOPBACK_DEFAULT,
	  SOCKET_DENY, SOCKET_DENY, SOCKET_ALLOW, MOAT_POL_OTHER_ALLOW },
	{ "everything", MOAT_MODE_AUDIT, LOOPBACK_ALLOW, SOCKET_ALLOW,
	  SOCKET_ALLOW, SOCKET_ALLOW,
	  MOAT_POL_LOOPBACK_ALLOW | MOAT_POL_RAW_ALLOW | MOAT_POL_PING_ALLOW |
	  MOAT_POL_OTHER_ALLOW },
};

ParameterizedTestParameters(compile, flags)
{
	ROW_INDICES(flag_rows);
}

ParameterizedTest(size_t *i, compile, flags)
{
	const struct flags_row *v = &flag_rows[*i];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	struct moat_compiled c;

	policy_init(&p);
	p.mode = v->mode;
	p.loopback = v->loopback;
	p.sockets.raw = v->raw;
	p.sockets.ping = v->ping;
	p.sockets.other = v->other;
	cr_assert_eq(policy_compile(&p, &c, &err), 0, "%s: %s", v->desc,
		     err.msg);
	/* the lookup hints have their own table below */
	cr_expect_eq(c.flags & ~MOAT_POL_HINTS, v->flags,
		     "%s: flags %#x, want %#x", v->desc, c.flags, v->flags);
	cr_expect_eq(c.mode, (__u32)v->mode, "%s: mode %u", v->desc, c.mode);
	compiled_free(&c);
	policy_free(&p);
}

Test(compile, default_deny_texts)
{
	struct moat_err err = { "" };
	struct moat_rule r;
	size_t n;

	for (n = 0; moat_default_denies[n]; n++)
		cr_expect_eq(rule_parse(moat_default_denies[n], "t", &r, &err),
			     0, "%s", err.msg);
	cr_expect_eq(n, 2);
	cr_expect_str_eq(moat_default_denies[0], "169.254.169.254");
	cr_expect_str_eq(moat_default_denies[1], "[fd00:ec2::254]");
}

/*
 * MOAT_POL_HINTS: a hint makes the programs skip a lookup, so a hint
 * that is set wrongly lets a denied address through (DENY_BUILTIN_ONLY)
 * or refuses an allowed one (NO_EXACT, NO_PREFIX).
 */
struct hints_row {
	const char *desc;
	const char *allow[MAX_RULES];	/* NULL-terminated */
	const char *deny[MAX_RULES];
	__u32 hints;
};

#define ALL_HINTS	MOAT_POL_HINTS

static const struct hints_row hint_rows[] = {
	{ "no rules", { NULL }, { NULL }, ALL_HINTS },
	{ "one prefix", { "198.51.100.0/24", NULL }, { NULL },
	  MOAT_POL_DENY_BUILTIN_ONLY | MOAT_POL_NO_EXACT },
	{ "one address", { "tcp://198.51.100.7:80", NULL }, { NULL },
	  MOAT_POL_DENY_BUILTIN_ONLY | MOAT_POL_NO_PREFIX },
	{ "a domain: its learned addresses are exact entries",
	  { "example.test", NULL }, { NULL },
	  MOAT_POL_DENY_BUILTIN_ONLY | MOAT_POL_NO_PREFIX },
	{ "a wildcard", { "*.example.test:443", NULL }, { NULL },
	  MOAT_POL_DENY_BUILTIN_ONLY | MOAT_POL_NO_PREFIX },
	{ "a deny rule", { "198.51.100.0/24", NULL }, { "198.51.100.9", NULL },
	  MOAT_POL_NO_EXACT },
	{ "a deny rule naming a built-in address",
	  { "198.51.100.0/24", NULL }, { "169.254.169.254", NULL },
	  MOAT_POL_NO_EXACT },
	{ "a deny prefix around a built-in address", { NULL },
	  { "[fd00:ec2::]/64", NULL }, MOAT_POL_NO_EXACT | MOAT_POL_NO_PREFIX },
	{ "allowing a built-in address drops its deny entry",
	  { "tcp://169.254.169.254:80", NULL }, { NULL },
	  MOAT_POL_DENY_BUILTIN_ONLY | MOAT_POL_NO_PREFIX },
};

ParameterizedTestParameters(compile, hints)
{
	ROW_INDICES(hint_rows);
}

ParameterizedTest(size_t *i, compile, hints)
{
	const struct hints_row *v = &hint_rows[*i];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	struct moat_compiled c;

	policy_init(&p);
	add_rules(&p, 0, v->allow);
	add_rules(&p, 1, v->deny);
	cr_assert_eq(policy_compile(&p, &c, &err), 0, "%s: %s", v->desc,
		     err.msg);
	cr_expect_eq(c.flags & MOAT_POL_HINTS, v->hints,
		     "%s: hints %#x, want %#x", v->desc,
		     c.flags & MOAT_POL_HINTS, v->hints);
	compiled_free(&c);
	policy_free(&p);
}

/* The programs compare the built-in denies as numbers: the same ones. */
Test(compile, default_deny_constants)
{
	static const __u32 want[2][4] = {
		{ MOAT_DENY_BUILTIN4 },
		{ MOAT_DENY_BUILTIN6_W0, 0, 0, MOAT_DENY_BUILTIN6_W3 },
	};
	struct moat_err err = { "" };
	struct moat_rule r;

	for (size_t n = 0; n < 2; n++) {
		cr_assert_eq(rule_parse(moat_default_denies[n], "t", &r, &err),
			     0, "%s", err.msg);
		for (size_t w = 0; w < (n ? 4 : 1); w++) {
			__u32 a = (__u32)r.addr[4 * w] << 24 |
				  (__u32)r.addr[4 * w + 1] << 16 |
				  (__u32)r.addr[4 * w + 2] << 8 |
				  r.addr[4 * w + 3];

			cr_expect_eq(a, want[n][w], "%s word %zu: %#x, want %#x",
				     moat_default_denies[n], w, a, want[n][w]);
		}
	}
}
