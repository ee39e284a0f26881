// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Names over shared addresses (issue 14, docs/names.md). The compiler
 * side: each domain rule's name (exact, or the suffix of *.suffix) with
 * the union of the TCP ports its rules allow, keyed by moat_name_hash so
 * that the sk_msg program finds the entry for a TLS SNI or HTTP Host
 * while walking it once; the value repeats the name for a byte compare.
 * Rules with ?names=any make no entry: their addresses are not checked.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "ldns_lazy.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "dns.h"
#include "learn.h"
#include "log.h"
#include "mapkey.h"
#include "moat.skel.h"
#include "names.h"
#include "policy.h"
#include "state.h"

/* a rule under the name check, as names_compile() sorts them */
struct named_rule {
	const struct moat_rule *r;
	size_t idx;			/* in the policy: first appearance wins */
	size_t len;
	__u8 kind;
};

static int named_cmp(const void *pa, const void *pb)
{
	const struct named_rule *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->r->domain, b->r->domain, a->len) ?:
	       (a->idx < b->idx ? -1 : a->idx > b->idx);
}

static int first_cmp(const void *pa, const void *pb)
{
	const struct compiled_name *a = pa, *b = pb;

	/* val.n_ranges holds the first rule's index until names_compile ends */
	return a->val.n_ranges < b->val.n_ranges ? -1 : a->val.n_ranges > b->val.n_ranges;
}

/*
 * Sorting the rules by (kind, name) and taking each run as one entry
 * keeps this O(n log n): a policy with tens of thousands of names is
 * compiled on every container start.
 */
int names_compile(const struct moat_policy_spec *p, struct moat_compiled *c,
		  struct moat_err *err)
{
	struct named_rule *nr;
	size_t n = 0;
	int ret = 0;

	c->n_names = 0;
	c->names = calloc(p->n_allow + 1, sizeof(*c->names));
	nr = calloc(p->n_allow + 1, sizeof(*nr));
	if (!c->names || !nr) {
		free(nr);
		policy_errf(err, "%s: out of memory", p->source);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_allow; i++) {
		const struct moat_rule *r = &p->allow[i];
		__u8 kind;

		if (r->kind == RULE_DOMAIN)
			kind = MOAT_NAME_EXACT;
		else if (r->kind == RULE_WILDCARD)
			kind = MOAT_NAME_SUFFIX;
		else
			continue;
		if (!(r->protos & MOAT_PROTO_TCP) ||
		    (r->protos & MOAT_PROTO_NAMES_ANY) ||
		    strlen(r->domain) >= MOAT_NAME_LEN)
			continue;
		nr[n++] = (struct named_rule){ .r = r, .idx = i, .kind = kind,
					       .len = strlen(r->domain) };
	}
	qsort(nr, n, sizeof(*nr), named_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct moat_rule *r = nr[i].r;
		struct compiled_name *e;

		if (!i || nr[i - 1].kind != nr[i].kind || nr[i - 1].len != nr[i].len ||
		    memcmp(nr[i - 1].r->domain, r->domain, nr[i].len)) {
			e = &c->names[c->n_names++];
			memset(e, 0, sizeof(*e));
			mapkey_name(&e->key, 0, r->domain, nr[i].len, nr[i].kind);
			memcpy(e->val.name, r->domain, nr[i].len);
			e->val.n_ranges = nr[i].idx;
		} else {
			e = &c->names[c->n_names - 1];
		}
		if (ranges_add(&e->ranges,
			       MOAT_PROTO_TCP, r->port_first, r->port_last)) {
			policy_errf(err, "%s: %s: the rules naming it need more than %d port ranges (MOAT_MAX_PORT_RANGES); merge or widen their ports",
				    p->source, r->text, MOAT_MAX_PORT_RANGES);
			ret = -E2BIG;
			goto out;
		}
	}
	/* the policy's order, as before: entries by their first rule */
	qsort(c->names, c->n_names, sizeof(*c->names), first_cmp);
	for (size_t i = 0; i < c->n_names; i++)
		c->names[i].val.n_ranges = 0;
	/* one policy alone past the map's bound could never be attached */
	if (c->n_names > MOAT_MAX_NAMES) {
		policy_errf(err, "%s: %zu names under the TLS/HTTP name check, and the kernel holds at most %d across every enforced policy (MOAT_MAX_NAMES): use wildcards, fewer names, or ?names=any on rules that need no name check",
			    p->source, c->n_names, MOAT_MAX_NAMES);
		ret = -E2BIG;
	}
out:
	free(nr);
	return ret;
}

