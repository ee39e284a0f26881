// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One query decided, one answer learned: which rules allow a name (the
 * rule index), the local answers (REFUSED, NXDOMAIN, SERVFAIL) and their
 * log events, and the addresses of an answer written into the policy's
 * maps before it is released. Transport-free: the UDP and TCP sides call
 * in with whole messages.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include "log.h"
#include "moat_names.h"
#include "resolver.h"

__u32 reg_policy_id(struct daemon *d, struct reg *r)
{
	struct moat_cgroup cg;

	if (bpf_map_lookup_elem(d->st.map[M_CGROUPS], &r->cg_id, &cg))
		return 0;
	return cg.policy_id;
}

/* Bucket of a domain in the rule index: the name map's hash serves. */
static __u32 domain_hash(const char *s, size_t len)
{
	return (__u32)moat_name_hash(s, len);
}

void rule_index_free(struct rule_index *ix)
{
	free(ix->head);
	free(ix->next);
	memset(ix, 0, sizeof(*ix));
}

int rule_index_build(const struct moat_policy_spec *spec,
		     struct rule_index *ix)
{
	size_t n = spec->n_allow;

	/* sized to the rules: most registrations have a few (issue 18) */
	ix->buckets = 4;
	while (ix->buckets < 2 * n)
		ix->buckets *= 2;
	ix->head = calloc(ix->buckets, sizeof(*ix->head));
	ix->next = calloc(n ? n : 1, sizeof(*ix->next));
	if (!ix->head || !ix->next) {
		rule_index_free(ix);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct moat_rule *rule = &spec->allow[i];
		__u32 b;

		if (rule->kind != RULE_DOMAIN && rule->kind != RULE_WILDCARD)
			continue;
		b = domain_hash(rule->domain, strlen(rule->domain)) & (ix->buckets - 1);
		ix->next[i] = ix->head[b];
		ix->head[b] = i + 1;
	}
	return 0;
}

/*
 * Which rules allow NAME: the union of their ports, or 0 ranges. Every
 * suffix of NAME that starts after a dot (a superset of its label
 * boundaries) is looked up. Rule domains are plain lower-case labels
 * (user/rule.c), so in a NAME with no escape every dot is a label
 * boundary and the text says it all: an exact rule matches the whole
 * name, a wildcard one a proper suffix (issue 18: no ldns per rule on a
 * miss). A name with an escape ("a\.b") gets domain_rule_match()'s exact
 * decision.
 */
static void match_rules(struct reg *r, const char *name,
			struct moat_addr_val *add)
{
	size_t len = strlen(name);
	bool plain = !memchr(name, '\\', len);

	memset(add, 0, sizeof(*add));
	for (size_t start = 0; start < len; start++) {
		__u32 b;

		if (start && name[start - 1] != '.')
			continue;
		b = domain_hash(name + start, len - start) & (r->ix.buckets - 1);
		for (__u32 i = r->ix.head[b]; i; i = r->ix.next[i - 1]) {
			const struct moat_rule *rule = &r->spec.allow[i - 1];
			bool match;

			if (strcmp(rule->domain, name + start))
				continue;
			match = plain ? (rule->kind == RULE_DOMAIN) == !start :
				domain_rule_match(rule, name);
			if (match)
				ranges_add(add, rule->protos, rule->port_first,
					   rule->port_last);
		}
	}
}

static __u64 deadline_ns(const struct reg *r, __u32 ttl)
{
	__u32 lo = r->spec.dns.min_ttl_s, hi = r->spec.dns.max_ttl_s;

	ttl = ttl < lo ? lo : ttl > hi ? hi : ttl;
	return boottime_ns() + ((__u64)ttl + r->spec.dns.grace_s) * 1000000000ull;
}

static const char *addr_str(const struct learned_addr *a, char *buf, size_t len)
{
	return inet_ntop(a->family, a->addr, buf, len);
}

/*
 * Created entries of the batch being learned, taken back if the cgroup's
 * policy id flipped under it: room for every address of a whole
 * recvmmsg of answers (untouched pages cost no memory).
 */
