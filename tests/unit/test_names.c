// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Names over shared addresses (docs/names.md): the ?names=any opt-out in
 * the rule grammar, and the name entries the compiler writes for the
 * sk_msg check (keys as the BPF program computes them while walking a
 * name backwards).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ldns/ldns.h>

#include "dns.h"
#include "policy.h"
#include "mapkey.h"
#include "moat_names.h"
#include "names.h"

#include "table.h"

struct opt_row {
	const char *desc;
	const char *in;
	int ok;
	__u8 protos;
	const char *canonical;
};

static const struct opt_row opt[] = {
	{ "ssh by name, opted out", "tcp://github.com:22?names=any", 1,
	  MOAT_PROTO_TCP | MOAT_PROTO_NAMES_ANY, "tcp://github.com:22?names=any" },
	{ "QUIC allowed", "udp://quic.example:443?names=any", 1,
	  MOAT_PROTO_UDP | MOAT_PROTO_NAMES_ANY, "udp://quic.example:443?names=any" },
	{ "wildcard, both protocols", "*.db.example?NAMES=ANY", 1,
	  MOAT_PROTO_ALL | MOAT_PROTO_NAMES_ANY, "*.db.example?names=any" },
	{ "plain domain rule is checked", "registry.example:443", 1,
	  MOAT_PROTO_ALL, "registry.example:443" },
	{ "address rules are never checked", "198.51.100.7:22?names=any", 0, 0, NULL },
	{ "unknown option", "github.com:22?names=some", 0, 0, NULL },
};

ParameterizedTestParameters(names, opt_out)
{
	ROW_INDICES(opt);
}

ParameterizedTest(size_t *i, names, opt_out)
{
	const struct opt_row *row = &opt[*i];
	struct moat_rule r;
	struct moat_err err = { 0 };
	char buf[MOAT_RULE_TEXT_LEN + 32];
	int ret = rule_parse(row->in, "test", &r, &err);

	if (!row->ok) {
		cr_assert_neq(ret, 0, "%s: '%s' parsed", row->desc, row->in);
		return;
	}
	cr_assert_eq(ret, 0, "%s: %s", row->desc, err.msg);
	cr_assert_eq(r.protos, row->protos, "%s: protos %#x", row->desc, r.protos);
	rule_format(&r, buf, sizeof(buf));
	cr_assert_str_eq(buf, row->canonical, "%s", row->desc);
}

/* The key of every label suffix comes out of one backward walk. */
Test(names, suffix_keys_from_one_walk)
{
	const char *name = "a.b.example.test";
	size_t len = strlen(name);
	__u64 h = MOAT_FNV_OFFSET;
	struct moat_name_key k;
	int suffixes = 0;

	for (size_t x = 0; x < len; x++) {
		size_t i = len - 1 - x;

		h = moat_name_hash_step(h, (unsigned char)name[i]);
		if (i > 0 && name[i - 1] == '.') {
			mapkey_name(&k, 7, name + i, len - i, MOAT_NAME_SUFFIX);
			cr_assert_eq(k.hash, h, "suffix %s", name + i);
			suffixes++;
		}
	}
	mapkey_name(&k, 7, name, len, MOAT_NAME_EXACT);
	cr_assert_eq(k.hash, h);
	cr_assert_eq(suffixes, 3);
}

static const struct moat_policy_spec *spec_of(const char *const *rules,
					      struct moat_policy_spec *p)
{
	struct moat_err err = { 0 };

	policy_init(p);
	for (; *rules; rules++)
		cr_assert_eq(policy_add_rule(p, 0, *rules, &err), 0, "%s", err.msg);
	return p;
}

