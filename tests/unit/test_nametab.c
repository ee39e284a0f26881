// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * user/nametab.c: the names of learned addresses. Found again after the
 * table grew, moved entries and shifted clusters; the latest name wins
 * and the later deadline stays; expiry drops exactly what is past and
 * gives the memory back; names shared and garbage compacted.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "nametab.h"

#define S	1000000000ull

static void v4(__u8 *a, unsigned int i)
{
	a[0] = 203; a[1] = i >> 16; a[2] = i >> 8; a[3] = i;
}

static void v6(__u8 *a, unsigned int i)
{
	memset(a, 0, 16);
	a[0] = 0x20; a[1] = 0x01; a[2] = 0x0d; a[3] = 0xb8;
	a[12] = i >> 24; a[13] = i >> 16; a[14] = i >> 8; a[15] = i;
}

static void name_of(char *buf, size_t len, unsigned int i)
{
	snprintf(buf, len, "l%u.learn.test", i);
}

Test(nametab, families_apart_and_latest_name_wins)
{
	struct nametab *t = nametab_new();
	__u8 a[16] = { 203, 0, 113, 7 }, b[16] = { 203, 0, 113, 7 };

	cr_assert_not_null(t);
	cr_assert_eq(nametab_put(t, AF_INET, a, "a.test", 100 * S), 0);
	cr_assert_eq(nametab_put(t, AF_INET6, b, "b.test", 100 * S), 0);
	cr_assert_str_eq(nametab_get(t, AF_INET, a), "a.test");
	cr_assert_str_eq(nametab_get(t, AF_INET6, b), "b.test");
	cr_assert_null(nametab_get(t, AF_UNIX, a));
	cr_assert_eq(nametab_count(t), 2);
	/* a later answer names it otherwise, with an earlier deadline */
	cr_assert_eq(nametab_put(t, AF_INET, a, "c.test", 50 * S), 0);
	cr_assert_str_eq(nametab_get(t, AF_INET, a), "c.test");
	cr_assert_eq(nametab_count(t), 2);
	cr_assert_eq(nametab_expire(t, 99 * S), 0, "the later deadline (100 s) stays");
	cr_assert_str_eq(nametab_get(t, AF_INET, a), "c.test");
	cr_assert_eq(nametab_expire(t, 101 * S), 2);
	cr_assert_null(nametab_get(t, AF_INET, a));
	cr_assert_eq(nametab_count(t), 0);
	nametab_free(t);
}

Test(nametab, refused_input)
{
	struct nametab *t = nametab_new();
	char longname[300];
	__u8 a[16] = { 0 };

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	cr_assert_eq(nametab_put(t, AF_UNIX, a, "a.test", S), -EINVAL);
	cr_assert_eq(nametab_put(t, AF_INET, a, longname, S), -EINVAL);
	longname[255] = 0;
	cr_assert_eq(nametab_put(t, AF_INET, a, longname, S), 0, "255 is a name's limit");
	cr_assert_str_eq(nametab_get(t, AF_INET, a), longname);
	nametab_free(t);
}

/* Deadlines are whole seconds, rounded up: never dropped early. */
Test(nametab, deadline_rounded_up)
{
	struct nametab *t = nametab_new();
	__u8 a[16] = { 198, 51, 100, 1 };

	cr_assert_eq(nametab_put(t, AF_INET, a, "a.test", 1 * S + S / 2), 0);
	cr_assert_eq(nametab_expire(t, 1 * S + S / 2), 0);
	cr_assert_eq(nametab_expire(t, 2 * S), 0);
	cr_assert_eq(nametab_expire(t, 2 * S + 1), 1);
	nametab_free(t);
}

/*
 * Many addresses, half expiring: every survivor still found with its
 * own name (entries moved into the holes, clusters shifted back), and
 * the memory follows the count down to nothing.
 */