static struct learned_addr fresh[IN_SLOTS * MAX_ANSWER_ADDRS];

void learn_batch_open(struct learn_batch *lb)
{
	*lb = (struct learn_batch){};
}

/*
 * Issue 11, item 5: an answer is learned into the policy id its rules
 * are for (r->pid, from `bind`/`update`), and only while the cgroup runs
 * that id: after a flip by `policy reload` or `attach` seen here, or one
 * seen by learn_batch_close() once we wrote something, the answer is
 * refused (SERVFAIL), never written under the new id. An answer that
 * wrote nothing (its entries cover it) is released whatever flipped
 * meanwhile: it names only what the old id's maps held, and the new id
 * judges those addresses by its own entries.
 *
 * Issue 18: the id is read once for a batch of answers (one upstream
 * recvmmsg), not once per answer, and only when one of them has an
 * address to write (learn_addrs_in): a flip after that read is one after
 * the read of a single slower answer, and the read after the batch's
 * last write catches it as it would.
 */
static int batch_pid(struct daemon *d, struct reg *r, struct learn_batch *lb)
{
	if (lb->read)
		return lb->err;
	lb->read = true;
	lb->pid = reg_policy_id(d, r);
	lb->err = !lb->pid ? -ENOENT : lb->pid != r->pid ? -ESTALE : 0;
	if (!lb->err && lb->pid != r->learned_pid) {
		r->learned = learn_count(&d->st, lb->pid, boottime_ns());
		r->learned_pid = lb->pid;
		r->recounted = d->ticks;
	}
	return lb->err;
}

/*
 * Write the N addresses ADDRS of an answer for NAME into R's maps under
 * LB's policy id; any failure fails the whole answer (SERVFAIL).
 * Addresses written before the failure stay: they are the answer's own,
 * under their deadline. *WROTE: whether an entry was created or extended
 * (then the answer waits for learn_batch_close()).
 */
static int learn_addrs_in(struct daemon *d, struct reg *r,
			  struct learn_batch *lb, const char *name,
			  const struct moat_addr_val *ports,
			  const struct dns_addr *addrs, size_t n, bool hit,
			  bool *wrote)
{
	int err;

	*wrote = false;
	for (size_t i = 0; i < n; i++) {
		struct learned_addr a = { .family = addrs[i].family };
		struct moat_addr_val add = *ports;
		char s[INET6_ADDRSTRLEN];
		bool created;
		int ret;

		memcpy(a.addr, addrs[i].addr, sizeof(a.addr));
		add.expires_ns = deadline_ns(r, addrs[i].ttl_s);
		/*
		 * Issue 18: the cgroup's policy id is read for a write only.
		 * An address whose entry under the registration's id already
		 * covers the answer needs none: as an answer that wrote
		 * nothing is released whatever flipped after the read
		 * (learn_batch_close), one that never needed the read names
		 * only what that id's maps hold. A miss or a hit for a known
		 * address then costs no map syscall where the memo shows its
		 * entry (learn.h), one lookup otherwise.
		 */
		ret = lb->read ? 1 : learn_check(&d->st, &d->memo, r->pid, &a, &add);
		if (ret == 1) {
			err = batch_pid(d, r, lb);
			if (err)
				return err;
			ret = learn_write(&d->st, &d->memo, lb->pid, &a, &add,
					  r->learned < (long)r->spec.dns.max_addresses);
			if (ret == -EDQUOT && r->recounted != d->ticks) {
				/*
				 * Issue 12, item 4: what counts is what is in the
				 * maps now (expired entries excluded), at most
				 * once a tick.
				 */
				r->learned = learn_count(&d->st, lb->pid, boottime_ns());
				r->recounted = d->ticks;
				ret = learn_write(&d->st, &d->memo, lb->pid, &a, &add,
						  r->learned < (long)r->spec.dns.max_addresses);
			}
		}
		if (ret < 0) {
			p_err("moat-bpfd: %s: learning %s for %s: %s", r->rel,
			      addr_str(&a, s, sizeof(s)), name,
			      ret == -EDQUOT ? "the policy's max_addresses reached" :
			      strerror(-ret));
			return ret;
		}
		if (ret == LEARN_REFUSED) {
			/* said once when upstream answered; a hit is faster than a log */
			(hit ? p_debug : p_info)("moat-bpfd: %s: not learning %s for %s "
						 "(denied address)", r->rel,
						 addr_str(&a, s, sizeof(s)), name);
			continue;
		}
		created = ret == LEARN_CREATED;
		*wrote |= ret == LEARN_EXTENDED || created;
		r->learned += created;
		if (created)
			fresh[lb->n_fresh++] = a;
		evlog_learned(d->log, a.family, a.addr, name, add.expires_ns);
		if (verbose)	/* inet_ntop is a printf: not per answer for nothing */
			p_debug("moat-bpfd: %s: learned %s for %s", r->rel,
				addr_str(&a, s, sizeof(s)), name);
	}
	lb->wrote |= *wrote;
	return 0;
}

