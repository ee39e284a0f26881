// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy rules to map entries. A lookup returns one entry (exact hit or
 * longest prefix), so each entry carries the union of the port/protocol
 * sets of every rule of its table whose prefix contains the entry's: the
 * programs never have to combine entries.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "names.h"
#include "policy.h"

const char *const moat_default_denies[] = {
	"169.254.169.254",	/* cloud metadata (AWS, GCP, Azure, ...) */
	"[fd00:ec2::254]",	/* AWS metadata over IPv6 */
	NULL,
};

/* An address rule reduced to what compilation needs. */
struct crule {
	int family;
	unsigned int len;
	__u8 addr[16];
	__u8 protos;
	__u16 first;
	__u16 last;
	bool builtin;		/* one of moat_default_denies */
};

struct crules {
	struct crule *v;
	size_t n;
};

enum table_kind { TABLE_EXACT, TABLE_ALLOW, TABLE_DENY };

/* A closed port interval; int so that last + 1 cannot wrap. */
struct span {
	int first;
	int last;
};

static unsigned int full_len(int family)
{
	return family == AF_INET6 ? 128 : 32;
}

static bool is_full(const struct crule *r)
{
	return r->len == full_len(r->family);
}

static bool same_prefix(const struct crule *a, const struct crule *b)
{
	return a->family == b->family && a->len == b->len &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

/* Does @outer's prefix contain @inner's (same family, equal or longer)? */
static bool contains(const struct crule *outer, const struct crule *inner)
{
	unsigned int bytes = outer->len / 8, bits = outer->len % 8;
	__u8 mask = (__u8)(0xff << (8 - bits));

	if (outer->family != inner->family || outer->len > inner->len)
		return false;
	if (memcmp(outer->addr, inner->addr, bytes))
		return false;
	return !bits || !((outer->addr[bytes] ^ inner->addr[bytes]) & mask);
}

/* Domain rules are the resolver's; they produce no static entries. */
static bool to_crule(const struct moat_rule *r, bool builtin, struct crule *out)
{
	if (r->kind != RULE_ADDR4 && r->kind != RULE_ADDR6)
		return false;
	memset(out, 0, sizeof(*out));
	out->family = r->kind == RULE_ADDR4 ? AF_INET : AF_INET6;
	out->len = r->prefixlen;
	memcpy(out->addr, r->addr, sizeof(out->addr));
	out->protos = r->protos;
	out->first = r->port_first;
	out->last = r->port_last;
	out->builtin = builtin;
	return true;
}

static int collect(const struct moat_rule *rules, size_t n, struct crules *out)
{
	size_t i;

	/* Room for the default denies too, whichever list this is. */
	out->v = calloc(n + sizeof(moat_default_denies) /
			sizeof(moat_default_denies[0]), sizeof(*out->v));
	out->n = 0;
	if (!out->v)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		out->n += to_crule(&rules[i], false, &out->v[out->n]);
	return 0;
}

/* An allow rule naming the address at full length opts out of the deny. */
static bool allowed_exactly(const struct crules *allow, const struct crule *d)
{
	size_t i;

	for (i = 0; i < allow->n; i++)
		if (is_full(&allow->v[i]) && same_prefix(&allow->v[i], d))
			return true;
	return false;
}

static int add_default_denies(const struct crules *allow, struct crules *deny,
			      struct moat_err *err)
{
	const char *const *t;
	struct moat_rule r;
	struct crule d;
	int ret;

	for (t = moat_default_denies; *t; t++) {
		ret = rule_parse(*t, "built-in default deny", &r, err);
		if (ret)
			return ret;
		to_crule(&r, true, &d);
		if (!allowed_exactly(allow, &d))
			deny->v[deny->n++] = d;
	}
	return 0;
}

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (x->last > y->last) - (x->last < y->last);
}

/* Sort and merge overlapping or adjacent spans; returns the new count. */
static size_t merge_spans(struct span *s, size_t n)
{
	size_t i, out = 0;

	if (!n)
		return 0;
	qsort(s, n, sizeof(*s), span_cmp);
	for (i = 1; i < n; i++) {
		if (s[i].first <= s[out].last + 1) {
			if (s[i].last > s[out].last)
				s[out].last = s[i].last;
		} else {
			s[++out] = s[i];
		}
	}
	return out + 1;
}

