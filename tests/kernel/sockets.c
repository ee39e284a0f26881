// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What a process of an enforced cgroup may create (cgroup/sock_create)
 * and which socket options it may set (cgroup/setsockopt).
 *
 * Only TCP, MPTCP and UDP sockets are created freely: every way out of
 * them is judged by the connect/sendmsg programs. UDP-Lite's connect()
 * skips the connect hooks (and so the rules and the DNS redirect), SCTP
 * and the rest have paths no hook sees: they are refused unless the
 * policy says `sockets: { other: allow }` (audit, issue 11, item 8). The
 * options that install a source route or forge a source are refused,
 * IPV6_2292PKTOPTIONS (sticky control messages, a routing header among
 * them) included (item 9).
 *
 * Sockets are only created and configured here; nothing is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "harness.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP		262
#endif
#ifndef IPPROTO_L2TP
#define IPPROTO_L2TP		115
#endif
#ifndef IPV6_2292PKTOPTIONS
#define IPV6_2292PKTOPTIONS	6
#endif
#ifndef IPV6_2292HOPLIMIT
#define IPV6_2292HOPLIMIT	8
#endif

/* An attempt made by a child in cgroup CG (NULL: none): 0 or an errno. */
typedef int (*attempt_fn)(const void *arg);

static int in_cgroup(const char *cg, attempt_fn fn, const void *arg)
{
	char procs[PATH_MAX + 16];
	pid_t pid;
	int st;

	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (cg) {
			int fd;

			snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
			fd = open(procs, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, "0", 1) != 1)
				_exit(255);
			close(fd);
		}
		_exit(fn(arg) & 0xff);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "the attempt died (status %#x)", st);
	cr_assert_neq(WEXITSTATUS(st), 255, "could not join %s", cg);
	return WEXITSTATUS(st);
}

struct sock_case {
	const char *what;
	int family, type, protocol;
	bool created;		/* in an enforced cgroup with sockets: defaults */
};