Test(names, compiled_entries)
{
	static const char *const rules[] = {
		"tcp://allowed.test:443", "allowed.test:8080", "*.example.test:443",
		"tcp://git.test:22?names=any", "udp://only-udp.test:53",
		"198.51.100.7", NULL,
	};
	struct moat_policy_spec p;
	struct moat_compiled c;
	struct moat_err err = { 0 };
	struct moat_name_key k;

	cr_assert_eq(policy_compile(spec_of(rules, &p), &c, &err), 0, "%s", err.msg);
	/* allowed.test (two rules, one entry), example.test as a suffix */
	cr_assert_eq(c.n_names, 2);
	mapkey_name(&k, 0, "allowed.test", 12, MOAT_NAME_EXACT);
	cr_assert_eq(c.names[0].key.hash, k.hash);
	cr_assert_eq(c.names[0].key.kind, MOAT_NAME_EXACT);
	cr_assert_eq(memcmp(c.names[0].val.name, "allowed.test", 12), 0);
	cr_assert_eq(c.names[0].ranges.n_ranges, 2);
	cr_assert_eq(c.names[0].ranges.ranges[0].first, 443);
	cr_assert_eq(c.names[0].ranges.ranges[1].first, 8080);
	cr_assert_eq(c.names[1].key.kind, MOAT_NAME_SUFFIX);
	cr_assert_eq(c.names[1].key.len, strlen("example.test"));
	compiled_free(&c);
	policy_free(&p);
}

/*
 * Many names: one entry per (name, kind) however far apart its rules
 * stand, in the order of first appearance, ports united; an exact name
 * and the same name as a suffix stay two entries. Past MOAT_MAX_NAMES a
 * policy is refused at compile time with the bound named.
 */
Test(names, many_names_merge)
{
	enum { N = 5000 };
	struct moat_policy_spec p;
	struct moat_compiled c;
	struct moat_err err = { 0 };
	char rule[96];

	policy_init(&p);
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < N; i++) {
			snprintf(rule, sizeof(rule), "tcp://n%d.many.test:%d",
				 N - 1 - i, pass ? 8443 : 443);
			cr_assert_eq(policy_add_rule(&p, 0, rule, &err), 0, "%s", err.msg);
		}
	cr_assert_eq(policy_add_rule(&p, 0, "tcp://*.n7.many.test:443", &err), 0);
	cr_assert_eq(policy_compile(&p, &c, &err), 0, "%s", err.msg);
	cr_assert_eq(c.n_names, N + 1);
	for (int i = 0; i < N; i++) {
		snprintf(rule, sizeof(rule), "n%d.many.test", N - 1 - i);
		cr_assert_eq(c.names[i].key.kind, MOAT_NAME_EXACT);
		cr_assert_eq(c.names[i].key.len, strlen(rule));
		cr_assert_eq(memcmp(c.names[i].val.name, rule, strlen(rule)), 0,
			     "entry %d is not %s", i, rule);
		cr_assert_eq(c.names[i].ranges.n_ranges, 2);
		cr_assert_eq(c.names[i].ranges.ranges[0].first, 443);
		cr_assert_eq(c.names[i].ranges.ranges[1].first, 8443);
	}
	cr_assert_eq(c.names[N].key.kind, MOAT_NAME_SUFFIX);
	cr_assert_eq(memcmp(c.names[N].val.name, "n7.many.test", 12), 0);
	compiled_free(&c);
	policy_free(&p);

	policy_init(&p);
	for (int i = 0; i <= MOAT_MAX_NAMES; i++) {
		snprintf(rule, sizeof(rule), "tcp://b%d.bound.test:443", i);
		cr_assert_eq(policy_add_rule(&p, 0, rule, &err), 0, "%s", err.msg);
	}
	cr_assert_eq(policy_compile(&p, &c, &err), -E2BIG);
	cr_assert(strstr(err.msg, "MOAT_MAX_NAMES"), "%s", err.msg);
	policy_free(&p);
}

