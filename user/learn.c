// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <ifaddrs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "dns.h"
#include "learn.h"
#include "mapkey.h"
#include "siphash.h"
#include "state.h"

__u64 boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * The host's own addresses, re-read at most once a second: getifaddrs()
 * per learned address dominated the daemon's profile.
 */
static bool host_addr(const struct learned_addr *a)
{
	static struct ifaddrs *ifa;
	static time_t read_at;
	time_t now = time(NULL);
	struct ifaddrs *i;

	if (!ifa || now != read_at) {
		if (ifa)
			freeifaddrs(ifa);
		ifa = NULL;
		if (getifaddrs(&ifa))
			return true;	/* cannot tell: refuse */
		read_at = now;
	}
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != a->family)
			continue;
		if (a->family == AF_INET ?
		    !memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr, a->addr, 4) :
		    !memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, a->addr, 16))
			return true;
	}
	return false;
}

/*
 * Never learned (learn.h). The scope checks are in memory and run for
 * every address; the deny tries only before an entry is created.
 */
static bool scope_refused(const struct learned_addr *a)
{
	return dns_addr_local_scope(a->family, a->addr) || host_addr(a);
}

static bool deny_covers(struct moat_state *st, __u32 pid,
			const struct learned_addr *a)
{
	struct moat_addr_val v;
	union mapkey_addr k;
	int m;

	m = mapkey_addr(&k, MAPKEY_DENY, pid, a->family, a->addr,
			a->family == AF_INET ? 32 : 128);
	return !bpf_map_lookup_elem(st->map[m], &k, &v);
}

/* Whether V already allows every range of ADD until ADD's deadline. */
static bool covers(const struct moat_addr_val *v, const struct moat_addr_val *add)
{
	struct moat_addr_val u = *v;

	if (v->expires_ns < add->expires_ns ||
	    portrange_add(&u, add->ranges, add->n_ranges))
		return false;
	return u.n_ranges == v->n_ranges &&
	       !memcmp(u.ranges, v->ranges, sizeof(u.ranges[0]) * u.n_ranges);
}

/* A rule's entry (no deadline, never extended), or one covering ADD. */
static bool kept(const struct moat_addr_val *v, const struct moat_addr_val *add)
{
	return !(v->flags & MOAT_AV_LEARNED) || covers(v, add);
}

struct learn_memo_slot {
	__u32 epoch;
	__u32 pid;
	__u32 family;
	__u8 addr[16];
	__u64 seen_ns;			/* when the map said V */
	struct moat_addr_val v;		/* as the map holds it */
};
_Static_assert(sizeof(struct learn_memo_slot) <= LEARN_MEMO_SLOT_BYTES,
	       "LEARN_MEMO_SLOT_BYTES states the memo's size per slot");

int learn_memo_init(struct learn_memo *m, size_t bytes)
{
	size_t n = 1;

	*m = (struct learn_memo){ .epoch = 1 };
	if (bytes < sizeof(struct learn_memo_slot))
		return 0;
	while (n * 2 * sizeof(struct learn_memo_slot) <= bytes && n < (1u << 30))
		n *= 2;
	/* calloc: slots no address reached cost no memory */
	m->slot = calloc(n, sizeof(*m->slot));
	if (!m->slot)
		return -ENOMEM;
	m->mask = n - 1;
	if (getrandom(m->secret, sizeof(m->secret), 0) != sizeof(m->secret)) {
		m->secret[0] = boottime_ns() ^ (uintptr_t)m->slot;
		m->secret[1] = (__u64)time(NULL) * 0x9e3779b97f4a7c15ull;
	}
	return 0;
}

void learn_memo_fini(struct learn_memo *m)
{
	free(m->slot);
	m->slot = NULL;
}

void learn_memo_clear(struct learn_memo *m)
{
	if (m->slot && ++m->epoch == 0) {
		memset(m->slot, 0, ((size_t)m->mask + 1) * sizeof(*m->slot));
		m->epoch = 1;
	}
}

