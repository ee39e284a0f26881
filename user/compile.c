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
#include "portrange.h"

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

/*
 * The rules of a table grouped by prefix, each group's port ranges united
 * once. An entry's ranges are then the union of the groups whose prefix
 * contains it: one binary search per prefix length in use, so compiling
 * costs O(n log n) in the number of rules, not a scan of every rule per
 * entry.
 */
struct group {
	const struct crule *rule;	/* its first rule: the prefix */
	size_t first;			/* that rule's index, for the order */
	bool user;			/* an explicit rule names it */
	struct moat_port_range *ranges;
	size_t n_ranges;
};

struct groups {
	struct group *v;
	size_t n;
	unsigned int lens[2][129];	/* prefix lengths in use, per family */
	size_t n_lens[2];
};

static int fam(int family)
{
	return family == AF_INET6;
}

/* Family, length, then address (all bits past the length are zero). */
static int prefix_cmp(const struct crule *a, const struct crule *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int index_cmp(const void *a, const void *b)
{
	const struct crule *const *x = a, *const *y = b;
	int c = prefix_cmp(*x, *y);

	return c ? c : (*x < *y ? -1 : *x > *y);
}

static int group_cmp(const void *a, const void *b)
{
	return prefix_cmp(((const struct group *)a)->rule,
			  ((const struct group *)b)->rule);
}

static int order_cmp(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	return (x->first > y->first) - (x->first < y->first);
}

static void groups_free(struct groups *g)
{
	for (size_t i = 0; g->v && i < g->n; i++)
		free(g->v[i].ranges);
	free(g->v);
	memset(g, 0, sizeof(*g));
}

/* Unite the ranges of the rules ORDER[from..to), one prefix. */
static int group_of(const struct crules *rules, const struct crule **order,
		    size_t from, size_t to, struct group *g)
{
	struct moat_port_range *in;
	size_t i;

	in = calloc(to - from, sizeof(*in));
	g->ranges = calloc(2 * (to - from), sizeof(*g->ranges));
	if (!in || !g->ranges) {
		free(in);
		return -ENOMEM;
	}
	g->rule = order[from];
	g->first = (size_t)(order[from] - rules->v);
	for (i = from; i < to; i++) {
		in[i - from] = (struct moat_port_range){
			.first = order[i]->first, .last = order[i]->last,
			.protos = order[i]->protos,
		};
		g->user |= !order[i]->builtin;
	}
	g->n_ranges = portrange_union(in, to - from, PORTRANGE_PER_PROTO,
				      g->ranges, 2 * (to - from));
	free(in);
	return g->n_ranges == (size_t)-1 ? -ENOMEM : 0;
}

static int groups_build(const struct crules *rules, struct groups *g)
{
	const struct crule **order;
	size_t i, j;
	int ret = 0;

	memset(g, 0, sizeof(*g));
	order = calloc(rules->n + 1, sizeof(*order));
	g->v = calloc(rules->n + 1, sizeof(*g->v));
	if (!order || !g->v) {
		free(order);
		return -ENOMEM;
	}
	for (i = 0; i < rules->n; i++)
		order[i] = &rules->v[i];
	/* ties by position: a group's first rule is its earliest */
	qsort(order, rules->n, sizeof(*order), index_cmp);
	for (i = 0; !ret && i < rules->n; i = j) {
		const struct crule *r = order[i];
		int f = fam(r->family);

		for (j = i + 1; j < rules->n && !prefix_cmp(order[j], r); j++)
			;
		ret = group_of(rules, order, i, j, &g->v[g->n++]);
		if (!g->n_lens[f] || g->lens[f][g->n_lens[f] - 1] != r->len)
			g->lens[f][g->n_lens[f]++] = r->len;
	}
	free(order);
	return ret;
}

static const struct group *group_find(const struct groups *g,
				      const struct crule *key)
{
	struct group k = { .rule = key };

	return bsearch(&k, g->v, g->n, sizeof(*g->v), group_cmp);
}

static void mask_to(struct crule *r, unsigned int len)
{
	unsigned int bytes = len / 8, bits = len % 8;

	if (bits)
		r->addr[bytes++] &= (__u8)(0xff << (8 - bits));
	memset(r->addr + bytes, 0, sizeof(r->addr) - bytes);
	r->len = len;
}

/* Ranges of every group whose prefix contains E, united into VAL. */
static int union_ranges(const struct moat_policy_spec *p,
			const struct groups *g, const struct crule *e,
			struct moat_addr_val *val, struct moat_err *err)
{
	struct moat_port_range *in = NULL, *grown;
	size_t i, n = 0, need;
	int f = fam(e->family);

	for (i = 0; i < g->n_lens[f] && g->lens[f][i] <= e->len; i++) {
		const struct group *hit;
		struct crule k = *e;

		mask_to(&k, g->lens[f][i]);
		hit = group_find(g, &k);
		if (!hit || !hit->n_ranges)
			continue;
		grown = realloc(in, (n + hit->n_ranges) * sizeof(*in));
		if (!grown)
			goto oom;
		in = grown;
		memcpy(in + n, hit->ranges, hit->n_ranges * sizeof(*in));
		n += hit->n_ranges;
	}
	need = portrange_union(in, n, PORTRANGE_PER_PROTO, val->ranges,
			       MOAT_MAX_PORT_RANGES);
	free(in);
	if (need == (size_t)-1)
		goto oom;
	if (need > MOAT_MAX_PORT_RANGES)
		return too_many_ranges(p, e, need, err);
	val->n_ranges = (__u32)need;
	return 0;
oom:
	free(in);
	policy_errf(err, "%s: out of memory", p->source);
	return -ENOMEM;
}

/* One entry per distinct prefix, in the order the rules first name them. */
static int build_table(const struct moat_policy_spec *p, enum table_kind kind,
		       const struct crules *rules, struct compiled_entry **out,
		       size_t *n_out, struct moat_err *err)
{
	struct group *entries = NULL;
	struct compiled_entry *ce;
	struct groups g = { 0 };
	size_t i, n = 0;
	int ret;

	*out = calloc(rules->n + 1, sizeof(**out));
	ret = *out ? groups_build(rules, &g) : -ENOMEM;
	if (!ret) {
		entries = calloc(g.n + 1, sizeof(*entries));
		ret = entries ? 0 : -ENOMEM;
	}
	if (ret) {
		policy_errf(err, "%s: out of memory", p->source);
		goto out;
	}
	for (i = 0; i < g.n; i++)
		if (makes_entry(kind, g.v[i].rule))
			entries[n++] = g.v[i];
	qsort(entries, n, sizeof(*entries), order_cmp);
	for (i = 0; !ret && i < n; i++) {
		const struct crule *r = entries[i].rule;

		ce = &(*out)[(*n_out)++];
		ce->family = r->family;
		ce->prefixlen = (__u8)r->len;
		memcpy(ce->addr, r->addr, sizeof(ce->addr));
		ce->val.expires_ns = 0;
		/* built-in only when no explicit rule names the same prefix */
		ce->val.flags = kind == TABLE_DENY && !entries[i].user ?
				MOAT_AV_DEFAULT_DENY : 0;
		ret = union_ranges(p, &g, r, &ce->val, err);
	}
out:
	free(entries);
	groups_free(&g);
	return ret;
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

/*
 * MOAT_POL_HINTS: the lookups that cannot match for this policy, so that
 * the programs skip them (a deny-trie lookup per connect and datagram
 * when only the built-in denies are there).
 */
static __u32 lookup_hints(const struct moat_policy_spec *p,
			  const struct moat_compiled *c)
{
	__u32 hints = MOAT_POL_DENY_BUILTIN_ONLY;
	size_t i;

	for (i = 0; i < c->n_deny; i++)
		if (!(c->deny[i].val.flags & MOAT_AV_DEFAULT_DENY))
			hints &= ~MOAT_POL_DENY_BUILTIN_ONLY;
	if (!c->n_exact && !policy_domain_rules(p))
		hints |= MOAT_POL_NO_EXACT;
	if (!c->n_allow)
		hints |= MOAT_POL_NO_PREFIX;
	return hints;
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
	if (!ret)
		c->flags |= lookup_hints(p, c);
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
