// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * upgrade: replace the pinned program set with this build's without an
 * instant in which an enforced cgroup is unenforced or open.
 *
 *  1. Load the new programs. Same layout: they reuse the pinned maps.
 *     Another layout: they get new maps, filled from the old ones first
 *     (maps whose key and value sizes still match; others are refused).
 *  2. Every pinned link is switched to its new program with
 *     BPF_LINK_UPDATE: a cgroup runs either the old or the new program,
 *     each with complete maps, never neither.
 *  3. The new programs and maps replace the old pins, the layout pin last
 *     (bpffs has no rename: unlink, then pin; writers hold the lock, so
 *     only a reader can see a pin missing for that instant).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "enforce.h"
#include "cmd_args.h"
#include "links.h"
#include "log.h"
#include "main.h"
#include "moat.skel.h"
#include "state.h"
#include "writer.h"

static int old_map_fd(const char *name)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", MOAT_PIN_MAPS, name);
	return bpf_obj_get(p);
}

/* Copy every entry of OLD into NEW; sizes checked by the caller. */
static int copy_map(int old, int new, const struct bpf_map_info *info)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t vs = info->value_size;
	void *key, *next, *val;
	int err = 0;
	void *prev = NULL;

	if (info->type == BPF_MAP_TYPE_PERCPU_HASH ||
	    info->type == BPF_MAP_TYPE_PERCPU_ARRAY)
		vs = ((vs + 7) & ~7UL) * ncpu;
	key = calloc(1, info->key_size);
	next = calloc(1, info->key_size);
	val = calloc(1, vs);
	if (!key || !next || !val) {
		err = -ENOMEM;
		goto out;
	}
	while (!bpf_map_get_next_key(old, prev, next)) {
		memcpy(key, next, info->key_size);
		prev = key;
		if (bpf_map_lookup_elem(old, key, val))
			continue;	/* deleted meanwhile */
		if (bpf_map_update_elem(new, key, val, BPF_ANY)) {
			err = -errno;
			break;
		}
	}
out:
	free(key);
	free(next);
	free(val);
	return err;
}

/* The cgroups keep their counter entries; the values start over. */
static int reset_counters(int old, int new)
{
	int ncpu = libbpf_num_possible_cpus();
	struct moat_counters *zero = calloc(ncpu, sizeof(*zero));
	__u64 key, *prev = NULL;
	int err = 0;

	if (!zero)
		return -ENOMEM;
	while (!err && !bpf_map_get_next_key(old, prev, &key)) {
		prev = &key;
		if (bpf_map_update_elem(new, &key, zero, BPF_ANY))
			err = -errno;
	}
	free(zero);
	return err;
}

/* Same layout: the new programs use the pinned maps themselves. */
static int reuse_maps(struct moat *skel)
{
	struct bpf_map *map;
	int fd, err;

	bpf_object__for_each_map(map, skel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		fd = old_map_fd(bpf_map__name(map));
		if (fd < 0) {
			p_errno(-errno, "pinned map %s", bpf_map__name(map));
			return -errno;
		}
		err = bpf_map__reuse_fd(map, fd);
		close(fd);
		if (err) {
			p_errno(err, "reusing map %s", bpf_map__name(map));
			return err;
		}
	}
	return 0;
}

/* Another layout: fill the new maps from the old ones before any switch. */
static int migrate_maps(struct moat *skel)
{
	struct bpf_map *map;
	int err = 0;

	bpf_object__for_each_map(map, skel->obj) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		int old;

		if (bpf_map__is_internal(map) || map == skel->maps.moat_layout)
			continue;
		old = old_map_fd(bpf_map__name(map));
		if (old < 0)
			continue;	/* new in this layout: starts empty */
		if (bpf_obj_get_info_by_fd(old, &info, &len)) {
			err = -errno;
		} else if (info.type == BPF_MAP_TYPE_RINGBUF ||
			   info.type == BPF_MAP_TYPE_SK_STORAGE ||
			   info.type == BPF_MAP_TYPE_SOCKHASH) {
			/*
			 * events in flight and per-socket state (DNS, the name
			 * check and its sockets): not carried
			 */
		} else if (map == skel->maps.moat_handoff &&
			   info.value_size != bpf_map__value_size(map)) {
			/*
			 * each CPU's last verdict (the backstop judges afresh)
			 * and allowed ops not yet counted: at most one run per
			 * CPU, which the new layout's counters start without
			 */
		} else if (map == skel->maps.moat_counters &&
			   info.value_size != bpf_map__value_size(map)) {
			/* statistics: restart at zero rather than refuse */
			p_info("moat-bpf: counters restart at zero (new layout)");
			err = reset_counters(old, bpf_map__fd(map));
		} else if (info.key_size != bpf_map__key_size(map) ||
			   info.value_size != bpf_map__value_size(map)) {
			p_err("map %s changed its key or value size; this upgrade "
			      "cannot carry its contents", bpf_map__name(map));
			err = -EPROTO;
		} else {
			err = copy_map(old, bpf_map__fd(map), &info);
		}
		close(old);
		if (err)
			break;
	}
	return err;
}

/*
 * The gate in front of moat_daemon_socks (moat_daemon_ports) from the
 * entries carried over: a layout without the gate hands listed sockets
 * over with none, and a clear bit would let their packets through.
 */
