// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * user/dns.c: queries, local answers, upstream answers, learned addresses
 * and domain rule matching. Packets are built with ldns from text records
 * so each row reads like a zone file; only the malformed SvcParams cases
 * set raw rdata bytes. Parameters are row indices into static tables.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "policy.h"

#include "table.h"

#define PKT_MAX		4096
#define QID		0x1234

/* Encode @p into @buf and free it; returns the length. */
static size_t put(ldns_pkt *p, uint8_t *buf)
{
	uint8_t *wire;
	size_t n;

	cr_assert_not_null(p);
	cr_assert_eq(ldns_pkt2wire(&wire, p, &n), LDNS_STATUS_OK);
	cr_assert_leq(n, PKT_MAX);
	memcpy(buf, wire, n);
	free(wire);
	ldns_pkt_free(p);
	return n;
}

static ldns_rr *rr_text(const char *s)
{
	ldns_rr *rr = NULL;

	cr_assert_eq(ldns_rr_new_frm_str(&rr, s, 0, NULL, NULL), LDNS_STATUS_OK,
		     "bad record text '%s'", s);
	return rr;
}

static ldns_rr *question_text(const char *s)
{
	ldns_rr *rr = NULL;

	cr_assert_eq(ldns_rr_new_question_frm_str(&rr, s, NULL, NULL),
		     LDNS_STATUS_OK, "bad question text '%s'", s);
	return rr;
}

static ldns_pkt *query(const char *name, ldns_rr_type type,
		       ldns_rr_class class, uint16_t flags)
{
	ldns_rdf *owner = ldns_dname_new_frm_str(name);
	ldns_pkt *p;

	cr_assert_not_null(owner, "bad name '%s'", name);
	p = ldns_pkt_query_new(owner, type, class, flags);
	cr_assert_not_null(p);
	ldns_pkt_set_id(p, QID);
	return p;
}

static ldns_pkt *parse(const uint8_t *buf, size_t len)
{
	ldns_pkt *p = NULL;

	cr_assert_eq(ldns_wire2pkt(&p, buf, len), LDNS_STATUS_OK);
	return p;
}

/* The presentation form of @p's only question, as sent (case kept). */
static void question_str(const ldns_pkt *p, char *buf, size_t len)
{
	const ldns_rr *q;
	char *s;

	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	q = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	s = ldns_rdf2str(ldns_rr_owner(q));
	cr_assert_not_null(s);
	snprintf(buf, len, "%s", s);
	free(s);
}

/* ------------------------------------------------------------------ */
/* dns_query_parse */

static size_t q_plain(uint8_t *b)
{
	return put(query("Example.COM.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
			 LDNS_RD), b);
}

static size_t q_edns(uint8_t *b)
{
	ldns_pkt *p = query("www.example.com", LDNS_RR_TYPE_AAAA,
			    LDNS_RR_CLASS_IN, LDNS_RD);

	ldns_pkt_set_edns_udp_size(p, 4096);
	return put(p, b);
}

static size_t q_root(uint8_t *b)
{
	return put(query(".", LDNS_RR_TYPE_NS, LDNS_RR_CLASS_IN, 0), b);
}

static size_t q_escaped(uint8_t *b)
{
	return put(query("A\\.b.Example.", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_IN,
			 0), b);
}

/* Bytes that are not printable come out as \DDD: safe to log. */
static size_t q_control(uint8_t *b)
{
	return put(query("a\\010\\255 b.Example.", LDNS_RR_TYPE_A,
			 LDNS_RR_CLASS_IN, 0), b);
}

static size_t q_chaos(uint8_t *b)
{
	return put(query("version.bind.", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH,
			 0), b);
}

static size_t q_short_garbage(uint8_t *b)
{
	memcpy(b, "\xde\xad\xbe\xef\x01\x00\x00", 7);
	return 7;
}

/* A header promising one question, then bytes that are no name. */
static size_t q_garbage(uint8_t *b)
{
	static const uint8_t g[] = {
		0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
		0x41, 0x42, 0x43, 0x44,
	};

	memcpy(b, g, sizeof(g));
	return sizeof(g);
}

static size_t q_truncated(uint8_t *b)
{
	return q_plain(b) - 1;
}

static size_t q_zero(uint8_t *b)
{
	return 0;
}

static size_t q_response(uint8_t *b)
{
	ldns_pkt *p = query("example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
			    LDNS_RD);

	ldns_pkt_set_qr(p, true);
	return put(p, b);
}

static size_t q_two_questions(uint8_t *b)
{
	ldns_pkt *p = query("example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
			    LDNS_RD);

	cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION,
				   question_text("example.net. IN A")));
	return put(p, b);
}

static size_t q_no_question(uint8_t *b)
{
	ldns_pkt *p = ldns_pkt_new();

	ldns_pkt_set_id(p, QID);
	return put(p, b);
}

static size_t q_with_answer(uint8_t *b)
{
	ldns_pkt *p = query("example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
			    LDNS_RD);

	cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER,
				   rr_text("example.com. 60 IN A 192.0.2.1")));
	return put(p, b);
}

static size_t q_notify(uint8_t *b)
{
	ldns_pkt *p = query("example.com", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN,
			    0);

	ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
	return put(p, b);
}

static size_t q_status(uint8_t *b)
{
	ldns_pkt *p = query("example.com", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
			    0);

	ldns_pkt_set_opcode(p, LDNS_PACKET_STATUS);
	return put(p, b);
}

struct query_row {
	const char *desc;
	size_t (*build)(uint8_t *buf);
	int ret;
	const char *qname;
	uint16_t qtype;
	uint16_t qclass;
	bool edns;
	uint16_t udp;
};

#define OK(n, t, c)						\
	.ret = 0, .qname = (n), .qtype = LDNS_RR_TYPE_##t,		\
	.qclass = LDNS_RR_CLASS_##c
#define BAD(e)		.ret = (e)

