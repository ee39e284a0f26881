// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The answer cache: one hash table of entries, each on its owner's LRU
 * list and on the global one. See resolver_cache.h for what is kept, for
 * how long and within which bounds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include "dns.h"
#include "resolver_cache.h"
#include "siphash.h"

#define DNS_TYPE_SOA	6
#define DNS_TYPE_SIG	24
#define DNS_TYPE_OPT	41
#define DNS_TYPE_TSIG	250
#define RCODE_NXDOMAIN	3
/* the digest and a query of at most 512 bytes past its id */
#define KEY_MAX		(8 + 512)

struct dcache_ent {
	struct dcache_ent *hnext;
	TAILQ_ENTRY(dcache_ent) lru, olru;
	struct dcache_owner *o;
	uint64_t hash, stored_ms, expires_ms;
	size_t size;
	uint32_t life_s;
	uint16_t klen, alen, n_ttl, qname_len, udp_limit, metalen;
	uint8_t data[];		/* TTL offsets (uint16_t), key, answer, meta */
};

static uint16_t *ent_off(struct dcache_ent *e)
{
	return (uint16_t *)e->data;
}

static uint8_t *ent_key(struct dcache_ent *e)
{
	return e->data + e->n_ttl * sizeof(uint16_t);
}

static uint8_t *ent_answer(struct dcache_ent *e)
{
	return ent_key(e) + e->klen;
}

static uint8_t *ent_meta(struct dcache_ent *e)
{
	return ent_answer(e) + e->alen;
}

static uint16_t be16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