static int gate_daemon_socks(struct moat *skel)
{
	int socks = bpf_map__fd(skel->maps.moat_daemon_socks);
	int ports = bpf_map__fd(skel->maps.moat_daemon_ports);
	struct moat_daemon_sock_key k, *prev = NULL;

	while (!bpf_map_get_next_key(socks, prev, &k)) {
		__u16 port = ntohs(k.port);
		__u32 word = port / 64;
		__u64 bits = 0;

		prev = &k;
		if (bpf_map_lookup_elem(ports, &word, &bits))
			return -errno;
		bits |= 1ull << (port % 64);
		if (bpf_map_update_elem(ports, &word, &bits, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Point every pinned link at the new programs; new hooks get new links. */
static int switch_links(struct moat *skel)
{
	__u64 *ids;
	bool *gone;
	size_t n;
	int err = links_list(&ids, &gone, &n);

	for (size_t i = 0; !err && i < n; i++) {
		for (int p = 0; !err && p < P__N; p++) {
			struct bpf_program *prog =
				bpf_object__find_program_by_name(skel->obj, moat_progs[p].name);
			char pin[512];
			int fd;

			snprintf(pin, sizeof(pin), "%s/%llu/%s", MOAT_PIN_LINKS,
				 (unsigned long long)ids[i], moat_progs[p].name);
			fd = bpf_obj_get(pin);
			if (fd < 0)
				continue;	/* added by links_create below */
			if (bpf_link_update(fd, bpf_program__fd(prog), NULL))
				err = -errno;
			close(fd);
		}
	}
	free(ids);
	free(gone);
	return err;
}

static int repin(struct moat *skel, bool new_maps)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char p[512];

	bpf_object__for_each_program(prog, skel->obj) {
		snprintf(p, sizeof(p), "%s/%s", MOAT_PIN_PROGS, bpf_program__name(prog));
		unlink(p);
		if (bpf_obj_pin(bpf_program__fd(prog), p))
			return -errno;
	}
	if (!new_maps)
		return 0;
	/* the layout pin last: until then the old layout is what is pinned */
	bpf_object__for_each_map(map, skel->obj) {
		if (bpf_map__is_internal(map) || map == skel->maps.moat_layout)
			continue;
		snprintf(p, sizeof(p), "%s/%s", MOAT_PIN_MAPS, bpf_map__name(map));
		unlink(p);
		if (bpf_obj_pin(bpf_map__fd(map), p))
			return -errno;
	}
	snprintf(p, sizeof(p), "%s", MOAT_PIN_LAYOUT);
	unlink(p);
	if (bpf_obj_pin(bpf_map__fd(skel->maps.moat_layout), p))
		return -errno;
	return 0;
}

int do_upgrade(int argc, char **argv)
{
	struct moat_layout layout = { .version = MOAT_LAYOUT_VERSION };
	struct moat_state st;
	struct moat *skel = NULL;
	__u32 old, zero = 0;
	bool same;
	int err;

	err = cmd_operands(&argc, &argv);
	if (err < 0)
		return err;
	if (err) {
		fprintf(stderr, "Usage: moat-bpf upgrade\n"
			"  switch every enforced cgroup to this build's programs (and\n"
			"  this build's map layout), with no moment unenforced\n");
		return 0;
	}
	if (argc) {
		p_err("usage: moat-bpf upgrade");
		return -EINVAL;
	}
	err = writer_lock(&st);
	if (err)
		goto out;
	old = state_pinned_layout();
	if (!old) {
		err = state_open(&st, true);	/* nothing pinned: a plain load */
		if (!err)
			p_info("moat-bpf: nothing was loaded; loaded layout v%u", MOAT_LAYOUT_VERSION);
		goto out;
	}
	same = old == MOAT_LAYOUT_VERSION;
	skel = moat__open();
	if (!skel) {
		err = -errno;
		goto out;
	}
	err = same ? reuse_maps(skel) : 0;
	if (!err)
		err = moat__load(skel);
	if (!err)
		err = state_attach_verdict(skel);
	if (err) {
		p_errno(err, "loading the new program set (nothing was changed)");
		goto out;
	}
	if (!same) {
		err = migrate_maps(skel);
		if (!err)
			err = gate_daemon_socks(skel);
		if (!err && bpf_map_update_elem(bpf_map__fd(skel->maps.moat_layout),
						&zero, &layout, BPF_ANY))
			err = -errno;
		if (err) {
			p_errno(err, "migrating map contents (nothing was changed)");
			goto out;
		}
	}
	err = switch_links(skel);
	if (err) {
		/* some links may already run the new programs: both are whole */
		p_errno(err, "switching links to the new programs");
		goto out;
	}
	err = repin(skel, !same);
	if (err) {
		p_errno(err, "pinning the new program set");
		goto out;
	}
	/* hooks this build adds get links on every linked cgroup */
	err = state_open(&st, false);
	if (!err)
		err = moat_relink_all(&st);
	if (!err)
		p_info("moat-bpf: upgraded layout v%u -> v%u", old, MOAT_LAYOUT_VERSION);
out:
	moat__destroy(skel);
	state_close(&st);
	return err;
}