static const struct query_row queries[] = {
	{ "A, mixed case, trailing dot", q_plain, OK("example.com", A, IN) },
	{ "AAAA with EDNS 4096", q_edns, OK("www.example.com", AAAA, IN),
	  .edns = true, .udp = 4096 },
	{ "root", q_root, OK("", NS, IN) },
	{ "dot inside a label stays escaped", q_escaped,
	  OK("a\\.b.example", TXT, IN) },
	{ "control bytes escaped", q_control,
	  OK("a\\010\\255\\032b.example", A, IN) },
	{ "class kept", q_chaos, OK("version.bind", TXT, CH) },
	{ "shorter than a header", q_short_garbage, BAD(-EBADMSG) },
	{ "garbage after the header", q_garbage, BAD(-EBADMSG) },
	{ "truncated question", q_truncated, BAD(-EBADMSG) },
	{ "zero length", q_zero, BAD(-EBADMSG) },
	{ "QR set", q_response, BAD(-EBADMSG) },
	{ "two questions", q_two_questions, BAD(-EBADMSG) },
	{ "no question", q_no_question, BAD(-EBADMSG) },
	{ "answer record in a query", q_with_answer, BAD(-EBADMSG) },
	{ "opcode NOTIFY", q_notify, BAD(-EOPNOTSUPP) },
	{ "opcode STATUS", q_status, BAD(-EOPNOTSUPP) },
};

ParameterizedTestParameters(dns, query_parse)
{
	ROW_INDICES(queries);
}

ParameterizedTest(size_t *i, dns, query_parse)
{
	const struct query_row *r = &queries[*i];
	uint8_t buf[PKT_MAX];
	struct dns_question q;
	size_t len;
	int ret;

	len = r->build(buf);
	ret = dns_query_parse(buf, len, &q);
	cr_assert_eq(ret, r->ret, "%s: returned %d, want %d", r->desc, ret,
		     r->ret);
	if (ret)
		return;
	cr_expect_eq(q.id, QID, "%s: id %#x", r->desc, q.id);
	cr_expect_str_eq(q.qname, r->qname, "%s: qname '%s'", r->desc, q.qname);
	cr_expect_eq(q.qtype, r->qtype, "%s: qtype %u", r->desc, q.qtype);
	cr_expect_eq(q.qclass, r->qclass, "%s: qclass %u", r->desc, q.qclass);
	cr_expect_eq(q.has_edns, r->edns, "%s: has_edns %d", r->desc,
		     q.has_edns);
	cr_expect_eq(q.edns_udp_size, r->udp, "%s: udp size %u", r->desc,
		     q.edns_udp_size);
}

/* ------------------------------------------------------------------ */
/* dns_reply_rcode */

static size_t q_edns_do(uint8_t *b)
{
	ldns_pkt *p = query("api.Example.com", LDNS_RR_TYPE_HTTPS,
			    LDNS_RR_CLASS_IN, LDNS_RD | LDNS_CD);

	ldns_pkt_set_edns_udp_size(p, 1400);
	ldns_pkt_set_edns_do(p, true);
	return put(p, b);
}

static size_t q_norec(uint8_t *b)
{
	return put(query("ExAmPlE.org", LDNS_RR_TYPE_MX, LDNS_RR_CLASS_IN, 0),
		   b);
}

struct reply_row {
	const char *desc;
	size_t (*build)(uint8_t *buf);
	int rcode;
	const char *question;	/* as sent; NULL: no question section */
	bool rd, cd, edns, edns_do;
};

static const struct reply_row replies[] = {
	{ "REFUSED, RD copied", q_plain, DNS_RCODE_REFUSED, "Example.COM.",
	  true, false, false, false },
	{ "NXDOMAIN with EDNS, DO and CD copied", q_edns_do,
	  DNS_RCODE_NXDOMAIN, "api.Example.com.", true, true, true, true },
	{ "SERVFAIL with EDNS, DO clear", q_edns, DNS_RCODE_SERVFAIL,
	  "www.example.com.", true, false, true, false },
	{ "REFUSED without RD, case kept", q_norec, DNS_RCODE_REFUSED,
	  "ExAmPlE.org.", false, false, false, false },
	{ "FORMERR to two questions carries none", q_two_questions,
	  DNS_RCODE_FORMERR, NULL, true, false, false, false },
	{ "NOTIMP to NOTIFY", q_notify, DNS_RCODE_NOTIMP, "example.com.",
	  false, false, false, false },
};

ParameterizedTestParameters(dns, reply_rcode)
{
	ROW_INDICES(replies);
}

ParameterizedTest(size_t *i, dns, reply_rcode)
{
	const struct reply_row *r = &replies[*i];
	uint8_t qbuf[PKT_MAX], out[512];
	size_t qlen, outlen = sizeof(out);
	struct dns_question q;
	char name[DNS_NAME_STR_LEN];
	ldns_pkt *p;
	int ret;

	qlen = r->build(qbuf);
	ret = dns_reply_rcode(qbuf, qlen, r->rcode, out, &outlen);
	cr_assert_eq(ret, 0, "%s: returned %d", r->desc, ret);
	p = parse(out, outlen);
	cr_expect_eq(ldns_pkt_id(p), QID, "%s: id", r->desc);
	cr_expect(ldns_pkt_qr(p), "%s: QR clear", r->desc);
	cr_expect(ldns_pkt_ra(p), "%s: RA clear", r->desc);
	cr_expect_not(ldns_pkt_aa(p), "%s: AA set", r->desc);
	cr_expect_eq(ldns_pkt_rd(p), r->rd, "%s: RD", r->desc);
	cr_expect_eq(ldns_pkt_cd(p), r->cd, "%s: CD", r->desc);
	cr_expect_eq(ldns_pkt_get_rcode(p), r->rcode, "%s: rcode %d", r->desc,
		     ldns_pkt_get_rcode(p));
	cr_expect_eq(ldns_pkt_ancount(p) + ldns_pkt_nscount(p) +
		     ldns_pkt_arcount(p), 0, "%s: records beyond OPT", r->desc);
	cr_expect_eq(ldns_pkt_edns(p), r->edns, "%s: EDNS", r->desc);
	if (r->edns) {
		cr_expect_eq(ldns_pkt_edns_udp_size(p), DNS_EDNS_UDP_SIZE);
		cr_expect_eq(ldns_pkt_edns_do(p), r->edns_do, "%s: DO",
			     r->desc);
	}
	if (r->question) {
		question_str(p, name, sizeof(name));
		cr_expect_str_eq(name, r->question, "%s: question '%s'",
				 r->desc, name);
		/* What the resolver sends back passes its own check. */
		if (!dns_query_parse(qbuf, qlen, &q))
			cr_expect_eq(dns_answer_check(out, outlen, &q), 0,
				     "%s: answer_check", r->desc);
	} else {
		cr_expect_eq(ldns_pkt_qdcount(p), 0, "%s: question", r->desc);
	}
	ldns_pkt_free(p);
}

