// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * DNS messages for the resolver, decoded and encoded with ldns.
 *
 * ldns does the wire work: ldns_wire2pkt() checks every length and
 * compression pointer and hands back typed records. The one thing it does
 * not take apart is the SvcParams of SVCB/HTTPS (RFC 9460): it keeps them
 * as a single LDNS_RDF_TYPE_SVCPARAMS rdf of raw "key, length, value"
 * triples and only knows how to print them. svcb_hints() walks that rdf,
 * checking each length against the rdf's size before it reads.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "ldns_lazy.h"

#include "dns.h"
#include "policy.h"

/* RFC 2181, 8: a TTL with the top bit set is to be read as zero. */
#define DNS_TTL_MAX	0x7fffffffu

static int wire_parse(const uint8_t *pkt, size_t len, ldns_pkt **p)
{
	if (!pkt || !len)
		return -EBADMSG;
	if (ldns_wire2pkt(p, pkt, len) != LDNS_STATUS_OK)
		return -EBADMSG;
	/* Nothing here signs or checks TSIG; refuse it rather than pass it. */
	if (ldns_pkt_tsig(*p)) {
		ldns_pkt_free(*p);
		*p = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* A name in presentation form ("" or "." is the root); NULL if invalid. */
static ldns_rdf *name_from_str(const char *s)
{
	return ldns_dname_new_frm_str(*s ? s : ".");
}

/* ASCII only: DNS folds no other case (RFC 4343, 3). */
static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * Wire names A and B (as ldns holds them: uncompressed, with the root
 * label) are the same name. ldns_dname_compare() orders names; equality
 * needs no label walk: the length octets (< 64) fold to themselves, so
 * two wire names are equal iff their octets are, case aside.
 */
static bool wire_equal(const uint8_t *a, size_t alen, const uint8_t *b,
		       size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

static bool rdf_is(const ldns_rdf *name, const uint8_t *w, size_t wlen)
{
	return wire_equal(ldns_rdf_data(name), ldns_rdf_size(name), w, wlen);
}

/*
 * Wire name D (SIZE octets) in the form of dns.h when none of its bytes
 * is one ldns escapes (letters, digits, '-' and '_' print as they are):
 * its labels, lower case, joined by dots; 1 for any other name. Issue 18:
 * ldns_rdf2str() prints a name a byte at a time through printf, the
 * largest term of a miss's parsing, and almost every name is plain.
 */
static int plain_name_str(const uint8_t *d, size_t size, char *buf, size_t len)
{
	size_t o = 0, i = 0;

	while (i < size && d[i]) {
		size_t l = d[i++];

		if (l > 63 || i + l > size || o + l + 1 >= len)
			return 1;
		if (o)
			buf[o++] = '.';
		for (; l; l--, i++) {
			uint8_t c = lower(d[i]);

			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      c == '-' || c == '_'))
				return 1;
			buf[o++] = (char)c;
		}
	}
	if (i + 1 != size)
		return 1;
	buf[o] = '\0';
	return 0;
}

/* The form described in dns.h: lower case, no trailing dot. */
static int name_to_str(const ldns_rdf *name, char *buf, size_t len)
{
	ldns_rdf *lc;
	char *s;
	size_t n;
	int err = 0;

	if (!plain_name_str(ldns_rdf_data(name), ldns_rdf_size(name), buf, len))
		return 0;
	lc = ldns_rdf_clone(name);
	if (!lc)
		return -ENOMEM;
	ldns_dname2canonical(lc);
	s = ldns_rdf2str(lc);
	ldns_rdf_deep_free(lc);
	if (!s)
		return -ENOMEM;
	/* ldns always ends an absolute name with the root's dot. */
	n = strlen(s);
	if (n && s[n - 1] == '.')
		n--;
	if (n >= len) {
		err = -EBADMSG;
	} else {
		memcpy(buf, s, n);
		buf[n] = '\0';
	}
	free(s);
	return err;
}

/* The wire form of dns_question's qname, lower case. */
static int question_wire(struct dns_question *q, const ldns_rdf *owner)
{
	if (!ldns_rdf_size(owner) || ldns_rdf_size(owner) > sizeof(q->qwire))
		return -EBADMSG;
	q->qwire_len = (uint8_t)ldns_rdf_size(owner);
	for (size_t i = 0; i < q->qwire_len; i++)
		q->qwire[i] = lower(ldns_rdf_data(owner)[i]);
	return 0;
}

int dns_question_set_name(struct dns_question *q, const char *name)
{
	ldns_rdf *rdf = name_from_str(name);
	int err;

	if (!rdf)
		return -EINVAL;
	err = name_to_str(rdf, q->qname, sizeof(q->qname)) ?:
	      question_wire(q, rdf);
	ldns_rdf_deep_free(rdf);
	return err;
}

static ldns_rr *single_question(const ldns_pkt *p)
{
	const ldns_rr_list *qs = ldns_pkt_question(p);

	if (ldns_pkt_qdcount(p) != 1 || ldns_rr_list_rr_count(qs) != 1)
		return NULL;
	return ldns_rr_list_rr(qs, 0);
}

/* dns_query_parse()'s checks and fields, on the parsed message P. */
static int query_of(const ldns_pkt *p, struct dns_question *q)
{
	const ldns_rdf *owner;
	ldns_rr *qr;
	int err;

	if (ldns_pkt_qr(p))
		return -EBADMSG;
	if (ldns_pkt_get_opcode(p) != LDNS_PACKET_QUERY)
		return -EOPNOTSUPP;
	qr = single_question(p);
	if (!qr || ldns_pkt_ancount(p) || ldns_pkt_nscount(p))
		return -EBADMSG;

	memset(q, 0, sizeof(*q));
	owner = ldns_rr_owner(qr);
	err = name_to_str(owner, q->qname, sizeof(q->qname));
	if (err)
		return err;
	err = question_wire(q, owner);
	if (err)
		return err;
	q->id = ldns_pkt_id(p);
	q->qtype = ldns_rr_get_type(qr);
	q->qclass = ldns_rr_get_class(qr);
	q->has_edns = ldns_pkt_edns(p);
	if (q->has_edns)
		q->edns_udp_size = ldns_pkt_edns_udp_size(p);
	return 0;
}

int dns_query_parse_kept(const uint8_t *pkt, size_t len,
			 struct dns_question *q, ldns_pkt **kept)
{
	ldns_pkt *p;
	int err;

	*kept = NULL;
	err = wire_parse(pkt, len, &p);
	if (err)
		return err;
	err = query_of(p, q);
	if (err)
		ldns_pkt_free(p);
	else
		*kept = p;
	return err;
}

void dns_query_kept_free(ldns_pkt *kept)
{
	if (kept)
		ldns_pkt_free(kept);
}

int dns_query_parse(const uint8_t *pkt, size_t len, struct dns_question *q)
{
	ldns_pkt *p;
	int err = dns_query_parse_kept(pkt, len, q, &p);

	dns_query_kept_free(p);
	return err;
}

static void put16(uint8_t *at, uint16_t v)
{
	at[0] = v >> 8;
	at[1] = v & 0xff;
}

/*
 * dns_query_canonical() of the parsed message P: a new message of the
 * question, RD/CD and a bare OPT; nothing else. Written here rather than
 * by ldns_pkt2wire(), which took 1.2 us a miss (a packet, a record clone
 * and a compression tree for one name, issue 18): every field is a fixed
 * width but the name, and the name is the one ldns decoded, in wire form
 * (RFC 1035, 4.1.1-4.1.2; RFC 6891, 6.1.2-6.1.3 for the OPT record).
 */
static int canonical_of(const ldns_pkt *p, uint8_t *out, size_t *outlen)
{
	const ldns_rr *qr = single_question(p);
	const ldns_rdf *name;
	size_t nlen, len;
	bool edns = ldns_pkt_edns(p);

	if (!qr)
		return -EBADMSG;
	name = ldns_rr_owner(qr);
	nlen = ldns_rdf_size(name);
	len = 12 + nlen + 4 + (edns ? 11 : 0);
	if (len > *outlen)
		return -ENOSPC;
	memset(out, 0, len);
	put16(out, ldns_pkt_id(p));
	out[2] = ldns_pkt_rd(p) ? 0x01 : 0;		/* QR 0, opcode QUERY */
	out[3] = ldns_pkt_cd(p) ? 0x10 : 0;
	put16(out + 4, 1);				/* QDCOUNT */
	put16(out + 10, edns);				/* ARCOUNT */
	memcpy(out + 12, ldns_rdf_data(name), nlen);
	put16(out + 12 + nlen, ldns_rr_get_type(qr));
	put16(out + 14 + nlen, ldns_rr_get_class(qr));
	if (edns) {
		uint8_t *opt = out + 16 + nlen;		/* opt[0]: the root */
		uint16_t size = ldns_pkt_edns_udp_size(p);

		put16(opt + 1, LDNS_RR_TYPE_OPT);
		put16(opt + 3, size < 512 ? 512 : size);	/* CLASS */
		opt[7] = ldns_pkt_edns_do(p) ? 0x80 : 0;	/* TTL: DO */
	}
	*outlen = len;
	return 0;
}

int dns_query_canonical(const uint8_t *pkt, size_t len, uint8_t *out,
			size_t *outlen)
{
	ldns_pkt *p;
	int err;

	err = wire_parse(pkt, len, &p);
	if (err)
		return err;
	err = canonical_of(p, out, outlen);
	ldns_pkt_free(p);
	return err;
}

int dns_query_canonical_kept(const ldns_pkt *kept, uint8_t *out,
			     size_t *outlen)
{
	return canonical_of(kept, out, outlen);
}

int dns_reply_rcode(const uint8_t *query, size_t qlen, int rcode,
		    uint8_t *out, size_t *outlen)
{
	ldns_pkt *qp, *rp;
	ldns_rr *qr, *copy;
	uint8_t *wire = NULL;
	size_t wlen;
	int err;

	if (rcode < 0 || rcode > 15)
		return -EINVAL;
	err = wire_parse(query, qlen, &qp);
	if (err)
		return err;
	if (ldns_pkt_qr(qp)) {
		err = -EBADMSG;
		goto out_query;
	}
	rp = ldns_pkt_new();
	if (!rp) {
		err = -ENOMEM;
		goto out_query;
	}
	ldns_pkt_set_id(rp, ldns_pkt_id(qp));
	ldns_pkt_set_qr(rp, true);
	ldns_pkt_set_opcode(rp, ldns_pkt_get_opcode(qp));
	ldns_pkt_set_rd(rp, ldns_pkt_rd(qp));
	ldns_pkt_set_cd(rp, ldns_pkt_cd(qp));
	ldns_pkt_set_ra(rp, true);
	ldns_pkt_set_rcode(rp, (uint8_t)rcode);

	/* Not exactly one question (a FORMERR case): the answer has none. */
	qr = single_question(qp);
	if (qr) {
		copy = ldns_rr_clone(qr);
		if (!copy ||
		    !ldns_pkt_push_rr(rp, LDNS_SECTION_QUESTION, copy)) {
			ldns_rr_free(copy);
			err = -ENOMEM;
			goto out_reply;
		}
	}
	if (ldns_pkt_edns(qp)) {
		/* A non-zero size makes ldns_pkt2wire() emit the OPT. */
		ldns_pkt_set_edns_udp_size(rp, DNS_EDNS_UDP_SIZE);
		/* RFC 3225, 3: the DO bit of the query is copied. */
		ldns_pkt_set_edns_do(rp, ldns_pkt_edns_do(qp));
	}

	if (ldns_pkt2wire(&wire, rp, &wlen) != LDNS_STATUS_OK) {
		err = -ENOMEM;
		goto out_reply;
	}
	if (wlen > *outlen) {
		err = -ENOSPC;
	} else {
		memcpy(out, wire, wlen);
		*outlen = wlen;
	}
	free(wire);
out_reply:
	ldns_pkt_free(rp);
out_query:
	ldns_pkt_free(qp);
	return err;
}

static int answer_check(const ldns_pkt *p, const struct dns_question *q)
{
	ldns_rr *qr = single_question(p);

	return ldns_pkt_qr(p) && ldns_pkt_get_opcode(p) == LDNS_PACKET_QUERY &&
	       ldns_pkt_id(p) == q->id && qr &&
	       ldns_rr_get_type(qr) == q->qtype &&
	       ldns_rr_get_class(qr) == q->qclass &&
	       rdf_is(ldns_rr_owner(qr), q->qwire, q->qwire_len) ? 0 : -EBADMSG;
}

int dns_answer_check(const uint8_t *pkt, size_t len,
		     const struct dns_question *q)
{
	ldns_pkt *p;
	int err;

	err = wire_parse(pkt, len, &p);
	if (err)
		return err;
	err = answer_check(p, q);
	ldns_pkt_free(p);
	return err;
}

/* Where dns_answer_addrs() collects; see add_addr(). */
struct addr_set {
	struct dns_addr *out;
	size_t max;
	size_t n;
};

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static int add_addr(struct addr_set *s, int family, const uint8_t *addr,
		    uint32_t ttl_s)
{
	size_t alen = family == AF_INET ? 4 : 16;
	struct dns_addr *a;
	size_t i;

	for (i = 0; i < s->n; i++) {
		a = &s->out[i];
		if (a->family == family && !memcmp(a->addr, addr, alen)) {
			if (ttl_s > a->ttl_s)
				a->ttl_s = ttl_s;
			return 0;
		}
	}
	if (s->n == s->max)
		return -E2BIG;
	a = &s->out[s->n++];
	memset(a, 0, sizeof(*a));
	a->family = family;
	memcpy(a->addr, addr, alen);
	a->ttl_s = ttl_s;
	return 0;
}

/* An A or AAAA rdf as ldns decoded it: type and size both checked. */
static int rdf_addr(struct addr_set *s, const ldns_rdf *rdf, uint32_t ttl_s)
{
	if (!rdf)
		return 0;
	if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_A &&
	    ldns_rdf_size(rdf) == 4)
		return add_addr(s, AF_INET, ldns_rdf_data(rdf), ttl_s);
	if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_AAAA &&
	    ldns_rdf_size(rdf) == 16)
		return add_addr(s, AF_INET6, ldns_rdf_data(rdf), ttl_s);
	return 0;
}