Test(nametab, grow_expire_shrink)
{
	struct nametab *t = nametab_new();
	const unsigned int n = 200000;
	size_t full, half;
	char name[64];
	__u8 a[16];

	for (unsigned int i = 0; i < n; i++) {
		name_of(name, sizeof(name), i);
		if (i & 1) {
			v4(a, i);
			cr_assert_eq(nametab_put(t, AF_INET, a, name, (10 + i % 4) * S), 0);
		} else {
			v6(a, i);
			cr_assert_eq(nametab_put(t, AF_INET6, a, name, (10 + i % 4) * S), 0);
		}
	}
	cr_assert_eq(nametab_count(t), n);
	full = nametab_bytes(t);
	/* 24-byte v6 and 12-byte v4 entries, their slots, ~18-byte names */
	cr_assert_lt(full, n * 56ul, "%zu bytes for %u", full, n);
	cr_assert_eq(nametab_expire(t, 12 * S), n / 2, "deadlines 10 and 11 s");
	for (unsigned int i = 0; i < n; i++) {
		const char *got;

		i & 1 ? v4(a, i) : v6(a, i);
		got = nametab_get(t, i & 1 ? AF_INET : AF_INET6, a);
		name_of(name, sizeof(name), i);
		if (i % 4 < 2)
			cr_assert_null(got, "%u expired", i);
		else
			cr_assert(got && !strcmp(got, name), "%u: %s", i, got ? got : "none");
	}
	half = nametab_bytes(t);
	cr_assert_lt(half, full * 3 / 4, "%zu then %zu bytes", full, half);
	cr_assert_eq(nametab_expire(t, 14 * S), n / 2);
	cr_assert_eq(nametab_count(t), 0);
	cr_assert_eq(nametab_bytes(t), 0, "all given back");
	/* and usable again */
	v4(a, 1);
	cr_assert_eq(nametab_put(t, AF_INET, a, "again.test", 20 * S), 0);
	cr_assert_str_eq(nametab_get(t, AF_INET, a), "again.test");
	nametab_free(t);
}

/* A CDN's many addresses under one name cost one copy of it. */
Test(nametab, shared_name)
{
	struct nametab *one = nametab_new(), *many = nametab_new();
	char name[64];
	__u8 a[16];

	for (unsigned int i = 0; i < 20000; i++) {
		v6(a, i);
		cr_assert_eq(nametab_put(one, AF_INET6, a,
					 "a-very-long-name.cdn.example.test", S), 0);
		name_of(name, sizeof(name), i);
		snprintf(name, sizeof(name), "a-very-long-name-%u.cdn.example.test", i);
		cr_assert_eq(nametab_put(many, AF_INET6, a, name, S), 0);
	}
	cr_assert_lt(nametab_bytes(one) + 20000 * 30ul, nametab_bytes(many),
		     "%zu vs %zu", nametab_bytes(one), nametab_bytes(many));
	v6(a, 777);
	cr_assert_str_eq(nametab_get(one, AF_INET6, a), "a-very-long-name.cdn.example.test");
	nametab_free(one);
	nametab_free(many);
}

/* Renamed over and over: the dead names are compacted, not kept. */
Test(nametab, renames_compacted)
{
	struct nametab *t = nametab_new();
	char name[64];
	__u8 a[16];

	for (unsigned int i = 0; i < 100; i++) {
		v4(a, i);
		cr_assert_eq(nametab_put(t, AF_INET, a, "first.test", 100 * S), 0);
	}
	for (unsigned int r = 0; r < 200000; r++) {
		v4(a, r % 100);
		name_of(name, sizeof(name), r);
		cr_assert_eq(nametab_put(t, AF_INET, a, name, 100 * S), 0);
	}
	cr_assert_leq(nametab_bytes(t), 64 * 4096ul, "%zu bytes", nametab_bytes(t));
	for (unsigned int i = 0; i < 100; i++) {
		v4(a, i);
		name_of(name, sizeof(name), 200000 - 100 + i);
		cr_assert_str_eq(nametab_get(t, AF_INET, a), name);
	}
	cr_assert_eq(nametab_count(t), 100);
	nametab_free(t);
}