/* Port spans of @proto from every rule containing @e. */
static size_t proto_spans(const struct crules *rules, const struct crule *e,
			  __u8 proto, struct span *out)
{
	size_t i, n = 0;

	for (i = 0; i < rules->n; i++) {
		const struct crule *r = &rules->v[i];

		if ((r->protos & proto) && contains(r, e)) {
			out[n].first = r->first;
			out[n].last = r->last;
			n++;
		}
	}
	return merge_spans(out, n);
}

static bool span_before(const struct span *a, const struct span *b)
{
	return span_cmp(a, b) < 0;
}

/*
 * Interleave the merged TCP and UDP spans in port order; a span present
 * in both becomes one TCP+UDP range. Returns how many ranges that takes,
 * writing at most MOAT_MAX_PORT_RANGES of them.
 */
static size_t emit_ranges(const struct span *t, size_t nt,
			  const struct span *u, size_t nu,
			  struct moat_port_range *out)
{
	size_t i = 0, j = 0, n = 0;
	struct moat_port_range pr;

	while (i < nt || j < nu) {
		memset(&pr, 0, sizeof(pr));
		if (i < nt && j < nu && !span_cmp(&t[i], &u[j])) {
			pr.protos = MOAT_PROTO_ALL;
			pr.first = (__u16)t[i].first;
			pr.last = (__u16)t[i].last;
			i++, j++;
		} else if (i < nt && (j >= nu || span_before(&t[i], &u[j]))) {
			pr.protos = MOAT_PROTO_TCP;
			pr.first = (__u16)t[i].first;
			pr.last = (__u16)t[i].last;
			i++;
		} else {
			pr.protos = MOAT_PROTO_UDP;
			pr.first = (__u16)u[j].first;
			pr.last = (__u16)u[j].last;
			j++;
		}
		if (n < MOAT_MAX_PORT_RANGES)
			out[n] = pr;
		n++;
	}
	return n;
}

static int too_many_ranges(const struct moat_policy_spec *p,
			   const struct crule *e, size_t need,
			   struct moat_err *err)
{
	char a[64];

	rule_prefix_format(e->family, e->addr, e->len, a, sizeof(a));
	policy_errf(err, "%s: %s: the rules covering it need %zu port ranges, more than the limit of %d (MOAT_MAX_PORT_RANGES); merge or widen their ports",
		    p->source, a, need, MOAT_MAX_PORT_RANGES);
	return -E2BIG;
}

static int union_ranges(const struct moat_policy_spec *p,
			const struct crules *rules, const struct crule *e,
			struct moat_addr_val *val, struct moat_err *err)
{
	struct span *t, *u;
	size_t nt, nu, need;
	int ret = 0;

	t = calloc(rules->n + 1, sizeof(*t));
	u = calloc(rules->n + 1, sizeof(*u));
	if (!t || !u) {
		policy_errf(err, "%s: out of memory", p->source);
		ret = -ENOMEM;
		goto out;
	}
	nt = proto_spans(rules, e, MOAT_PROTO_TCP, t);
	nu = proto_spans(rules, e, MOAT_PROTO_UDP, u);
	need = emit_ranges(t, nt, u, nu, val->ranges);
	if (need > MOAT_MAX_PORT_RANGES)
		ret = too_many_ranges(p, e, need, err);
	else
		val->n_ranges = (__u32)need;
out:
	free(t);
	free(u);
	return ret;
}

static bool makes_entry(enum table_kind kind, const struct crule *r)
{
	switch (kind) {
	case TABLE_EXACT:
		return is_full(r);
	case TABLE_ALLOW:
		return !is_full(r);
	default:
		return true;
	}
}

/* Built-in only when no explicit rule names the same prefix. */
static __u32 entry_flags(const struct crules *rules, const struct crule *e)
{
	size_t i;

	for (i = 0; i < rules->n; i++)
		if (!rules->v[i].builtin && same_prefix(&rules->v[i], e))
			return 0;
	return e->builtin ? MOAT_AV_DEFAULT_DENY : 0;
}

