// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/libbpf.h>
#include "moat_abi.h"
#include "moat.skel.h"
#include "log.h"
#include "state.h"

const char *const moat_map_names[M__N] = {
	[M_LAYOUT] = "moat_layout",	[M_CGROUPS] = "moat_cgroups",
	[M_POLICIES] = "moat_policies",	[M_EXACT4] = "moat_exact4",
	[M_EXACT6] = "moat_exact6",	[M_ALLOW4] = "moat_allow4",
	[M_ALLOW6] = "moat_allow6",	[M_DENY4] = "moat_deny4",
	[M_DENY6] = "moat_deny6",	[M_SK] = "moat_sk",
	[M_UDP_PEERS] = "moat_udp_peers", [M_COUNTERS] = "moat_counters",
	[M_RESOLVERS] = "moat_resolvers",
	[M_EVENTS] = "moat_events",	[M_CONNS] = "moat_conns",
	[M_HANDOFF] = "moat_handoff",
	[M_DAEMON_SOCKS] = "moat_daemon_socks",
	[M_NAMES] = "moat_names",	[M_NAME_SK] = "moat_name_sk",
	[M_NAME_SOCKS] = "moat_name_socks",
	[M_EVENT_WINDOWS] = "moat_event_windows",
	[M_DAEMON_PORTS] = "moat_daemon_ports",
};

const struct moat_prog_desc moat_progs[P__N] = {
	[P_SOCK_CREATE] = { "moat_sock_create", BPF_CGROUP_INET_SOCK_CREATE },
	[P_CONNECT4] = { "moat_connect4", BPF_CGROUP_INET4_CONNECT },
	[P_CONNECT6] = { "moat_connect6", BPF_CGROUP_INET6_CONNECT },
	[P_SENDMSG4] = { "moat_sendmsg4", BPF_CGROUP_UDP4_SENDMSG },
	[P_SENDMSG6] = { "moat_sendmsg6", BPF_CGROUP_UDP6_SENDMSG },
	[P_RECVMSG4] = { "moat_recvmsg4", BPF_CGROUP_UDP4_RECVMSG },
	[P_RECVMSG6] = { "moat_recvmsg6", BPF_CGROUP_UDP6_RECVMSG },
	[P_GETPEERNAME4] = { "moat_getpeername4", BPF_CGROUP_INET4_GETPEERNAME },
	[P_GETPEERNAME6] = { "moat_getpeername6", BPF_CGROUP_INET6_GETPEERNAME },
	[P_SETSOCKOPT] = { "moat_setsockopt", BPF_CGROUP_SETSOCKOPT },
	[P_EGRESS] = { "moat_egress", BPF_CGROUP_INET_EGRESS },
	[P_SOCKOPS] = { "moat_sockops", BPF_CGROUP_SOCK_OPS },
};

void state_init(struct moat_state *st)
{
	st->lock_fd = -1;
	for (int i = 0; i < M__N; i++)
		st->map[i] = -1;
	for (int i = 0; i < P__N; i++)
		st->prog[i] = -1;
}

int state_lock(struct moat_state *st)
{
	int err = 0;

	if (mkdir(MOAT_RUN_DIR, 0700) && errno != EEXIST)
		err = -errno;
	if (!err) {
		st->lock_fd = open(MOAT_LOCK_PATH,
				   O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX))
			err = -errno;
	}
	if (err)
		p_errno(err, "taking the lock %s", MOAT_LOCK_PATH);
	return err;
}

static int ensure_bpffs(void)
{
	struct statfs sfs;

	if (!statfs(MOAT_BPFFS, &sfs) && sfs.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(MOAT_BPFFS, 0700) && errno != EEXIST)
		return -errno;
	if (mount("bpf", MOAT_BPFFS, "bpf", 0, "mode=0700"))
		return -errno;
	return 0;
}

