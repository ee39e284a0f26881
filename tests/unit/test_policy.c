// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy files and names: each table row is written to a fresh temporary
 * file, loaded, and checked; error rows must name file:line:col exactly.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caps.h"
#include "policy.h"

#include "table.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert(f, "cannot create %s", path);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

/* mkstemp under /tmp; the caller unlinks. Names are valid policy names. */
static void write_temp(char path[64], const char *text)
{
	int fd;

	strcpy(path, "/tmp/moat-policy-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp failed");
	close(fd);
	write_file(path, text);
}

static void seed_non_default(struct moat_policy_spec *p);

/* SEEDED: over seed_non_default() instead of policy_init()'s defaults. */
static int load_text_x(struct moat_policy_spec *p, const char *text,
		       char path[64], struct moat_err *err, bool seeded)
{
	int ret;

	write_temp(path, text);
	policy_init(p);
	if (seeded)
		seed_non_default(p);
	ret = policy_load_file(p, path, err);
	unlink(path);
	return ret;
}

static int load_text(struct moat_policy_spec *p, const char *text,
		     char path[64], struct moat_err *err)
{
	return load_text_x(p, text, path, err, false);
}

typedef long (*getter)(const struct moat_policy_spec *p);

static long get_mode(const struct moat_policy_spec *p) { return p->mode; }
static long get_loopback(const struct moat_policy_spec *p) { return p->loopback; }
static long get_n_allow(const struct moat_policy_spec *p) { return (long)p->n_allow; }
static long get_n_deny(const struct moat_policy_spec *p) { return (long)p->n_deny; }
static long get_domains(const struct moat_policy_spec *p) { return (long)policy_domain_rules(p); }
static long get_n_up(const struct moat_policy_spec *p) { return (long)p->dns.n_upstream; }
static long get_min_ttl(const struct moat_policy_spec *p) { return p->dns.min_ttl_s; }
static long get_max_ttl(const struct moat_policy_spec *p) { return p->dns.max_ttl_s; }
static long get_grace(const struct moat_policy_spec *p) { return p->dns.grace_s; }
static long get_max_addr(const struct moat_policy_spec *p) { return p->dns.max_addresses; }
static long get_refuse(const struct moat_policy_spec *p) { return p->dns.refuse; }
static long get_raw(const struct moat_policy_spec *p) { return p->sockets.raw; }
static long get_ping(const struct moat_policy_spec *p) { return p->sockets.ping; }
static long get_other(const struct moat_policy_spec *p) { return p->sockets.other; }
static long get_keep(const struct moat_policy_spec *p) { return p->keep_net_raw; }
static long get_acc_priv(const struct moat_policy_spec *p) { return p->container.accept_privileged; }
static long get_acc_caps(const struct moat_policy_spec *p) { return (long)p->container.accept_caps; }

struct valid_row {
	const char *desc;
	const char *yaml;
	getter get;
	long want;
};

/* Every value a policy file can set, away from policy_init()'s default. */
static void seed_non_default(struct moat_policy_spec *p)
{
	p->mode = MOAT_MODE_AUDIT;
	p->loopback = LOOPBACK_ALLOW;
	p->dns.refuse = DNS_REFUSE_NXDOMAIN;
	p->sockets.raw = SOCKET_ALLOW;
	p->sockets.ping = SOCKET_ALLOW;
	p->sockets.other = SOCKET_ALLOW;
	p->keep_net_raw = 1;
	p->container.accept_privileged = 1;
	p->container.accept_caps = MOAT_CAP_BIT(CAP_SYS_ADMIN) |
				   MOAT_CAP_BIT(CAP_BPF);
}