/*
 * A writer may have flipped the cgroup and purged the batch's id since
 * it was read: then what the batch created is taken back (a freed id is
 * reused by the next policy), and every answer of it that wrote must be
 * withheld (-ESTALE). A flip after this check purges it itself. Entries
 * count even when their answer failed later (a quota reached half-way):
 * withheld, it still wrote them. Had the batch written nothing, there is
 * nothing to take back, and its answers name only what the id's maps
 * hold or held: the second read, a fifth of a cache hit's time, is
 * spared.
 */
int learn_batch_close(struct daemon *d, struct reg *r, struct learn_batch *lb)
{
	if ((!lb->wrote && !lb->n_fresh) || reg_policy_id(d, r) == lb->pid)
		return 0;
	for (size_t i = 0; i < lb->n_fresh; i++)
		learn_forget(&d->st, &d->memo, lb->pid, &fresh[i]);
	r->learned_pid = 0;	/* recount */
	return -ESTALE;
}

/* One answer's addresses, a batch of its own: hits, TCP. */
static int learn_addrs(struct daemon *d, struct reg *r, const char *name,
		       const struct moat_addr_val *ports,
		       const struct dns_addr *addrs, size_t n, bool hit)
{
	struct learn_batch lb;
	bool wrote;
	int err;

	learn_batch_open(&lb);
	err = learn_addrs_in(d, r, &lb, name, ports, addrs, n, hit, &wrote);
	return err ?: learn_batch_close(d, r, &lb);
}

int learn_answer_in(struct daemon *d, struct reg *r, struct learn_batch *lb,
		    const struct dns_question *qu,
		    const struct moat_addr_val *ports, __u8 *a, size_t alen,
		    bool *wrote)
{
	unsigned int tc = 0, svcb = 0;
	int err;

	*wrote = false;
	/* -EBADMSG, -ESRCH: not the answer to QU, to be ignored */
	err = dns_answer_take(a, alen, qu, d->addrs, MAX_ANSWER_ADDRS,
			      &d->n_addrs, &tc, &svcb);
	if (err)
		return err;
	/*
	 * Before release (docs/names.md). An answer whose records ldns
	 * reads other than their lengths say (the strip walks the wire)
	 * is not one to pass on: ignored, as one that does not parse.
	 */
	if (svcb && dns_strip_ech(a, alen) < 0)
		return -EBADMSG;
	return learn_addrs_in(d, r, lb, qu->qname, ports, d->addrs, d->n_addrs,
			      false, wrote);
}

int learn_answer(struct daemon *d, struct reg *r, const struct dns_question *qu,
		 const struct moat_addr_val *ports, __u8 *a, size_t alen)
{
	struct learn_batch lb;
	bool wrote;
	int err;

	learn_batch_open(&lb);
	err = learn_answer_in(d, r, &lb, qu, ports, a, alen, &wrote);
	return err ?: learn_batch_close(d, r, &lb);
}