static int family_of(size_t addr_len)
{
	return addr_len == 4 ? AF_INET : AF_INET6;
}

/*
 * Walk the SvcParams rdf of a ServiceMode SVCB/HTTPS record. RFC 9460
 * (2.2) makes a record whose keys are not strictly increasing, whose
 * lengths overrun the rdata or whose hints are not whole addresses
 * malformed; such a record teaches nothing. AliasMode (priority 0) params
 * are to be ignored (2.4.2).
 */
static int svcb_hints(struct addr_set *s, const ldns_rr *rr, uint32_t ttl_s)
{
	const ldns_rdf *prio, *params;
	const uint8_t *d;
	size_t size, off, vlen = 0, step;
	uint16_t key;
	int pass, prev, err;

	if (ldns_rr_rd_count(rr) < 3)
		return 0;
	prio = ldns_rr_rdf(rr, 0);
	params = ldns_rr_rdf(rr, 2);
	if (ldns_rdf_get_type(prio) != LDNS_RDF_TYPE_INT16 ||
	    ldns_rdf_size(prio) != 2 || ldns_rdf2native_int16(prio) == 0)
		return 0;
	if (ldns_rdf_get_type(params) != LDNS_RDF_TYPE_SVCPARAMS)
		return 0;
	d = ldns_rdf_data(params);
	size = ldns_rdf_size(params);

	/* Pass 0 validates the whole list, pass 1 collects. */
	for (pass = 0; pass < 2; pass++) {
		prev = -1;
		for (off = 0; off < size; off += 4 + vlen) {
			if (size - off < 4)
				return 0;
			key = ldns_read_uint16(d + off);
			vlen = ldns_read_uint16(d + off + 2);
			if (vlen > size - off - 4 || (int)key <= prev)
				return 0;
			prev = key;
			if (key == LDNS_SVCPARAM_KEY_IPV4HINT)
				step = 4;
			else if (key == LDNS_SVCPARAM_KEY_IPV6HINT)
				step = 16;
			else
				continue;
			if (!vlen || vlen % step)
				return 0;
			if (!pass)
				continue;
			for (size_t i = 0; i < vlen; i += step) {
				err = add_addr(s, family_of(step),
					       d + off + 4 + i, ttl_s);
				if (err)
					return err;
			}
		}
	}
	return 0;
}

