// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * user/resolver_cache.c: which answers are kept and for how long (a
 * table), TTLs counted down, the client's id and letters, owners and
 * upstream sets apart, and the memory bounds with their eviction order.
 * Messages are built with ldns from zone-file text; queries go through
 * dns_query_canonical() as the daemon's do.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "resolver_cache.h"

#include "table.h"

#define PKT_MAX		4096
#define T0		1000000ull	/* ms, any monotonic time */

/* A UDP client's lookup; what comes with a hit is checked where it matters. */
static int get(struct dcache_owner *o, const uint8_t *q, size_t qlen,
	       uint64_t now, uint8_t *out, size_t *olen)
{
	struct dcache_hit hit;

	return dcache_get(o, q, qlen, false, now, out, olen, &hit);
}

static size_t wire(ldns_pkt *p, uint8_t *buf)
{
	uint8_t *w;
	size_t n;

	cr_assert_eq(ldns_pkt2wire(&w, p, &n), LDNS_STATUS_OK);
	cr_assert_leq(n, PKT_MAX);
	memcpy(buf, w, n);
	free(w);
	return n;
}

static ldns_pkt *query_pkt(const char *name, uint16_t id, bool edns)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str(name),
					 LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);

	cr_assert_not_null(p);
	ldns_pkt_set_id(p, id);
	if (edns)
		ldns_pkt_set_edns_udp_size(p, 1232);
	return p;
}

/* The canonical query the daemon would forward for NAME. */
static size_t query(const char *name, uint16_t id, bool edns, uint8_t *out)
{
	uint8_t raw[PKT_MAX];
	ldns_pkt *p = query_pkt(name, id, edns);
	size_t n = wire(p, raw), len = PKT_MAX;

	ldns_pkt_free(p);
	cr_assert_eq(dns_query_canonical(raw, n, out, &len), 0);
	return len;
}

/*
 * An answer to NAME: RCODE, TC, records of the answer and authority
 * sections (NULL-terminated zone-file lines).
 */
static size_t answer(const char *name, uint16_t id, int rcode, bool tc,
		     const char *const *an, const char *const *ns, uint8_t *out)
{
	ldns_pkt *p = query_pkt(name, id, false);
	size_t n;

	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_tc(p, tc);
	ldns_pkt_set_rcode(p, rcode);
	for (int s = 0; s < 2; s++)
		for (const char *const *l = s ? ns : an; l && *l; l++) {
			ldns_rr *rr = NULL;

			cr_assert_eq(ldns_rr_new_frm_str(&rr, *l, 0, NULL, NULL),
				     LDNS_STATUS_OK, "bad record '%s'", *l);
			ldns_pkt_push_rr(p, s ? LDNS_SECTION_AUTHORITY :
					 LDNS_SECTION_ANSWER, rr);
		}
	n = wire(p, out);
	ldns_pkt_free(p);
	return n;
}

/* Each record's TTL in answer A, in order, through ldns. */
static size_t ttls(const uint8_t *a, size_t alen, uint32_t *out)
{
	ldns_pkt *p = NULL;
	size_t n = 0;

	cr_assert_eq(ldns_wire2pkt(&p, a, alen), LDNS_STATUS_OK);
	for (int s = 0; s < 2; s++) {
		ldns_rr_list *l = s ? ldns_pkt_authority(p) : ldns_pkt_answer(p);

		for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
			out[n++] = ldns_rr_ttl(ldns_rr_list_rr(l, i));
	}
	ldns_pkt_free(p);
	return n;
}

#define SOA(ttl, min) "test. " #ttl " IN SOA ns.test. host.test. 1 2 3 4 " #min

struct keep_row {
	const char *desc;
	int rcode;
	bool tc;
	const char *an[3], *ns[2];
	uint32_t max_ttl;
	int want;			/* dcache_put */
	uint32_t life_s;		/* when kept: served until then */
};

