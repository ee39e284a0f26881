// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The table of learned addresses' names (nametab.h). Layout:
 *   entry (per family, dense): name offset u32, deadline s u32, address
 *   index slot: 0 free, else (entry number + 1) | (11 hash bits << 21):
 *     linear probing, at most 7/8 full; the hash bits spare most probes
 *     a visit to the entry; removal shifts the cluster back (no
 *     tombstones)
 *   name (arena): refs u32, length u8, the name, NUL
 * Names are shared by the addresses of one answer (the last name put is
 * remembered): a CDN's hundreds of addresses cost one name.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include "nametab.h"
#include "siphash.h"

#define IX_MIN		64u
#define SLOT_ENT	((1u << 21) - 1)
#define SLOT_TAG(s)	((s) >> 21)
#define NAME_HDR	5			/* refs, length */
#define NO_NAME		UINT32_MAX
#define DEAD_MAX	65536			/* bytes of dead names renames leave */

struct fam {
	__u8 *ent;			/* n entries of esize bytes */
	size_t ent_bytes;		/* mapped */
	__u32 *ix;
	__u32 ix_cap, n;
	unsigned int klen, esize;
};

struct nametab {
	__u64 key[2];
	struct fam fam[2];		/* AF_INET, AF_INET6 */
	__u8 *arena;
	size_t arena_len, arena_bytes, dead;
	__u32 last;			/* the name put last, or NO_NAME */
	__u32 soonest;			/* no deadline held is earlier */
};

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

/* Mapped memory, not malloc's: what is given back is gone from VmRSS. */
static void *vm_resize(void *p, size_t old, size_t len)
{
	void *q;

	if (!len) {
		if (p)
			munmap(p, old);
		return NULL;
	}
	q = p ? mremap(p, old, len, MREMAP_MAYMOVE) :
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return q == MAP_FAILED ? NULL : q;
}

static struct fam *fam_of(const struct nametab *t, int family)
{
	if (family == AF_INET)
		return (struct fam *)&t->fam[0];
	if (family == AF_INET6)
		return (struct fam *)&t->fam[1];
	return NULL;
}

static __u8 *ent_at(const struct fam *f, __u32 i)
{
	return f->ent + (size_t)i * f->esize;
}

static __u32 ent_u32(const struct fam *f, __u32 i, int field)
{
	__u32 v;

	memcpy(&v, ent_at(f, i) + 4 * field, 4);
	return v;
}

static void ent_set(struct fam *f, __u32 i, int field, __u32 v)
{
	memcpy(ent_at(f, i) + 4 * field, &v, 4);
}

#define E_NAME	0
#define E_UNTIL	1
static const __u8 *ent_key(const struct fam *f, __u32 i)
{
	return ent_at(f, i) + 8;
}

static __u32 key_hash(const struct nametab *t, const struct fam *f, const __u8 *key)
{
	return (__u32)siphash(t->key[0], t->key[1], key, f->klen);
}

/* The slot holding KEY (*found), or the free slot it would take. */
static __u32 ix_find(const struct fam *f,
		     const __u8 *key, __u32 h, bool *found)
{
	__u32 mask = f->ix_cap - 1, i = h & mask, s;

	for (;; i = (i + 1) & mask) {
		s = f->ix[i];
		if (!s) {
			*found = false;
			return i;
		}
		if (SLOT_TAG(s) == h >> 21 &&
		    !memcmp(ent_key(f, (s & SLOT_ENT) - 1), key, f->klen)) {
			*found = true;
			return i;
		}
	}
}

/* A new index of CAP slots over the entries (none of them new). */
static int ix_rebuild(struct nametab *t, struct fam *f, __u32 cap)
{
	__u32 *ix = vm_resize(NULL, 0, page_round(cap * 4ul)), mask = cap - 1;

	if (!ix)
		return -ENOMEM;
	for (__u32 e = 0; e < f->n; e++) {
		__u32 h = key_hash(t, f, ent_key(f, e)), i = h & mask;

		while (ix[i])
			i = (i + 1) & mask;
		ix[i] = (e + 1) | (h >> 21 << 21);
	}
	vm_resize(f->ix, page_round(f->ix_cap * 4ul), 0);
	f->ix = ix;
	f->ix_cap = cap;
	return 0;
}