/* The chain of names the answer is about: the query name, then CNAMEs. */
struct chain {
	const uint8_t *name[DNS_MAX_CNAME_CHAIN + 1];	/* wire form */
	size_t len_of[DNS_MAX_CNAME_CHAIN + 1];
	uint32_t ttl_s[DNS_MAX_CNAME_CHAIN + 1];	/* min CNAME TTL */
	size_t len;
};

static uint32_t rr_ttl(const ldns_rr *rr)
{
	uint32_t ttl = ldns_rr_ttl(rr);

	return ttl > DNS_TTL_MAX ? 0 : ttl;
}

static int chain_find(const struct chain *c, const ldns_rdf *name)
{
	size_t i;

	for (i = 0; i < c->len; i++)
		if (rdf_is(name, c->name[i], c->len_of[i]))
			return (int)i;
	return -1;
}

/* The CNAME owned by NAME (wire, LEN) in AN; only one may be (RFC 2181, 10.1). */
static const ldns_rr *cname_of(const ldns_rr_list *an, const uint8_t *name,
			       size_t len)
{
	const ldns_rr *rr;
	size_t i;

	for (i = 0; i < ldns_rr_list_rr_count(an); i++) {
		rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME ||
		    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
		    ldns_rr_rd_count(rr) != 1 ||
		    ldns_rdf_get_type(ldns_rr_rdf(rr, 0)) !=
		    LDNS_RDF_TYPE_DNAME)
			continue;
		if (rdf_is(ldns_rr_owner(rr), name, len))
			return rr;
	}
	return NULL;
}

