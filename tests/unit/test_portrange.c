// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The port-range union (user/portrange.c) in both of its modes, against a
 * port-by-port reference; and the compiler's use of it with many rules:
 * every entry must hold exactly the union of the rules covering it, and
 * a large rule set must compile in time that grows like n log n.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "policy.h"
#include "portrange.h"

#include "table.h"

#define NA MOAT_PROTO_NAMES_ANY

/* "tcp:1-5 udp:3 all:7 tcp+any:443" to ranges; returns the count. */
static size_t parse(const char *text, struct moat_port_range *out)
{
	char buf[256], *tok, *save = NULL;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		unsigned int first, last;
		char proto[16];
		int got;

		got = sscanf(tok, "%15[a-z+]:%u-%u", proto, &first, &last);
		cr_assert(got >= 2, "bad range %s", tok);
		if (got == 2)
			last = first;
		out[n].first = (__u16)first;
		out[n].last = (__u16)last;
		out[n].protos = !strncmp(proto, "tcp", 3) ? MOAT_PROTO_TCP :
				!strncmp(proto, "udp", 3) ? MOAT_PROTO_UDP :
							   MOAT_PROTO_ALL;
		if (strstr(proto, "+any"))
			out[n].protos |= NA;
		n++;
	}
	return n;
}

static void render(const struct moat_port_range *r, size_t n, char *buf,
		   size_t len)
{
	static const char *const proto[] = { "?", "tcp", "udp", "all" };
	size_t used = 0, i;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		used += (size_t)snprintf(buf + used, len - used, "%s%s%s:%u",
					 i ? " " : "", proto[r[i].protos & 3],
					 r[i].protos & NA ? "+any" : "",
					 r[i].first);
		if (r[i].last != r[i].first)
			used += (size_t)snprintf(buf + used, len - used, "-%u",
						 r[i].last);
	}
}

struct union_row {
	const char *desc;
	enum portrange_mode mode;
	const char *in;
	const char *out;
};

static const struct union_row rows[] = {
	{ "nothing", PORTRANGE_PER_PROTO, "", "" },
	{ "overlap merges", PORTRANGE_PER_PROTO, "tcp:10-20 tcp:15-30", "tcp:10-30" },
	{ "touching merges", PORTRANGE_PER_PROTO, "tcp:10-20 tcp:21-30", "tcp:10-30" },
	{ "a gap stays", PORTRANGE_PER_PROTO, "tcp:10-20 tcp:22-30", "tcp:10-20 tcp:22-30" },
	{ "port order", PORTRANGE_PER_PROTO, "udp:53 tcp:443 tcp:80", "udp:53 tcp:80 tcp:443" },
	{ "same span both protocols fuse", PORTRANGE_PER_PROTO, "tcp:443 udp:443", "all:443" },
	{ "all split where protocols differ", PORTRANGE_PER_PROTO, "all:1-10 tcp:5-20", "udp:1-10 tcp:1-20" },
	{ "inside one span", PORTRANGE_PER_PROTO, "all:1-65535 tcp:80 udp:53", "all:1-65535" },
	{ "last port", PORTRANGE_PER_PROTO, "tcp:65535 tcp:65534 udp:65535", "tcp:65534-65535 udp:65535" },
	{ "three overlapping into one", PORTRANGE_PER_PROTO, "all:1 all:2-3 all:3-9 all:10", "all:1-10" },
	{ "mask: same mask merges", PORTRANGE_PER_MASK, "tcp:10-20 tcp:21-30", "tcp:10-30" },
	{ "mask: covered by a superset mask", PORTRANGE_PER_MASK, "all:1-100 tcp:80", "all:1-100" },
	{ "mask: not a superset, kept", PORTRANGE_PER_MASK, "tcp:1-100 all:80", "tcp:1-100 all:80" },
	{ "mask: names=any covers plain", PORTRANGE_PER_MASK, "tcp+any:443 tcp:443", "tcp+any:443" },
	{ "mask: plain never takes names=any", PORTRANGE_PER_MASK, "tcp:1-1000 tcp+any:443", "tcp:1-1000 tcp+any:443" },
	{ "mask: names=any does not spread", PORTRANGE_PER_MASK, "tcp+any:443 tcp:444", "tcp+any:443 tcp:444" },
	{ "mask: tcp and udp stay apart", PORTRANGE_PER_MASK, "tcp:53 udp:53", "tcp:53 udp:53" },
	{ "mask: a new range joins two", PORTRANGE_PER_MASK, "tcp:1-10 tcp:20-30 tcp:11-19", "tcp:1-30" },
};

ParameterizedTestParameters(portrange, union_rows)
{
	ROW_INDICES(rows);
}

ParameterizedTest(size_t *i, portrange, union_rows)
{
	const struct union_row *r = &rows[*i];
	struct moat_port_range in[16], out[16];
	char got[512];
	size_t n, need;

	n = parse(r->in, in);
	need = portrange_union(in, n, r->mode, out, 16);
	cr_assert_leq(need, 16, "%s", r->desc);
	render(out, need, got, sizeof(got));
	cr_assert_str_eq(got, r->out, "%s", r->desc);
}