static const struct valid_row valid[] = {
	{ "empty mapping: enforce", "{}\n", get_mode, MOAT_MODE_ENFORCE },
	{ "default mode", "allow: []\n", get_mode, MOAT_MODE_ENFORCE },
	{ "default loopback", "allow: []\n", get_loopback, LOOPBACK_DEFAULT },
	{ "default min_ttl", "allow: []\n", get_min_ttl, 30 },
	{ "default max_ttl", "allow: []\n", get_max_ttl, 86400 },
	{ "default grace", "allow: []\n", get_grace, 60 },
	{ "default max_addresses", "allow: []\n", get_max_addr, 4096 },
	{ "default refuse", "allow: []\n", get_refuse, DNS_REFUSE_REFUSED },
	{ "default raw", "allow: []\n", get_raw, SOCKET_DENY },
	{ "default ping", "allow: []\n", get_ping, SOCKET_DENY },
	{ "default other", "allow: []\n", get_other, SOCKET_DENY },
	{ "default keep_net_raw", "allow: []\n", get_keep, 0 },
	{ "default no upstreams", "allow: []\n", get_n_up, 0 },
	{ "audit mode", "mode: audit\n", get_mode, MOAT_MODE_AUDIT },
	{ "quoted value with comment", "mode: \"audit\"  # try it first\n",
	  get_mode, MOAT_MODE_AUDIT },
	{ "loopback allow", "loopback: allow\n", get_loopback, LOOPBACK_ALLOW },
	{ "loopback deny", "loopback: deny\n", get_loopback, LOOPBACK_DENY },
	{ "block allow list",
	  "allow:\n  - tcp://198.51.100.0/24:443\n  - udp://192.0.2.53:53\n"
	  "  - '[2001:db8::1]:443'\n", get_n_allow, 3 },
	{ "flow deny list", "deny: [192.0.2.1, \"tcp://[2001:db8::]/32:22\"]\n",
	  get_n_deny, 2 },
	{ "empty lists", "allow: []\ndeny: []\n", get_n_allow, 0 },
	{ "domain rules counted",
	  "allow:\n  - example.com\n  - '*.example.org:443'\n  - 192.0.2.1\n"
	  "deny:\n  - bad.example\n", get_domains, 3 },
	{ "anchor and alias", "allow: &a [192.0.2.1]\ndeny: *a\n", get_n_deny,
	  1 },
	{ "one upstream as a scalar", "dns:\n  upstream: 192.0.2.53\n",
	  get_n_up, 1 },
	{ "upstreams of every form",
	  "dns:\n  upstream: [192.0.2.53, '192.0.2.54:5353', '2001:db8::53',"
	  " '[2001:db8::54]:53']\n", get_n_up, 4 },
	{ "min_ttl 0", "dns:\n  min_ttl: 0\n", get_min_ttl, 0 },
	{ "max_ttl at the u32 limit", "dns:\n  max_ttl: 4294967295\n",
	  get_max_ttl, 4294967295L },
	{ "min_ttl equal to max_ttl", "dns:\n  min_ttl: 5\n  max_ttl: 5\n",
	  get_max_ttl, 5 },
	{ "max_ttl first, min_ttl after", "dns:\n  max_ttl: 10\n  min_ttl: 10\n",
	  get_min_ttl, 10 },
	{ "grace", "dns:\n  grace: 0\n", get_grace, 0 },
	{ "max_addresses", "dns:\n  max_addresses: 100\n", get_max_addr, 100 },
	{ "refuse nxdomain", "dns:\n  refuse: nxdomain\n", get_refuse,
	  DNS_REFUSE_NXDOMAIN },
	{ "raw sockets allowed", "sockets:\n  raw: allow\n", get_raw,
	  SOCKET_ALLOW },
	{ "ping allowed", "sockets: {ping: allow}\n", get_ping, SOCKET_ALLOW },
	{ "other allowed", "sockets: {other: allow}\n", get_other, SOCKET_ALLOW },
	{ "keep_net_raw true", "keep_net_raw: true\n", get_keep, 1 },
	{ "default accept_privileged", "allow: []\n", get_acc_priv, 0 },
	{ "default accept_caps", "allow: []\n", get_acc_caps, 0 },
	{ "accept_privileged true", "container:\n  accept_privileged: true\n",
	  get_acc_priv, 1 },
	{ "accept_privileged leaves caps alone",
	  "container: {accept_privileged: true}\n", get_acc_caps, 0 },
	{ "accept_caps both",
	  "container:\n  accept_caps: [CAP_SYS_ADMIN, CAP_BPF]\n", get_acc_caps,
	  (long)(MOAT_CAP_BIT(CAP_SYS_ADMIN) | MOAT_CAP_BIT(CAP_BPF)) },
	{ "accept_caps as a single value", "container:\n  accept_caps: CAP_BPF\n",
	  get_acc_caps, (long)MOAT_CAP_BIT(CAP_BPF) },
	{ "accept_caps repeated name", "container: {accept_caps: [CAP_BPF, CAP_BPF]}\n",
	  get_acc_caps, (long)MOAT_CAP_BIT(CAP_BPF) },
	{ "empty container mapping", "container: {}\n", get_acc_priv, 0 },
};