static void chain_build(struct chain *c, const ldns_rr_list *an)
{
	const ldns_rdf *target;
	const ldns_rr *rr;

	while (c->len < DNS_MAX_CNAME_CHAIN + 1) {
		rr = cname_of(an, c->name[c->len - 1], c->len_of[c->len - 1]);
		if (!rr)
			return;
		target = ldns_rr_rdf(rr, 0);
		if (chain_find(c, target) >= 0)
			return;			/* a loop */
		c->name[c->len] = ldns_rdf_data(target);
		c->len_of[c->len] = ldns_rdf_size(target);
		c->ttl_s[c->len] = min_u32(c->ttl_s[c->len - 1], rr_ttl(rr));
		c->len++;
	}
}

/*
 * The addresses of P for the wire name QNAME (QLEN octets); *svcb: how
 * many SVCB/HTTPS records its answer section has (dns_strip_ech()'s work).
 */
static int answer_addrs(const ldns_pkt *p, const uint8_t *qname, size_t qlen,
			struct dns_addr *out, size_t max, size_t *n,
			unsigned int *truncated, unsigned int *svcb)
{
	struct addr_set set = { .out = out, .max = max };
	const ldns_rr_list *an;
	struct chain chain;
	ldns_rr *rr;
	uint32_t ttl;
	size_t i;
	int err = 0, at;

	*truncated = ldns_pkt_tc(p);
	an = ldns_pkt_answer(p);
	chain.name[0] = qname;
	chain.len_of[0] = qlen;
	chain.ttl_s[0] = UINT32_MAX;
	chain.len = 1;
	chain_build(&chain, an);

	for (i = 0; i < ldns_rr_list_rr_count(an) && !err; i++) {
		rr = ldns_rr_list_rr(an, i);
		*svcb += ldns_rr_get_type(rr) == LDNS_RR_TYPE_SVCB ||
			 ldns_rr_get_type(rr) == LDNS_RR_TYPE_HTTPS;
		if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
			continue;
		at = chain_find(&chain, ldns_rr_owner(rr));
		if (at < 0)
			continue;
		ttl = min_u32(rr_ttl(rr), chain.ttl_s[at]);
		switch (ldns_rr_get_type(rr)) {
		case LDNS_RR_TYPE_A:
		case LDNS_RR_TYPE_AAAA:
			if (ldns_rr_rd_count(rr) == 1)
				err = rdf_addr(&set, ldns_rr_rdf(rr, 0), ttl);
			break;
		case LDNS_RR_TYPE_SVCB:
		case LDNS_RR_TYPE_HTTPS:
			err = svcb_hints(&set, rr, ttl);
			break;
		default:
			break;
		}
	}
	*n = set.n;
	return err;
}

