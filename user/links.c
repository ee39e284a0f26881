// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include "links.h"
#include "log.h"
#include "state.h"

static void link_dir(char *buf, size_t len, __u64 id)
{
	snprintf(buf, len, "%s/%" PRIu64, MOAT_PIN_LINKS, (uint64_t)id);
}

static void link_pin(char *buf, size_t len, __u64 id, int prog)
{
	snprintf(buf, len, "%s/%" PRIu64 "/%s", MOAT_PIN_LINKS,
		 (uint64_t)id, moat_progs[prog].name);
}

static int unpin_one(const char *pin)
{
	int fd = bpf_obj_get(pin);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* detach now, even if someone else still holds an fd to the link */
	bpf_link_detach(fd);
	close(fd);
	if (unlink(pin) && errno != ENOENT)
		return -errno;
	return 0;
}

int links_remove(__u64 id)
{
	char p[512];
	int err = 0;

	/* reverse order of creation */
	for (int i = P__N - 1; i >= 0; i--) {
		link_pin(p, sizeof(p), id, i);
		err = unpin_one(p) ?: err;
	}
	link_dir(p, sizeof(p), id);
	if (rmdir(p) && errno != ENOENT)
		err = err ?: -errno;
	return err;
}

int links_create(struct moat_state *st, __u64 id, int cg_fd)
{
	char p[512];
	int err, fd;

	link_dir(p, sizeof(p), id);
	if (mkdir(p, 0700) && errno != EEXIST)
		return -errno;
	for (int i = 0; i < P__N; i++) {
		link_pin(p, sizeof(p), id, i);
		if (!access(p, F_OK))
			continue;
		fd = bpf_link_create(st->prog[i], cg_fd, moat_progs[i].type, NULL);
		if (fd < 0) {
			err = -errno;
			p_errno(err, "attaching %s", moat_progs[i].name);
			goto unwind;
		}
		err = bpf_obj_pin(fd, p) ? -errno : 0;
		close(fd);
		if (err) {
			p_errno(err, "pinning %s", p);
			goto unwind;
		}
	}
	return 0;
unwind:
	links_remove(id);
	return err;
}

bool links_present(__u64 id)
{
	char p[512];

	link_pin(p, sizeof(p), id, P_CONNECT4);
	return !access(p, F_OK);
}

static bool link_cgroup_gone(__u64 id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char p[512];
	bool gone = false;
	int fd;

	link_pin(p, sizeof(p), id, P_CONNECT4);
	fd = bpf_obj_get(p);
	if (fd < 0)
		return false;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
	    info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == 0)
		gone = true;
	close(fd);
	return gone;
}

int links_list(__u64 **ids, bool **gone, size_t *n)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	*ids = NULL;
	*gone = NULL;
	*n = 0;
	d = opendir(MOAT_PIN_LINKS);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char *end;
		unsigned long long v = strtoull(de->d_name, &end, 10);

		if (de->d_name[0] == '.' || *end)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 32;
			void *a = realloc(*ids, cap * sizeof(**ids));
			void *b = a ? realloc(*gone, cap * sizeof(**gone)) : NULL;

			if (a)
				*ids = a;
			if (!a || !b) {
				closedir(d);
				return -ENOMEM;
			}
			*gone = b;
		}
		(*ids)[*n] = v;
		(*gone)[*n] = link_cgroup_gone(v);
		(*n)++;
	}
	closedir(d);
	return 0;
}

int links_remove_all(void)
{
	__u64 *ids;
	bool *gone;
	size_t n;
	int err = links_list(&ids, &gone, &n);

	for (size_t i = 0; !err && i < n; i++)
		err = links_remove(ids[i]);
	free(ids);
	free(gone);
	return err;
}