/* Empty slot I, shifting back the rest of its cluster. */
static void ix_remove(const struct nametab *t, struct fam *f, __u32 i)
{
	__u32 mask = f->ix_cap - 1, j = i;

	for (;;) {
		__u32 s, home;

		j = (j + 1) & mask;
		s = f->ix[j];
		if (!s)
			break;
		home = key_hash(t, f, ent_key(f, (s & SLOT_ENT) - 1)) & mask;
		/* S may fill I unless its home lies cyclically in (I, J] */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			f->ix[i] = s;
			i = j;
		}
	}
	f->ix[i] = 0;
}

static __u32 name_refs(const struct nametab *t, __u32 off)
{
	__u32 r;

	memcpy(&r, t->arena + off, 4);
	return r;
}

static void name_set_refs(struct nametab *t, __u32 off, __u32 r)
{
	memcpy(t->arena + off, &r, 4);
}

static size_t name_size(const struct nametab *t, __u32 off)
{
	return NAME_HDR + t->arena[off + 4] + 1;
}

/*
 * Slide the live names down in place: entries follow their names. A new
 * offset is parked in the refs of the name's old copy (plus one: 0 is
 * dead), the entries take it, then the names move and their refs are
 * counted again from the entries (each holds one). After renames the
 * arena keeps room for what the next pass will find (the names twice
 * and DEAD_MAX: a rename compacts once the dead exceed both), so a table
 * renamed over and over (an address, a new name per answer: a CDN)
 * reuses its pages instead of mapping, faulting in and unmapping new ones
 * at every pass. After expiry it keeps the live names' pages only.
 */
static void compact(struct nametab *t, bool renames)
{
	size_t nl = 0, keep;

	for (size_t o = 0, sz; o < t->arena_len; o += sz) {
		sz = name_size(t, o);
		if (!name_refs(t, o))
			continue;
		name_set_refs(t, o, nl + 1);
		nl += sz;
	}
	for (int k = 0; k < 2; k++) {
		struct fam *f = &t->fam[k];

		for (__u32 e = 0; e < f->n; e++)
			ent_set(f, e, E_NAME, name_refs(t, ent_u32(f, e, E_NAME)) - 1);
	}
	for (size_t o = 0, sz, to = 0; o < t->arena_len; o += sz) {
		sz = name_size(t, o);
		if (!name_refs(t, o))
			continue;
		memmove(t->arena + to, t->arena + o, sz);
		name_set_refs(t, to, 0);
		to += sz;
	}
	for (int k = 0; k < 2; k++) {
		struct fam *f = &t->fam[k];

		for (__u32 e = 0; e < f->n; e++) {
			__u32 off = ent_u32(f, e, E_NAME);

			name_set_refs(t, off, name_refs(t, off) + 1);
		}
	}
	t->arena_len = nl;
	t->dead = 0;
	t->last = NO_NAME;
	keep = !nl ? 0 : renames ? page_round(2 * nl + DEAD_MAX + NAME_HDR + 256) :
	       page_round(nl);
	if (keep < t->arena_bytes) {
		__u8 *a = vm_resize(t->arena, t->arena_bytes, keep);

		/* a shrink in place: only an empty arena is gone */
		if (a || !keep) {
			t->arena = a;
			t->arena_bytes = keep;
		}
	}
}

static void name_unref(struct nametab *t, __u32 off)
{
	__u32 r = name_refs(t, off) - 1;

	name_set_refs(t, off, r);
	if (!r) {
		t->dead += name_size(t, off);
		if (t->last == off)
			t->last = NO_NAME;
	}
}

/* NAME's offset with a reference more: the last one, or a new one. */
static int name_ref(struct nametab *t, const char *name, size_t len, __u32 *off)
{
	size_t need = NAME_HDR + len + 1;

	if (t->last != NO_NAME && t->arena[t->last + 4] == len &&
	    !memcmp(t->arena + t->last + NAME_HDR, name, len)) {
		name_set_refs(t, t->last, name_refs(t, t->last) + 1);
		*off = t->last;
		return 0;
	}
	if (t->arena_len + need > UINT32_MAX - 1)
		return -ENOSPC;
	if (t->arena_len + need > t->arena_bytes) {
		size_t bytes = page_round(t->arena_bytes ? 2 * t->arena_bytes : 1);
		__u8 *a;

		if (bytes < t->arena_len + need)
			bytes = page_round(t->arena_len + need);
		a = vm_resize(t->arena, t->arena_bytes, bytes);
		if (!a)
			return -ENOMEM;
		t->arena = a;
		t->arena_bytes = bytes;
	}
	*off = t->last = t->arena_len;
	name_set_refs(t, *off, 1);
	t->arena[*off + 4] = len;
	memcpy(t->arena + *off + NAME_HDR, name, len + 1);
	t->arena_len += need;
	return 0;
}