static const struct keep_row keep_rows[] = {
	{ "positive: its TTL", 0, false, { "a.test. 300 IN A 198.51.100.7" },
	  {}, 86400, 0, 300 },
	{ "the smallest TTL of the chain", 0, false,
	  { "a.test. 60 IN CNAME b.test.", "b.test. 300 IN A 198.51.100.7" },
	  {}, 86400, 0, 60 },
	{ "max_ttl clamps", 0, false, { "a.test. 100000 IN A 198.51.100.7" },
	  {}, 86400, 0, 86400 },
	{ "TTL 0: not kept", 0, false, { "a.test. 0 IN A 198.51.100.7" },
	  {}, 86400, 1, 0 },
	{ "NXDOMAIN: SOA capped at DCACHE_NEG_MAX_S", 3, false, {},
	  { SOA(3600, 600) }, 86400, 0, DCACHE_NEG_MAX_S },
	{ "NXDOMAIN: SOA MINIMUM below the cap", 3, false, {},
	  { SOA(3600, 10) }, 86400, 0, 10 },
	{ "NXDOMAIN: SOA TTL below MINIMUM", 3, false, {},
	  { SOA(7, 600) }, 86400, 0, 7 },
	{ "NODATA with SOA", 0, false, {}, { SOA(3600, 20) }, 86400, 0, 20 },
	{ "NXDOMAIN without SOA: not kept", 3, false, {}, {}, 86400, 1, 0 },
	{ "NODATA without SOA: not kept", 0, false, {}, {}, 86400, 1, 0 },
	{ "SERVFAIL: never", 2, false, {}, { SOA(3600, 600) }, 86400, 1, 0 },
	{ "REFUSED: never", 5, false, {}, {}, 86400, 1, 0 },
	{ "truncated: never", 0, true, { "a.test. 300 IN A 198.51.100.7" },
	  {}, 86400, 1, 0 },
};

ParameterizedTestParameters(dcache, keep) { ROW_INDICES(keep_rows); }

ParameterizedTest(size_t *row, dcache, keep)
{
	const struct keep_row *t = &keep_rows[*row];
	uint8_t q[PKT_MAX], a[PKT_MAX], out[PKT_MAX];
	size_t qlen = query("a.test", 1, false, q), alen, olen = PKT_MAX;
	struct dcache c;
	struct dcache_owner o;

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	dcache_owner_init(&c, &o);
	alen = answer("a.test", 99, t->rcode, t->tc, t->an, t->ns, a);
	cr_assert_eq(dcache_put(&o, q, qlen, a, alen, PKT_MAX, NULL, 0,
				t->max_ttl, T0), t->want,
		     "%s", t->desc);
	if (!t->want) {
		cr_assert_eq(get(&o, q, qlen, T0 + t->life_s * 1000ull - 1, out, &olen),
			     0, "%s: gone before its TTL", t->desc);
		olen = PKT_MAX;
		cr_assert_eq(get(&o, q, qlen, T0 + t->life_s * 1000ull, out, &olen),
			     1, "%s: served past its TTL", t->desc);
	}
	cr_assert_eq(c.n, 0u, "%s: an expired entry stays", t->desc);
	dcache_fini(&c);
}

/* TTLs counted down, never below 0 nor above the entry's life; the
 * client's id and letters. */
Test(dcache, served_form)
{
	static const char *const an[] = {
		"a.test. 600 IN A 198.51.100.7", "a.test. 900 IN A 198.51.100.8", NULL,
	};
	static const char *const ns[] = { "test. 5 IN NS ns.test.", NULL };
	uint8_t q[PKT_MAX], q2[PKT_MAX], a[PKT_MAX], out[PKT_MAX];
	size_t qlen = query("a.test", 1, false, q);
	size_t q2len = query("A.TeSt", 0xbeef, false, q2);
	size_t alen = answer("a.test", 7, 0, false, an, ns, a), olen = PKT_MAX;
	uint32_t t[8];
	struct dcache c;
	struct dcache_owner o;
	ldns_pkt *p = NULL;
	char *qs;

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	dcache_owner_init(&c, &o);
	cr_assert_eq(dcache_put(&o, q, qlen, a, alen, PKT_MAX, NULL, 0, 86400, T0), 0);
	cr_assert_eq(get(&o, q2, q2len, T0 + 7999, out, &olen), 0);
	cr_assert_eq(olen, alen);
	cr_assert_eq(ttls(out, olen, t), 3u);
	/* life 600 (the answer section's least); 7 whole seconds elapsed */
	cr_assert_eq(t[0], 593u);
	cr_assert_eq(t[1], 593u, "a TTL above the entry's life is cut to it");
	cr_assert_eq(t[2], 0u, "an authority TTL counts down to 0, not below");
	cr_assert_eq(ldns_wire2pkt(&p, out, olen), LDNS_STATUS_OK);
	cr_assert_eq(ldns_pkt_id(p), 0xbeef);
	qs = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	cr_assert_str_eq(qs, "A.TeSt.");
	free(qs);
	ldns_pkt_free(p);
	/* the stored answer is untouched: a later hit counts from it */
	olen = PKT_MAX;
	cr_assert_eq(get(&o, q, qlen, T0 + 100000, out, &olen), 0);
	ttls(out, olen, t);
	cr_assert_eq(t[0], 500u);
	dcache_fini(&c);
}