static void dns_event(struct daemon *d, struct reg *r, const char *verdict,
		      const char *name, const char *reason)
{
	json_object *o = json_object_new_object();
	char when[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "kind", json_object_new_string("dns"));
	json_object_object_add(o, "verdict", json_object_new_string(verdict));
	json_object_object_add(o, "name", json_object_new_string(name[0] ? name : "."));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "cgroup", json_object_new_string(r->rel));
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(r->cg_id));
	json_object_object_add(o, "policy", json_object_new_string(r->spec.name));
	evlog_write(d->log, o);
}

/*
 * Issue 12, item 8: whether NAME is one of the workload's search domains
 * or below one. glibc ends its search at the first REFUSED (Go and node
 * at any answer but NXDOMAIN): a candidate "api.corp.example" built from
 * "search corp.example" must be NXDOMAIN for "api" itself to be asked.
 */
static bool under_search(const struct reg *r, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < r->n_search; i++) {
		size_t n = strlen(r->search[i]);

		if (len >= n && !strcmp(name + len - n, r->search[i]) &&
		    (len == n || name[len - n - 1] == '.'))
			return true;
	}
	return false;
}

static const char *servfail_reason(const struct reg *r, int err)
{
	return !r->n_up ? "no upstream configured" :
	       err == -EDQUOT ? "max_addresses reached" :
	       err == -E2BIG ? "address map full" :
	       err == -ENOSPC ? "too many port ranges" :
	       err == -EBUSY ? "too many queries in flight" :
	       err == -ETIMEDOUT ? "no upstream answered" :
	       err == -ESTALE ? "the cgroup's policy is being replaced" :
	       err == -ESRCH || err == -EBADMSG ? "no valid answer from upstream" :
	       strerror(-err);
}

/*
 * An rcode answer to query Q into A (*alen: its room, then the answer's
 * length); -EBADMSG if Q cannot have one.
 */
static int local_answer(const __u8 *q, size_t qlen, int rcode, __u8 *a,
			size_t *alen)
{
	return dns_reply_rcode(q, qlen, rcode, a, alen) ? -EBADMSG : 0;
}

int servfail(struct daemon *d, struct reg *r, const char *qname, int err,
	     const __u8 *q, size_t qlen, __u8 *a, size_t *alen)
{
	d->n_servfail++;
	dns_event(d, r, "servfail", qname, servfail_reason(r, err));
	return local_answer(q, qlen, DNS_RCODE_SERVFAIL, a, alen);
}

/*
 * The cache's clock: CLOCK_BOOTTIME, as the deadlines', so that an answer
 * is not served past its TTL after a suspend (CLOCK_MONOTONIC stops).
 */
static __u64 cache_now_ms(void)
{
	return boottime_ns() / 1000000;
}

/*
 * What a cached answer carries for its hits (resolver_cache.h's meta):
 * what its rules allow, its addresses with their TTLs as received, and
 * its name. A hit then parses neither the query nor the answer (an ldns
 * parse costs about as much as a map syscall here, tools/bench/qcost.c).
 */
struct hit_meta {
	struct moat_addr_val ports;
	__u32 n_addrs;
	__u32 name_len;			/* with its NUL, after the addresses */
	struct dns_addr addrs[];
};

/*
 * Issue 18: the cached answer to query Q into A, learned as one from
 * upstream would be, so that its addresses' deadlines cover its TTLs as
 * served before it leaves. 1: not cached.
 *
 * Looked up before Q is parsed: the key is Q's every byte but its id (the
 * name in lower case), so a hit is a query this registration's rules
 * allowed and whose answer was kept; the rules cannot have changed since
 * (a reload empties the cache). Keyed by the query as the client sent it,
 * not by its canonical form: building that is left to misses.
 */