static struct learn_memo_slot *memo_slot(struct learn_memo *m, __u32 pid,
					 const struct learned_addr *a)
{
	__u8 k[24] = {};

	if (!m || !m->slot)
		return NULL;
	memcpy(k, &pid, 4);
	k[4] = a->family == AF_INET;
	memcpy(k + 8, a->addr, 16);
	return &m->slot[siphash(m->secret[0], m->secret[1], k, sizeof(k)) & m->mask];
}

/* A's slot, if it holds A under PID. */
static struct learn_memo_slot *memo_get(struct learn_memo *m, __u32 pid,
					const struct learned_addr *a)
{
	struct learn_memo_slot *s = memo_slot(m, pid, a);

	return s && s->epoch == m->epoch && s->pid == pid &&
	       s->family == (__u32)a->family && !memcmp(s->addr, a->addr, 16) ?
	       s : NULL;
}

/* What the map held for A, if the map said so less than the trust ago. */
static const struct moat_addr_val *memo_trusted(struct learn_memo *m, __u32 pid,
						const struct learned_addr *a)
{
	const struct learn_memo_slot *s = memo_get(m, pid, a);

	return s && boottime_ns() - s->seen_ns < LEARN_MEMO_TRUST_NS ? &s->v : NULL;
}

static void memo_put(struct learn_memo *m, __u32 pid,
		     const struct learned_addr *a, const struct moat_addr_val *v)
{
	struct learn_memo_slot *s = memo_slot(m, pid, a);

	if (!s)
		return;
	s->epoch = m->epoch;
	s->pid = pid;
	s->family = a->family;
	memcpy(s->addr, a->addr, 16);
	s->seen_ns = boottime_ns();
	s->v = *v;
}

/* What the map holds for A is not known (any more). */
static void memo_drop(struct learn_memo *m, __u32 pid,
		      const struct learned_addr *a)
{
	struct learn_memo_slot *s = memo_get(m, pid, a);

	if (s)
		s->epoch = 0;
}

static int update_err(void)
{
	return errno == E2BIG || errno == ENOMEM ? -E2BIG : -errno;
}

int learn_write(struct moat_state *st, struct learn_memo *m, __u32 pid,
		const struct learned_addr *a, const struct moat_addr_val *add,
		bool may_create)
{
	union mapkey_addr key;
	int map, err;

	if (scope_refused(a))
		return LEARN_REFUSED;
	map = mapkey_addr(&key, MAPKEY_EXACT, pid, a->family, a->addr, 0);
	/*
	 * Twice at most: an entry that goes between our lookup and our
	 * update (expired, or purged with its policy id) is created anew,
	 * never written back with BPF_ANY, so that a purge is either seen
	 * as a creation (which the caller takes back once it sees the flip)
	 * or wins.
	 */
	memo_drop(m, pid, a);	/* put back with what is written */
	for (int tries = 0; tries < 2; tries++) {
		struct moat_addr_val v = {};

		if (!bpf_map_lookup_elem(st->map[map], &key, &v)) {
			if (kept(&v, add)) {
				memo_put(m, pid, a, &v);
				return LEARN_KEPT;	/* a rule's, or enough */
			}
			err = portrange_add(&v, add->ranges, add->n_ranges);
			if (err)
				return err;
			if (add->expires_ns + LEARN_SLACK_NS > v.expires_ns)
				v.expires_ns = add->expires_ns + LEARN_SLACK_NS;
			if (!bpf_map_update_elem(st->map[map], &key, &v, BPF_EXIST)) {
				memo_put(m, pid, a, &v);
				return LEARN_EXTENDED;
			}
			if (errno != ENOENT)
				return update_err();
			continue;
		}
		if (deny_covers(st, pid, a))
			return LEARN_REFUSED;
		if (!may_create)
			return -EDQUOT;
		err = portrange_add(&v, add->ranges, add->n_ranges);
		if (err)
			return err;
		v.flags = MOAT_AV_LEARNED;
		v.expires_ns = add->expires_ns + LEARN_SLACK_NS;
		if (!bpf_map_update_elem(st->map[map], &key, &v, BPF_NOEXIST)) {
			memo_put(m, pid, a, &v);
			return LEARN_CREATED;
		}
		if (errno != EEXIST)
			return update_err();
	}
	return -EAGAIN;
}