Test(dns, reply_rcode_errors)
{
	uint8_t qbuf[PKT_MAX], out[512];
	size_t qlen, outlen;

	qlen = q_plain(qbuf);
	outlen = sizeof(out);
	cr_expect_eq(dns_reply_rcode(qbuf, qlen, 16, out, &outlen), -EINVAL);
	cr_expect_eq(dns_reply_rcode(qbuf, qlen, -1, out, &outlen), -EINVAL);
	outlen = qlen - 1;	/* the reply is at least as long */
	cr_expect_eq(dns_reply_rcode(qbuf, qlen, DNS_RCODE_REFUSED, out,
				     &outlen), -ENOSPC);
	cr_expect_eq(outlen, qlen - 1, "outlen changed on error");
	outlen = sizeof(out);
	cr_expect_eq(dns_reply_rcode(qbuf, qlen - 1, DNS_RCODE_REFUSED, out,
				     &outlen), -EBADMSG);
	cr_expect_eq(dns_reply_rcode(qbuf, 0, DNS_RCODE_REFUSED, out, &outlen),
		     -EBADMSG);
	qlen = q_response(qbuf);
	cr_expect_eq(dns_reply_rcode(qbuf, qlen, DNS_RCODE_REFUSED, out,
				     &outlen), -EBADMSG);
}

/* ------------------------------------------------------------------ */
/* dns_answer_check */

struct check_row {
	const char *desc;
	uint16_t id;
	bool qr;
	ldns_pkt_opcode opcode;
	int n_questions;		/* 0, 1 or 2 */
	const char *question;		/* "NAME CLASS TYPE" */
	int ret;
};

static const struct check_row checks[] = {
	{ "matches", QID, true, LDNS_PACKET_QUERY, 1,
	  "example.com. IN A", 0 },
	{ "name in another case", QID, true, LDNS_PACKET_QUERY, 1,
	  "EXAMPLE.Com. IN A", 0 },
	{ "other id", QID + 1, true, LDNS_PACKET_QUERY, 1,
	  "example.com. IN A", -EBADMSG },
	{ "other name", QID, true, LDNS_PACKET_QUERY, 1,
	  "example.net. IN A", -EBADMSG },
	{ "name one label longer", QID, true, LDNS_PACKET_QUERY, 1,
	  "www.example.com. IN A", -EBADMSG },
	{ "other type", QID, true, LDNS_PACKET_QUERY, 1,
	  "example.com. IN AAAA", -EBADMSG },
	{ "other class", QID, true, LDNS_PACKET_QUERY, 1,
	  "example.com. CH A", -EBADMSG },
	{ "QR clear", QID, false, LDNS_PACKET_QUERY, 1,
	  "example.com. IN A", -EBADMSG },
	{ "opcode STATUS", QID, true, LDNS_PACKET_STATUS, 1,
	  "example.com. IN A", -EBADMSG },
	{ "no question", QID, true, LDNS_PACKET_QUERY, 0, NULL, -EBADMSG },
	{ "two questions", QID, true, LDNS_PACKET_QUERY, 2,
	  "example.com. IN A", -EBADMSG },
};

ParameterizedTestParameters(dns, answer_check)
{
	ROW_INDICES(checks);
}

ParameterizedTest(size_t *i, dns, answer_check)
{
	const struct check_row *r = &checks[*i];
	struct dns_question q = {
		.id = QID,
		.qtype = LDNS_RR_TYPE_A,
		.qclass = LDNS_RR_CLASS_IN,
	};
	uint8_t buf[PKT_MAX];
	ldns_pkt *p = ldns_pkt_new();
	size_t len;
	int k, ret;

	cr_assert_eq(dns_question_set_name(&q, "example.com"), 0);

	ldns_pkt_set_id(p, r->id);
	ldns_pkt_set_qr(p, r->qr);
	ldns_pkt_set_opcode(p, r->opcode);
	for (k = 0; k < r->n_questions; k++)
		cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION,
					   question_text(r->question)));
	cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER,
				   rr_text("example.com. 60 IN A 192.0.2.1")));
	len = put(p, buf);
	ret = dns_answer_check(buf, len, &q);
	cr_expect_eq(ret, r->ret, "%s: returned %d, want %d", r->desc, ret,
		     r->ret);
}

Test(dns, answer_check_garbage)
{
	struct dns_question q = { .id = QID, .qtype = LDNS_RR_TYPE_A,
				  .qclass = LDNS_RR_CLASS_IN };
	uint8_t buf[PKT_MAX];
	size_t len;

	cr_assert_eq(dns_question_set_name(&q, "example.com"), 0);

	len = q_garbage(buf);
	cr_expect_eq(dns_answer_check(buf, len, &q), -EBADMSG);
	cr_expect_eq(dns_answer_check(buf, 0, &q), -EBADMSG);
}

/* ------------------------------------------------------------------ */
/* dns_answer_addrs */

#define MAX_RRS		24
#define MAX_WANT	8

struct want_addr {
	const char *addr;
	uint32_t ttl;
};

/*
 * An answer to "qname IN A" with the records given as text (NULL ends
 * each list), and what dns_answer_addrs(qname, max) must return: the
 * addresses in answer order.
 */
struct addrs_row {
	const char *desc;
	const char *qname;
	bool tc;
	const char *an[MAX_RRS];
	const char *ns[4];
	const char *ar[4];
	size_t max;
	int ret;
	struct want_addr want[MAX_WANT];
};

static void push_all(ldns_pkt *p, ldns_pkt_section sec,
		     const char *const *texts, size_t max)
{
	size_t k;

	for (k = 0; k < max && texts[k]; k++)
		cr_assert(ldns_pkt_push_rr(p, sec, rr_text(texts[k])));
}