int names_write(struct moat_state *st, __u32 pid, const struct moat_compiled *c)
{
	for (size_t i = 0; i < c->n_names; i++) {
		struct moat_name_key k = c->names[i].key;
		struct moat_name_val v = c->names[i].val;

		v.n_ranges = c->names[i].ranges.n_ranges;
		memcpy(v.ranges, c->names[i].ranges.ranges, sizeof(v.ranges));
		k.policy_id = pid;
		if (bpf_map_update_elem(st->map[M_NAMES], &k, &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

int names_purge(struct moat_state *st, const unsigned char *dead)
{
	struct moat_name_key key, *prev = NULL, *keys = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	/* collect first: deleting while walking restarts hash walks */
	while (!bpf_map_get_next_key(st->map[M_NAMES], prev, &key)) {
		prev = &key;
		if (key.policy_id >= MOAT_MAX_POLICIES || !dead[key.policy_id])
			continue;
		if (n == cap) {
			void *v;

			cap = cap ? cap * 2 : 64;
			v = realloc(keys, cap * sizeof(*keys));
			if (!v) {
				free(keys);
				return -ENOMEM;
			}
			keys = v;
		}
		keys[n++] = key;
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(st->map[M_NAMES], &keys[i]) && errno != ENOENT)
			err = err ?: -errno;
	free(keys);
	return err;
}

/* Whether rule R is under the name check, and what it says of QUIC. */
static void rule_names_text(const struct moat_rule *r, char *buf, size_t len)
{
	char text[MOAT_RULE_TEXT_LEN + 32];
	bool quic = (r->protos & MOAT_PROTO_UDP) && r->port_first <= 443 &&
		    r->port_last >= 443;

	rule_format(r, text, sizeof(text));
	if (r->protos & MOAT_PROTO_NAMES_ANY)
		snprintf(buf, len, "%s: not name-checked (opted out with ?names=any)%s",
			 text, quic ? "; QUIC (udp 443) allowed" : "");
	else
		snprintf(buf, len, "%s: TCP carries data only as TLS with an allowed SNI or "
			 "HTTP/1.x with an allowed Host%s", text,
			 quic ? "; QUIC (udp 443) refused: add ?names=any to allow it" : "");
}

void names_policy_json(const struct moat_policy_spec *p, json_object *o)
{
	json_object *a = json_object_new_array();
	char buf[MOAT_RULE_TEXT_LEN + 256];

	for (size_t i = 0; i < p->n_allow; i++) {
		const struct moat_rule *r = &p->allow[i];

		if (r->kind != RULE_DOMAIN && r->kind != RULE_WILDCARD)
			continue;
		rule_names_text(r, buf, sizeof(buf));
		json_object_array_add(a, json_object_new_string(buf));
	}
	json_object_object_add(o, "names", a);
}

json_object *names_opt_outs_json(const struct moat_policy_spec *p)
{
	json_object *a = json_object_new_array();
	char text[MOAT_RULE_TEXT_LEN + 32];

	for (size_t i = 0; i < p->n_allow; i++) {
		const struct moat_rule *r = &p->allow[i];

		if ((r->kind != RULE_DOMAIN && r->kind != RULE_WILDCARD) ||
		    !(r->protos & MOAT_PROTO_NAMES_ANY))
			continue;
		rule_format(r, text, sizeof(text));
		json_object_array_add(a, json_object_new_string(text));
	}
	return a;
}

void names_policy_print(const struct moat_policy_spec *p)
{
	char buf[MOAT_RULE_TEXT_LEN + 256];

	for (size_t i = 0; i < p->n_allow; i++) {
		const struct moat_rule *r = &p->allow[i];

		if (r->kind != RULE_DOMAIN && r->kind != RULE_WILDCARD)
			continue;
		rule_names_text(r, buf, sizeof(buf));
		printf("  names: %s\n", buf);
	}
}

/*
 * ---- ECH: the resolver strips it (docs/names.md) ----
 * An ECH client sends the provider's public name as outer SNI, which the
 * check would refuse; without an `ech` SvcParam it sends the real name.
 * The answer is rewritten in place, keeping its length (SvcParams hold no
 * compressible names, so nothing else moves): the `ech` parameter is
 * dropped and the later parameters move up, and a parameter of the
 * private-use key 65534 with the same length (zeros) is appended, which
 * clients ignore. A list that does not parse, or that already ends in
 * a key of 65534 or more, is left alone.
 */
#define SVCB_KEY_ECH		5
#define SVCB_KEY_FILLER		65534

static bool strip_ech_params(uint8_t *d, size_t size)
{
	size_t off, vlen = 0, ech_off = 0, ech_len = 0, out = 0;
	uint8_t *tmp;
	int prev = -1;
	bool found = false;

	for (off = 0; off < size; off += 4 + vlen) {
		unsigned int key;

		if (size - off < 4)
			return false;
		key = (unsigned int)d[off] << 8 | d[off + 1];
		vlen = (size_t)d[off + 2] << 8 | d[off + 3];
		if (vlen > size - off - 4 || (int)key <= prev)
			return false;
		prev = (int)key;
		if (key == SVCB_KEY_ECH) {
			found = true;
			ech_off = off;
			ech_len = vlen;
		}
	}
	if (!found || prev >= SVCB_KEY_FILLER)
		return false;
	tmp = malloc(size);
	if (!tmp)
		return false;
	memcpy(tmp, d, ech_off);
	out = ech_off;
	memcpy(tmp + out, d + ech_off + 4 + ech_len, size - ech_off - 4 - ech_len);
	out += size - ech_off - 4 - ech_len;
	tmp[out++] = SVCB_KEY_FILLER >> 8;
	tmp[out++] = SVCB_KEY_FILLER & 0xff;
	tmp[out++] = (uint8_t)(ech_len >> 8);
	tmp[out++] = (uint8_t)ech_len;
	memset(tmp + out, 0, ech_len);
	memcpy(d, tmp, size);
	free(tmp);
	return true;
}

int dns_strip_ech(uint8_t *pkt, size_t len)
{
	const ldns_rr_list *an;
	ldns_pkt *p = NULL;
	size_t i = 12;
	int n = 0;

	if (ldns_wire2pkt(&p, pkt, len) != LDNS_STATUS_OK)
		return -EBADMSG;
	an = ldns_pkt_answer(p);
	/*
	 * Each answer record's SvcParams are found in the wire by walking
	 * to its rdata, whose tail they are: not by searching for their
	 * bytes, which an upstream can also put earlier in the message (an
	 * unknown record's rdata), so that the strip changes those and the
	 * HTTPS record keeps its `ech` (an attacker's review, issue 18).
	 */
	for (unsigned int q = 0; q < ldns_pkt_qdcount(p); q++)
		if (dns_wire_skip_name(pkt, len, &i) || (i += 4) > len)
			goto bad;
	for (size_t k = 0; k < ldns_rr_list_rr_count(an); k++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, k);
		const ldns_rdf *params;
		size_t rdlen, size;

		if (dns_wire_skip_name(pkt, len, &i) || i + 10 > len ||
		    (unsigned int)(pkt[i] << 8 | pkt[i + 1]) != ldns_rr_get_type(rr))
			goto bad;
		rdlen = (size_t)pkt[i + 8] << 8 | pkt[i + 9];
		i += 10;
		if (rdlen > len - i)
			goto bad;
		i += rdlen;	/* past this record: its rdata ends at i */
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SVCB &&
		    ldns_rr_get_type(rr) != LDNS_RR_TYPE_HTTPS)
			continue;
		if (ldns_rr_rd_count(rr) < 3)
			continue;
		params = ldns_rr_rdf(rr, 2);
		if (ldns_rdf_get_type(params) != LDNS_RDF_TYPE_SVCPARAMS)
			continue;
		size = ldns_rdf_size(params);
		if (!size || size > rdlen ||
		    memcmp(pkt + i - size, ldns_rdf_data(params), size))
			continue;
		if (strip_ech_params(pkt + i - size, size))
			n++;
	}
	ldns_pkt_free(p);
	return n;
bad:
	ldns_pkt_free(p);
	return -EBADMSG;
}