ParameterizedTestParameters(policy, valid)
{
	ROW_INDICES(valid);
}

ParameterizedTest(size_t *i, policy, valid)
{
	const struct valid_row *v = &valid[*i];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	char path[64];
	long got;

	cr_assert_eq(load_text(&p, v->yaml, path, &err), 0, "%s: %s", v->desc,
		     err.msg);
	got = v->get(&p);
	cr_expect_eq(got, v->want, "%s: got %ld, want %ld", v->desc, got,
		     v->want);
	cr_expect_str_eq(p.name, path + strlen("/tmp/"), "%s: name '%s'",
			 v->desc, p.name);
	cr_expect_str_eq(p.source, path, "%s: source '%s'", v->desc, p.source);
	policy_free(&p);
}

/*
 * Keys set to their default value, loaded over a spec in which every key
 * holds a non-default value (seed_non_default): a key that is parsed and
 * ignored leaves the seed, and the row fails.
 */
static const struct valid_row explicit_default[] = {
	{ "enforce mode", "mode: enforce\n", get_mode, MOAT_MODE_ENFORCE },
	{ "loopback default", "loopback: default\n", get_loopback,
	  LOOPBACK_DEFAULT },
	{ "refuse refused", "dns:\n  refuse: refused\n", get_refuse,
	  DNS_REFUSE_REFUSED },
	{ "ping denied", "sockets:\n  ping: deny\n", get_ping, SOCKET_DENY },
	{ "other denied", "sockets:\n  other: deny\n", get_other, SOCKET_DENY },
	{ "raw denied", "sockets:\n  raw: deny\n", get_raw, SOCKET_DENY },
	{ "keep_net_raw false", "keep_net_raw: false\n", get_keep, 0 },
	{ "accept_privileged false", "container: {accept_privileged: false}\n",
	  get_acc_priv, 0 },
	{ "accept_caps empty", "container: {accept_caps: []}\n", get_acc_caps, 0 },
};

ParameterizedTestParameters(policy, explicit_default)
{
	ROW_INDICES(explicit_default);
}

ParameterizedTest(size_t *i, policy, explicit_default)
{
	const struct valid_row *v = &explicit_default[*i];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	char path[64];
	long got;

	cr_assert_eq(load_text_x(&p, v->yaml, path, &err, true), 0, "%s: %s",
		     v->desc, err.msg);
	got = v->get(&p);
	cr_expect_eq(got, v->want, "%s: got %ld, want %ld (the seed was left)",
		     v->desc, got, v->want);
	policy_free(&p);
}

struct invalid_row {
	const char *desc;
	const char *yaml;
	int line, col;
	const char *msg;
};