static size_t answer(const struct addrs_row *r, uint8_t *buf)
{
	ldns_pkt *p = query(*r->qname ? r->qname : ".", LDNS_RR_TYPE_A,
			    LDNS_RR_CLASS_IN, LDNS_RD);

	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_tc(p, r->tc);
	push_all(p, LDNS_SECTION_ANSWER, r->an, ARRAY_SIZE(r->an));
	push_all(p, LDNS_SECTION_AUTHORITY, r->ns, ARRAY_SIZE(r->ns));
	push_all(p, LDNS_SECTION_ADDITIONAL, r->ar, ARRAY_SIZE(r->ar));
	return put(p, buf);
}

#define CHAIN(a, b)	a ". 60 IN CNAME " b "."

static const struct addrs_row addrs[] = {
	{ .desc = "one A", .qname = "example.com", .max = 8,
	  .an = { "example.com. 300 IN A 198.51.100.1" },
	  .want = { { "198.51.100.1", 300 } } },
	{ .desc = "CNAME chain, min TTL, unrelated owner ignored",
	  .qname = "example.com", .max = 8,
	  .an = { "example.com. 600 IN CNAME a.example.net.",
		  "a.example.net. 120 IN CNAME b.example.org.",
		  "evil.example. 300 IN A 203.0.113.66",
		  "b.example.org. 300 IN A 198.51.100.2",
		  "b.example.org. 30 IN A 198.51.100.3" },
	  .want = { { "198.51.100.2", 120 }, { "198.51.100.3", 30 } } },
	{ .desc = "CNAME chain out of order", .qname = "example.com",
	  .max = 8,
	  .an = { "b.example.org. 300 IN A 198.51.100.2",
		  "a.example.net. 120 IN CNAME b.example.org.",
		  "example.com. 600 IN CNAME a.example.net." },
	  .want = { { "198.51.100.2", 120 } } },
	{ .desc = "A of a middle link, with the TTL of the chain to it",
	  .qname = "example.com", .max = 8,
	  .an = { "example.com. 600 IN CNAME a.example.net.",
		  "a.example.net. 900 IN A 198.51.100.4",
		  "a.example.net. 120 IN CNAME b.example.org." },
	  .want = { { "198.51.100.4", 600 } } },
	{ .desc = "authority and additional never learned",
	  .qname = "example.com", .max = 8,
	  .an = { "example.com. 600 IN CNAME a.example.net." },
	  .ns = { "example.com. 300 IN A 203.0.113.1",
		  "a.example.net. 300 IN AAAA 2001:db8::bad" },
	  .ar = { "a.example.net. 300 IN A 203.0.113.2",
		  "example.com. 300 IN A 203.0.113.3" } },
	{ .desc = "A of names off the chain", .qname = "example.com",
	  .max = 8,
	  .an = { "www.example.com. 300 IN A 203.0.113.4",
		  "com. 300 IN A 203.0.113.5" } },
	{ .desc = "AAAA only", .qname = "example.com", .max = 8,
	  .an = { "example.com. 3600 IN AAAA 2001:db8::1" },
	  .want = { { "2001:db8::1", 3600 } } },
	{ .desc = "HTTPS hints", .qname = "example.com", .max = 8,
	  .an = { "example.com. 300 IN HTTPS 1 . alpn=h2 "
		  "ipv4hint=198.51.100.9,198.51.100.10 ipv6hint=2001:db8::9" },
	  .want = { { "198.51.100.9", 300 }, { "198.51.100.10", 300 },
		    { "2001:db8::9", 300 } } },
	{ .desc = "SVCB hints through a CNAME", .qname = "example.com",
	  .max = 8,
	  .an = { "example.com. 60 IN CNAME svc.example.net.",
		  "svc.example.net. 300 IN SVCB 2 pool.example.net. "
		  "port=8443 ipv6hint=2001:db8::10" },
	  .want = { { "2001:db8::10", 60 } } },
	{ .desc = "AliasMode params ignored", .qname = "example.com",
	  .max = 8,
	  .an = { "example.com. 300 IN HTTPS 0 svc.example.net. "
		  "ipv4hint=198.51.100.9" } },
	{ .desc = "HTTPS of another owner ignored", .qname = "example.com",
	  .max = 8,
	  .an = { "other.example. 300 IN HTTPS 1 . ipv4hint=203.0.113.9" } },
	{ .desc = "TC reported", .qname = "example.com", .tc = true,
	  .max = 8,
	  .an = { "example.com. 300 IN A 198.51.100.1" },
	  .want = { { "198.51.100.1", 300 } } },
	{ .desc = "exactly max", .qname = "example.com", .max = 3,
	  .an = { "example.com. 300 IN A 198.51.100.1",
		  "example.com. 300 IN A 198.51.100.2",
		  "example.com. 300 IN AAAA 2001:db8::3" },
	  .want = { { "198.51.100.1", 300 }, { "198.51.100.2", 300 },
		    { "2001:db8::3", 300 } } },
	{ .desc = "more than max", .qname = "example.com", .max = 2,
	  .ret = -E2BIG,
	  .an = { "example.com. 300 IN A 198.51.100.1",
		  "example.com. 300 IN A 198.51.100.2",
		  "example.com. 300 IN AAAA 2001:db8::3" },
	  .want = { { "198.51.100.1", 300 }, { "198.51.100.2", 300 } } },
	{ .desc = "hints beyond max", .qname = "example.com", .max = 1,
	  .ret = -E2BIG,
	  .an = { "example.com. 300 IN HTTPS 1 . "
		  "ipv4hint=198.51.100.1,198.51.100.2" },
	  .want = { { "198.51.100.1", 300 } } },
	{ .desc = "duplicates listed once with the larger TTL",
	  .qname = "example.com", .max = 1,
	  .an = { "example.com. 100 IN A 198.51.100.1",
		  "example.com. 300 IN HTTPS 1 . ipv4hint=198.51.100.1",
		  "example.com. 200 IN A 198.51.100.1" },
	  .want = { { "198.51.100.1", 300 } } },
	{ .desc = "CNAME loop ends", .qname = "example.com", .max = 8,
	  .an = { "example.com. 250 IN CNAME a.example.",
		  "a.example. 200 IN CNAME example.com.",
		  "a.example. 300 IN A 198.51.100.5" },
	  .want = { { "198.51.100.5", 250 } } },
	{ .desc = "chain stops after 16 hops", .qname = "example.com",
	  .max = 8,
	  .an = { CHAIN("example.com", "c1.example"),
		  CHAIN("c1.example", "c2.example"),
		  CHAIN("c2.example", "c3.example"),
		  CHAIN("c3.example", "c4.example"),
		  CHAIN("c4.example", "c5.example"),
		  CHAIN("c5.example", "c6.example"),
		  CHAIN("c6.example", "c7.example"),
		  CHAIN("c7.example", "c8.example"),
		  CHAIN("c8.example", "c9.example"),
		  CHAIN("c9.example", "c10.example"),
		  CHAIN("c10.example", "c11.example"),
		  CHAIN("c11.example", "c12.example"),
		  CHAIN("c12.example", "c13.example"),
		  CHAIN("c13.example", "c14.example"),
		  CHAIN("c14.example", "c15.example"),
		  CHAIN("c15.example", "c16.example"),
		  CHAIN("c16.example", "c17.example"),
		  "c16.example. 300 IN A 198.51.100.16",
		  "c17.example. 300 IN A 198.51.100.17" },
	  .want = { { "198.51.100.16", 60 } } },
	{ .desc = "owner case and query name form ignored",
	  .qname = "Example.COM.", .max = 8,
	  .an = { "EXAMPLE.com. 300 IN A 198.51.100.6",
		  "example.com. 300 IN CNAME WWW.Example.NET.",
		  "www.example.net. 300 IN A 198.51.100.7" },
	  .want = { { "198.51.100.6", 300 }, { "198.51.100.7", 300 } } },
	{ .desc = "TTL with the top bit set is 0", .qname = "example.com",
	  .max = 8,
	  .an = { "example.com. 2147483648 IN A 198.51.100.8",
		  "example.com. 2147483647 IN A 198.51.100.9" },
	  .want = { { "198.51.100.8", 0 }, { "198.51.100.9", 2147483647 } } },
	{ .desc = "class CH ignored", .qname = "example.com", .max = 8,
	  .an = { "example.com. 300 CH A 198.51.100.1",
		  "example.com. 300 IN CNAME a.example.",
		  "a.example. 300 CH A 198.51.100.2" } },
	{ .desc = "empty answer", .qname = "example.com", .max = 8,
	  .ns = { "com. 900 IN SOA a.example. b.example. 1 2 3 4 5" } },
	{ .desc = "no room and nothing to learn", .qname = "example.com",
	  .max = 0,
	  .an = { "www.example.com. 300 IN A 203.0.113.4" } },
	{ .desc = "root as the query name", .qname = "", .max = 8,
	  .an = { ". 300 IN A 198.51.100.11" },
	  .want = { { "198.51.100.11", 300 } } },
};