static void pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* Remove every file in DIR and DIR itself; missing is fine. */
static void rm_pin_dir(const char *dir)
{
	struct dirent *de;
	char p[512];
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

int state_attach_verdict(struct moat *skel)
{
	int err;

	/* a new program replaces the one attached to a reused map */
	err = bpf_prog_attach(bpf_program__fd(skel->progs.moat_sk_msg),
			      bpf_map__fd(skel->maps.moat_name_socks),
			      BPF_SK_MSG_VERDICT, 0);
	if (err) {
		err = -errno;
		p_errno(err, "attaching moat_sk_msg to moat_name_socks");
	}
	return err;
}

static int load_and_pin(void)
{
	struct moat_layout layout = { .version = MOAT_LAYOUT_VERSION };
	struct bpf_program *prog;
	struct bpf_map *map;
	struct moat *skel;
	char p[512];
	__u32 zero = 0;
	int err;

	skel = moat__open();
	if (!skel)
		return -errno;
	err = moat__load(skel);
	if (err) {
		p_errno(err, "loading the BPF program set failed (run with -vv for the verifier log)");
		goto out;
	}
	err = state_attach_verdict(skel);
	if (err)
		goto out;
	if ((mkdir(MOAT_PIN_ROOT, 0700) && errno != EEXIST) ||
	    (mkdir(MOAT_PIN_MAPS, 0700) && errno != EEXIST) ||
	    (mkdir(MOAT_PIN_PROGS, 0700) && errno != EEXIST) ||
	    (mkdir(MOAT_PIN_LINKS, 0700) && errno != EEXIST)) {
		err = -errno;
		p_errno(err, "creating %s", MOAT_PIN_ROOT);
		goto out;
	}
	bpf_object__for_each_program(prog, skel->obj) {
		pin_path(p, sizeof(p), MOAT_PIN_PROGS, bpf_program__name(prog));
		err = bpf_program__pin(prog, p);
		if (err)
			goto out_unpin;
	}
	err = bpf_map_update_elem(bpf_map__fd(skel->maps.moat_layout), &zero,
				  &layout, BPF_ANY);
	if (err)
		goto out_unpin;
	/* the layout map is pinned last: its pin marks a complete set */
	bpf_object__for_each_map(map, skel->obj) {
		if (map == skel->maps.moat_layout || bpf_map__is_internal(map))
			continue;
		pin_path(p, sizeof(p), MOAT_PIN_MAPS, bpf_map__name(map));
		err = bpf_map__pin(map, p);
		if (err)
			goto out_unpin;
	}
	err = bpf_map__pin(skel->maps.moat_layout, MOAT_PIN_LAYOUT);
	if (err)
		goto out_unpin;
	goto out;
out_unpin:
	p_errno(err, "pinning the program set under %s", MOAT_PIN_ROOT);
	rm_pin_dir(MOAT_PIN_MAPS);
	rm_pin_dir(MOAT_PIN_PROGS);
out:
	moat__destroy(skel);
	return err;
}

static int open_pins(struct moat_state *st)
{
	struct moat_layout layout = {};
	__u32 zero = 0;
	char p[512];

	/* the layout first: another layout's set may lack maps of ours */
	pin_path(p, sizeof(p), MOAT_PIN_MAPS, moat_map_names[M_LAYOUT]);
	st->map[M_LAYOUT] = bpf_obj_get(p);
	if (st->map[M_LAYOUT] < 0 ||
	    bpf_map_lookup_elem(st->map[M_LAYOUT], &zero, &layout) ||
	    layout.version != MOAT_LAYOUT_VERSION) {
		p_err("the pinned state under %s has layout version %u, this moat-bpf expects %u; "
		      "run 'moat-bpf upgrade' with this build to move every cgroup over without a gap",
		      MOAT_PIN_ROOT, layout.version, MOAT_LAYOUT_VERSION);
		return -EPROTO;
	}
	for (int i = 0; i < M__N; i++) {
		if (i == M_LAYOUT)
			continue;
		pin_path(p, sizeof(p), MOAT_PIN_MAPS, moat_map_names[i]);
		st->map[i] = bpf_obj_get(p);
		if (st->map[i] < 0) {
			p_errno(-errno, "opening pinned map %s", p);
			return -EPROTO;
		}
	}
	for (int i = 0; i < P__N; i++) {
		pin_path(p, sizeof(p), MOAT_PIN_PROGS, moat_progs[i].name);
		st->prog[i] = bpf_obj_get(p);
		if (st->prog[i] < 0) {
			p_errno(-errno, "opening pinned program %s", p);
			return -EPROTO;
		}
	}
	return 0;
}

int state_open(struct moat_state *st, bool load)
{
	int err;

	err = ensure_bpffs();
	if (err) {
		p_errno(err, "mounting bpffs at %s", MOAT_BPFFS);
		return err;
	}
	if (access(MOAT_PIN_LAYOUT, F_OK)) {
		if (!load)
			return -ENOENT;
		if (st->lock_fd < 0)
			return -ENOLCK;
		/* a set without its layout pin was cut off while pinning */
		rm_pin_dir(MOAT_PIN_MAPS);
		rm_pin_dir(MOAT_PIN_PROGS);
		err = load_and_pin();
		if (err)
			return err;
	}
	return open_pins(st);
}

int state_unload(struct moat_state *st)
{
	rm_pin_dir(MOAT_PIN_PROGS);
	/* the layout pin goes first: what remains is an incomplete set */
	unlink(MOAT_PIN_LAYOUT);
	rm_pin_dir(MOAT_PIN_MAPS);
	rmdir(MOAT_PIN_LINKS);
	rmdir(MOAT_PIN_ROOT);
	return 0;
}

void state_close(struct moat_state *st)
{
	for (int i = 0; i < P__N; i++)
		if (st->prog[i] >= 0)
			close(st->prog[i]);
	for (int i = 0; i < M__N; i++)
		if (st->map[i] >= 0)
			close(st->map[i]);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	state_init(st);
}

__u32 state_pinned_layout(void)
{
	struct moat_layout l = {};
	__u32 zero = 0;
	int fd = bpf_obj_get(MOAT_PIN_LAYOUT);

	if (fd < 0)
		return 0;
	bpf_map_lookup_elem(fd, &zero, &l);
	close(fd);
	return l.version;
}