static const struct invalid_row invalid[] = {
	{ "unknown key", "mode: audit\nbogus: 1\n", 2, 1,
	  "unknown key 'bogus' (known: mode, allow, deny, loopback, dns" },
	{ "unknown key in dns", "dns:\n  min_ttl: 5\n  ttl: 3\n", 3, 3,
	  "unknown key 'ttl' in dns" },
	{ "unknown key in sockets", "sockets:\n  packet: allow\n", 2, 3,
	  "unknown key 'packet' in sockets (known: raw, ping, other)" },
	{ "bad mode", "mode: strict\n", 1, 7,
	  "mode must be enforce or audit, not 'strict'" },
	{ "bad rule in allow list on line 4",
	  "mode: audit\nallow:\n  - 198.51.100.0/24\n  - 198.51.100.1/24\n",
	  4, 5, "rule '198.51.100.1/24': host bits are set beyond /24; did you mean '198.51.100.0/24'?" },
	{ "bad rule in flow deny list", "deny: [192.0.2.1, 'tcp://x:0']\n", 1,
	  19, "rule 'tcp://x:0': port 0" },
	{ "duplicate key", "allow: []\nmode: audit\nallow: []\n", 3, 1,
	  "duplicate key 'allow' (first given on line 1)" },
	{ "duplicate key in sockets", "sockets:\n  raw: allow\n  raw: deny\n",
	  3, 3, "duplicate key 'raw'" },
	{ "allow as a scalar", "allow: 192.0.2.1\n", 1, 8,
	  "allow must be a list of rules, not a single value" },
	{ "mode as a list", "mode: [audit]\n", 1, 7,
	  "mode must be a word, not a list" },
	{ "dns as a list", "dns: [192.0.2.53]\n", 1, 6,
	  "dns must be a mapping of settings, not a list" },
	{ "min_ttl as a mapping", "dns:\n  min_ttl: {a: 1}\n", 2, 12,
	  "dns.min_ttl must be a number, not a mapping" },
	{ "allow entry as a mapping", "allow:\n  - host: a\n", 2, 5,
	  "each allow entry must be a rule, not a mapping" },
	{ "unquoted IPv6 rule", "allow:\n  - [2001:db8::1]\n", 2, 5,
	  "quote rules that start with '[' or '*'" },
	{ "unquoted wildcard rule", "allow:\n  - *.example.com\n", 2, 6,
	  "YAML syntax error" },
	{ "unclosed flow list", "mode: audit\nallow: [192.0.2.1\n", 3, 1,
	  "YAML syntax error" },
	{ "root is a list", "- 192.0.2.1\n", 1, 1,
	  "the top level must be a mapping of settings, not a list" },
	{ "root is a scalar", "hello\n", 1, 1,
	  "the top level must be a mapping" },
	{ "empty file", "", 1, 1, "empty policy file" },
	{ "only comments", "# nothing yet\n", 1, 1, "empty policy file" },
	{ "two documents", "mode: audit\n---\nmode: enforce\n", 3, 1,
	  "only one YAML document" },
	{ "key that is a list", "[a]: 1\n", 1, 1, "a key must be a word" },
	{ "negative ttl", "dns:\n  min_ttl: -5\n", 2, 12,
	  "dns.min_ttl must be a whole number from 0 to 4294967295, not '-5'" },
	{ "ttl past u32", "dns:\n  max_ttl: 4294967296\n", 2, 12,
	  "not '4294967296'" },
	{ "hex grace", "dns:\n  grace: 0x10\n", 2, 10,
	  "dns.grace must be a whole number" },
	{ "float max_addresses", "dns:\n  max_addresses: 1e3\n", 2, 18,
	  "dns.max_addresses must be a whole number" },
	{ "quoted empty number", "dns:\n  grace: ''\n", 2, 10,
	  "dns.grace must be a whole number" },
	{ "min_ttl above max_ttl", "dns:\n  min_ttl: 100\n  max_ttl: 10\n", 2,
	  3, "dns.min_ttl (100) must not exceed dns.max_ttl (10)" },
	{ "min_ttl above default max_ttl", "dns:\n  min_ttl: 90000\n", 2, 3,
	  "must not exceed dns.max_ttl (86400)" },
	{ "upstream name", "dns:\n  upstream: dns.example\n", 2, 13,
	  "dns.upstream 'dns.example' is not IP, IPv4:PORT or [IPv6]:PORT" },
	{ "upstream port 0", "dns:\n  upstream: '192.0.2.53:0'\n", 2, 13,
	  "is not IP" },
	{ "upstream port too big", "dns:\n  upstream: '192.0.2.53:65536'\n",
	  2, 13, "is not IP" },
	{ "upstream bad bracket", "dns:\n  upstream: '[2001:db8::1]53'\n", 2,
	  13, "is not IP" },
	{ "upstream IPv4 in brackets", "dns:\n  upstream: '[192.0.2.1]:53'\n",
	  2, 13, "is not IP" },
	{ "too many upstreams",
	  "dns:\n  upstream: [192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4, 192.0.2.5]\n",
	  2, 58, "dns.upstream lists more than 4 servers" },
	{ "upstream list of lists", "dns:\n  upstream: [[192.0.2.1]]\n", 2, 14,
	  "dns.upstream must be an address, not a list" },
	{ "bad refuse", "dns:\n  refuse: drop\n", 2, 11,
	  "dns.refuse must be refused or nxdomain, not 'drop'" },
	{ "bad ping", "sockets:\n  ping: maybe\n", 2, 9,
	  "sockets.ping must be allow or deny, not 'maybe'" },
	{ "sockets as a scalar", "sockets: allow\n", 1, 10,
	  "sockets must be a mapping" },
	{ "keep_net_raw yes", "keep_net_raw: yes\n", 1, 15,
	  "keep_net_raw must be true or false, not 'yes'" },
	{ "bad loopback", "loopback: maybe\n", 1, 11,
	  "loopback must be allow, deny or default, not 'maybe'" },
	{ "NUL inside a rule", "allow: [\"a\\0b\"]\n", 1, 9,
	  "allow contains a NUL character" },
	{ "newline inside a rule", "allow: [\"a\\nb\"]\n", 1, 9,
	  "rule 'a?b': contains whitespace" },
	{ "container as a scalar", "container: true\n", 1, 12,
	  "container must be a mapping of settings, not a single value" },
	{ "unknown key in container", "container:\n  privileged: true\n", 2, 3,
	  "unknown key 'privileged' in container (known: accept_privileged, accept_caps)" },
	{ "accept_privileged yes", "container:\n  accept_privileged: yes\n", 2,
	  22, "container.accept_privileged must be true or false, not 'yes'" },
	{ "unknown capability", "container:\n  accept_caps: [CAP_FOO]\n", 2, 17,
	  "container.accept_caps 'CAP_FOO' is not a capability" },
	{ "capability without CAP_", "container:\n  accept_caps: [SYS_ADMIN]\n", 2,
	  17, "container.accept_caps 'SYS_ADMIN' is not a capability name; did you mean 'CAP_SYS_ADMIN'?" },
	{ "capability in lower case", "container:\n  accept_caps: [cap_bpf]\n", 2,
	  17, "did you mean 'CAP_BPF'?" },
	{ "capability never refused",
	  "container:\n  accept_caps: [CAP_SYS_ADMIN, CAP_NET_ADMIN]\n", 2, 32,
	  "container.accept_caps: CAP_NET_ADMIN is never refused (only CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_ADMIN, CAP_BPF need accepting)" },
	{ "CAP_NET_RAW points at keep_net_raw",
	  "container:\n  accept_caps: [CAP_NET_RAW]\n", 2, 17,
	  "CAP_NET_RAW is dropped, not refused; keep it with keep_net_raw: true" },
	{ "accept_caps as a mapping", "container:\n  accept_caps: {CAP_BPF: 1}\n",
	  2, 16, "container.accept_caps must be a capability name, not a mapping" },
	{ "accept_caps list of lists", "container:\n  accept_caps: [[CAP_BPF]]\n",
	  2, 17, "container.accept_caps must be a capability name, not a list" },
	{ "duplicate key in container",
	  "container:\n  accept_caps: []\n  accept_caps: [CAP_BPF]\n", 3, 3,
	  "duplicate key 'accept_caps' (first given on line 2)" },
};