/* Does R (N ranges) let PROTO (and NA when ANY) through PORT? */
static bool covers(const struct moat_port_range *r, size_t n, __u8 proto,
		   bool any, unsigned int port)
{
	for (size_t i = 0; i < n; i++)
		if ((r[i].protos & proto) && (!any || (r[i].protos & NA)) &&
		    r[i].first <= port && port <= r[i].last)
			return true;
	return false;
}

static void same_set(const char *what, const struct moat_port_range *a,
		     size_t na, const struct moat_port_range *b, size_t nb,
		     bool with_any)
{
	static const __u8 protos[] = { MOAT_PROTO_TCP, MOAT_PROTO_UDP };

	for (unsigned int port = 0; port <= 65535; port++)
		for (int p = 0; p < 2; p++)
			for (int any = 0; any <= (int)with_any; any++)
				if (covers(a, na, protos[p], any, port) !=
				    covers(b, nb, protos[p], any, port))
					cr_assert_fail("%s: proto %u port %u any %d differs",
						       what, protos[p], port, any);
}

static void random_ranges(struct moat_port_range *r, size_t n, bool any,
			  unsigned int span)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int first = (unsigned int)rand() % 65536;
		unsigned int last = first + (unsigned int)rand() % span;

		r[i].first = (__u16)first;
		r[i].last = (__u16)(last > 65535 ? 65535 : last);
		r[i].protos = (__u8)(1 + rand() % 3);
		if (any && rand() % 3 == 0)
			r[i].protos |= NA;
	}
}

/* Random overlapping ranges: the union lets through exactly what they do. */
Test(portrange, random_against_reference)
{
	struct moat_port_range in[200], out[400];

	srand(4242);
	for (int round = 0; round < 40; round++) {
		size_t n = 1 + (size_t)rand() % 200, need;
		char what[64];

		random_ranges(in, n, false, round % 2 ? 50 : 3000);
		need = portrange_union(in, n, PORTRANGE_PER_PROTO, out, 400);
		snprintf(what, sizeof(what), "per proto round %d", round);
		cr_assert_leq(need, 2 * n);
		same_set(what, in, n, out, need, false);
		/* canonical: a protocol's spans neither overlap nor touch */
		for (size_t i = 0; i + 1 < need; i++)
			for (size_t j = i + 1; j < need; j++)
				cr_assert(!(out[i].protos & out[j].protos) ||
					  out[j].first > out[i].last + 1,
					  "%s: %zu and %zu touch", what, i, j);

		random_ranges(in, n, true, round % 2 ? 50 : 3000);
		need = portrange_union(in, n, PORTRANGE_PER_MASK, out, 400);
		snprintf(what, sizeof(what), "per mask round %d", round);
		cr_assert_leq(need, n);
		same_set(what, in, n, out, need, true);
	}
}

Test(portrange, add_fills_then_refuses)
{
	struct moat_addr_val v = { 0 }, before;

	for (unsigned int i = 0; i < MOAT_MAX_PORT_RANGES; i++)
		cr_assert_eq(ranges_add(&v, MOAT_PROTO_TCP, (__u16)(10 * i),
					(__u16)(10 * i + 1)), 0);
	cr_assert_eq(v.n_ranges, MOAT_MAX_PORT_RANGES);
	before = v;
	cr_assert_eq(ranges_add(&v, MOAT_PROTO_UDP, 5, 5), -ENOSPC);
	cr_assert_eq(memcmp(&v, &before, sizeof(v)), 0, "changed on -ENOSPC");
	/* covered, or bridging two: no room needed */
	cr_assert_eq(ranges_add(&v, MOAT_PROTO_TCP, 0, 1), 0);
	cr_assert_eq(ranges_add(&v, MOAT_PROTO_TCP, 2, 9), 0);
	cr_assert_eq(v.n_ranges, MOAT_MAX_PORT_RANGES - 1);
	cr_assert_eq(v.ranges[0].first, 0);
	cr_assert_eq(v.ranges[0].last, 11);
}

/*
 * Many rules over nested prefixes with overlapping ports: each compiled
 * entry holds exactly the union of the rules whose prefix contains it.
 */
struct gen_rule {
	__u8 addr[4];
	unsigned int len;
	struct moat_port_range r;
};

static bool contains4(const struct gen_rule *outer, const __u8 *addr,
		      unsigned int len)
{
	__u32 a, b, mask;

	if (outer->len > len)
		return false;
	mask = outer->len ? ~0u << (32 - outer->len) : 0;
	memcpy(&a, outer->addr, 4);
	memcpy(&b, addr, 4);
	return ((__builtin_bswap32(a) ^ __builtin_bswap32(b)) & mask) == 0;
}