static int try_socket(const void *arg)
{
	const struct sock_case *c = arg;
	int fd = socket(c->family, c->type, c->protocol);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static const struct sock_case sock_cases[] = {
	{ "tcp4", AF_INET, SOCK_STREAM, 0, true },
	{ "tcp6", AF_INET6, SOCK_STREAM, IPPROTO_TCP, true },
	{ "mptcp4", AF_INET, SOCK_STREAM, IPPROTO_MPTCP, true },
	{ "mptcp6", AF_INET6, SOCK_STREAM, IPPROTO_MPTCP, true },
	{ "udp4", AF_INET, SOCK_DGRAM, 0, true },
	{ "udp6", AF_INET6, SOCK_DGRAM, IPPROTO_UDP, true },
	{ "udplite4", AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, false },
	{ "udplite6", AF_INET6, SOCK_DGRAM, IPPROTO_UDPLITE, false },
	{ "sctp4 stream", AF_INET, SOCK_STREAM, IPPROTO_SCTP, false },
	{ "sctp4 seqpacket", AF_INET, SOCK_SEQPACKET, IPPROTO_SCTP, false },
	{ "sctp6 seqpacket", AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP, false },
	{ "l2tp/ip4", AF_INET, SOCK_DGRAM, IPPROTO_L2TP, false },
	{ "l2tp/ip6", AF_INET6, SOCK_DGRAM, IPPROTO_L2TP, false },
	{ "smc4", AF_INET, SOCK_STREAM, 256 /* IPPROTO_SMC */, false },
};

/*
 * Every row the kernel can make unenforced is judged; a protocol this
 * kernel lacks is n/a (logged), except UDP-Lite and the TCP/UDP rows,
 * which every kernel we target has.
 */
static void check_sockets(const char *cg, bool other_allowed)
{
	for (size_t i = 0; i < sizeof(sock_cases) / sizeof(sock_cases[0]); i++) {
		const struct sock_case *c = &sock_cases[i];
		bool want = c->created || other_allowed;
		int base = in_cgroup(NULL, try_socket, c), got;

		if (base) {
			cr_assert(c->protocol != IPPROTO_UDPLITE &&
				  c->protocol != IPPROTO_MPTCP && !c->created,
				  "%s: socket() fails unenforced: %s", c->what,
				  strerror(base));
			cr_log_info("%s: n/a: not in this kernel (%s)", c->what,
				    strerror(base));
			continue;
		}
		got = in_cgroup(cg, try_socket, c);
		if (want)
			cr_assert_eq(got, 0, "%s: socket() in the enforced cgroup: "
				     "%s, want created", c->what, strerror(got));
		else
			cr_assert_eq(got, EPERM, "%s: socket() in the enforced cgroup: "
				     "%s, want EPERM (cgroup/sock_create)", c->what,
				     got ? strerror(got) : "created");
	}
}

KTEST(sockets, only_hooked_protocols_by_default)
{
	const char *cg = cg_make("sk-default");

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	check_sockets(cg, false);
}

KTEST(sockets, other_protocols_by_policy)
{
	const char *cg = cg_make("sk-other");
	const char *pol = write_policy("ktest-sockets-other",
				       "mode: enforce\n"
				       "allow:\n"
				       "  - tcp://" W4_A ":80\n"
				       "sockets: { other: allow }\n");

	moat_ok("attach %s --policy %s", cg, pol);
	check_sockets(cg, true);
}

/* Audit mode refuses nothing: it logs what it would refuse. */
KTEST(sockets, other_protocols_in_audit_mode)
{
	const struct sock_case lite = { "udplite4", AF_INET, SOCK_DGRAM,
					IPPROTO_UDPLITE, false };
	const char *cg = cg_make("sk-audit");
	const char *pol = write_policy("ktest-sockets-audit",
				       "mode: audit\n"
				       "allow: []\n");

	moat_ok("attach %s --policy %s", cg, pol);
	cr_assert_eq(in_cgroup(cg, try_socket, &lite), 0);
}

/* ---- cgroup/setsockopt ---- */

struct opt_case {
	const char *what;
	int family, type, level, name;
	unsigned char val[48];
	socklen_t len;
	bool works_unenforced;	/* the kernel takes it: the refusal is ours */
};

static int try_setsockopt(const void *arg)
{
	const struct opt_case *c = arg;
	int fd = socket(c->family, c->type, 0), ret = 0;

	if (fd < 0)
		return 254;
	if (setsockopt(fd, c->level, c->name, c->val, c->len))
		ret = errno;
	close(fd);
	return ret;
}

/* One control message: IPV6_2292HOPLIMIT 7, harmless on its own. */
static void pktoptions_hoplimit(struct opt_case *c)
{
	struct cmsghdr *cm = (struct cmsghdr *)c->val;
	int hl = 7;

	memset(c->val, 0, sizeof(c->val));
	cm->cmsg_len = CMSG_LEN(sizeof(hl));
	cm->cmsg_level = IPPROTO_IPV6;
	cm->cmsg_type = IPV6_2292HOPLIMIT;
	memcpy(CMSG_DATA(cm), &hl, sizeof(hl));
	c->len = CMSG_SPACE(sizeof(hl));
}

/* An IPv6 segment routing header via 2001:db8:1::8 to 2001:db8:1::7. */
static void srh(struct opt_case *c)
{
	unsigned char *b = c->val;

	memset(c->val, 0, sizeof(c->val));
	b[1] = (8 + 2 * 16) / 8 - 1;	/* hdrlen */
	b[2] = 4;			/* type: SRH */
	b[3] = 1;			/* segments left */
	b[4] = 1;			/* last entry */
	inet_pton(AF_INET6, W6_A, b + 8);
	inet_pton(AF_INET6, W6_B, b + 24);
	c->len = 8 + 2 * 16;
}

/* IPv4 loose source route via 198.51.100.8. */
static void lsrr(struct opt_case *c)
{
	memset(c->val, 0, sizeof(c->val));
	c->val[0] = IPOPT_LSRR;
	c->val[1] = 7;
	c->val[2] = 4;
	inet_pton(AF_INET, W4_B, c->val + 3);
	c->val[7] = IPOPT_END;
	c->len = 8;
}

static void one(struct opt_case *c)
{
	int v = 1;

	memset(c->val, 0, sizeof(c->val));
	memcpy(c->val, &v, sizeof(v));
	c->len = sizeof(v);
}

KTEST(sockets, source_route_options_refused)
{
	struct opt_case cases[] = {
		{ "IPV6_2292PKTOPTIONS", AF_INET6, SOCK_DGRAM, IPPROTO_IPV6,
		  IPV6_2292PKTOPTIONS, {0}, 0, true },
		{ "IPV6_RTHDR", AF_INET6, SOCK_DGRAM, IPPROTO_IPV6, IPV6_RTHDR,
		  {0}, 0, true },
		{ "IPV6_2292RTHDR", AF_INET6, SOCK_DGRAM, IPPROTO_IPV6,
		  IPV6_2292RTHDR, {0}, 0, false },
		{ "IP_OPTIONS", AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_OPTIONS,
		  {0}, 0, true },
		{ "IP_FREEBIND", AF_INET, SOCK_DGRAM, IPPROTO_IP, IP_FREEBIND,
		  {0}, 0, true },
		{ "IP_TRANSPARENT", AF_INET, SOCK_DGRAM, IPPROTO_IP,
		  IP_TRANSPARENT, {0}, 0, true },
		{ "IPV6_FREEBIND", AF_INET6, SOCK_DGRAM, IPPROTO_IPV6,
		  IPV6_FREEBIND, {0}, 0, true },
		{ "IPV6_TRANSPARENT", AF_INET6, SOCK_DGRAM, IPPROTO_IPV6,
		  IPV6_TRANSPARENT, {0}, 0, true },
	};
	const char *cg = cg_make("sk-opts");

	pktoptions_hoplimit(&cases[0]);
	srh(&cases[1]);
	srh(&cases[2]);
	lsrr(&cases[3]);
	for (size_t i = 4; i < sizeof(cases) / sizeof(cases[0]); i++)
		one(&cases[i]);
	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct opt_case *c = &cases[i];
		int got;

		if (c->works_unenforced) {
			got = in_cgroup(NULL, try_setsockopt, c);
			cr_assert_eq(got, 0, "%s: unenforced setsockopt() fails: %s "
				     "(the check below would prove nothing)",
				     c->what, strerror(got));
		}
		got = in_cgroup(cg, try_setsockopt, c);
		cr_assert_eq(got, EPERM, "%s: setsockopt() in the enforced cgroup: "
			     "%s, want EPERM (cgroup/setsockopt)", c->what,
			     got ? strerror(got) : "accepted");
	}
}