/* What the key holds: EDNS or not, the owner, its upstream set. */
Test(dcache, keys_apart)
{
	static const char *const an[] = { "a.test. 300 IN A 198.51.100.7", NULL };
	uint8_t q[PKT_MAX], qe[PKT_MAX], a[PKT_MAX], out[PKT_MAX];
	size_t qlen = query("a.test", 1, false, q);
	size_t qelen = query("a.test", 1, true, qe);
	size_t alen = answer("a.test", 7, 0, false, an, NULL, a), olen = PKT_MAX;
	struct dcache c;
	struct dcache_owner o1, o2;

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	dcache_owner_init(&c, &o1);
	dcache_owner_init(&c, &o2);
	dcache_set_upstreams(&o1, dcache_digest("up1", 3, 0));
	dcache_set_upstreams(&o2, dcache_digest("up2", 3, 0));
	cr_assert_eq(dcache_put(&o1, q, qlen, a, alen, PKT_MAX, NULL, 0, 86400, T0), 0);
	cr_assert_eq(get(&o1, q, qlen, T0, out, &olen), 0);
	olen = PKT_MAX;
	cr_assert_eq(get(&o1, qe, qelen, T0, out, &olen), 1,
		     "an answer without OPT served to an EDNS query");
	cr_assert_eq(get(&o2, q, qlen, T0, out, &olen), 1,
		     "an answer crossed owners");
	/* a UDP client that cannot take it asks upstream; over TCP it is served */
	{
		struct dcache_owner o3;
		struct dcache_hit hit;

		dcache_owner_init(&c, &o3);
		cr_assert_eq(dcache_put(&o3, q, qlen, a, alen, alen - 1, NULL, 0,
					86400, T0), 0);
		olen = PKT_MAX;
		cr_assert_eq(dcache_get(&o3, q, qlen, false, T0, out, &olen, &hit), 1);
		cr_assert_eq(dcache_get(&o3, q, qlen, true, T0, out, &olen, &hit), 0);
		dcache_flush(&o3);
	}
	/* new upstreams: nothing of the old ones */
	dcache_set_upstreams(&o1, dcache_digest("up2", 3, 0));
	cr_assert_eq(o1.n, 0u);
	cr_assert_eq(get(&o1, q, qlen, T0, out, &olen), 1);
	dcache_fini(&c);
}

static void put_name(struct dcache_owner *o, int i, uint64_t now)
{
	uint8_t q[PKT_MAX], a[PKT_MAX];
	char name[32], rr[96];
	const char *an[] = { rr, NULL };
	size_t qlen, alen;

	snprintf(name, sizeof(name), "n%d.test", i);
	snprintf(rr, sizeof(rr), "%s. 300 IN A 198.51.100.7", name);
	qlen = query(name, 1, false, q);
	alen = answer(name, 2, 0, false, an, NULL, a);
	cr_assert_eq(dcache_put(o, q, qlen, a, alen, PKT_MAX, NULL, 0, 86400, now), 0);
}

static bool has_name(struct dcache_owner *o, int i)
{
	uint8_t q[PKT_MAX], out[PKT_MAX];
	char name[32];
	size_t olen = PKT_MAX;

	snprintf(name, sizeof(name), "n%d.test", i);
	return !get(o, q, query(name, 1, false, q), T0, out, &olen);
}