uint64_t dcache_digest(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ? seed : 0xcbf29ce484222325ull;	/* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Key K of owner O: its bucket, mixed with O (a key is not O's alone). */
static uint64_t key_hash(const struct dcache *c, const struct dcache_owner *o,
			 const uint8_t *key, size_t klen)
{
	return siphash(c->secret[0], c->secret[1] ^ (uintptr_t)o, key, klen);
}

void dcache_init(struct dcache *c, size_t max_bytes, size_t owner_max_bytes)
{
	memset(c, 0, sizeof(*c));
	/*
	 * Blocks only until the kernel's pool is ready, early at boot; 16
	 * bytes come whole. Failing that (no getrandom), the address and
	 * the clock: unknown to a tenant, though not secret.
	 */
	if (getrandom(c->secret, sizeof(c->secret), 0) != sizeof(c->secret)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		c->secret[0] = (uintptr_t)c ^ (uint64_t)ts.tv_nsec << 20;
		c->secret[1] = (uint64_t)ts.tv_sec * 1000000007ull ^ ts.tv_nsec;
	}
	TAILQ_INIT(&c->lru);
	c->max_bytes = max_bytes;
	c->owner_max_bytes = owner_max_bytes;
}

void dcache_owner_init(struct dcache *c, struct dcache_owner *o)
{
	memset(o, 0, sizeof(*o));
	o->c = c;
	TAILQ_INIT(&o->lru);
}

static void ent_free(struct dcache *c, struct dcache_ent *e)
{
	struct dcache_ent **pp = &c->bucket[e->hash & (c->n_buckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_REMOVE(&e->o->lru, e, olru);
	c->bytes -= e->size;
	c->n--;
	e->o->bytes -= e->size;
	e->o->n--;
	free(e);
}

void dcache_flush(struct dcache_owner *o)
{
	struct dcache_ent *e;

	while ((e = TAILQ_FIRST(&o->lru)))
		ent_free(o->c, e);
}

void dcache_fini(struct dcache *c)
{
	struct dcache_ent *e;

	while ((e = TAILQ_FIRST(&c->lru)))
		ent_free(c, e);
	free(c->bucket);
	c->bucket = NULL;
	c->n_buckets = 0;
}

void dcache_set_upstreams(struct dcache_owner *o, uint64_t digest)
{
	if (o->upstreams != digest)
		dcache_flush(o);
	o->upstreams = digest;
}

int dcache_scan(const uint8_t *a, size_t alen, uint16_t *off, size_t max,
		size_t *n, uint32_t *ttl_s, bool *negative)
{
	uint32_t min_an = UINT32_MAX, soa = UINT32_MAX;
	uint16_t flags, count[3];
	int rcode;
	size_t i = 12;

	*n = 0;
	if (alen < 12 || alen > UINT16_MAX)
		return -EBADMSG;
	flags = be16(a + 2);
	rcode = flags & 0xf;
	/* QR, opcode QUERY, not truncated, NOERROR or NXDOMAIN */
	if (!(flags & 0x8000) || (flags & 0x7800) || (flags & 0x0200) ||
	    (rcode && rcode != RCODE_NXDOMAIN) || be16(a + 4) != 1)
		return 1;
	for (int s = 0; s < 3; s++)
		count[s] = be16(a + 6 + 2 * s);
	if (dns_wire_skip_name(a, alen, &i) || (i += 4) > alen)
		return -EBADMSG;
	for (int s = 0; s < 3; s++) {
		for (unsigned int k = 0; k < count[s]; k++) {
			uint16_t type, rdlen;
			uint32_t ttl;

			if (dns_wire_skip_name(a, alen, &i) || i + 10 > alen)
				return -EBADMSG;
			type = be16(a + i);
			ttl = be32(a + i + 4);
			rdlen = be16(a + i + 8);
			if (i + 10 + rdlen > alen)
				return -EBADMSG;
			if (type == DNS_TYPE_OPT) {
				/* its "TTL" is flags and the extended rcode */
				if (a[i + 4])
					return 1;
				i += 10 + rdlen;
				continue;
			}
			/* signed for this exchange: never replayed */
			if (type == DNS_TYPE_TSIG || type == DNS_TYPE_SIG)
				return 1;
			if (*n == max)
				return 1;
			off[(*n)++] = i + 4;
			if (ttl > INT32_MAX)	/* RFC 2181, 8 */
				ttl = 0;
			if (s == 0 && ttl < min_an)
				min_an = ttl;
			if (s == 1 && type == DNS_TYPE_SOA && rdlen >= 22) {
				uint32_t minimum = be32(a + i + 10 + rdlen - 4);

				/* RFC 2308, 5: the smaller of TTL and MINIMUM */
				minimum = minimum < ttl ? minimum : ttl;
				soa = minimum < soa ? minimum : soa;
			}
			i += 10 + rdlen;
		}
	}
	*negative = rcode == RCODE_NXDOMAIN || !count[0];
	if (*negative) {
		if (soa == UINT32_MAX)
			return 1;	/* RFC 2308, 5: no SOA, not cached */
		*ttl_s = soa < min_an ? soa : min_an;
	} else {
		*ttl_s = min_an;
	}
	return 0;
}

/*
 * The digest and query Q after its id, the name in lower case. Only a
 * name written out (no compression pointer) is cached: its letters are
 * then all there is to fold.
 */
static int make_key(const struct dcache_owner *o, const uint8_t *q,
		    size_t qlen, uint8_t *key, size_t *klen, size_t *qname_len)
{
	size_t i = 12;

	if (qlen < 12 || qlen - 2 + 8 > KEY_MAX)
		return 1;
	while (i < qlen && q[i] && q[i] < 64)
		i += q[i] + 1;
	if (i >= qlen || q[i++] || i + 4 > qlen)
		return 1;
	memcpy(key, &o->upstreams, 8);
	memcpy(key + 8, q + 2, qlen - 2);
	/* the only name, uncompressed: its label lengths are below 'A' */
	for (size_t k = 8 + 10; k < 8 + i - 2; k++)
		if (key[k] >= 'A' && key[k] <= 'Z')
			key[k] += 'a' - 'A';
	*klen = 8 + qlen - 2;
	*qname_len = i - 12;
	return 0;
}

/*
 * N buckets, every entry moved to its new one. Sized to the entries (one
 * bucket each, DCACHE_BUCKETS at most) rather than to the bound: a few
 * thousand entries' buckets are a few pages, where the bound's would
 * spread each lookup over half a megabyte (a TLB miss per query here).
 */
static int grow(struct dcache *c, size_t n)
{
	struct dcache_ent **b = calloc(n, sizeof(*b)), *e;

	if (!b)
		return -ENOMEM;
	TAILQ_FOREACH(e, &c->lru, lru) {
		e->hnext = b[e->hash & (n - 1)];
		b[e->hash & (n - 1)] = e;
	}
	free(c->bucket);
	c->bucket = b;
	c->n_buckets = n;
	return 0;
}

static struct dcache_ent *lookup(struct dcache *c, const struct dcache_owner *o,
				 const uint8_t *key, size_t klen, uint64_t hash)
{
	struct dcache_ent *e;

	if (!c->bucket)
		return NULL;
	for (e = c->bucket[hash & (c->n_buckets - 1)]; e; e = e->hnext) {
		c->probes++;
		if (e->hash == hash && e->o == o && e->klen == klen &&
		    !memcmp(ent_key(e), key, klen))
			return e;
	}
	return NULL;
}

/* The answer's question has the key's name, in any case, at offset 12. */
static bool same_question(const uint8_t *a, size_t alen, const uint8_t *q,
			  size_t qname_len)
{
	if (12 + qname_len + 4 > alen)
		return false;
	for (size_t k = 12; k < 12 + qname_len; k++) {
		uint8_t x = a[k], y = q[k];

		if (x >= 'A' && x <= 'Z')
			x += 'a' - 'A';
		if (y >= 'A' && y <= 'Z')
			y += 'a' - 'A';
		if (x != y)
			return false;
	}
	return !memcmp(a + 12 + qname_len, q + 12 + qname_len, 4);
}

int dcache_put(struct dcache_owner *o, const uint8_t *q, size_t qlen,
	       const uint8_t *a, size_t alen, size_t udp_limit,
	       const void *meta, size_t metalen, uint32_t max_ttl_s,
	       uint64_t now_ms)
{
	static uint16_t off[DCACHE_MAX_TTLS];
	struct dcache *c = o->c;
	uint8_t key[KEY_MAX];
	size_t klen, qname_len, n, size;
	struct dcache_ent *e;
	uint32_t ttl;
	bool negative;
	uint64_t hash;
	int ret;

	if (alen > DCACHE_MAX_ANSWER || metalen > DCACHE_MAX_META ||
	    make_key(o, q, qlen, key, &klen, &qname_len))
		return 1;
	ret = dcache_scan(a, alen, off, DCACHE_MAX_TTLS, &n, &ttl, &negative);
	if (ret)
		return ret;
	if (negative && ttl > DCACHE_NEG_MAX_S)
		ttl = DCACHE_NEG_MAX_S;
	if (ttl > max_ttl_s)
		ttl = max_ttl_s;
	if (!ttl || !same_question(a, alen, q, qname_len))
		return 1;
	size = sizeof(*e) + n * sizeof(uint16_t) + klen + alen + metalen;
	if (size > c->owner_max_bytes || size > c->max_bytes)
		return 1;
	if (!c->bucket && grow(c, DCACHE_BUCKETS_MIN))
		return -ENOMEM;
	hash = key_hash(c, o, key, klen);
	if ((e = lookup(c, o, key, klen, hash)))
		ent_free(c, e);
	while (o->bytes + size > c->owner_max_bytes) {
		ent_free(c, TAILQ_FIRST(&o->lru));
		c->evicted++;
	}
	while (c->bytes + size > c->max_bytes) {
		ent_free(c, TAILQ_FIRST(&c->lru));
		c->evicted++;
	}
	e = malloc(size);
	if (!e)
		return -ENOMEM;
	*e = (struct dcache_ent){
		.o = o, .hash = hash, .stored_ms = now_ms,
		.expires_ms = now_ms + ttl * 1000ull, .size = size,
		.life_s = ttl, .klen = klen, .alen = alen, .n_ttl = n,
		.qname_len = qname_len, .metalen = metalen,
		.udp_limit = udp_limit < DCACHE_MAX_ANSWER ? udp_limit : DCACHE_MAX_ANSWER,
	};
	memcpy(ent_off(e), off, n * sizeof(uint16_t));
	memcpy(ent_key(e), key, klen);
	memcpy(ent_answer(e), a, alen);
	if (metalen)
		memcpy(ent_meta(e), meta, metalen);
	e->hnext = c->bucket[hash & (c->n_buckets - 1)];
	c->bucket[hash & (c->n_buckets - 1)] = e;
	TAILQ_INSERT_TAIL(&c->lru, e, lru);
	TAILQ_INSERT_TAIL(&o->lru, e, olru);
	c->bytes += size;
	c->n++;
	o->bytes += size;
	o->n++;
	c->stored++;
	/* no room to grow is no error: the chains are longer */
	if (c->n > c->n_buckets && c->n_buckets < DCACHE_BUCKETS)
		grow(c, 2 * c->n_buckets);
	return 0;
}

static struct dcache_ent *find(struct dcache_owner *o, const uint8_t *q,
			       size_t qlen)
{
	uint8_t key[KEY_MAX];
	size_t klen, qname_len;

	if (make_key(o, q, qlen, key, &klen, &qname_len))
		return NULL;
	return lookup(o->c, o, key, klen, key_hash(o->c, o, key, klen));
}

uint32_t dcache_ttl_served(uint32_t ttl, uint32_t life_s, uint32_t elapsed_s)
{
	ttl = ttl > INT32_MAX ? 0 : ttl > life_s ? life_s : ttl;
	return ttl > elapsed_s ? ttl - elapsed_s : 0;
}

int dcache_get(struct dcache_owner *o, const uint8_t *q, size_t qlen,
	       bool tcp, uint64_t now_ms, uint8_t *out, size_t *outlen,
	       struct dcache_hit *hit)
{
	struct dcache *c = o->c;
	struct dcache_ent *e = find(o, q, qlen);
	uint32_t elapsed_s;
	uint8_t *a;

	if (e && e->expires_ms <= now_ms) {
		ent_free(c, e);
		e = NULL;
	}
	if (!e || (!tcp && e->alen > e->udp_limit) || e->alen > *outlen) {
		c->misses++;
		return 1;
	}
	a = ent_answer(e);
	memcpy(out, a, e->alen);
	/* the client's id and the letters of its name (0x20 checks) */
	memcpy(out, q, 2);
	memcpy(out + 12, q + 12, e->qname_len);
	/*
	 * Whole seconds elapsed, rounded down: a served TTL never ends
	 * before the entry does, and the caller gives the addresses a
	 * deadline of at least that TTL from now (dcache_ttl_served()).
	 */
	elapsed_s = (now_ms - e->stored_ms) / 1000;
	for (unsigned int i = 0; i < e->n_ttl; i++) {
		uint16_t at = ent_off(e)[i];
		uint32_t ttl = dcache_ttl_served(be32(a + at), e->life_s, elapsed_s);

		out[at] = ttl >> 24;
		out[at + 1] = ttl >> 16;
		out[at + 2] = ttl >> 8;
		out[at + 3] = ttl;
	}
	*outlen = e->alen;
	*hit = (struct dcache_hit){
		.meta = ent_meta(e), .metalen = e->metalen,
		.life_s = e->life_s, .elapsed_s = elapsed_s,
	};
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_TAIL(&c->lru, e, lru);
	TAILQ_REMOVE(&o->lru, e, olru);
	TAILQ_INSERT_TAIL(&o->lru, e, olru);
	c->hits++;
	return 0;
}

void dcache_drop(struct dcache_owner *o, const uint8_t *q, size_t qlen)
{
	struct dcache_ent *e = find(o, q, qlen);

	if (e)
		ent_free(o->c, e);
}