static __u32 until_s(__u64 until_ns)
{
	__u64 s = until_ns / 1000000000ull + !!(until_ns % 1000000000ull);

	return s > UINT32_MAX ? UINT32_MAX : s;
}

int nametab_put(struct nametab *t, int family, const __u8 *addr,
		const char *name, __u64 until_ns)
{
	struct fam *f = fam_of(t, family);
	size_t len = strlen(name);
	__u32 h, i, e, off, until = until_s(until_ns);
	bool found;
	int err;

	if (!f || len > 255)
		return -EINVAL;
	if ((f->n + 1) * 8ull > f->ix_cap * 7ull) {
		err = ix_rebuild(t, f, f->ix_cap ? 2 * f->ix_cap : IX_MIN);
		if (err)
			return err;
	}
	h = key_hash(t, f, addr);
	i = ix_find(f, addr, h, &found);
	if (found) {
		e = (f->ix[i] & SLOT_ENT) - 1;
		if (ent_u32(f, e, E_UNTIL) < until)
			ent_set(f, e, E_UNTIL, until);
		off = ent_u32(f, e, E_NAME);
		if (t->arena[off + 4] == len &&
		    !memcmp(t->arena + off + NAME_HDR, name, len))
			return 0;
		err = name_ref(t, name, len, &off);
		if (err)
			return err;
		name_unref(t, ent_u32(f, e, E_NAME));
		ent_set(f, e, E_NAME, off);
		if (t->dead > DEAD_MAX && 2 * t->dead > t->arena_len)
			compact(t, true);
		return 0;
	}
	if (f->n >= NAMETAB_MAX)
		return -ENOSPC;
	if ((f->n + 1ul) * f->esize > f->ent_bytes) {
		size_t bytes = page_round(f->ent_bytes ? 2 * f->ent_bytes : 1);
		__u8 *p = vm_resize(f->ent, f->ent_bytes, bytes);

		if (!p)
			return -ENOMEM;
		f->ent = p;
		f->ent_bytes = bytes;
	}
	err = name_ref(t, name, len, &off);
	if (err)
		return err;
	e = f->n++;
	if (until < t->soonest)
		t->soonest = until;
	ent_set(f, e, E_NAME, off);
	ent_set(f, e, E_UNTIL, until);
	memcpy(ent_at(f, e) + 8, addr, f->klen);
	f->ix[i] = (e + 1) | (h >> 21 << 21);
	return 0;
}

const char *nametab_get(const struct nametab *t, int family, const __u8 *addr)
{
	const struct fam *f = fam_of(t, family);
	bool found;
	__u32 i;

	if (!f || !f->n)
		return NULL;
	i = ix_find(f, addr, key_hash(t, f, addr), &found);
	if (!found)
		return NULL;
	return (const char *)t->arena +
	       ent_u32(f, (f->ix[i] & SLOT_ENT) - 1, E_NAME) + NAME_HDR;
}

/* Drop entry E: the last entry moves into its place. */
static void ent_remove(struct nametab *t, struct fam *f, __u32 e)
{
	__u32 last = f->n - 1, i;
	bool found;

	name_unref(t, ent_u32(f, e, E_NAME));
	i = ix_find(f, ent_key(f, e), key_hash(t, f, ent_key(f, e)), &found);
	ix_remove(t, f, i);
	if (e != last) {
		i = ix_find(f, ent_key(f, last), key_hash(t, f, ent_key(f, last)), &found);
		memcpy(ent_at(f, e), ent_at(f, last), f->esize);
		f->ix[i] = (f->ix[i] & ~SLOT_ENT) | (e + 1);
	}
	f->n--;
}