int learn_check(struct moat_state *st, struct learn_memo *m, __u32 pid,
		const struct learned_addr *a, const struct moat_addr_val *add)
{
	const struct moat_addr_val *mv;
	struct moat_addr_val v;
	union mapkey_addr key;
	int map;

	if (scope_refused(a))
		return LEARN_REFUSED;
	mv = memo_trusted(m, pid, a);
	if (mv)		/* not kept: learn_write() looks up itself */
		return kept(mv, add) ? LEARN_KEPT : 1;
	map = mapkey_addr(&key, MAPKEY_EXACT, pid, a->family, a->addr, 0);
	if (bpf_map_lookup_elem(st->map[map], &key, &v))
		return 1;
	memo_put(m, pid, a, &v);
	return kept(&v, add) ? LEARN_KEPT : 1;
}

int learn_forget(struct moat_state *st, struct learn_memo *m, __u32 pid,
		 const struct learned_addr *a)
{
	struct moat_addr_val v;
	union mapkey_addr key;
	int map;

	memo_drop(m, pid, a);
	map = mapkey_addr(&key, MAPKEY_EXACT, pid, a->family, a->addr, 0);
	if (bpf_map_lookup_elem(st->map[map], &key, &v) || !(v.flags & MOAT_AV_LEARNED))
		return 0;	/* gone, or a rule's entry */
	return bpf_map_delete_elem(st->map[map], &key) && errno != ENOENT ? -errno : 0;
}

#define SCAN_BATCH	1024

/*
 * Walk a learned-address map in batches (a syscall per entry cost the
 * daemon ~100 ms a second with 100k entries): count COUNT_PID's learned
 * entries that have not expired by NOW, or (COUNT_PID 0) delete those
 * expired by NOW and add the others to LIVE[policy id] if LIVE is given.
 */
static long scan(struct moat_state *st, int map, size_t ks, __u64 now,
		 __u32 count_pid, long *live)
{
	static unsigned char keys[SCAN_BATCH][sizeof(struct moat_exact6_key)];
	static struct moat_addr_val vals[SCAN_BATCH];
	unsigned char *k = &keys[0][0];
	__u64 token;
	long n = 0;
	bool first = true, done = false;

	while (!done) {
		__u32 cnt = SCAN_BATCH;
		int err;

		err = bpf_map_lookup_batch(st->map[map], first ? NULL : &token,
					   &token, k, vals, &cnt, NULL);
		if (err && err != -ENOENT)
			return n;
		done = err == -ENOENT;
		first = false;
		for (__u32 i = 0; i < cnt; i++) {
			const void *key = k + i * ks;

			__u32 pid = mapkey_policy(map, key);
			bool expired = vals[i].expires_ns && vals[i].expires_ns < now;

			if (!(vals[i].flags & MOAT_AV_LEARNED))
				continue;
			if (count_pid)
				n += pid == count_pid && !expired;
			else if (expired && !bpf_map_delete_elem(st->map[map], key))
				n++;
			else if (live && pid < MOAT_MAX_POLICIES)
				live[pid]++;
		}
	}
	return n;
}

long learn_gc(struct moat_state *st, __u64 now, long *live)
{
	if (live)
		memset(live, 0, MOAT_MAX_POLICIES * sizeof(*live));
	return scan(st, M_EXACT4, mapkey_size(M_EXACT4), now, 0, live) +
	       scan(st, M_EXACT6, mapkey_size(M_EXACT6), now, 0, live);
}

long learn_count(struct moat_state *st, __u32 pid, __u64 now)
{
	return scan(st, M_EXACT4, mapkey_size(M_EXACT4), now, pid, NULL) +
	       scan(st, M_EXACT6, mapkey_size(M_EXACT6), now, pid, NULL);
}
