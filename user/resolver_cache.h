/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The resolver's answer cache (issue 18): upstream answers to allowed
 * names kept for their TTL and handed out again with the TTLs counted
 * down. This file knows DNS messages and memory, nothing of registrations
 * or maps: the caller (resolver_query.c) learns every answer it serves
 * first (a cached one from the addresses it kept with it), so a cached
 * answer refreshes the learned addresses' deadlines before it leaves,
 * exactly as a fresh one does.
 *
 * Entries belong to one owner (a registration) and their key starts with
 * the digest of the owner's upstream set, so no answer ever crosses
 * registrations, let alone ones asking different upstreams (split
 * horizons, Docker's 127.0.0.11 per network). The rest of the key is the
 * query as the client sent it, without its id and with the name in lower
 * case: type, class, every flag (RD, CD ...), the OPT record (present or
 * not, its payload size, DO) and whatever else it carries. The daemon
 * forwards the canonical form of a query (dns_query_canonical), which
 * the same bytes always give; building it is left to misses.
 *
 * Lifetime: the smallest TTL of the answer section, never above the
 * policy's max_ttl. dns.min_ttl does not lengthen it: that minimum keeps
 * addresses in the kernel's map for applications that hold answers past
 * their TTL, it is no licence to hand out an answer longer than its owner
 * allowed (a rotating CDN would get stale answers). Negative answers
 * (NXDOMAIN, NODATA) per RFC 2308: the SOA's TTL or MINIMUM, whichever
 * is smaller, at most DCACHE_NEG_MAX_S; without a SOA not at all. Never
 * cached: truncated answers, other rcodes (SERVFAIL, REFUSED ...), a TTL
 * of 0, answers above DCACHE_MAX_ANSWER bytes.
 *
 * Memory: each entry is charged its struct, key and answer; an owner may
 * hold DCACHE_OWNER_BYTES, all together DCACHE_TOTAL_BYTES, the least
 * recently used going first (its owner's, then anybody's). The bucket
 * array comes on top: a pointer per entry, allocated at the first one and
 * doubled as entries come (each doubling rehashes every entry inside one
 * put: 8 times at most in the daemon's life, as it never shrinks), never
 * above DCACHE_BUCKETS (512 KiB), given back only with the cache. A
 * bucket is chosen by SipHash under a random key, the owner
 * mixed in: a tenant cannot aim its entries at one bucket (every lookup,
 * hit or miss, would walk them all in the daemon's only thread), nor
 * do N registrations asking the same name fill one chain.
 */
#ifndef MOAT_RESOLVER_CACHE_H
#define MOAT_RESOLVER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#ifndef DCACHE_TOTAL_BYTES
#define DCACHE_TOTAL_BYTES	(32u << 20)
#endif
#ifndef DCACHE_OWNER_BYTES
#define DCACHE_OWNER_BYTES	(1u << 20)
#endif
#ifndef DCACHE_NEG_MAX_S
#define DCACHE_NEG_MAX_S	30
#endif
#define CACHE_MAX_MIB		1024	/* what --cache-mib accepts */
#define DCACHE_MAX_ANSWER	8192
#define DCACHE_MAX_TTLS		256	/* records with a TTL in one answer */
#define DCACHE_MAX_META		4096	/* the caller's bytes per entry */
#define DCACHE_BUCKETS		(1u << 16)	/* at most */
#define DCACHE_BUCKETS_MIN	256u

struct dcache_ent;

struct dcache {
	struct dcache_ent **bucket;	/* NULL until the first entry */
	size_t n_buckets;		/* a power of two, or 0 */
	TAILQ_HEAD(, dcache_ent) lru;	/* least recently used first */
	size_t bytes, max_bytes, owner_max_bytes;
	unsigned long n, hits, misses, stored, evicted;
	unsigned long probes;		/* entries compared by lookups */
	uint64_t secret[2];		/* SipHash key of the buckets */
};

struct dcache_owner {
	struct dcache *c;
	TAILQ_HEAD(, dcache_ent) lru;
	size_t bytes;
	unsigned long n;
	uint64_t upstreams;		/* digest of its upstream set */
};

void dcache_init(struct dcache *c, size_t max_bytes, size_t owner_max_bytes);
void dcache_fini(struct dcache *c);
void dcache_owner_init(struct dcache *c, struct dcache_owner *o);
/* every entry of O gone (reload, new upstreams, registration freed) */
void dcache_flush(struct dcache_owner *o);
/* O asks the upstreams digested in DIGEST from now on (see dcache_digest) */
void dcache_set_upstreams(struct dcache_owner *o, uint64_t digest);
uint64_t dcache_digest(const void *data, size_t len, uint64_t seed);

/*
 * Keep answer A (ALEN bytes) to query Q (QLEN bytes, as sent) for O,
 * NOW_MS on a monotonic clock, its lifetime at most MAX_TTL_S. UDP_LIMIT:
 * the largest answer a UDP client sending Q takes (RFC 6891, 6.2.5).
 * META (METALEN bytes, at most DCACHE_MAX_META) is the caller's, kept
 * with the answer and handed back with every hit: what the caller knew
 * of Q and A when it let them through, so that a hit needs no parse.
 * 0 when kept, 1 when not cacheable, -errno.
 */
int dcache_put(struct dcache_owner *o, const uint8_t *q, size_t qlen,
	       const uint8_t *a, size_t alen, size_t udp_limit,
	       const void *meta, size_t metalen, uint32_t max_ttl_s,
	       uint64_t now_ms);

struct dcache_hit {
	const void *meta;	/* as given to dcache_put; valid until the next call */
	size_t metalen;
	uint32_t life_s;	/* the entry's lifetime */
	uint32_t elapsed_s;	/* whole seconds since it was kept */
};

/*
 * The answer to query Q (as sent) into OUT (*outlen: its room, then the
 * length), with Q's id and its question's letters, every TTL counted
 * down by the whole seconds elapsed, and into HIT what came with it. An
 * answer longer than a UDP client takes (unless TCP) is not served.
 * 0 on a hit, 1 on a miss.
 *
 * The key is every byte of Q but its id, the name folded to lower case:
 * a hit means Q is, byte for byte, a query whose answer was kept, so the
 * caller may take it as parsed and judged as that one was.
 */
int dcache_get(struct dcache_owner *o, const uint8_t *q, size_t qlen,
	       bool tcp, uint64_t now_ms, uint8_t *out, size_t *outlen,
	       struct dcache_hit *hit);
/* The TTL a hit serves for a record of TTL, the entry's LIFE and ELAPSED. */
uint32_t dcache_ttl_served(uint32_t ttl, uint32_t life_s, uint32_t elapsed_s);
/* Forget the entry for Q (its answer could not be served). */
void dcache_drop(struct dcache_owner *o, const uint8_t *q, size_t qlen);

/*
 * Where answer A's TTLs are (every record but OPT), the smallest TTL of
 * its answer section, and whether it is negative (NXDOMAIN, or NOERROR
 * without answer records) with the RFC 2308 TTL of its SOA in *ttl_s.
 * 0, 1 (not cacheable) or -EBADMSG. Exposed for the unit tests.
 */
int dcache_scan(const uint8_t *a, size_t alen, uint16_t *off, size_t max,
		size_t *n, uint32_t *ttl_s, bool *negative);

#endif