static size_t want_count(const struct want_addr *w)
{
	size_t n = 0;

	while (n < MAX_WANT && w[n].addr)
		n++;
	return n;
}

static void expect_addr(const char *desc, size_t k, const struct dns_addr *got,
			const struct want_addr *want)
{
	uint8_t addr[16] = { 0 };
	int family = AF_INET;

	if (inet_pton(AF_INET, want->addr, addr) != 1) {
		family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, want->addr, addr), 1);
	}
	cr_expect_eq(got->family, family, "%s: [%zu] family %d", desc, k,
		     got->family);
	cr_expect_arr_eq(got->addr, addr, family == AF_INET ? 4 : 16,
			 "%s: [%zu] is not %s", desc, k, want->addr);
	cr_expect_eq(got->ttl_s, want->ttl, "%s: [%zu] ttl %u, want %u", desc,
		     k, got->ttl_s, want->ttl);
}

ParameterizedTestParameters(dns, answer_addrs)
{
	ROW_INDICES(addrs);
}

ParameterizedTest(size_t *i, dns, answer_addrs)
{
	const struct addrs_row *r = &addrs[*i];
	struct dns_addr out[MAX_WANT];
	uint8_t buf[PKT_MAX];
	unsigned int tc = 7;
	size_t len, n = 99, k, nwant;
	int ret;

	cr_assert_leq(r->max, ARRAY_SIZE(out));
	len = answer(r, buf);
	ret = dns_answer_addrs(buf, len, r->qname, out, r->max, &n, &tc);
	cr_assert_eq(ret, r->ret, "%s: returned %d, want %d", r->desc, ret,
		     r->ret);
	cr_expect_eq(tc, r->tc, "%s: truncated %u", r->desc, tc);
	nwant = want_count(r->want);
	cr_assert_eq(n, nwant, "%s: %zu addresses, want %zu", r->desc, n,
		     nwant);
	for (k = 0; k < n; k++)
		expect_addr(r->desc, k, &out[k], &r->want[k]);

	/* the daemon's path: the same from the question's wire name */
	{
		struct dns_question q = { .id = QID, .qtype = LDNS_RR_TYPE_A,
					  .qclass = LDNS_RR_CLASS_IN };
		unsigned int svcb = 99;
		bool has_svcb = false;

		for (k = 0; k < ARRAY_SIZE(r->an) && r->an[k]; k++)
			has_svcb |= strstr(r->an[k], " SVCB ") || strstr(r->an[k], " HTTPS ");
		cr_assert_eq(dns_question_set_name(&q, r->qname), 0);
		ret = dns_answer_take(buf, len, &q, out, r->max, &n, &tc, &svcb);
		cr_assert_eq(ret, r->ret, "%s: take returned %d", r->desc, ret);
		cr_assert_eq(n, nwant, "%s: take: %zu addresses", r->desc, n);
		cr_expect_eq(!!svcb, has_svcb, "%s: take: %u SVCB/HTTPS", r->desc, svcb);
		for (k = 0; k < n; k++)
			expect_addr(r->desc, k, &out[k], &r->want[k]);
	}
}

Test(dns, answer_addrs_errors)
{
	struct dns_addr out[4];
	uint8_t buf[PKT_MAX];
	unsigned int tc;
	size_t len, n;

	len = q_garbage(buf);
	cr_expect_eq(dns_answer_addrs(buf, len, "example.com", out, 4, &n, &tc),
		     -EBADMSG);
	cr_expect_eq(n, 0);
	cr_expect_eq(dns_answer_addrs(buf, 0, "example.com", out, 4, &n, &tc),
		     -EBADMSG);
	len = q_plain(buf);
	cr_expect_eq(dns_answer_addrs(buf, len - 1, "example.com", out, 4, &n,
				      &tc), -EBADMSG);
	cr_expect_eq(dns_answer_addrs(buf, len, "a..b", out, 4, &n, &tc),
		     -EINVAL);
}

