// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <ifaddrs.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "dns.h"
#include "learn.h"
#include "mapkey.h"
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

static int update_err(void)
{
	return errno == E2BIG || errno == ENOMEM ? -E2BIG : -errno;
}

int learn_write(struct moat_state *st, __u32 pid, const struct learned_addr *a,
		const struct moat_addr_val *add, bool may_create)
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
	for (int tries = 0; tries < 2; tries++) {
		struct moat_addr_val v = {};

		if (!bpf_map_lookup_elem(st->map[map], &key, &v)) {
			if (!(v.flags & MOAT_AV_LEARNED) || covers(&v, add))
				return LEARN_KEPT;	/* a rule's, or enough */
			err = portrange_add(&v, add->ranges, add->n_ranges);
			if (err)
				return err;
			if (add->expires_ns + LEARN_SLACK_NS > v.expires_ns)
				v.expires_ns = add->expires_ns + LEARN_SLACK_NS;
			if (!bpf_map_update_elem(st->map[map], &key, &v, BPF_EXIST))
				return LEARN_EXTENDED;
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
		if (!bpf_map_update_elem(st->map[map], &key, &v, BPF_NOEXIST))
			return LEARN_CREATED;
		if (errno != EEXIST)
			return update_err();
	}
	return -EAGAIN;
}

int learn_check(struct moat_state *st, __u32 pid, const struct learned_addr *a,
		const struct moat_addr_val *add)
{
	struct moat_addr_val v;
	union mapkey_addr key;
	int map;

	if (scope_refused(a))
		return LEARN_REFUSED;
	map = mapkey_addr(&key, MAPKEY_EXACT, pid, a->family, a->addr, 0);
	if (!bpf_map_lookup_elem(st->map[map], &key, &v) &&
	    (!(v.flags & MOAT_AV_LEARNED) || covers(&v, add)))
		return LEARN_KEPT;
	return 1;
}

int learn_forget(struct moat_state *st, __u32 pid, const struct learned_addr *a)
{
	struct moat_addr_val v;
	union mapkey_addr key;
	int map;

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