static void gen_policy(struct moat_policy_spec *p, struct gen_rule *g,
		       size_t n)
{
	static const unsigned int lens[] = { 8, 16, 24, 32, 32, 32 };
	struct moat_err err = { "" };
	char text[96];

	policy_init(p);
	for (size_t i = 0; i < n; i++) {
		unsigned int len = lens[rand() % 6];
		__u32 a = (10u << 24) | ((__u32)(rand() % 4) << 16) |
			  ((__u32)(rand() % 8) << 8) | (__u32)(rand() % 16);
		/* ports close together: unions merge, stay under the limit */
		unsigned int first = 1000 + 3 * ((unsigned int)rand() % 3);

		a &= len == 32 ? ~0u : ~0u << (32 - len);
		g[i].len = len;
		g[i].addr[0] = (__u8)(a >> 24), g[i].addr[1] = (__u8)(a >> 16);
		g[i].addr[2] = (__u8)(a >> 8), g[i].addr[3] = (__u8)a;
		g[i].r.first = (__u16)first;
		g[i].r.last = (__u16)(first + (unsigned int)rand() % 2);
		g[i].r.protos = (__u8)(1 + rand() % 3);
		snprintf(text, sizeof(text), "%s://%u.%u.%u.%u/%u:%u-%u",
			 g[i].r.protos == MOAT_PROTO_TCP ? "tcp" :
			 g[i].r.protos == MOAT_PROTO_UDP ? "udp" : "any",
			 g[i].addr[0], g[i].addr[1], g[i].addr[2], g[i].addr[3],
			 len, g[i].r.first, g[i].r.last);
		if (g[i].r.protos == MOAT_PROTO_ALL)
			snprintf(text, sizeof(text), "%u.%u.%u.%u/%u:%u-%u",
				 g[i].addr[0], g[i].addr[1], g[i].addr[2],
				 g[i].addr[3], len, g[i].r.first, g[i].r.last);
		cr_assert_eq(policy_add_rule(p, 0, text, &err), 0, "%s: %s",
			     text, err.msg);
	}
}

static void check_entries(const struct compiled_entry *e, size_t n_e,
			  const struct gen_rule *g, size_t n)
{
	struct moat_port_range *want = calloc(n, sizeof(*want));

	cr_assert(want);
	for (size_t i = 0; i < n_e; i++) {
		size_t k = 0;

		if (e[i].family != AF_INET)
			continue;
		for (size_t j = 0; j < n; j++)
			if (contains4(&g[j], e[i].addr, e[i].prefixlen))
				want[k++] = g[j].r;
		cr_assert(k > 0, "entry %zu covered by no rule", i);
		same_set("entry", want, k, e[i].val.ranges, e[i].val.n_ranges,
			 false);
	}
	free(want);
}

Test(portrange, many_rules_compile_exactly)
{
	struct moat_policy_spec p;
	struct moat_compiled c;
	struct moat_err err = { "" };
	struct gen_rule *g;
	size_t n = 300;

	srand(77);
	g = calloc(n, sizeof(*g));
	cr_assert(g);
	gen_policy(&p, g, n);
	cr_assert_eq(policy_compile(&p, &c, &err), 0, "%s", err.msg);
	cr_assert_gt(c.n_exact, 10);
	cr_assert_gt(c.n_allow, 10);
	check_entries(c.exact, c.n_exact, g, n);
	check_entries(c.allow, c.n_allow, g, n);
	compiled_free(&c);
	policy_free(&p);
	free(g);
}

static double compile_seconds(size_t n)
{
	struct moat_policy_spec p;
	struct moat_compiled c;
	struct moat_err err = { "" };
	char text[64];
	struct timespec a, b;

	policy_init(&p);
	for (size_t i = 0; i < n; i++) {
		/* distinct /24s, each with a host of its own inside */
		snprintf(text, sizeof(text), "%s://10.%zu.%zu.%s:%s",
			 i % 2 ? "tcp" : "udp", (i >> 9) & 255,
			 (i >> 1) & 255, i % 2 ? "0/24" : "7",
			 i % 2 ? "443" : "53");
		cr_assert_eq(policy_add_rule(&p, 0, text, &err), 0, "%s: %s",
			     text, err.msg);
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(policy_compile(&p, &c, &err), 0, "%s", err.msg);
	clock_gettime(CLOCK_MONOTONIC, &b);
	compiled_free(&c);
	policy_free(&p);
	return (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

/*
 * Issue 18: the union was a scan of every rule per entry (n² contains
 * checks: ~20 s at 64k rules here). Sixteen times the rules must cost
 * far less than 256 times the time.
 */
Test(portrange, compile_scales, .timeout = 60)
{
	double small = compile_seconds(4096), large = compile_seconds(65536);

	cr_log_info("4096 rules %.3f s, 65536 rules %.3f s", small, large);
	cr_assert_lt(large, 5.0, "65536 rules took %.1f s", large);
	cr_assert_lt(large, 64 * (small + 0.001),
		     "4096 rules %.3f s, 65536 rules %.3f s: worse than n log n",
		     small, large);
}
