// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rule_parse() / rule_format(): one parameterised test per table row.
 * Criterion may run each test in a fresh process image, so parameters are
 * row indices, never pointers into this one.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"

#include "table.h"

#define L61 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define L62 L61 "b"
#define L63 L62 "c"
#define L64 L63 "d"
#define NAME253 L63 "." L63 "." L63 "." L61
#define NAME254 L63 "." L63 "." L63 "." L62

struct valid_row {
	const char *desc;
	const char *in;
	enum rule_kind kind;
	__u8 protos;
	__u8 prefixlen;
	__u16 first, last;
	const char *target;	/* address for inet_pton, or the domain */
	const char *canonical;	/* what rule_format() must print */
};

#define ALL MOAT_PROTO_ALL
#define TCP MOAT_PROTO_TCP
#define UDP MOAT_PROTO_UDP

static const struct valid_row valid[] = {
	{ "bare IPv4 host", "198.51.100.7", RULE_ADDR4, ALL, 32, 0, 65535,
	  "198.51.100.7", "198.51.100.7" },
	{ "IPv4 prefix with tcp and port", "tcp://198.51.100.0/24:443",
	  RULE_ADDR4, TCP, 24, 443, 443, "198.51.100.0",
	  "tcp://198.51.100.0/24:443" },
	{ "udp port range", "udp://203.0.113.9:1000-2000", RULE_ADDR4, UDP,
	  32, 1000, 2000, "203.0.113.9", "udp://203.0.113.9:1000-2000" },
	{ "IPv4 /0", "0.0.0.0/0", RULE_ADDR4, ALL, 0, 0, 65535, "0.0.0.0",
	  "0.0.0.0/0" },
	{ "explicit /32 is canonicalised away", "192.0.2.1/32:22", RULE_ADDR4,
	  ALL, 32, 22, 22, "192.0.2.1", "192.0.2.1:22" },
	{ "single-port range collapses", "192.0.2.1:80-80", RULE_ADDR4, ALL,
	  32, 80, 80, "192.0.2.1", "192.0.2.1:80" },
	{ "widest explicit range", "192.0.2.1:1-65535", RULE_ADDR4, ALL, 32,
	  1, 65535, "192.0.2.1", "192.0.2.1:1-65535" },
	{ "IPv6 host in brackets", "[2001:db8::1]", RULE_ADDR6, ALL, 128, 0,
	  65535, "2001:db8::1", "[2001:db8::1]" },
	{ "IPv6 prefix, upper case, port", "tcp://[2001:DB8::]/32:443",
	  RULE_ADDR6, TCP, 32, 443, 443, "2001:db8::",
	  "tcp://[2001:db8::]/32:443" },
	{ "uncompressed IPv6 is compressed",
	  "[2001:0db8:0000:0000:0000:0000:0000:0001]:53", RULE_ADDR6, ALL, 128,
	  53, 53, "2001:db8::1", "[2001:db8::1]:53" },
	{ "IPv6 /0 stays IPv6", "[::]/0", RULE_ADDR6, ALL, 0, 0, 65535, "::",
	  "[::]/0" },
	{ "v4-mapped /120 becomes IPv4 /24", "[::ffff:198.51.100.0]/120:443",
	  RULE_ADDR4, ALL, 24, 443, 443, "198.51.100.0", "198.51.100.0/24:443" },
	{ "v4-mapped host in hex becomes IPv4 /32", "udp://[::ffff:c633:6407]",
	  RULE_ADDR4, UDP, 32, 0, 65535, "198.51.100.7",
	  "udp://198.51.100.7" },
	{ "v4-mapped /96 is all of IPv4", "[::ffff:0:0]/96", RULE_ADDR4, ALL, 0,
	  0, 65535, "0.0.0.0", "0.0.0.0/0" },
	{ "domain lowercased, trailing dot dropped", "API.Example.COM.",
	  RULE_DOMAIN, ALL, 0, 0, 65535, "api.example.com", "api.example.com" },
	{ "wildcard with udp port", "udp://*.Example.org:53", RULE_WILDCARD,
	  UDP, 0, 53, 53, "example.org", "udp://*.example.org:53" },
	{ "underscore and hyphen labels", "_dmarc.my-host.example",
	  RULE_DOMAIN, ALL, 0, 0, 65535, "_dmarc.my-host.example",
	  "_dmarc.my-host.example" },
	{ "scheme is case-insensitive", "TCP://example.com:80", RULE_DOMAIN,
	  TCP, 0, 80, 80, "example.com", "tcp://example.com:80" },
	{ "63-character label", L63 ".example", RULE_DOMAIN, ALL, 0, 0, 65535,
	  L63 ".example", L63 ".example" },
	{ "253-character name", NAME253, RULE_DOMAIN, ALL, 0, 0, 65535,
	  NAME253, NAME253 },
	{ "single-label domain", "localhost", RULE_DOMAIN, ALL, 0, 0, 65535,
	  "localhost", "localhost" },
};