/* The resolver's answers lose `ech`, keep their length and their hints. */
Test(names, strip_ech)
{
	ldns_pkt *p = ldns_pkt_new(), *back = NULL;
	ldns_rr *rr = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	const ldns_rdf *params;
	const uint8_t *d;
	size_t size, off;
	int keys[8], nk = 0;

	cr_assert_eq(ldns_rr_new_frm_str(&rr, "svc.test. 60 IN HTTPS 1 . alpn=h2 "
					 "ipv4hint=198.51.100.7 ech=AEX+DQBB "
					 "ipv6hint=2001:db8::7", 0, NULL, NULL),
		     LDNS_STATUS_OK);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	cr_assert_eq(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	cr_assert_eq(dns_strip_ech(wire, len), 1);
	cr_assert_eq(dns_strip_ech(wire, len), 0, "nothing left to strip");
	cr_assert_eq(ldns_wire2pkt(&back, wire, len), LDNS_STATUS_OK);
	params = ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(back), 0), 2);
	d = ldns_rdf_data(params);
	size = ldns_rdf_size(params);
	for (off = 0; off + 4 <= size && nk < 8; off += 4 + (d[off + 2] << 8 | d[off + 3]))
		keys[nk++] = d[off] << 8 | d[off + 1];
	cr_assert_eq(off, size);
	cr_assert_eq(nk, 4);
	cr_assert_eq(keys[0], 1);	/* alpn */
	cr_assert_eq(keys[1], 4);	/* ipv4hint */
	cr_assert_eq(keys[2], 6);	/* ipv6hint */
	cr_assert_eq(keys[3], 65534);	/* the filler, where ech's bytes were */
	ldns_pkt_free(back);
	ldns_pkt_free(p);
	free(wire);
}

/* Whether the SvcParams P (SIZE bytes) still carry `ech` (key 5). */
static bool params_have_ech(const uint8_t *d, size_t size)
{
	for (size_t off = 0; off + 4 <= size; off += 4 + (d[off + 2] << 8 | d[off + 3]))
		if ((d[off] << 8 | d[off + 1]) == 5)
			return true;
	return false;
}

/*
 * An upstream puts the HTTPS record's SvcParams bytes, as they are, in an
 * unknown record before it, and compresses the names. The strip must
 * change the HTTPS record, found by walking the wire to its rdata, and
 * leave the other record's bytes alone (it searched for the bytes
 * before: the first copy was "stripped" and the HTTPS record kept `ech`).
 */
Test(names, strip_ech_finds_the_record_not_its_bytes)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str("svc.test."),
					 LDNS_RR_TYPE_HTTPS, LDNS_RR_CLASS_IN, 0);
	ldns_rr *https = NULL, *decoy = ldns_rr_new(), *got;
	ldns_pkt *back = NULL;
	const ldns_rdf *params;
	uint8_t *wire = NULL, *decoy_before;
	size_t len = 0, size;

	ldns_pkt_set_qr(p, true);
	cr_assert_eq(ldns_rr_new_frm_str(&https, "svc.test. 60 IN HTTPS 1 . alpn=h2 "
					 "ech=AEX+DQBB", 0, NULL, NULL), LDNS_STATUS_OK);
	params = ldns_rr_rdf(https, 2);
	size = ldns_rdf_size(params);
	ldns_rr_set_owner(decoy, ldns_dname_new_frm_str("svc.test."));
	ldns_rr_set_type(decoy, (ldns_rr_type)65280);
	ldns_rr_set_class(decoy, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(decoy, 60);
	ldns_rr_push_rdf(decoy, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, size,
						      ldns_rdf_data(params)));
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, decoy);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, https);
	cr_assert_eq(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	decoy_before = malloc(size);
	memcpy(decoy_before, ldns_rdf_data(params), size);

	cr_assert_eq(dns_strip_ech(wire, len), 1);
	cr_assert_eq(ldns_wire2pkt(&back, wire, len), LDNS_STATUS_OK);
	got = ldns_rr_list_rr(ldns_pkt_answer(back), 0);
	cr_assert_eq(ldns_rdf_size(ldns_rr_rdf(got, 0)), size);
	cr_assert_arr_eq(ldns_rdf_data(ldns_rr_rdf(got, 0)), decoy_before, size,
			 "the unknown record's rdata was changed");
	got = ldns_rr_list_rr(ldns_pkt_answer(back), 1);
	cr_assert_eq(ldns_rr_get_type(got), LDNS_RR_TYPE_HTTPS);
	params = ldns_rr_rdf(got, 2);
	cr_assert_not(params_have_ech(ldns_rdf_data(params), ldns_rdf_size(params)),
		      "the HTTPS record kept its ech");
	/* a message the walk cannot follow is refused, not half-stripped */
	cr_assert_eq(dns_strip_ech(wire, 20), -EBADMSG);
	free(decoy_before);
	ldns_pkt_free(back);
	ldns_pkt_free(p);
	free(wire);
}
