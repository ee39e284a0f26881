/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * DNS messages for the resolver: read a workload's query, answer it
 * locally with an rcode, check the upstream answer and learn the
 * addresses it hands out. Every message is decoded and encoded by ldns;
 * this header keeps ldns types out of its callers.
 *
 * Names are passed around in presentation form as ldns prints them, lower
 * case, without the trailing dot ("" is the root). A label byte that is
 * not printable or is a dot comes out escaped ("a\.b", "\032"), so the
 * string maps back to exactly one wire name.
 */
#ifndef MOAT_DNS_H
#define MOAT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct moat_rule;

/* 255 wire octets with every byte escaped as \DDD, plus NUL. */
#define DNS_NAME_STR_LEN	1024
/* A name in wire form: at most 255 octets (RFC 1035, 2.3.4). */
#define DNS_NAME_WIRE_LEN	255
/* CNAME hops followed from the query name before giving up. */
#define DNS_MAX_CNAME_CHAIN	16
/* UDP payload size advertised in the OPT record of local answers. */
#define DNS_EDNS_UDP_SIZE	1232

/* The rcodes the resolver answers with itself (RFC 1035, 4.1.1). */
#define DNS_RCODE_NOERROR	0
#define DNS_RCODE_FORMERR	1
#define DNS_RCODE_SERVFAIL	2
#define DNS_RCODE_NXDOMAIN	3
#define DNS_RCODE_NOTIMP	4
#define DNS_RCODE_REFUSED	5

struct dns_question {
	uint16_t id;
	uint16_t qtype;
	uint16_t qclass;
	bool has_edns;			/* the query had an OPT record */
	uint16_t edns_udp_size;		/* its payload size, else 0 */
	char qname[DNS_NAME_STR_LEN];	/* see the top of this file */
	/* the same name in wire form, lower case (what answers are held to) */
	uint8_t qwire[DNS_NAME_WIRE_LEN];
	uint8_t qwire_len;		/* 1..255 octets, with the root label */
};

struct dns_addr {
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];		/* network order; IPv4 in addr[0..3] */
	uint32_t ttl_s;
};

/*
 * A standard query: QR clear, opcode QUERY, exactly one question, no
 * answer or authority records, no TSIG. Returns 0, -EBADMSG (not a valid
 * query), -EOPNOTSUPP (a valid message with another opcode) or -ENOMEM.
 *
 * Bytes after the last record are ignored (ldns_wire2pkt does not report
 * them): forward a message re-encoded from the parsed one, not the bytes
 * received, if that matters.
 */
int dns_query_parse(const uint8_t *pkt, size_t len, struct dns_question *q);

/*
 * A new query built from @pkt's single question only (same id, RD and CD,
 * a bare OPT if @pkt had one): what is forwarded upstream, so additional
 * records, EDNS options and bytes after the last record never leave the
 * host as a side channel.
 * *outlen is the size of @out on entry, the length on return. Returns 0,
 * -EBADMSG, -ENOSPC or -ENOMEM.
 */
int dns_query_canonical(const uint8_t *pkt, size_t len, uint8_t *out,
			size_t *outlen);

/*
 * Both of the above from one ldns parse (issue 18: a parse costs about a
 * map syscall, and a miss did two): dns_query_parse() that, on success,
 * keeps the parsed message in *kept for dns_query_canonical_kept(), the
 * same query dns_query_canonical() builds. Free it with
 * dns_query_kept_free() (NULL is fine).
 */
struct ldns_struct_pkt;
int dns_query_parse_kept(const uint8_t *pkt, size_t len,
			 struct dns_question *q, struct ldns_struct_pkt **kept);
int dns_query_canonical_kept(const struct ldns_struct_pkt *kept, uint8_t *out,
			     size_t *outlen);
void dns_query_kept_free(struct ldns_struct_pkt *kept);

/*
 * Build the response to @query with @rcode (0..15): same id, opcode, RD
 * and CD, QR and RA set, the question copied as sent when there is
 * exactly one, and an OPT record (payload DNS_EDNS_UDP_SIZE, DO copied)
 * when the query had one. Any message with QR clear is answered, so
 * FORMERR and NOTIMP can be sent too. *outlen is the size of @out on
 * entry and the length of the response on return.
 * Returns 0, -EINVAL (rcode), -EBADMSG (not a query), -ENOSPC or -ENOMEM.
 */
int dns_reply_rcode(const uint8_t *query, size_t qlen, int rcode,
		    uint8_t *out, size_t *outlen);

/*
 * Name @q (the question of a query made here, not parsed): qname and
 * qwire from a name in any case, trailing dot or not. 0 or -EINVAL.
 */
int dns_question_set_name(struct dns_question *q, const char *name);