/*
 * SvcParams that ldns cannot write from text, so the rdf bytes are set
 * by hand: key (2), length (2), value. Each row is malformed per RFC 9460
 * 2.2; the record must teach nothing while the A beside it still counts.
 */
struct svcb_row {
	const char *desc;
	uint8_t params[40];
	size_t len;
};

static const struct svcb_row bad_svcb[] = {
	{ "ipv4hint of 5 bytes",
	  { 0, 4, 0, 5, 198, 51, 100, 9, 1 }, 9 },
	{ "empty ipv4hint", { 0, 4, 0, 0 }, 4 },
	{ "ipv6hint of 8 bytes",
	  { 0, 6, 0, 8, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0 }, 12 },
	{ "length past the end",
	  { 0, 4, 0, 8, 198, 51, 100, 9 }, 8 },
	{ "keys out of order",
	  { 0, 4, 0, 4, 198, 51, 100, 9, 0, 1, 0, 3, 2, 'h', '2' }, 15 },
	{ "key repeated",
	  { 0, 4, 0, 4, 198, 51, 100, 9, 0, 4, 0, 4, 198, 51, 100, 10 }, 16 },
	{ "trailing partial key", { 0, 4, 0, 4, 198, 51, 100, 9, 0, 6 }, 10 },
};

ParameterizedTestParameters(dns, svcb_malformed)
{
	ROW_INDICES(bad_svcb);
}

ParameterizedTest(size_t *i, dns, svcb_malformed)
{
	const struct svcb_row *r = &bad_svcb[*i];
	ldns_pkt *p = query("example.com", LDNS_RR_TYPE_HTTPS, LDNS_RR_CLASS_IN,
			    LDNS_RD);
	struct dns_addr out[4];
	uint8_t buf[PKT_MAX];
	ldns_rr *rr;
	ldns_rdf *params;
	unsigned int tc;
	size_t len, n;

	rr = rr_text("example.com. 300 IN HTTPS 1 . alpn=h2");
	params = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_SVCPARAMS, r->len,
				       r->params);
	cr_assert_not_null(params);
	ldns_rdf_deep_free(ldns_rr_set_rdf(rr, params, 2));
	ldns_pkt_set_qr(p, true);
	cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr));
	cr_assert(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER,
				   rr_text("example.com. 300 IN A 192.0.2.1")));
	len = put(p, buf);
	cr_assert_eq(dns_answer_addrs(buf, len, "example.com", out, 4, &n, &tc),
		     0, "%s", r->desc);
	cr_assert_eq(n, 1, "%s: %zu addresses learned", r->desc, n);
	cr_expect_eq(out[0].family, AF_INET);
	cr_expect_arr_eq(out[0].addr, "\xc0\x00\x02\x01", 4, "%s", r->desc);
}

/* ------------------------------------------------------------------ */
/* domain_rule_match */

struct match_row {
	enum rule_kind kind;
	const char *domain;		/* as rule_parse() stores it */
	const char *qname;
	bool match;
};

static const struct match_row matches[] = {
	{ RULE_DOMAIN, "example.com", "example.com", true },
	{ RULE_DOMAIN, "example.com", "example.com.", true },
	{ RULE_DOMAIN, "example.com", "ExAmple.COM", true },
	{ RULE_DOMAIN, "example.com", "EXAMPLE.COM.", true },
	{ RULE_DOMAIN, "example.com", "www.example.com", false },
	{ RULE_DOMAIN, "example.com", "example.co", false },
	{ RULE_DOMAIN, "example.com", "example.com.evil", false },
	{ RULE_DOMAIN, "example.com", "badexample.com", false },
	{ RULE_DOMAIN, "example.com", "", false },
	{ RULE_DOMAIN, "example.com", "example..com", false },
	{ RULE_WILDCARD, "example.com", "www.example.com", true },
	{ RULE_WILDCARD, "example.com", "a.b.c.example.com", true },
	{ RULE_WILDCARD, "example.com", "WWW.Example.COM.", true },
	{ RULE_WILDCARD, "example.com", "_dmarc.example.com", true },
	{ RULE_WILDCARD, "example.com", "example.com", false },
	{ RULE_WILDCARD, "example.com", "Example.com.", false },
	{ RULE_WILDCARD, "example.com", "badexample.com", false },
	{ RULE_WILDCARD, "example.com", "www.badexample.com", false },
	{ RULE_WILDCARD, "example.com", "com", false },
	{ RULE_WILDCARD, "example.com", "", false },
	{ RULE_WILDCARD, "example.com", "www.example.com.evil", false },
	/* One label "a.example" under com, not a name under example.com. */
	{ RULE_WILDCARD, "example.com", "a\\.example.com", false },
	{ RULE_WILDCARD, "example.com", "x..example.com", false },
	{ RULE_WILDCARD, "a.b.example.com", "x.a.b.example.com", true },
	{ RULE_WILDCARD, "a.b.example.com", "x.b.example.com", false },
	{ RULE_ADDR4, "example.com", "example.com", false },
};

ParameterizedTestParameters(dns, domain_match)
{
	ROW_INDICES(matches);
}

ParameterizedTest(size_t *i, dns, domain_match)
{
	const struct match_row *m = &matches[*i];
	struct moat_rule r;

	memset(&r, 0, sizeof(r));
	r.kind = m->kind;
	snprintf(r.domain, sizeof(r.domain), "%s", m->domain);
	cr_expect_eq(domain_rule_match(&r, m->qname), m->match,
		     "%s%s vs '%s': want %s",
		     m->kind == RULE_WILDCARD ? "*." : "", m->domain,
		     m->qname, m->match ? "match" : "no match");
}

/* A name parsed from a query matches the rules that name it. */
Test(dns, parsed_name_matches_rule)
{
	struct moat_rule r = { .kind = RULE_WILDCARD, .domain = "example.com" };
	struct dns_question q;
	uint8_t buf[PKT_MAX];
	size_t len;

	len = q_edns(buf);
	cr_assert_eq(dns_query_parse(buf, len, &q), 0);
	cr_expect(domain_rule_match(&r, q.qname));
	r.kind = RULE_DOMAIN;
	cr_expect_not(domain_rule_match(&r, q.qname));
	/* "a\\.b.example" is the label "a.b" under example. */
	len = q_escaped(buf);
	cr_assert_eq(dns_query_parse(buf, len, &q), 0);
	r.kind = RULE_WILDCARD;
	snprintf(r.domain, sizeof(r.domain), "b.example");
	cr_expect_not(domain_rule_match(&r, q.qname));
	snprintf(r.domain, sizeof(r.domain), "example");
	cr_expect(domain_rule_match(&r, q.qname));
}

