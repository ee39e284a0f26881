// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dnsctl: talk to the resolver daemon's control socket for
 * tools/bench/dns.sh, through the same control_send()/control_recv() the
 * CLI uses (user/control.c), so the bench speaks the daemon's real
 * protocol and nothing of it is written twice.
 *
 *   dnsctl list
 *	the "list" op: registrations and counters, the JSON reply on stdout
 *	(to check that a run really went through the daemon, and to count
 *	learned addresses)
 *   dnsctl register CGROUP_DIR REL NETNS_PATH RULE
 *	register CGROUP_DIR (absolute; REL is its path under the cgroup2
 *	mount, "/a/b") in NETNS_PATH with one domain rule and the default
 *	dns settings, as `moat-bpf attach --netns` does, but without the
 *	attach: the daemon's side of a registration only, cheap enough to
 *	make 1000 of them when attach itself is too slow for the bench
 *
 * Exit status 1 if the daemon cannot be reached or answers an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include "cgroup.h"
#include "control.h"
#include "paths.h"

static int call(json_object *req, int pass_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	json_object *reply = NULL;
	int fd, err, rfd = -1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", MOAT_CONTROL_SOCK);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "dnsctl: connect %s: %s\n", sa.sun_path, strerror(errno));
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	err = control_send(fd, req, pass_fd);
	if (!err)
		err = control_recv(fd, &reply, &rfd);
	close(fd);
	if (rfd >= 0)
		close(rfd);
	json_object_put(req);
	if (err || !reply) {
		fprintf(stderr, "dnsctl: no reply: %s\n", strerror(err ? -err : ECONNRESET));
		return 1;
	}
	puts(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
	err = json_object_object_get_ex(reply, "error", NULL);
	json_object_put(reply);
	return err ? 1 : 0;
}

static json_object *register_req(__u64 id, const char *rel, const char *rule)
{
	json_object *req = json_object_new_object(), *rules, *dns, *up;

	rules = json_object_new_array();
	json_object_array_add(rules, json_object_new_string(rule));
	up = json_object_new_array();
	dns = json_object_new_object();
	json_object_object_add(dns, "upstream", up);
	json_object_object_add(dns, "min_ttl", json_object_new_int(30));
	json_object_object_add(dns, "max_ttl", json_object_new_int(86400));
	json_object_object_add(dns, "grace", json_object_new_int(60));
	json_object_object_add(dns, "refuse", json_object_new_string("refused"));
	json_object_object_add(dns, "max_addresses", json_object_new_int(4096));
	json_object_object_add(req, "op", json_object_new_string("register"));
	json_object_object_add(req, "cgroup_id", json_object_new_uint64(id));
	json_object_object_add(req, "cgroup", json_object_new_string(rel));
	json_object_object_add(req, "policy", json_object_new_string("bench"));
	json_object_object_add(req, "rules", rules);
	json_object_object_add(req, "dns", dns);
	return req;
}

int main(int argc, char **argv)
{
	json_object *req;
	__u64 id;
	int nfd, err;

	if (argc == 2 && !strcmp(argv[1], "list")) {
		req = json_object_new_object();
		json_object_object_add(req, "op", json_object_new_string("list"));
		return call(req, -1);
	}
	if (argc != 6 || strcmp(argv[1], "register")) {
		fprintf(stderr, "usage: dnsctl list | register CGROUP_DIR REL NETNS_PATH RULE\n");
		return 2;
	}
	err = cgroup_id_of(argv[2], &id);
	if (err) {
		fprintf(stderr, "dnsctl: cgroup id of %s: %s\n", argv[2], strerror(-err));
		return 1;
	}
	nfd = open(argv[4], O_RDONLY | O_CLOEXEC);
	if (nfd < 0) {
		fprintf(stderr, "dnsctl: netns %s: %s\n", argv[4], strerror(errno));
		return 1;
	}
	err = call(register_req(id, argv[3], argv[5]), nfd);
	close(nfd);
	return err;
}