ParameterizedTestParameters(policy, invalid)
{
	ROW_INDICES(invalid);
}

ParameterizedTest(size_t *i, policy, invalid)
{
	const struct invalid_row *v = &invalid[*i];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	char path[64], where[128];
	int ret;

	ret = load_text(&p, v->yaml, path, &err);
	cr_expect_eq(ret, -EINVAL, "%s: returned %d (%s)", v->desc, ret,
		     err.msg);
	snprintf(where, sizeof(where), "%s:%d:%d: ", path, v->line, v->col);
	cr_expect(!strncmp(err.msg, where, strlen(where)),
		  "%s: message '%s' does not start with '%s'", v->desc,
		  err.msg, where);
	cr_expect(strstr(err.msg, v->msg), "%s: message '%s' lacks '%s'",
		  v->desc, err.msg, v->msg);
	cr_expect(!strchr(err.msg, '\n'), "%s: multi-line message", v->desc);
	/* A failed load must still be freeable; the caller discards it. */
	policy_free(&p);
	cr_expect_null(p.allow);
	cr_expect_eq(p.n_allow, 0);
}

Test(policy, rules_are_parsed_in_order)
{
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	char path[64], buf[MOAT_RULE_TEXT_LEN];

	cr_assert_eq(load_text(&p, "allow:\n  - TCP://198.51.100.0/24:443\n"
			       "  - '*.Example.org'\ndeny:\n  - udp://192.0.2.1:53\n",
			       path, &err), 0, "%s", err.msg);
	cr_assert_eq(p.n_allow, 2);
	cr_assert_eq(p.n_deny, 1);
	rule_format(&p.allow[0], buf, sizeof(buf));
	cr_expect_str_eq(buf, "tcp://198.51.100.0/24:443");
	rule_format(&p.allow[1], buf, sizeof(buf));
	cr_expect_str_eq(buf, "*.example.org");
	rule_format(&p.deny[0], buf, sizeof(buf));
	cr_expect_str_eq(buf, "udp://192.0.2.1:53");
	policy_free(&p);
}

