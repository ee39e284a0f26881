// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tools/bench/qcost.c: where the daemon's time per query goes, step by
 * step, in this process (no daemon, no network): the same functions the
 * resolver calls on one query for a name, each timed over many
 * iterations, and the map syscalls on a private hash map of the exact
 * map's key and value sizes (not pinned, gone with the process).
 * tools/bench/dns.sh builds it against build/lib.a and prints its table
 * next to the end-to-end rows (issue 18: what the time goes to).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <ldns/ldns.h>
#include "dns.h"
#include "learn.h"
#include "moat_abi.h"
#include "resolver_cache.h"
#include "state.h"

#define ITER	200000

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static size_t wire(ldns_pkt *p, uint8_t *buf)
{
	uint8_t *w;
	size_t n;

	if (ldns_pkt2wire(&w, p, &n) != LDNS_STATUS_OK)
		exit(1);
	memcpy(buf, w, n);
	free(w);
	ldns_pkt_free(p);
	return n;
}

#define TIME(label, stmt)						\
	do {								\
		double t0 = now_ns();					\
		for (int i_ = 0; i_ < ITER; i_++) {			\
			stmt;						\
		}							\
		printf("  %-44s %7.0f ns\n", label, (now_ns() - t0) / ITER); \
	} while (0)

/* What classify() does for a miss: one parse, checked and rebuilt. */
static int kept_pair(const uint8_t *q, size_t qlen, struct dns_question *qu,
		     uint8_t *fwd, size_t *flen)
{
	struct ldns_struct_pkt *kept;
	int err = dns_query_parse_kept(q, qlen, qu, &kept);

	if (!err)
		err = dns_query_canonical_kept(kept, fwd, flen);
	dns_query_kept_free(kept);
	return err;
}

int main(void)
{
	static struct dns_addr addrs[64];
	uint8_t q[512], fwd[512], a[512], out[512];
	size_t qlen, flen = sizeof(fwd), alen, olen, n;
	struct dns_question qu;
	struct dcache c;
	struct dcache_owner o;
	struct dcache_hit hit;
	static const char meta[128];	/* a hit_meta with one address, about */
	struct moat_exact4_key k = { .policy_id = 1 };
	struct moat_addr_val v = { .expires_ns = 1 }, add = { .expires_ns = 1 };
	struct learned_addr la = { .family = AF_INET };
	struct learn_memo memo;
	struct moat_state st;
	unsigned int tc, svcb;
	ldns_pkt *p;
	ldns_rr *rr = NULL;
	int fd;

	/* what dnsperf sends for a line "q1.bench.test A", and dnsmasq's answer */
	p = ldns_pkt_query_new(ldns_dname_new_frm_str("q1.bench.test"),
			       LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_pkt_set_id(p, 7);
	qlen = wire(p, q);
	p = ldns_pkt_query_new(ldns_dname_new_frm_str("q1.bench.test"),
			       LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_pkt_set_id(p, 7);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_ra(p, true);
	ldns_rr_new_frm_str(&rr, "q1.bench.test. 600 IN A 203.0.113.101", 0, NULL, NULL);
	ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
	alen = wire(p, a);
	if (dns_query_parse(q, qlen, &qu) || dns_query_canonical(q, qlen, fwd, &flen))
		return 1;
	dcache_init(&c, DCACHE_TOTAL_BYTES, DCACHE_OWNER_BYTES);
	dcache_owner_init(&c, &o);
	if (dcache_put(&o, q, qlen, a, alen, 512, meta, sizeof(meta), 86400, 1000))
		return 1;
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "qcost", sizeof(k), sizeof(v),
			    1024, NULL);
	inet_pton(AF_INET, "203.0.113.101", &k.addr);
	if (fd < 0 || bpf_map_update_elem(fd, &k, &v, BPF_ANY)) {
		fprintf(stderr, "qcost: bpf_map_create: %s\n", strerror(errno));
		return 1;
	}
	printf("one query for q1.bench.test A in the daemon, step by step (%d iterations each):\n", ITER);
	TIME("dns_query_parse (ldns: the client's query)", dns_query_parse(q, qlen, &qu));
	TIME("dns_query_canonical (ldns parse, own encoding)",
	     (flen = sizeof(fwd), dns_query_canonical(q, qlen, fwd, &flen)));
	TIME("parse_kept + canonical_kept (a miss: one parse)",
	     (flen = sizeof(fwd), kept_pair(q, qlen, &qu, fwd, &flen)));
	TIME("dcache_get (a hit: key, lookup, copy, TTLs)",
	     (olen = sizeof(out), dcache_get(&o, q, qlen, false, 2000, out, &olen, &hit)));
	TIME("dns_answer_take (ldns: the answer's addresses)",
	     dns_answer_take(a, alen, &qu, addrs, 64, &n, &tc, &svcb));
	TIME("dns_strip_ech (ldns: answers with SVCB/HTTPS)", dns_strip_ech(a, alen));
	TIME("dcache_put (a miss's answer kept)",
	     dcache_put(&o, q, qlen, a, alen, 512, meta, sizeof(meta), 86400, 1000));
	TIME("bpf_map_lookup_elem (hash, syscall)", bpf_map_lookup_elem(fd, &k, &v));
	TIME("bpf_map_update_elem (hash, syscall)", bpf_map_update_elem(fd, &k, &v, BPF_ANY));
	/* the daemon's check of an answer's address: with the memo, without */
	state_init(&st);
	st.map[M_EXACT4] = fd;
	memcpy(la.addr, &k.addr, 4);
	if (learn_memo_init(&memo, 1 << 20) ||
	    learn_check(&st, &memo, 1, &la, &add) != LEARN_KEPT)
		return 1;
	TIME("learn_check, memo (the map read < 1 s before)",
	     learn_check(&st, &memo, 1, &la, &add));
	TIME("learn_check, no memo (scope + the lookup)",
	     learn_check(&st, NULL, 1, &la, &add));
	learn_memo_fini(&memo);
	printf("a hit (one address, its deadline covering the TTL served) costs dcache_get\n"
	       "and the address's learn_check (no syscall where the daemon read or wrote its\n"
	       "entry less than a second before, else its lookup), plus its share of recvmmsg\n"
	       "and sendmmsg; a miss costs parse_kept + canonical_kept (in place of\n"
	       "dns_query_parse), the upstream exchange (sendmmsg, a wakeup, recvmmsg),\n"
	       "dns_answer_take, dns_strip_ech only if the answer has SVCB/HTTPS records,\n"
	       "dcache_put and the address's learn_check; an address to write adds its\n"
	       "batch's policy id reads, a lookup, for a new address the deny check, and an\n"
	       "update.\n");
	close(fd);
	dcache_fini(&c);
	return 0;
}