struct invalid_row {
	const char *desc;
	const char *in;
	const char *msg;	/* substring the error must contain */
};

static const struct invalid_row invalid[] = {
	{ "empty", "", "empty rule" },
	{ "host bits set", "198.51.100.1/24",
	  "host bits are set beyond /24; did you mean '198.51.100.0/24'?" },
	{ "host bits suggestion keeps scheme and port",
	  "tcp://198.51.100.1/24:443", "did you mean 'tcp://198.51.100.0/24:443'" },
	{ "IPv6 host bits set", "[2001:db8::1]/32", "did you mean '[2001:db8::]/32'" },
	{ "v4-mapped host bits set", "[::ffff:1.2.3.4]/104", "host bits are set" },
	{ "port 0", "192.0.2.1:0", "port 0 is not allowed" },
	{ "port 0 starting a range", "192.0.2.1:0-80", "port 0 is not allowed" },
	{ "reversed range", "192.0.2.1:443-80", "port range 443-80 is reversed" },
	{ "port above 65535", "192.0.2.1:65536", "port 65536 is out of range" },
	{ "huge port", "192.0.2.1:99999999999999999999", "out of range" },
	{ "range end above 65535", "192.0.2.1:1-70000", "port 70000 is out of range" },
	{ "missing port", "192.0.2.1:", "missing port after ':'" },
	{ "named port", "192.0.2.1:http", "invalid port 'http'" },
	{ "open-ended range", "192.0.2.1:80-", "invalid port ''" },
	{ "signed port", "192.0.2.1:+80", "invalid port '+80'" },
	{ "unknown scheme", "http://example.com", "unknown scheme 'http://'" },
	{ "empty scheme", "://192.0.2.1", "unknown scheme '://'" },
	{ "IPv6 without brackets", "2001:db8::1", "must be in brackets" },
	{ "IPv6 prefix without brackets", "2001:db8::/32", "must be in brackets" },
	{ "IPv6 loopback without brackets", "::1", "must be in brackets" },
	{ "unclosed bracket", "[2001:db8::1", "missing ']'" },
	{ "junk after bracket", "[2001:db8::1]x", "unexpected 'x' after ']'" },
	{ "IPv4 in brackets", "[192.0.2.1]", "invalid IPv6 address '192.0.2.1'" },
	{ "bad IPv6", "[2001:db8::g]", "invalid IPv6 address" },
	{ "IPv4 octet too big", "256.1.1.1", "invalid IPv4 address '256.1.1.1'" },
	{ "IPv4 too short", "1.2.3", "invalid IPv4 address '1.2.3'" },
	{ "IPv4 prefix too long", "192.0.2.0/33", "invalid prefix length '/33'" },
	{ "IPv6 prefix too long", "[::]/129", "invalid prefix length '/129'" },
	{ "empty prefix", "192.0.2.0/", "invalid prefix length '/'" },
	{ "non-numeric prefix", "192.0.2.0/abc", "invalid prefix length" },
	{ "prefix on a domain", "example.com/24", "only applies to addresses" },
	{ "space inside", "exa mple.com", "whitespace" },
	{ "empty label", "foo..com", "empty label" },
	{ "leading hyphen", "-foo.com", "starts or ends with '-'" },
	{ "trailing hyphen", "foo-.com", "starts or ends with '-'" },
	{ "bad character", "foo!.com", "invalid character '!'" },
	{ "64-character label", L64 ".example", "longer than 63 characters" },
	{ "254-character name", NAME254, "longer than 253 characters" },
	{ "bare star", "*", "'*' is only allowed as the whole first label" },
	{ "star in the middle", "foo.*.com", "'*' is only allowed" },
	{ "star inside a label", "*foo.com", "'*' is only allowed" },
	{ "two stars", "*.*.com", "'*' is only allowed" },
	{ "wildcard of nothing", "*.", "empty domain name" },
	{ "scheme only", "tcp://", "missing address or domain" },
	{ "port only", ":443", "missing address or domain" },
	{ "too long", NAME253 NAME254, "longer than 299 characters" },
};

static void expect_addr(const struct valid_row *v, const struct moat_rule *r)
{
	int family = v->kind == RULE_ADDR6 ? AF_INET6 : AF_INET;
	__u8 want[16] = { 0 };

	cr_assert_eq(inet_pton(family, v->target, want), 1, "%s: bad row",
		     v->desc);
	cr_expect_arr_eq(r->addr, want, sizeof(want), "%s: address differs",
			 v->desc);
}