/* Give back what a shrunken family no longer needs. */
static void fam_shrink(struct nametab *t, struct fam *f)
{
	size_t want = page_round((size_t)f->n * f->esize * 2);
	__u32 cap = IX_MIN;

	if (!f->n) {
		vm_resize(f->ent, f->ent_bytes, 0);
		vm_resize(f->ix, page_round(f->ix_cap * 4ul), 0);
		f->ent = NULL;
		f->ix = NULL;
		f->ent_bytes = 0;
		f->ix_cap = 0;
		return;
	}
	if (4 * want <= 2 * f->ent_bytes) {	/* under a quarter used */
		__u8 *p = vm_resize(f->ent, f->ent_bytes, want);

		if (p) {
			f->ent = p;
			f->ent_bytes = want;
		}
	} else {	/* the room stays mapped for growth, its pages go */
		size_t used = page_round((size_t)f->n * f->esize);

		madvise(f->ent + used, f->ent_bytes - used, MADV_DONTNEED);
	}
	/*
	 * Under 3/8 full: as small as growth allows (7/8). Growing doubles
	 * to 7/16, so a shrink and a growth are at least n/8 changes apart.
	 */
	while (cap < f->ix_cap && f->n * 8ull > cap * 7ull)
		cap *= 2;
	if (cap < f->ix_cap && f->n * 8ull < f->ix_cap * 3ull)
		ix_rebuild(t, f, cap);	/* else the bigger index stays */
}

long nametab_expire(struct nametab *t, __u64 before_ns)
{
	__u32 before = before_ns / 1000000000ull;
	__u32 soonest = UINT32_MAX;
	long gone = 0;

	/* called every tick: a scan only once something may have expired */
	if ((__u64)t->soonest * 1000000000ull >= before_ns)
		return 0;
	for (int k = 0; k < 2; k++) {
		struct fam *f = &t->fam[k];
		long was = f->n;

		/* the last entry moves into a dropped one's place: look again */
		for (__u32 e = 0; e < f->n;) {
			__u32 until = ent_u32(f, e, E_UNTIL);

			if (until < before ||
			    (until == before && before_ns % 1000000000ull)) {
				ent_remove(t, f, e);
				continue;
			}
			if (until < soonest)
				soonest = until;
			e++;
		}
		if (f->n != was)
			fam_shrink(t, f);
		gone += was - f->n;
	}
	t->soonest = soonest;
	/* after expiry, when a quarter is dead: the rest gives it back */
	if (t->dead && 4 * t->dead >= t->arena_len)
		compact(t, false);
	return gone;
}

long nametab_count(const struct nametab *t)
{
	return (long)t->fam[0].n + t->fam[1].n;
}

/* Resident pages of MAP (mincore): untouched room costs nothing. */
static size_t resident(const void *map, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = 0;
	unsigned char vec[256];

	for (size_t off = 0; off < len; off += sizeof(vec) * pg) {
		size_t chunk = len - off < sizeof(vec) * pg ? len - off : sizeof(vec) * pg;

		if (mincore((char *)map + off, chunk, vec))
			return len;
		for (size_t i = 0; i < (chunk + pg - 1) / pg; i++)
			n += vec[i] & 1;
	}
	return n * pg;
}

size_t nametab_bytes(const struct nametab *t)
{
	size_t b = resident(t->arena, t->arena_bytes);

	for (int k = 0; k < 2; k++)
		b += resident(t->fam[k].ent, t->fam[k].ent_bytes) +
		     resident(t->fam[k].ix, page_round(t->fam[k].ix_cap * 4ul));
	return b;
}

struct nametab *nametab_new(void)
{
	struct nametab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	/* as the answer cache's key (resolver_cache.c) */
	if (getrandom(t->key, sizeof(t->key), 0) != sizeof(t->key)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t->key[0] = (uintptr_t)t ^ (__u64)ts.tv_nsec << 20;
		t->key[1] = (__u64)ts.tv_sec * 1000000007ull ^ ts.tv_nsec;
	}
	t->fam[0].klen = 4;
	t->fam[1].klen = 16;
	for (int k = 0; k < 2; k++)
		t->fam[k].esize = 8 + t->fam[k].klen;
	t->last = NO_NAME;
	t->soonest = UINT32_MAX;
	return t;
}

void nametab_free(struct nametab *t)
{
	if (!t)
		return;
	for (int k = 0; k < 2; k++) {
		vm_resize(t->fam[k].ent, t->fam[k].ent_bytes, 0);
		vm_resize(t->fam[k].ix, page_round(t->fam[k].ix_cap * 4ul), 0);
	}
	vm_resize(t->arena, t->arena_bytes, 0);
	free(t);
}