Test(policy, upstreams_kept_as_written)
{
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	char path[64];

	cr_assert_eq(load_text(&p, "dns:\n  upstream: ['[2001:db8::54]:53', 192.0.2.9]\n",
			       path, &err), 0, "%s", err.msg);
	cr_assert_eq(p.dns.n_upstream, 2);
	cr_expect_str_eq(p.dns.upstream[0], "[2001:db8::54]:53");
	cr_expect_str_eq(p.dns.upstream[1], "192.0.2.9");
	policy_free(&p);
}

/* A directory with one policy, "web.yaml", for the name/path tests. */
static char dir[64];

static void make_dir(void)
{
	char path[128];

	strcpy(dir, "/tmp/moat-policies-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/web.yaml", dir);
	write_file(path, "mode: audit\nallow: [192.0.2.1]\n");
	snprintf(path, sizeof(path), "%s/sub.yaml", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
}

static void remove_dir(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/web.yaml", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub.yaml", dir);
	rmdir(path);
	rmdir(dir);
}

struct load_row {
	const char *desc;
	const char *arg;	/* "%s" is replaced by the directory */
	int ret;
	const char *want;	/* name on success, message part on failure */
};

static const struct load_row loads[] = {
	{ "name in the policy directory", "web", 0, "web" },
	{ "absolute path", "%s/web.yaml", 0, "web" },
	{ "path with a dot segment", "%s/./web.yaml", 0, "web" },
	{ "missing name names the path", "nope", -ENOENT,
	  "%s/nope.yaml: no such policy file" },
	{ "missing path", "%s/nope.yaml", -ENOENT,
	  "%s/nope.yaml: no such policy file" },
	{ "relative .yaml is a path, not a name", "web.yaml", -ENOENT,
	  "web.yaml: no such policy file" },
	{ "directory is not a policy", "%s/sub.yaml", -EINVAL,
	  "%s/sub.yaml: not a regular file" },
	{ "47-character name is allowed",
	  "a23456789012345678901234567890123456789012345ab", -ENOENT,
	  "no such policy file" },
	{ "48-character name is too long",
	  "a23456789012345678901234567890123456789012345abc", -EINVAL,
	  "must be 1-47 characters" },
	{ "space in name", "bad name", -EINVAL,
	  "--policy: policy name 'bad name' must be" },
	{ "shell character in name", "web;rm", -EINVAL, "policy name 'web;rm'" },
	{ "empty name", "", -EINVAL, "policy name ''" },
	{ "bad name from a file name", "%s/bad name.yaml", -EINVAL,
	  "policy name 'bad name'" },
};

ParameterizedTestParameters(policy, load)
{
	ROW_INDICES(loads);
}