static void expect_rule(const struct valid_row *v, const struct moat_rule *r)
{
	cr_expect_eq(r->kind, v->kind, "%s: kind %d, want %d", v->desc,
		     r->kind, v->kind);
	cr_expect_eq(r->protos, v->protos, "%s: protos %u, want %u", v->desc,
		     r->protos, v->protos);
	cr_expect_eq(r->port_first, v->first, "%s: first port %u, want %u",
		     v->desc, r->port_first, v->first);
	cr_expect_eq(r->port_last, v->last, "%s: last port %u, want %u",
		     v->desc, r->port_last, v->last);
	if (v->kind == RULE_ADDR4 || v->kind == RULE_ADDR6) {
		cr_expect_eq(r->prefixlen, v->prefixlen, "%s: /%u, want /%u",
			     v->desc, r->prefixlen, v->prefixlen);
		expect_addr(v, r);
	} else {
		cr_expect_str_eq(r->domain, v->target, "%s: domain '%s'",
				 v->desc, r->domain);
	}
}

ParameterizedTestParameters(rule, valid)
{
	ROW_INDICES(valid);
}

ParameterizedTest(size_t *i, rule, valid)
{
	const struct valid_row *v = &valid[*i];
	struct moat_err err = { "" };
	char buf[MOAT_RULE_TEXT_LEN];
	struct moat_rule r;

	cr_assert_eq(rule_parse(v->in, "test", &r, &err), 0, "%s: %s",
		     v->desc, err.msg);
	expect_rule(v, &r);
	cr_expect_str_eq(r.text, v->in, "%s: text not kept", v->desc);
	rule_format(&r, buf, sizeof(buf));
	cr_expect_str_eq(buf, v->canonical, "%s: formatted as '%s'", v->desc,
			 buf);
}

ParameterizedTestParameters(rule, canonical_round_trip)
{
	ROW_INDICES(valid);
}

/* The canonical form must parse back to the same rule. */
ParameterizedTest(size_t *i, rule, canonical_round_trip)
{
	const struct valid_row *v = &valid[*i];
	struct moat_err err = { "" };
	struct moat_rule r;

	cr_assert_eq(rule_parse(v->canonical, "test", &r, &err), 0, "%s: %s",
		     v->desc, err.msg);
	expect_rule(v, &r);
}

ParameterizedTestParameters(rule, invalid)
{
	ROW_INDICES(invalid);
}

ParameterizedTest(size_t *i, rule, invalid)
{
	const struct invalid_row *v = &invalid[*i];
	struct moat_err err = { "" };
	char prefix[MOAT_ERR_LEN];
	struct moat_rule r;

	cr_assert_eq(rule_parse(v->in, "here:3:5", &r, &err), -EINVAL,
		     "%s: '%s' accepted", v->desc, v->in);
	cr_expect(strstr(err.msg, v->msg), "%s: message '%s' lacks '%s'",
		  v->desc, err.msg, v->msg);
	cr_expect(!strchr(err.msg, '\n'), "%s: multi-line message", v->desc);
	if (strlen(v->in) >= MOAT_RULE_TEXT_LEN)
		return;
	snprintf(prefix, sizeof(prefix), "here:3:5: rule '%s': ", v->in);
	cr_expect(!strncmp(err.msg, prefix, strlen(prefix)),
		  "%s: message '%s' does not start with '%s'", v->desc,
		  err.msg, prefix);
}

Test(rule, control_characters_stay_on_one_line)
{
	struct moat_err err = { "" };
	struct moat_rule r;

	cr_assert_eq(rule_parse("a\nb.com", "w", &r, &err), -EINVAL);
	cr_expect_str_eq(err.msg,
			 "w: rule 'a?b.com': contains whitespace or control characters");
}

Test(rule, null_text_is_empty)
{
	struct moat_err err = { "" };
	struct moat_rule r;

	cr_assert_eq(rule_parse(NULL, "w", &r, &err), -EINVAL);
	cr_expect_str_eq(err.msg, "w: rule '': empty rule");
}

struct prefix_row {
	const char *desc;
	int family;
	const char *addr;
	unsigned int len;
	const char *want;
};

static const struct prefix_row prefixes[] = {
	{ "IPv4 host", AF_INET, "192.0.2.1", 32, "192.0.2.1" },
	{ "IPv4 prefix", AF_INET, "192.0.2.0", 24, "192.0.2.0/24" },
	{ "IPv6 host", AF_INET6, "fd00:ec2::254", 128, "[fd00:ec2::254]" },
	{ "IPv6 prefix", AF_INET6, "2001:db8::", 32, "[2001:db8::]/32" },
};

ParameterizedTestParameters(rule, prefix_format)
{
	ROW_INDICES(prefixes);
}

ParameterizedTest(size_t *i, rule, prefix_format)
{
	const struct prefix_row *v = &prefixes[*i];
	__u8 addr[16] = { 0 };
	char buf[64];

	cr_assert_eq(inet_pton(v->family, v->addr, addr), 1);
	rule_prefix_format(v->family, addr, v->len, buf, sizeof(buf));
	cr_expect_str_eq(buf, v->want, "%s: '%s'", v->desc, buf);
}