/*
 * The upstream answer belongs to @q: QR set, opcode QUERY, same id and a
 * single question with the same name (case-insensitive), type and class.
 * Returns 0 or -EBADMSG.
 */
int dns_answer_check(const uint8_t *pkt, size_t len,
		     const struct dns_question *q);

/*
 * The addresses an answer hands out for @qname, from the ANSWER section
 * only: the CNAME chain is followed from @qname (at most
 * DNS_MAX_CNAME_CHAIN hops, a loop ends it), and for every owner on it the
 * A and AAAA records and the ipv4hint/ipv6hint of SVCB/HTTPS records in
 * ServiceMode are taken; records of any other owner or class are ignored.
 * An address's TTL is the smallest of its record's TTL and the TTLs of
 * the CNAMEs leading to it (TTLs above 2^31 - 1 count as 0, RFC 2181).
 * An address given twice is listed once, with the larger TTL.
 * *truncated is the TC bit.
 * Returns 0, -EBADMSG, -EINVAL (@qname is not a name), -ENOMEM, or -E2BIG
 * when there are more than @max addresses (out[] then holds the first @max
 * and *n == @max).
 */
int dns_answer_addrs(const uint8_t *pkt, size_t len, const char *qname,
		     struct dns_addr *out, size_t max, size_t *n,
		     unsigned int *truncated);

/*
 * Both of the above from one parse of the answer: -EBADMSG (not a DNS
 * message) or -ESRCH (not the answer to @q) for a packet to ignore; else
 * what dns_answer_addrs() returns for @q's name. *svcb, when 0 is
 * returned: how many SVCB or HTTPS records the answer section has (none:
 * dns_strip_ech() has nothing to do; an error fails the answer anyway).
 */
int dns_answer_take(const uint8_t *pkt, size_t len, const struct dns_question *q,
		    struct dns_addr *out, size_t max, size_t *n,
		    unsigned int *truncated, unsigned int *svcb);

/*
 * Rewrite, in place and at the same length, every SVCB/HTTPS answer
 * record of the DNS message PKT so that it carries no `ech` SvcParam
 * (names over shared addresses, docs/names.md; in user/names.c). Each
 * record's SvcParams are found by walking the wire to its rdata.
 * Returns how many records changed, or -EBADMSG (not a message, or one
 * whose records ldns reads other than the wire's lengths say: then the
 * strip may have stopped half-way, and the message is not to be sent).
 */
int dns_strip_ech(uint8_t *pkt, size_t len);

/*
 * Past the name at *@i of the DNS message @a (@alen bytes), a pointer
 * ending it or not: 0, or -EBADMSG. For messages ldns parsed already,
 * where a record's offset in the wire is needed (ldns tells none: the
 * answer cache rewrites TTLs in place, the ECH strip SvcParams).
 */
int dns_wire_skip_name(const uint8_t *a, size_t alen, size_t *i);

/*
 * A domain rule against a name (any case, trailing dot or not).
 * RULE_DOMAIN: the name itself. RULE_WILDCARD (stored without "*."): any
 * name strictly below it, at any depth; never the name itself. Labels are
 * compared whole, so example.com does not cover badexample.com. Other rule
 * kinds and names that are not valid never match.
 */
bool domain_rule_match(const struct moat_rule *r, const char *qname);

/*
 * Loopback, unspecified, link-local, multicast, broadcast or v4-mapped:
 * an address that means something else in every netns, or nothing. Never
 * learned from an answer, never an upstream. @a: network order, 4 or 16
 * bytes by @family.
 */
bool dns_addr_local_scope(int family, const uint8_t *a);

/* "ADDR" or "[ADDR6]:53": what the daemon takes as an upstream. */
#define DNS_ADDR_STR_LEN	64

/* ---- resolv.conf files (resolv_conf.c) ---- */

/*
 * The nameservers of a resolv.conf file, in order, at most @max, without
 * those the workload itself could answer for (loopback, link-local,
 * unspecified; counted in *skipped), except Docker's 127.0.0.11 when
 * @docker_dns. A file without any is not an error (*n == 0). Returns 0 or
 * -EBADMSG (missing, not a regular file, over 64 KiB, or unreadable).
 */
int dns_resolv_conf(const char *path, bool docker_dns,
		    char (*out)[DNS_ADDR_STR_LEN], size_t max, size_t *n,
		    size_t *skipped);

#define DNS_SEARCH_MAX		8
/*
 * The search domains of resolv.conf PATH ("search", else "domain"), in
 * lower case without the trailing dot; the root is left out. 0 or
 * -EBADMSG as dns_resolv_conf().
 */
int dns_resolv_search(const char *path, char (*out)[DNS_NAME_STR_LEN],
		      size_t max, size_t *n);

#endif /* MOAT_DNS_H */