/* Has an earlier rule of this table already produced @idx's entry? */
static bool seen_before(enum table_kind kind, const struct crules *rules,
			size_t idx)
{
	size_t i;

	for (i = 0; i < idx; i++)
		if (makes_entry(kind, &rules->v[i]) &&
		    same_prefix(&rules->v[i], &rules->v[idx]))
			return true;
	return false;
}

static int build_table(const struct moat_policy_spec *p, enum table_kind kind,
		       const struct crules *rules, struct compiled_entry **out,
		       size_t *n_out, struct moat_err *err)
{
	struct compiled_entry *ce;
	size_t i;
	int ret;

	*out = calloc(rules->n + 1, sizeof(**out));
	if (!*out) {
		policy_errf(err, "%s: out of memory", p->source);
		return -ENOMEM;
	}
	for (i = 0; i < rules->n; i++) {
		const struct crule *r = &rules->v[i];

		if (!makes_entry(kind, r) || seen_before(kind, rules, i))
			continue;
		ce = &(*out)[(*n_out)++];
		ce->family = r->family;
		ce->prefixlen = (__u8)r->len;
		memcpy(ce->addr, r->addr, sizeof(ce->addr));
		ce->val.expires_ns = 0;
		ce->val.flags = kind == TABLE_DENY ? entry_flags(rules, r) : 0;
		ret = union_ranges(p, rules, r, &ce->val, err);
		if (ret)
			return ret;
	}
	return 0;
}

static __u32 policy_flags(const struct moat_policy_spec *p)
{
	__u32 flags = 0;

	if (p->loopback == LOOPBACK_ALLOW)
		flags |= MOAT_POL_LOOPBACK_ALLOW;
	else if (p->loopback == LOOPBACK_DENY)
		flags |= MOAT_POL_LOOPBACK_RULES;
	if (p->sockets.raw == SOCKET_ALLOW)
		flags |= MOAT_POL_RAW_ALLOW;
	if (p->sockets.ping == SOCKET_ALLOW)
		flags |= MOAT_POL_PING_ALLOW;
	if (p->sockets.other == SOCKET_ALLOW)
		flags |= MOAT_POL_OTHER_ALLOW;
	return flags;
}

static int compile_tables(const struct moat_policy_spec *p,
			  struct moat_compiled *c, struct crules *allow,
			  struct crules *deny, struct moat_err *err)
{
	int ret;

	ret = collect(p->allow, p->n_allow, allow);
	if (!ret)
		ret = collect(p->deny, p->n_deny, deny);
	if (ret) {
		policy_errf(err, "%s: out of memory", p->source);
		return ret;
	}
	ret = add_default_denies(allow, deny, err);
	if (!ret)
		ret = build_table(p, TABLE_EXACT, allow, &c->exact,
				  &c->n_exact, err);
	if (!ret)
		ret = build_table(p, TABLE_ALLOW, allow, &c->allow,
				  &c->n_allow, err);
	if (!ret)
		ret = build_table(p, TABLE_DENY, deny, &c->deny, &c->n_deny,
				  err);
	return ret;
}

int policy_compile(const struct moat_policy_spec *p, struct moat_compiled *c,
		   struct moat_err *err)
{
	struct crules allow = { 0 }, deny = { 0 };
	int ret;

	memset(c, 0, sizeof(*c));
	c->mode = (__u32)p->mode;
	c->flags = policy_flags(p);
	ret = compile_tables(p, c, &allow, &deny, err);
	if (!ret)
		ret = names_compile(p, c, err);
	free(allow.v);
	free(deny.v);
	if (ret)
		compiled_free(c);
	return ret;
}

void compiled_free(struct moat_compiled *c)
{
	free(c->exact);
	free(c->allow);
	free(c->deny);
	free(c->names);
	c->names = NULL;
	c->n_names = 0;
	c->exact = NULL;
	c->allow = NULL;
	c->deny = NULL;
	c->n_exact = 0;
	c->n_allow = 0;
	c->n_deny = 0;
}