ParameterizedTest(size_t *i, policy, load, .init = make_dir,
		  .fini = remove_dir)
{
	const struct load_row *v = &loads[*i];
	char arg[256], want[256];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	int ret;

	snprintf(arg, sizeof(arg), v->arg, dir);
	snprintf(want, sizeof(want), v->want, dir);
	policy_init(&p);
	ret = policy_load(&p, arg, dir, &err);
	cr_expect_eq(ret, v->ret, "%s: returned %d (%s)", v->desc, ret,
		     err.msg);
	if (v->ret == 0) {
		cr_expect_str_eq(p.name, want, "%s: name '%s'", v->desc,
				 p.name);
		cr_expect_eq(p.mode, MOAT_MODE_AUDIT, "%s: not loaded", v->desc);
		cr_expect_eq(p.n_allow, 1, "%s: not loaded", v->desc);
	} else {
		cr_expect(strstr(err.msg, want), "%s: message '%s' lacks '%s'",
			  v->desc, err.msg, want);
	}
	policy_free(&p);
}

Test(policy, file_name_suffix_dropped)
{
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	char path[64];
	int fd;

	strcpy(path, "/tmp/moat-web-XXXXXX.yaml");
	fd = mkstemps(path, 5);
	cr_assert(fd >= 0);
	close(fd);
	write_file(path, "mode: audit\n");
	policy_init(&p);
	cr_assert_eq(policy_load(&p, path, "/nonexistent", &err), 0, "%s",
		     err.msg);
	unlink(path);
	path[strlen(path) - 5] = '\0';
	cr_expect_str_eq(p.name, path + strlen("/tmp/"));
	policy_free(&p);
}

Test(policy, init_defaults_name_command_line)
{
	struct moat_policy_spec p;

	policy_init(&p);
	cr_expect_str_eq(p.name, "cli");
	cr_expect_str_eq(p.source, "command line");
	cr_expect_eq(p.mode, MOAT_MODE_ENFORCE);
	cr_expect_null(p.allow);
	cr_expect_null(p.deny);
	policy_free(&p);
}

struct cli_row {
	const char *desc;
	int deny;
	const char *rule;
	const char *msg;	/* NULL: must be accepted */
};

static const struct cli_row cli[] = {
	{ "allow prefix", 0, "tcp://198.51.100.0/24:443", NULL },
	{ "deny host", 1, "192.0.2.1", NULL },
	{ "allow domain", 0, "example.com", NULL },
	{ "allow with bad port", 0, "192.0.2.1:0",
	  "--allow: rule '192.0.2.1:0': port 0 is not allowed" },
	{ "deny with host bits", 1, "192.0.2.1/24",
	  "--deny: rule '192.0.2.1/24': host bits" },
};

ParameterizedTestParameters(policy, add_rule)
{
	ROW_INDICES(cli);
}

ParameterizedTest(size_t *i, policy, add_rule)
{
	const struct cli_row *v = &cli[*i];
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	size_t *n;
	int ret;

	policy_init(&p);
	n = v->deny ? &p.n_deny : &p.n_allow;
	ret = policy_add_rule(&p, v->deny, v->rule, &err);
	if (v->msg) {
		cr_expect_eq(ret, -EINVAL, "%s: accepted", v->desc);
		cr_expect_eq(*n, 0, "%s: rule kept", v->desc);
		cr_expect(strstr(err.msg, v->msg), "%s: message '%s' lacks '%s'",
			  v->desc, err.msg, v->msg);
	} else {
		cr_expect_eq(ret, 0, "%s: %s", v->desc, err.msg);
		cr_expect_eq(*n, 1, "%s: rule not added", v->desc);
	}
	policy_free(&p);
}

Test(policy, cli_rules_append_and_count_domains)
{
	static const char *const rules[] = {
		"192.0.2.1", "example.com", "*.example.org:443", "[2001:db8::1]",
	};
	struct moat_err err = { "" };
	struct moat_policy_spec p;
	size_t i;

	policy_init(&p);
	for (i = 0; i < ARRAY_SIZE(rules); i++)
		cr_assert_eq(policy_add_rule(&p, 0, rules[i], &err), 0, "%s",
			     err.msg);
	cr_assert_eq(policy_add_rule(&p, 1, "bad.example", &err), 0);
	cr_expect_eq(p.n_allow, 4);
	cr_expect_eq(p.n_deny, 1);
	cr_expect_eq(policy_domain_rules(&p), 3);
	cr_expect_str_eq(p.allow[3].text, "[2001:db8::1]");
	policy_free(&p);
	cr_expect_eq(policy_domain_rules(&p), 0);
}