/* An owner's bound evicts its own least recently used entries only. */
Test(dcache, owner_bound)
{
	struct dcache c;
	struct dcache_owner o1, o2;
	size_t one;

	dcache_init(&c, 1 << 20, 1 << 20);
	dcache_owner_init(&c, &o1);
	dcache_owner_init(&c, &o2);
	put_name(&o2, 0, T0);
	one = c.bytes;
	c.owner_max_bytes = 4 * one;	/* every entry here is as large */
	for (int i = 0; i < 4; i++)
		put_name(&o1, i, T0);
	cr_assert(has_name(&o1, 0));	/* now the most recently used */
	put_name(&o1, 4, T0);
	cr_assert_eq(o1.n, 4u);
	cr_assert_leq(o1.bytes, c.owner_max_bytes);
	cr_assert_not(has_name(&o1, 1), "not the least recently used evicted");
	cr_assert(has_name(&o1, 0) && has_name(&o1, 4));
	cr_assert(has_name(&o2, 0), "another owner's entry evicted");
	cr_assert_eq(c.evicted, 1u);
	dcache_flush(&o1);
	cr_assert_eq(o1.n, 0u);
	cr_assert_eq(c.bytes, one);
	dcache_fini(&c);
	cr_assert_eq(c.bytes, 0u);
}

/* The total bound evicts the least recently used of anybody. */
Test(dcache, total_bound)
{
	struct dcache c;
	struct dcache_owner o[3];
	size_t one;

	dcache_init(&c, 1 << 20, 1 << 20);
	for (int i = 0; i < 3; i++)
		dcache_owner_init(&c, &o[i]);
	put_name(&o[0], 0, T0);
	one = c.bytes;
	c.max_bytes = 3 * one;
	put_name(&o[1], 1, T0);
	put_name(&o[2], 2, T0);
	cr_assert(has_name(&o[0], 0));
	put_name(&o[2], 3, T0);
	cr_assert_eq(c.n, 3u);
	cr_assert_leq(c.bytes, c.max_bytes);
	cr_assert_not(has_name(&o[1], 1));
	cr_assert(has_name(&o[0], 0) && has_name(&o[2], 2) && has_name(&o[2], 3));
	/* an entry larger than a bound is not kept at all */
	c.owner_max_bytes = one - 1;
	{
		uint8_t q[PKT_MAX], a[PKT_MAX];
		static const char *const an[] = { "big.test. 300 IN A 198.51.100.7", NULL };
		size_t qlen = query("big.test", 1, false, q);
		size_t alen = answer("big.test", 2, 0, false, an, NULL, a);

		cr_assert_eq(dcache_put(&o[0], q, qlen, a, alen, PKT_MAX, NULL, 0, 86400, T0), 1);
	}
	cr_assert_eq(c.n, 3u);
	dcache_fini(&c);
}

/* dcache_scan on what is not a DNS answer. */
Test(dcache, scan_malformed)
{
	static const char *const an[] = { "a.test. 300 IN A 198.51.100.7", NULL };
	uint8_t a[PKT_MAX];
	uint16_t off[8];
	size_t alen = answer("a.test", 7, 0, false, an, NULL, a), n;
	uint32_t ttl;
	bool neg;

	cr_assert_eq(dcache_scan(a, alen, off, 8, &n, &ttl, &neg), 0);
	cr_assert_eq(n, 1u);
	cr_assert_eq(ttl, 300u);
	cr_assert_eq(dcache_scan(a, alen - 1, off, 8, &n, &ttl, &neg), -EBADMSG);
	cr_assert_eq(dcache_scan(a, 11, off, 8, &n, &ttl, &neg), -EBADMSG);
	a[12] = 0x80;	/* a label type that does not exist */
	cr_assert_eq(dcache_scan(a, alen, off, 8, &n, &ttl, &neg), -EBADMSG);
}

/* A query whose name is a compression pointer is never cached. */
Test(dcache, compressed_query_name)
{
	static const char *const an[] = { "a.test. 300 IN A 198.51.100.7", NULL };
	uint8_t q[PKT_MAX], a[PKT_MAX], out[PKT_MAX];
	size_t qlen = query("a.test", 1, false, q), olen = PKT_MAX;
	size_t alen = answer("a.test", 7, 0, false, an, NULL, a);
	struct dcache c;
	struct dcache_owner o;

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	dcache_owner_init(&c, &o);
	q[12] = 0xc0;	/* the name now starts with a compression pointer */
	cr_assert_eq(dcache_put(&o, q, qlen, a, alen, PKT_MAX, NULL, 0, 86400, T0), 1);
	cr_assert_eq(get(&o, q, qlen, T0, out, &olen), 1);
	cr_assert_eq(c.n, 0u);
	dcache_fini(&c);
}