/* Only the question goes upstream: no additional records, no trailing bytes. */
Test(dns_query_canonical, drops_additional_records)
{
	uint8_t in[PKT_MAX], out[PKT_MAX], ref[PKT_MAX];
	ldns_pkt *p = query("allowed.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
			    LDNS_RD);
	size_t n, rn, olen = sizeof(out);

	rn = put(query("allowed.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
		       LDNS_RD), ref);
	ldns_pkt_push_rr(p, LDNS_SECTION_ADDITIONAL,
			 rr_text("exfil.example. 60 IN TXT \"secret\""));
	n = put(p, in);
	cr_assert_gt(n, rn);
	cr_assert_eq(dns_query_canonical(in, n, out, &olen), 0);
	cr_assert_eq(olen, rn);
	cr_assert_arr_eq(out, ref, rn);
}

/* Bytes after the last record never reach the upstream. */
Test(dns_query_canonical, drops_trailing_bytes)
{
	uint8_t in[PKT_MAX + 16], out[PKT_MAX];
	size_t n = put(query("allowed.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
			     LDNS_RD), in);
	size_t olen = sizeof(out);

	memcpy(in + n, "exfiltrated-data", 16);
	cr_assert_eq(dns_query_canonical(in, n + 16, out, &olen), 0);
	cr_assert_eq(olen, n);
	cr_assert_arr_eq(out, in, n);
	olen = 4;
	cr_assert_eq(dns_query_canonical(in, n, out, &olen), -ENOSPC);
	olen = sizeof(out);
	cr_assert_eq(dns_query_canonical(in, 5, out, &olen), -EBADMSG);
}

/*
 * The daemon's one parse (dns_query_parse_kept, then
 * dns_query_canonical_kept) says and builds what the two parses did,
 * for a query with extra records and trailing bytes, and refuses what
 * dns_query_parse refuses.
 */
Test(dns_query_canonical, kept_parse_is_the_same)
{
	uint8_t in[PKT_MAX + 16], out[PKT_MAX], ref[PKT_MAX];
	ldns_pkt *p = query("Allowed.Test.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN,
			    LDNS_RD | LDNS_CD);
	size_t n, rlen = sizeof(ref), olen = sizeof(out);
	struct dns_question q1, q2;
	struct ldns_struct_pkt *kept;

	ldns_pkt_set_edns_udp_size(p, 1232);
	ldns_pkt_push_rr(p, LDNS_SECTION_ADDITIONAL,
			 rr_text("exfil.example. 60 IN TXT \"secret\""));
	n = put(p, in);
	memcpy(in + n, "trailing", 8);
	n += 8;
	cr_assert_eq(dns_query_parse(in, n, &q1), 0);
	cr_assert_eq(dns_query_canonical(in, n, ref, &rlen), 0);
	cr_assert_eq(dns_query_parse_kept(in, n, &q2, &kept), 0);
	cr_assert_not_null(kept);
	cr_assert_eq(memcmp(&q1, &q2, sizeof(q1)), 0);
	cr_assert_eq(dns_query_canonical_kept(kept, out, &olen), 0);
	cr_assert_eq(olen, rlen);
	cr_assert_arr_eq(out, ref, rlen);
	olen = 4;
	cr_assert_eq(dns_query_canonical_kept(kept, out, &olen), -ENOSPC);
	dns_query_kept_free(kept);

	/* a response is no query: nothing kept */
	in[2] |= 0x80;
	cr_assert_eq(dns_query_parse_kept(in, n, &q2, &kept), -EBADMSG);
	cr_assert_null(kept);
	cr_assert_eq(dns_query_parse_kept(in, 5, &q2, &kept), -EBADMSG);
	cr_assert_null(kept);
	dns_query_kept_free(NULL);
}

/*
 * The names of parsed queries are what ldns prints for the name in lower
 * case (dns.h's form), and qwire its wire form in lower case: for 20000
 * random names of 1-4 labels over letters of both cases, digits, '-',
 * '_', and bytes ldns escapes ('.', '\\', ';', ' ', '*', 0, 0xc3, 0x7f:
 * '*' is printed as it is but leaves the daemon's plain path).
 * Most are plain (the daemon's own printing, issue 18), the rest ldns's.
 */
Test(dns, query_names_are_ldns_presentation)
{
	/* the first 9 print as they are, the rest ldns escapes */
	static const char alphabet[] = "aZ09-_mQx.\\; *\0\xc3\x7f";
	unsigned int seed = 18, plain = 0;

	for (int k = 0; k < 20000; k++) {
		uint8_t wire[64], buf[PKT_MAX], lc[64];
		size_t w = 0, len;
		int labels = 1 + rand_r(&seed) % 4;
		bool escaped = false;
		struct dns_question q;
		ldns_rdf *owner, *canon;
		char *want;

		for (int l = 0; l < labels; l++) {
			int n = 1 + rand_r(&seed) % 6;

			wire[w++] = (uint8_t)n;
			for (int c = 0; c < n; c++) {
				/* mostly the plain characters (the first 9) */
				int pick = rand_r(&seed) % 4 ? rand_r(&seed) % 9 :
					   rand_r(&seed) % (int)(sizeof(alphabet) - 1);

				wire[w++] = (uint8_t)alphabet[pick];
				escaped |= pick >= 9;
			}
		}
		wire[w++] = 0;
		plain += !escaped;
		owner = ldns_dname_new_frm_data(w, wire);
		cr_assert_not_null(owner);
		canon = ldns_rdf_clone(owner);
		ldns_dname2canonical(canon);
		want = ldns_rdf2str(canon);
		cr_assert_not_null(want);
		want[strlen(want) - 1] = '\0';		/* the root's dot */
		for (size_t i = 0; i < w; i++)
			lc[i] = wire[i] >= 'A' && wire[i] <= 'Z' ? wire[i] + 32 : wire[i];
		len = put(ldns_pkt_query_new(owner, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
					     LDNS_RD), buf);
		cr_assert_eq(dns_query_parse(buf, len, &q), 0);
		cr_assert_str_eq(q.qname, want, "name %d: '%s', want '%s'", k,
				 q.qname, want);
		cr_assert_eq(q.qwire_len, w);
		cr_assert_arr_eq(q.qwire, lc, w, "name %d: '%s': qwire", k, want);
		free(want);
		ldns_rdf_deep_free(canon);
	}
	/* both paths were taken, each many times */
	cr_assert_gt(plain, 2000);
	cr_assert_lt(plain, 18000);
}