/*
 * Against a plain array: random puts (new names, renames, later and
 * earlier deadlines) and expiries over a small key space, so clusters
 * form, wrap and are shifted back; every key checked after each round.
 */
Test(nametab, random_against_model)
{
	enum { KEYS = 3000 };
	static struct { unsigned int name, until; bool live; } m[KEYS];
	struct nametab *t = nametab_new();
	unsigned int seed = 18, now = 1;
	char name[64];
	__u8 a[16];

	for (int round = 0; round < 200; round++) {
		for (int op = 0; op < 500; op++) {
			unsigned int k = rand_r(&seed) % KEYS;
			unsigned int until = now + rand_r(&seed) % 20;
			unsigned int nm = rand_r(&seed) % 50;

			v4(a, k);
			name_of(name, sizeof(name), nm);
			cr_assert_eq(nametab_put(t, AF_INET, a, name, (__u64)until * S), 0);
			if (!m[k].live || m[k].until < until)
				m[k].until = until;
			m[k].name = nm;
			m[k].live = true;
		}
		now += 3;
		for (unsigned int k = 0; k < KEYS; k++)
			if (m[k].live && m[k].until < now)
				m[k].live = false;
		nametab_expire(t, (__u64)now * S);
		long live = 0;

		for (unsigned int k = 0; k < KEYS; k++) {
			const char *got;

			v4(a, k);
			got = nametab_get(t, AF_INET, a);
			live += m[k].live;
			if (!m[k].live) {
				cr_assert_null(got, "round %d key %u", round, k);
				continue;
			}
			name_of(name, sizeof(name), m[k].name);
			cr_assert(got && !strcmp(got, name), "round %d key %u: %s, not %s",
				  round, k, got ? got : "none", name);
		}
		cr_assert_eq(nametab_count(t), live);
	}
	nametab_free(t);
}

/*
 * A name shared by entries of both families outlives the compactions
 * that renames of other addresses cause, with every reference counted:
 * dropping all but one of its entries leaves it named, the last one
 * leaves nothing.
 */
Test(nametab, shared_name_compacted)
{
	struct nametab *t = nametab_new();
	char name[64];
	__u8 a[16];

	for (unsigned int i = 0; i < 50; i++) {
		v4(a, i);
		cr_assert_eq(nametab_put(t, AF_INET, a, "shared.test", (i ? 100 : 200) * S), 0);
		v6(a, i);
		cr_assert_eq(nametab_put(t, AF_INET6, a, "shared.test", 100 * S), 0);
	}
	for (unsigned int r = 0; r < 100000; r++) {
		name_of(name, sizeof(name), r);
		r & 1 ? v4(a, 1000 + r / 2 % 50) : v6(a, 1000 + r / 2 % 50);
		cr_assert_eq(nametab_put(t, r & 1 ? AF_INET : AF_INET6, a, name, 100 * S), 0);
	}
	for (unsigned int i = 0; i < 50; i++) {
		v4(a, i);
		cr_assert_str_eq(nametab_get(t, AF_INET, a), "shared.test");
		v6(a, i);
		cr_assert_str_eq(nametab_get(t, AF_INET6, a), "shared.test");
	}
	/* every entry but 203.0.0.0's (200 s) expires; its name stays */
	cr_assert_eq(nametab_expire(t, 150 * S), 199);
	v4(a, 0);
	cr_assert_str_eq(nametab_get(t, AF_INET, a), "shared.test");
	cr_assert_leq(nametab_bytes(t), 4 * 4096ul, "%zu bytes for one entry", nametab_bytes(t));
	cr_assert_eq(nametab_expire(t, 250 * S), 1);
	cr_assert_eq(nametab_bytes(t), 0);
	nametab_free(t);
}