/*
 * Query Q (QLEN bytes, EDNS) with an option of 4 bytes appended to its
 * OPT record, holding TAIL: what a client may vary freely.
 */
static size_t with_option(const uint8_t *q, size_t qlen, uint32_t tail,
			  uint8_t *out)
{
	static const uint8_t opt[] = { 0xfd, 0xe9, 0, 4 };	/* local use */

	memcpy(out, q, qlen);
	cr_assert_eq(out[qlen - 2] << 8 | out[qlen - 1], 0, "OPT without options");
	out[qlen - 1] = sizeof(opt) + 4;
	memcpy(out + qlen, opt, sizeof(opt));
	for (int i = 0; i < 4; i++)
		out[qlen + sizeof(opt) + i] = tail >> (24 - 8 * i);
	return qlen + sizeof(opt) + 4;
}

#define AIMED	1000

/*
 * A bucket is not the tenant's to choose. The key is the upstream digest
 * (the tenant knows its nameservers) and the query as sent; with FNV-1a
 * as the bucket hash the low 16 bits of its state depend only on their
 * own past, so 4 bytes of an EDNS option are enough to put every entry
 * in one bucket, and every lookup (a miss too) walks them all in the
 * daemon's only thread.
 */
Test(dcache, buckets_unaimed)
{
	static const char *const an[] = { "a.test. 300 IN A 198.51.100.7", NULL };
	uint8_t q[PKT_MAX], qo[PKT_MAX], key[PKT_MAX], a[PKT_MAX], out[PKT_MAX];
	size_t qlen = query("a.test", 1, true, q), qolen, alen, olen;
	uint64_t digest = dcache_digest("up", 2, 0), h0, target = 0;
	uint32_t tails[AIMED + 1];
	size_t n = 0;
	struct dcache c;
	struct dcache_owner o;
	unsigned long before;

	alen = answer("a.test", 7, 0, false, an, NULL, a);
	/* the key of the FNV-1a era: digest, then the query past its id */
	qolen = with_option(q, qlen, 0, qo);
	memcpy(key, &digest, 8);
	memcpy(key + 8, qo + 2, qolen - 2);
	h0 = dcache_digest(key, 8 + qolen - 2 - 4, 0);
	for (uint32_t t = 0; n <= AIMED && t < UINT32_MAX; t++) {
		uint64_t h = h0;

		for (int i = 0; i < 4; i++)
			h = (h ^ (uint8_t)(t >> (24 - 8 * i))) * 0x100000001b3ull;
		if (!t)
			target = h & (DCACHE_BUCKETS - 1);
		if ((h & (DCACHE_BUCKETS - 1)) == target)
			tails[n++] = t;
	}
	cr_assert_eq(n, (size_t)AIMED + 1);

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	dcache_owner_init(&c, &o);
	dcache_set_upstreams(&o, digest);
	for (size_t i = 0; i < AIMED; i++) {
		qolen = with_option(q, qlen, tails[i], qo);
		cr_assert_eq(dcache_put(&o, qo, qolen, a, alen, PKT_MAX, NULL, 0, 86400, T0), 0);
	}
	cr_assert_eq(o.n, (size_t)AIMED, "the entries do not fit the owner's bound");
	before = c.probes;
	qolen = with_option(q, qlen, tails[AIMED], qo);	/* a miss */
	olen = PKT_MAX;
	cr_assert_eq(get(&o, qo, qolen, T0, out, &olen), 1);
	qolen = with_option(q, qlen, tails[0], qo);	/* a hit */
	olen = PKT_MAX;
	cr_assert_eq(get(&o, qo, qolen, T0, out, &olen), 0);
	cr_assert_leq(c.probes - before, 16u,
		      "a tenant aimed its entries at one bucket: two lookups compared %lu",
		      c.probes - before);
	dcache_fini(&c);
}

/*
 * Nor do N registrations asking the same name through the same upstream
 * (Docker's 127.0.0.11) share one chain: the key was the same for all.
 */