/*
 * What ldns_pkt2wire() makes of the canonical query (the daemon wrote it
 * this way until issue 18): the oracle for dns_query_canonical()'s own
 * encoding.
 */
static size_t ldns_canonical(const ldns_pkt *p, uint8_t *buf)
{
	ldns_pkt *q = ldns_pkt_new();

	ldns_pkt_set_id(q, ldns_pkt_id(p));
	ldns_pkt_set_opcode(q, LDNS_PACKET_QUERY);
	ldns_pkt_set_rd(q, ldns_pkt_rd(p));
	ldns_pkt_set_cd(q, ldns_pkt_cd(p));
	cr_assert(ldns_pkt_push_rr(q, LDNS_SECTION_QUESTION,
				   ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(p), 0))));
	if (ldns_pkt_edns(p)) {
		ldns_pkt_set_edns_udp_size(q, ldns_pkt_edns_udp_size(p) < 512 ?
					   512 : ldns_pkt_edns_udp_size(p));
		ldns_pkt_set_edns_do(q, ldns_pkt_edns_do(p));
	}
	return put(q, buf);
}

/*
 * dns_query_canonical() is byte for byte what ldns encodes for the same
 * message, over queries with every combination of RD, CD, AD, an OPT or
 * none, DO, payload sizes below and above 512, EDNS options, extra
 * records, names of any case and types and classes of every kind.
 */
Test(dns_query_canonical, same_bytes_as_ldns)
{
	static const char *names[] = { "Example.COM.", ".", "a.b.c.d.e.f.",
				       "x\\.y.example.", "\\000.\\255.test." };
	static const uint16_t sizes[] = { 0, 1, 511, 512, 1232, 4096, 65535 };
	unsigned int seed = 18;

	for (int k = 0; k < 2000; k++) {
		uint8_t in[PKT_MAX], out[PKT_MAX], want[PKT_MAX];
		ldns_pkt *p = query(names[k % ARRAY_SIZE(names)],
				    (ldns_rr_type)(rand_r(&seed) % 300),
				    (ldns_rr_class)(1 + rand_r(&seed) % 255), 0);
		unsigned int f = rand_r(&seed);
		size_t n, olen = sizeof(out), wlen;
		ldns_pkt *parsed;

		ldns_pkt_set_id(p, (uint16_t)rand_r(&seed));
		ldns_pkt_set_rd(p, f & 1);
		ldns_pkt_set_cd(p, f & 2);
		ldns_pkt_set_ad(p, f & 4);
		if (f & 8) {
			ldns_pkt_set_edns_udp_size(p, sizes[(f >> 4) % ARRAY_SIZE(sizes)]);
			ldns_pkt_set_edns_do(p, f & 0x100);
		}
		if (f & 0x200)
			ldns_pkt_push_rr(p, LDNS_SECTION_ADDITIONAL,
					 rr_text("exfil.example. 60 IN TXT \"x\""));
		n = put(p, in);
		if (!(f & 8) && (f & 0x400)) {
			/*
			 * An OPT written by hand, as a client may send it: any
			 * payload size (0 too), an extended rcode, a version,
			 * DO or not, and an EDNS option (a cookie) in its rdata.
			 */
			uint16_t size = sizes[(f >> 4) % ARRAY_SIZE(sizes)];
			uint8_t opt[] = { 0, 0, 41, size >> 8, size & 0xff,
					  (uint8_t)(f >> 12), (uint8_t)(f >> 20) % 3,
					  f & 0x100 ? 0x80 : 0, 0, 0, 12,
					  0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
			uint16_t ar = (uint16_t)(in[10] << 8 | in[11]) + 1;

			memcpy(in + n, opt, sizeof(opt));
			n += sizeof(opt);
			in[10] = ar >> 8;
			in[11] = ar & 0xff;
		}
		parsed = parse(in, n);
		wlen = ldns_canonical(parsed, want);
		cr_assert_eq(dns_query_canonical(in, n, out, &olen), 0, "query %d", k);
		cr_assert_eq(olen, wlen, "query %d: %zu bytes, ldns %zu", k, olen, wlen);
		cr_assert_arr_eq(out, want, wlen, "query %d: not ldns's bytes", k);
		olen = wlen - 1;
		cr_assert_eq(dns_query_canonical(in, n, out, &olen), -ENOSPC);
		ldns_pkt_free(parsed);
	}
}

/* ---- addresses that are never learned and never upstreams ---- */

static const struct {
	const char *addr;
	bool local;
} scope_rows[] = {
	{ "127.0.0.53", true }, { "127.0.0.11", true }, { "0.0.0.0", true },
	{ "0.1.2.3", true }, { "169.254.169.254", true }, { "224.0.0.251", true },
	{ "239.255.255.250", true }, { "255.255.255.255", true },
	{ "198.51.100.53", false }, { "10.255.255.53", false },
	{ "169.253.0.1", false }, { "223.255.255.255", false },
	{ "::1", true }, { "::", true }, { "fe80::1", true }, { "ff02::fb", true },
	{ "::ffff:198.51.100.53", true },
	{ "2001:db8:1::53", false }, { "fd00:ec2::254", false },
};

ParameterizedTestParameters(dns, addr_local_scope)
{
	ROW_INDICES(scope_rows);
}

ParameterizedTest(size_t *i, dns, addr_local_scope)
{
	uint8_t a[16];
	int family = strchr(scope_rows[*i].addr, ':') ? AF_INET6 : AF_INET;

	cr_assert_eq(inet_pton(family, scope_rows[*i].addr, a), 1);
	cr_assert_eq(dns_addr_local_scope(family, a), scope_rows[*i].local,
		     "%s", scope_rows[*i].addr);
}