int dns_answer_addrs(const uint8_t *pkt, size_t len, const char *qname,
		     struct dns_addr *out, size_t max, size_t *n,
		     unsigned int *truncated)
{
	unsigned int svcb = 0;
	ldns_rdf *start;
	ldns_pkt *p;
	int err;

	*n = 0;
	*truncated = 0;
	err = wire_parse(pkt, len, &p);
	if (err)
		return err;
	start = name_from_str(qname);
	err = start ? answer_addrs(p, ldns_rdf_data(start), ldns_rdf_size(start),
				   out, max, n, truncated, &svcb) : -EINVAL;
	ldns_rdf_deep_free(start);
	ldns_pkt_free(p);
	return err;
}

int dns_answer_take(const uint8_t *pkt, size_t len, const struct dns_question *q,
		    struct dns_addr *out, size_t max, size_t *n,
		    unsigned int *truncated, unsigned int *svcb)
{
	ldns_pkt *p;
	int err;

	*n = 0;
	*truncated = 0;
	*svcb = 0;
	err = wire_parse(pkt, len, &p);
	if (err)
		return err;
	err = answer_check(p, q) ? -ESRCH :
	      answer_addrs(p, q->qwire, q->qwire_len, out, max, n, truncated, svcb);
	ldns_pkt_free(p);
	return err;
}