Test(dcache, buckets_per_owner)
{
	static const char *const an[] = { "a.test. 300 IN A 198.51.100.7", NULL };
	static struct dcache_owner many[256];
	uint8_t q[PKT_MAX], a[PKT_MAX], out[PKT_MAX];
	size_t qlen = query("a.test", 1, true, q), olen = PKT_MAX;
	size_t alen = answer("a.test", 7, 0, false, an, NULL, a);
	uint64_t digest = dcache_digest("up", 2, 0);
	unsigned long before;
	struct dcache c;

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	for (size_t i = 0; i < 256; i++) {
		dcache_owner_init(&c, &many[i]);
		dcache_set_upstreams(&many[i], digest);
		cr_assert_eq(dcache_put(&many[i], q, qlen, a, alen, PKT_MAX, NULL, 0, 86400, T0), 0);
	}
	before = c.probes;
	cr_assert_eq(get(&many[0], q, qlen, T0, out, &olen), 0);
	cr_assert_leq(c.probes - before, 8u,
		      "256 owners' entries for one name share a chain: %lu compared",
		      c.probes - before);
	dcache_fini(&c);
}

/*
 * The buckets grow with the entries (one each, DCACHE_BUCKETS at most):
 * every entry is still found after each doubling, and a lookup compares
 * about one entry, not a chain as long as the entries over the first
 * size.
 */
Test(dcache, buckets_grow)
{
	const int n = 3000;
	struct dcache c;
	struct dcache_owner o;
	unsigned long before;

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_TOTAL_BYTES);
	dcache_owner_init(&c, &o);
	put_name(&o, 0, T0);
	cr_assert_eq(c.n_buckets, DCACHE_BUCKETS_MIN);
	for (int i = 1; i < n; i++)
		put_name(&o, i, T0);
	cr_assert_eq(o.n, (size_t)n);
	cr_assert_geq(c.n_buckets, (size_t)n);
	cr_assert_leq(c.n_buckets, (size_t)DCACHE_BUCKETS);
	before = c.probes;
	for (int i = 0; i < n; i++)
		cr_assert(has_name(&o, i), "n%d.test lost in a doubling", i);
	cr_assert_leq(c.probes - before, 2ul * n,
		      "%d hits compared %lu entries", n, c.probes - before);
	dcache_flush(&o);
	cr_assert_eq(c.n, 0u);
	put_name(&o, 1, T0);
	cr_assert(has_name(&o, 1));
	dcache_fini(&c);
	cr_assert_eq(c.n_buckets, 0u);
}

/*
 * What the caller keeps with an answer comes back with every hit, with
 * the entry's life and the whole seconds elapsed, from which the TTL a
 * record was served with follows; more than DCACHE_MAX_META is refused.
 */
Test(dcache, meta_and_served_ttl)
{
	static const char *const an[] = { "m.test. 300 IN A 198.51.100.7", NULL };
	static uint8_t big[DCACHE_MAX_META + 1];
	uint8_t q[PKT_MAX], a[PKT_MAX], out[PKT_MAX];
	size_t qlen = query("m.test", 1, false, q);
	size_t alen = answer("m.test", 7, 0, false, an, NULL, a), olen = PKT_MAX;
	const char meta[] = "ports, addresses, name";
	struct dcache c;
	struct dcache_owner o;
	struct dcache_hit hit;

	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	dcache_owner_init(&c, &o);
	cr_assert_eq(dcache_put(&o, q, qlen, a, alen, PKT_MAX, big, sizeof(big),
				86400, T0), 1);
	cr_assert_eq(dcache_put(&o, q, qlen, a, alen, PKT_MAX, meta, sizeof(meta),
				60, T0), 0);
	cr_assert_eq(dcache_get(&o, q, qlen, false, T0 + 2500, out, &olen, &hit), 0);
	cr_assert_eq(hit.metalen, sizeof(meta));
	cr_assert_str_eq(hit.meta, meta);
	cr_assert_eq(hit.life_s, 60u);
	cr_assert_eq(hit.elapsed_s, 2u);
	/* the record said 300, the entry lives 60 s, 2 s went by */
	cr_assert_eq(dcache_ttl_served(300, hit.life_s, hit.elapsed_s), 58u);
	cr_assert_eq(out[olen - 10] << 24 | out[olen - 9] << 16 |
		     out[olen - 8] << 8 | out[olen - 7], 58, "served TTL");
	cr_assert_eq(dcache_ttl_served(1, 60, 2), 0u);
	cr_assert_eq(dcache_ttl_served(0x80000000u, 60, 0), 0u);
	dcache_fini(&c);
}
