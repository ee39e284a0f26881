// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness for user/dns.c. Every input is tried both as a query
 * from a workload and as an upstream answer to a fixed question; the
 * functions must return one of their documented codes and keep these
 * invariants, or the harness aborts:
 *  - a parsed query's name is lower case and fits its buffer;
 *  - the local answer to a parsed query passes dns_answer_check() against
 *    that query and is not itself taken for a query;
 *  - an exact rule naming the parsed name matches it, a wildcard on it
 *    does not;
 *  - dns_answer_addrs() never reports more than it was given room for,
 *    and only AF_INET/AF_INET6.
 *
 * Build and run: make fuzz (FUZZ_SECONDS=60), make fuzz-replay.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "policy.h"

#define MAX_ADDRS	32

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_dns: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/* The question the answers are checked against (seeds use it too). */
static struct dns_question fixed = {
	.id = 0x1234,
	.qtype = 1,			/* A */
	.qclass = 1,			/* IN */
};

/* its name, qname and qwire, before the first input */
__attribute__((constructor)) static void fixed_name(void)
{
	CHECK(dns_question_set_name(&fixed, "example.com") == 0);
}

static void check_addrs(const uint8_t *data, size_t size, const char *qname)
{
	struct dns_addr addrs[MAX_ADDRS];
	unsigned int tc = 2;
	size_t i, n = MAX_ADDRS + 1;
	int err;

	err = dns_answer_addrs(data, size, qname, addrs, MAX_ADDRS, &n, &tc);
	CHECK(err == 0 || err == -EBADMSG || err == -E2BIG || err == -EINVAL);
	CHECK(n <= MAX_ADDRS);
	CHECK(err != -E2BIG || n == MAX_ADDRS);
	CHECK(err || tc <= 1);
	for (i = 0; i < n; i++) {
		CHECK(addrs[i].family == AF_INET ||
		      addrs[i].family == AF_INET6);
		CHECK(addrs[i].ttl_s <= 0x7fffffffu);
	}
}

static void check_rules(const char *qname)
{
	struct moat_rule r;
	size_t len = strlen(qname);

	if (!len || len >= sizeof(r.domain))
		return;
	memset(&r, 0, sizeof(r));
	memcpy(r.domain, qname, len + 1);
	r.kind = RULE_DOMAIN;
	CHECK(domain_rule_match(&r, qname));
	r.kind = RULE_WILDCARD;
	CHECK(!domain_rule_match(&r, qname));
	/* Whatever the name, these must simply not crash. */
	snprintf(r.domain, sizeof(r.domain), "example.com");
	domain_rule_match(&r, qname);
	r.kind = RULE_DOMAIN;
	domain_rule_match(&r, qname);
}

static void check_query(const uint8_t *data, size_t size)
{
	struct dns_question q, again;
	uint8_t out[512];
	size_t i, outlen = sizeof(out);
	int err;

	err = dns_query_parse(data, size, &q);
	CHECK(err == 0 || err == -EBADMSG || err == -EOPNOTSUPP);
	if (err)
		return;
	CHECK(strlen(q.qname) < sizeof(q.qname));
	for (i = 0; q.qname[i]; i++)
		CHECK(q.qname[i] < 'A' || q.qname[i] > 'Z');
	CHECK(q.has_edns || !q.edns_udp_size);

	/* Header, one question of at most 255 + 4 bytes, an OPT: < 512. */
	err = dns_reply_rcode(data, size, DNS_RCODE_REFUSED, out, &outlen);
	CHECK(err == 0);
	CHECK(dns_answer_check(out, outlen, &q) == 0);
	CHECK(dns_query_parse(out, outlen, &again) == -EBADMSG);

	check_rules(q.qname);
	check_addrs(data, size, q.qname);
}

/* The daemon's one-parse path agrees with the two calls it replaces. */
static void check_take(const uint8_t *data, size_t size, int check_err)
{
	struct dns_addr a1[MAX_ADDRS], a2[MAX_ADDRS];
	unsigned int tc1, tc2, svcb;
	size_t n1, n2;
	int e1, e2;

	e1 = dns_answer_take(data, size, &fixed, a1, MAX_ADDRS, &n1, &tc1, &svcb);
	if (check_err) {
		CHECK(e1 == -EBADMSG || e1 == -ESRCH);
		return;
	}
	e2 = dns_answer_addrs(data, size, fixed.qname, a2, MAX_ADDRS, &n2, &tc2);
	CHECK(e1 == e2 && n1 == n2 && tc1 == tc2);
	CHECK(!memcmp(a1, a2, n1 * sizeof(a1[0])));
	/* the daemon strips ECH only where take counted an SVCB or HTTPS */
	if (!e1 && !svcb) {
		uint8_t *copy = malloc(size);

		CHECK(copy);
		memcpy(copy, data, size);
		e2 = dns_strip_ech(copy, size);
		/* -EBADMSG: ldns's records and the wire's lengths disagree */
		CHECK((e2 == 0 || e2 == -EBADMSG) && !memcmp(copy, data, size));
		free(copy);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int err;

	check_query(data, size);
	err = dns_answer_check(data, size, &fixed);
	CHECK(err == 0 || err == -EBADMSG);
	check_addrs(data, size, fixed.qname);
	check_take(data, size, err);
	return 0;
}