int dns_wire_skip_name(const uint8_t *a, size_t alen, size_t *i)
{
	for (unsigned int hops = 0; *i < alen && hops < 128; hops++) {
		uint8_t b = a[*i];

		if (!b) {
			(*i)++;
			return 0;
		}
		if ((b & 0xc0) == 0xc0) {
			*i += 2;
			return *i <= alen ? 0 : -EBADMSG;
		}
		if (b & 0xc0)
			return -EBADMSG;
		*i += b + 1;
	}
	return -EBADMSG;
}

bool domain_rule_match(const struct moat_rule *r, const char *qname)
{
	ldns_rdf *name, *rule, *tail;
	uint8_t nl, rl;
	bool match = false;

	if (r->kind != RULE_DOMAIN && r->kind != RULE_WILDCARD)
		return false;
	if (strnlen(r->domain, sizeof(r->domain)) == sizeof(r->domain))
		return false;
	name = name_from_str(qname);
	rule = name_from_str(r->domain);
	if (!name || !rule)
		goto out;

	/* ldns_dname_compare() compares labels whole and case-blind. */
	if (r->kind == RULE_DOMAIN) {
		match = ldns_dname_compare(name, rule) == 0;
		goto out;
	}
	/*
	 * Not ldns_dname_is_subdomain(): it tests equality before folding
	 * case, so it calls "Example.com" a subdomain of "example.com".
	 */
	nl = ldns_dname_label_count(name);
	rl = ldns_dname_label_count(rule);
	if (nl <= rl)
		goto out;
	tail = ldns_dname_clone_from(name, nl - rl);
	match = tail && ldns_dname_compare(tail, rule) == 0;
	ldns_rdf_deep_free(tail);
out:
	ldns_rdf_deep_free(rule);
	ldns_rdf_deep_free(name);
	return match;
}

bool dns_addr_local_scope(int family, const uint8_t *a)
{
	const struct in6_addr *in6 = (const struct in6_addr *)a;

	/*
	 * All of 0/8 on purpose, wider than the programs' loopback (0.0.0.0
	 * only; 0.x.y.z is routed as unicast): never learning or asking
	 * 0.x.y.z errs on the safe side.
	 */
	if (family == AF_INET)
		return a[0] == 127 || a[0] == 0 ||
		       (a[0] == 169 && a[1] == 254) ||		/* link-local */
		       (a[0] >> 4) == 0xe ||			/* multicast */
		       (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
	return IN6_IS_ADDR_LOOPBACK(in6) || IN6_IS_ADDR_UNSPECIFIED(in6) ||
	       IN6_IS_ADDR_LINKLOCAL(in6) || IN6_IS_ADDR_MULTICAST(in6) ||
	       IN6_IS_ADDR_V4MAPPED(in6);
}