static int from_cache(struct daemon *d, struct reg *r, bool tcp,
		      const __u8 *q, size_t qlen, __u8 *a, size_t *alen)
{
	char name[DNS_NAME_STR_LEN];
	const __u8 *m;
	struct dcache_hit hit;
	struct hit_meta h;
	size_t room = *alen;
	int err;

	if (dcache_get(&r->cache, q, qlen, tcp, cache_now_ms(), a, alen, &hit))
		return 1;
	m = hit.meta;
	memcpy(&h, m, sizeof(h));
	memcpy(d->addrs, m + sizeof(h), h.n_addrs * sizeof(d->addrs[0]));
	memcpy(name, m + sizeof(h) + h.n_addrs * sizeof(d->addrs[0]), h.name_len);
	for (size_t i = 0; i < h.n_addrs; i++)
		d->addrs[i].ttl_s = dcache_ttl_served(d->addrs[i].ttl_s,
						      hit.life_s, hit.elapsed_s);
	err = learn_addrs(d, r, name, &h.ports, d->addrs, h.n_addrs, true);
	if (err) {
		dcache_drop(&r->cache, q, qlen);
		*alen = room;
		return servfail(d, r, name, err, q, qlen, a, alen);
	}
	d->n_cached++;
	return 0;
}

void cache_answer(struct daemon *d, const struct pending *p, const __u8 *a,
		  size_t alen)
{
	const struct dns_question *qu = &p->qu;
	/* what a UDP client can take (RFC 6891, 6.2.5) */
	size_t limit = !qu->has_edns || qu->edns_udp_size < 512 ? 512 :
		       qu->edns_udp_size;
	struct hit_meta h = {
		.ports = p->ports, .n_addrs = d->n_addrs,
		.name_len = strlen(qu->qname) + 1,
	};
	size_t alen_addrs = d->n_addrs * sizeof(d->addrs[0]);
	_Alignas(8) __u8 meta[DCACHE_MAX_META];
	int err = 1;

	/* many addresses: no meta fits, the answer is not kept */
	if (sizeof(h) + alen_addrs + h.name_len <= sizeof(meta)) {
		memcpy(meta, &h, sizeof(h));
		memcpy(meta + sizeof(h), d->addrs, alen_addrs);
		memcpy(meta + sizeof(h) + alen_addrs, qu->qname, h.name_len);
		err = dcache_put(&p->reg->cache, p->query + p->qlen, p->raw_len,
				 a, alen, limit, meta,
				 sizeof(h) + alen_addrs + h.name_len,
				 p->reg->spec.dns.max_ttl_s, cache_now_ms());
	}
	if (err < 0)
		p_debug("moat-bpfd: %s: not caching the answer for %s: %s",
			p->reg->rel, qu->qname, strerror(-err));
}

int classify(struct daemon *d, struct reg *r, bool tcp, const __u8 *q,
	     size_t qlen, struct dns_question *qu, struct moat_addr_val *ports,
	     __u8 *fwd, size_t *flen, __u8 *a, size_t *alen)
{
	struct ldns_struct_pkt *parsed;
	int ret;

	d->n_query++;
	ret = from_cache(d, r, tcp, q, qlen, a, alen);
	if (ret <= 0)
		return ret;
	/* one parse for the checks and, if it goes upstream, the rebuild */
	if (dns_query_parse_kept(q, qlen, qu, &parsed)) {
		d->n_malformed++;
		return -EBADMSG;
	}
	match_rules(r, qu->qname, ports);
	if (!ports->n_ranges) {
		dns_query_kept_free(parsed);
		d->n_refused++;
		dns_event(d, r, "refused", qu->qname, "no rule allows it");
		return local_answer(q, qlen, r->spec.dns.refuse == DNS_REFUSE_NXDOMAIN ||
				    under_search(r, qu->qname) ?
				    DNS_RCODE_NXDOMAIN : DNS_RCODE_REFUSED, a, alen);
	}
	if (!r->n_up) {
		dns_query_kept_free(parsed);
		return servfail(d, r, qu->qname, -ENOENT, q, qlen, a, alen);
	}
	/* forward what was parsed, not what was received */
	ret = dns_query_canonical_kept(parsed, fwd, flen);
	dns_query_kept_free(parsed);
	if (ret) {
		d->n_malformed++;
		return -EBADMSG;
	}
	return 1;
}
