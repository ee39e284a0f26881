// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-client: the small, statically linked client of the Docker tests
 * (tests/docker/run.sh puts it at /bin/moat-client in the test image).
 * No libraries beyond libc, no DNS library: everything the tests need to
 * see is printed as one word.
 *
 *   moat-client tcp|udp ADDR PORT     connect (TCP) or send (UDP) once and
 *                                     wait for the echo (2 s). Prints OK,
 *                                     EPERM or "ERR <errno name>";
 *                                     exit 0, 1, 2. ADDR may be a name
 *                                     (one A query to the first
 *                                     nameserver of /etc/resolv.conf).
 *   moat-client dns NAME [SERVER]     one UDP A query (SERVER default: the
 *                                     first nameserver of /etc/resolv.conf)
 *                                     prints the rcode (NOERROR, REFUSED,
 *                                     NXDOMAIN, ...) and the A records, or
 *                                     EPERM / "ERR x"; exit 0 on an answer
 *   moat-client serve PORT            echo server on [::]:PORT (dual stack),
 *                                     TCP; forks into the background and
 *                                     returns once it listens
 *   moat-client addr IFNAME 4|6       the interface's first global address
 *   moat-client attack                try to undo or bypass the enforcement
 *                                     from inside (bpf(), bpffs, cgroupfs,
 *                                     raw/packet/ping sockets, io_uring): one
 *                                     line per attempt; exit 0 if every
 *                                     attempt failed with the errno of its
 *                                     defence, 3 if one succeeded, 4 if
 *                                     one failed with another errno
 *   moat-client marker PATH           create PATH (proves the process ran)
 *   moat-client hijack WAIT SERVE     the DNS flow hijack of issue 11, item
 *                                     4 (see do_hijack); prints READY, then
 *                                     "SENT|EPERM forged N" at the end
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define TIMEOUT_MS 2000

static int report(int err)
{
	if (!err) {
		puts("OK");
		return 0;
	}
	if (err == EPERM) {
		puts("EPERM");
		return 1;
	}
	printf("ERR %s\n", strerrorname_np(err) ?: strerror(err));
	return 2;
}

static int wait_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, TIMEOUT_MS);

	return n > 0 ? 0 : n == 0 ? ETIMEDOUT : errno;
}

static int first_nameserver(char *out, size_t len)
{
	FILE *f = fopen("/etc/resolv.conf", "re");
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "nameserver %63s", out) == 1 && strlen(out) < len) {
			fclose(f);
			return 0;
		}
	fclose(f);
	return -1;
}

/* A numeric address (IPv4, IPv6 with or without brackets) and port. */
static int numeric(const char *host, int port, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char h[INET6_ADDRSTRLEN + 2];

	snprintf(h, sizeof(h), "%s", host[0] == '[' ? host + 1 : host);
	h[strcspn(h, "]")] = 0;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

/* The offset after the (possibly compressed) name at P. */
static size_t skip_name(const unsigned char *a, size_t len, size_t p)
{
	while (p < len) {
		if (!a[p])
			return p + 1;
		if ((a[p] & 0xc0) == 0xc0)
			return p + 2;
		p += a[p] + 1;
	}
	return len;
}

/*
 * One UDP A query for NAME to SERVER (NULL: resolv.conf). Returns the
 * rcode (>= 0) with up to MAX A records in OUT, or -errno.
 */
static int dns_query(const char *name, const char *server,
		     struct in_addr *out, int max, int *nout)
{
	unsigned char q[512], a[1500];
	char srv[64];
	struct sockaddr_storage ss;
	socklen_t sl;
	size_t n = 12, p, an;
	ssize_t got;
	int fd, err;

	*nout = 0;
	if (!server) {
		if (first_nameserver(srv, sizeof(srv)))
			return -ENOENT;
		server = srv;
	}
	if (numeric(server, 53, &ss, &sl))
		return -EINVAL;
	memset(q, 0, 12);
	q[0] = getpid() >> 8;
	q[1] = getpid();
	q[2] = 0x01;		/* RD */
	q[5] = 1;		/* QDCOUNT */
	for (const char *l = name; *l;) {
		size_t ll = strcspn(l, ".");

		if (!ll || ll > 63 || n + ll + 6 > sizeof(q))
			return -EINVAL;
		q[n++] = ll;
		memcpy(q + n, l, ll);
		n += ll;
		l += ll;
		if (*l == '.')
			l++;
	}
	q[n++] = 0;
	q[n++] = 0, q[n++] = 1;	/* A */
	q[n++] = 0, q[n++] = 1;	/* IN */
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, q, n, 0, (struct sockaddr *)&ss, sl) != (ssize_t)n) {
		err = -errno;
		close(fd);
		return err;
	}
	err = wait_readable(fd);
	got = err ? -1 : recv(fd, a, sizeof(a), 0);
	if (!err && got < 0)
		err = errno;
	close(fd);
	if (err)
		return -err;
	if (got < 12 || a[0] != q[0] || a[1] != q[1])
		return -EBADMSG;
	p = skip_name(a, got, 12) + 4;
	an = a[6] << 8 | a[7];
	for (size_t i = 0; i < an; i++) {
		unsigned type, rdlen;

		p = skip_name(a, got, p);
		if (p + 10 > (size_t)got)
			break;
		type = a[p] << 8 | a[p + 1];
		rdlen = a[p + 8] << 8 | a[p + 9];
		p += 10;
		if (p + rdlen > (size_t)got)
			break;
		if (type == 1 && rdlen == 4 && *nout < max)
			memcpy(&out[(*nout)++], a + p, 4);
		p += rdlen;
	}
	return a[3] & 15;
}

static int do_dns(const char *name, const char *server)
{
	static const char *const rcodes[] = {
		"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	};
	struct in_addr addrs[64];
	int n, rc = dns_query(name, server, addrs, 64, &n);

	if (rc < 0)
		return report(-rc);
	if (rc < 6)
		printf("%s", rcodes[rc]);
	else
		printf("RCODE%d", rc);
	for (int i = 0; i < n; i++)
		printf(" %s", inet_ntoa(addrs[i]));
	putchar('\n');
	return 0;
}

/* HOST: numeric, else the first A record from the resolv.conf server. */
static int resolve(const char *host, const char *port,
		   struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct in_addr a;
	int n, rc;

	if (!numeric(host, atoi(port), ss, len))
		return 0;
	rc = dns_query(host, NULL, &a, 1, &n);
	if (rc < 0)
		return -rc;
	if (rc || !n)
		return EHOSTUNREACH;	/* the name did not resolve */
	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(atoi(port));
	in->sin_addr = a;
	*len = sizeof(*in);
	return 0;
}

static int do_connect(int type, const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];
	int fd, err;

	err = resolve(host, port, &ss, &len);
	if (err)
		return report(err);
	fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report(errno);
	if (type == SOCK_STREAM) {
		struct timeval tv = { .tv_sec = TIMEOUT_MS / 1000 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (struct sockaddr *)&ss, len))
			return report(errno);
		if (send(fd, "moat\n", 5, MSG_NOSIGNAL) != 5)
			return report(errno);
	} else if (sendto(fd, "moat\n", 5, 0, (struct sockaddr *)&ss, len) != 5) {
		return report(errno);
	}
	err = wait_readable(fd);
	if (!err && recv(fd, buf, sizeof(buf), 0) <= 0)
		err = errno ?: ECONNRESET;
	return report(err);
}

static int do_serve(const char *port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(atoi(port)) };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), zero = 0, one = 1;
	pid_t pid;

	if (fd < 0)
		return report(errno);
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16))
		return report(errno);
	pid = fork();
	if (pid < 0)
		return report(errno);
	if (pid > 0) {
		puts("LISTENING");
		return 0;
	}
	setsid();
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		char buf[256];
		ssize_t n;
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		if (!wait_readable(c) && (n = recv(c, buf, sizeof(buf), 0)) > 0)
			send(c, buf, n, MSG_NOSIGNAL);
		close(c);
	}
}

static int do_addr(const char *ifname, const char *fam)
{
	struct ifaddrs *ifa, *i;
	int family = !strcmp(fam, "6") ? AF_INET6 : AF_INET;
	char buf[INET6_ADDRSTRLEN];

	if (getifaddrs(&ifa))
		return report(errno);
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != family ||
		    strcmp(i->ifa_name, ifname))
			continue;
		if (family == AF_INET6) {
			struct in6_addr *a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;

			if (IN6_IS_ADDR_LINKLOCAL(a))
				continue;
			inet_ntop(family, a, buf, sizeof(buf));
		} else {
			inet_ntop(family, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
				  buf, sizeof(buf));
		}
		puts(buf);
		freeifaddrs(ifa);
		return 0;
	}
	freeifaddrs(ifa);
	return report(EADDRNOTAVAIL);
}

/* ---- attempts to undo the enforcement from inside ---- */

static int succeeded, unexpected;

static const char *errname(int err)
{
	return strerrorname_np(err) ?: strerror(err);
}

/*
 * One attempt: it must fail with WANT, the errno of the defence that
 * stops it (seccomp, a missing capability, a read-only mount, the BPF
 * programs). Any other errno is reported as unexpected: ENOENT from a
 * path that does not exist, say, says nothing about a defence.
 */
static void attempt(const char *what, int ok, int err, int want)
{
	if (ok) {
		succeeded++;
		printf("%s: SUCCEEDED\n", what);
	} else if (err != want) {
		unexpected++;
		printf("%s: %s (UNEXPECTED, want %s)\n", what, errname(err),
		       errname(want));
	} else {
		printf("%s: %s\n", what, errname(err));
	}
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static void try_bpf(void)
{
	/* the real pins (user/state.c: maps are pinned under their own names) */
	static const char *const pins[] = {
		"/sys/fs/bpf/moat", "/sys/fs/bpf/moat/maps/moat_cgroups",
		"/sys/fs/bpf/moat/maps/moat_policies", "/sys/fs/bpf/moat/links", NULL,
	};
	static const struct { int cmd; const char *name; } ids[] = {
		{ BPF_PROG_GET_NEXT_ID, "bpf(PROG_GET_NEXT_ID)" },
		{ BPF_MAP_GET_NEXT_ID, "bpf(MAP_GET_NEXT_ID)" },
		{ BPF_LINK_GET_NEXT_ID, "bpf(LINK_GET_NEXT_ID)" },
	};
	union bpf_attr attr;
	char what[128];
	long r;

	for (int i = 0; pins[i]; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.pathname = (unsigned long)pins[i];
		r = sys_bpf(BPF_OBJ_GET, &attr);
		snprintf(what, sizeof(what), "bpf(OBJ_GET %s)", pins[i]);
		attempt(what, r >= 0, errno, EPERM);
	}
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		memset(&attr, 0, sizeof(attr));
		r = sys_bpf(ids[i].cmd, &attr);
		attempt(ids[i].name, r >= 0, errno, EPERM);
	}
	/* by id, blindly: the first ids exist on any machine with programs */
	for (int cmd = 0; cmd < 3; cmd++) {
		static const int get[] = { BPF_PROG_GET_FD_BY_ID, BPF_MAP_GET_FD_BY_ID,
					   BPF_LINK_GET_FD_BY_ID };
		static const char *const nm[] = { "PROG", "MAP", "LINK" };
		int ok = 0, last = EPERM;

		for (unsigned id = 1; id <= 256; id++) {
			memset(&attr, 0, sizeof(attr));
			attr.prog_id = id;	/* same offset for map_id, link_id */
			r = sys_bpf(get[cmd], &attr);
			if (r >= 0) {
				ok = 1;
				close(r);
				break;
			}
			last = errno;
			if (last == EPERM)
				break;	/* refused for every id alike */
		}
		snprintf(what, sizeof(what), "bpf(%s_GET_FD_BY_ID 1..256)", nm[cmd]);
		attempt(what, ok, last, EPERM);
	}
}

static void try_mounts(void)
{
	static const struct { const char *type, *what; } m[] = {
		{ "bpf", "mount -t bpf" }, { "cgroup2", "mount -t cgroup2" },
	};
	char dir[] = "/tmp/moat-attack.XXXXXX";

	if (!mkdtemp(dir)) {
		attempt("mkdtemp", 0, errno, 0);
		return;
	}
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		int r = mount(m[i].type, dir, m[i].type, 0, NULL);

		attempt(m[i].what, r == 0, errno, EPERM);
		if (!r)
			umount2(dir, MNT_DETACH);
	}
	attempt("remount /sys/fs/cgroup rw",
		mount(NULL, "/sys/fs/cgroup", NULL, MS_REMOUNT | MS_BIND, NULL) == 0, errno,
		EPERM);
	attempt("remount /sys rw",
		mount(NULL, "/sys", NULL, MS_REMOUNT, NULL) == 0, errno, EPERM);
	attempt("unshare(CLONE_NEWCGROUP|CLONE_NEWNS)",
		syscall(__NR_unshare, 0x02000000 | 0x00020000) == 0, errno, EPERM);
	rmdir(dir);
}

/* Every cgroup.procs we can see: writing our pid would leave our cgroup. */
static void try_cgroup_files(void)
{
	static const char *const files[] = {
		"/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.procs",
		"/sys/fs/cgroup/systemd/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.kill",
		NULL,
	};
	char pid[32], what[128], dir[128];

	snprintf(pid, sizeof(pid), "%d\n", getpid());
	for (int i = 0; files[i]; i++) {
		int fd, ok = 0, err;

		/* not there: nothing to write, and no defence shown either */
		if (access(files[i], F_OK) && errno == ENOENT) {
			printf("write %s: absent\n", files[i]);
			continue;
		}
		fd = open(files[i], O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			/* cgroup.kill would kill us: never write it, opening is enough */
			ok = strstr(files[i], "cgroup.kill") ? 1 :
			     write(fd, pid, strlen(pid)) > 0;
			err = errno;
			close(fd);
		} else {
			err = errno;
		}
		snprintf(what, sizeof(what), "write %s", files[i]);
		attempt(what, ok, err, EROFS);	/* the container's cgroupfs is read-only */
	}
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/unified/moat-escape-%d", getpid());
	if (access("/sys/fs/cgroup/unified", F_OK) && errno == ENOENT)
		printf("mkdir a cgroup: absent (no /sys/fs/cgroup/unified)\n");
	else
		attempt("mkdir a cgroup", mkdir(dir, 0755) == 0, errno, EROFS);
	rmdir(dir);
}

/* Sockets without a sock_addr hook: their sends would bypass the policy. */
static void try_sockets(void)
{
	static const struct { int family, type, proto; const char *what; } so[] = {
		{ AF_PACKET, SOCK_RAW, 0, "socket(AF_PACKET, SOCK_RAW)" },
		{ AF_PACKET, SOCK_DGRAM, 0, "socket(AF_PACKET, SOCK_DGRAM)" },
		{ AF_INET, SOCK_RAW, IPPROTO_RAW, "socket(AF_INET, SOCK_RAW, IPPROTO_RAW)" },
		{ AF_INET6, SOCK_RAW, IPPROTO_RAW, "socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)" },
		{ AF_INET, SOCK_DGRAM, IPPROTO_ICMP, "socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) (ping)" },
		{ AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6, "socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6) (ping)" },
		{ 44 /* AF_XDP */, SOCK_RAW, 0, "socket(AF_XDP)" },
	};
	unsigned char params[120] = { 0 };	/* struct io_uring_params */
	long r;

	/* creating them sends nothing; each is closed at once */
	for (size_t i = 0; i < sizeof(so) / sizeof(so[0]); i++) {
		int fd = socket(so[i].family, so[i].type | SOCK_CLOEXEC, so[i].proto);

		/*
		 * EPERM each: seccomp (AF_PACKET, AF_XDP), no CAP_NET_RAW
		 * (raw), the BPF sock_create program (ping: run.sh widens
		 * ping_group_range, or the kernel's EACCES would come first)
		 */
		attempt(so[i].what, fd >= 0, errno, EPERM);
		if (fd >= 0)
			close(fd);
	}
	r = syscall(425 /* __NR_io_uring_setup */, 1, params);
	attempt("io_uring_setup", r >= 0, errno, EPERM);	/* seccomp */
	if (r >= 0)
		close(r);
}

static int do_attack(void)
{
	/* root on a host would succeed, and change things: containers only */
	if (access("/.dockerenv", F_OK)) {
		fprintf(stderr, "moat-client attack: only inside a Docker container (/.dockerenv)\n");
		return 2;
	}
	try_bpf();
	try_mounts();
	try_cgroup_files();
	try_sockets();
	printf("%d attempt(s) succeeded, %d failed with an unexpected errno\n",
	       succeeded, unexpected);
	return succeeded ? 3 : unexpected ? 4 : 0;
}

/*
 * The resolver daemon keeps a socket 127.0.0.1:P -> 127.0.0.11:53 in the
 * container's netns. Bind 127.0.0.11:53 (Docker DNATs port 53 away from it,
 * so it is free), wait WAIT s until conntrack has forgotten the daemon's
 * DNAT flow (30 s of DNS silence), send from there to 127.0.0.1:P (every
 * 300 ms, so the flow stays ours) and answer every query that arrives
 * with A 198.51.100.8, for SERVE s.
 */
static int do_hijack(const char *wait_s, const char *serve_s)
{
	struct sockaddr_in self = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct sockaddr_in to = { .sin_family = AF_INET };
	unsigned int lport, laddr, raddr, rport, port = 0, forged = 0;
	char line[512], res[8] = "SENT";
	unsigned char q[1500], a[1600], junk[12] = { 0 };
	time_t end, last = 0;
	FILE *f = fopen("/proc/net/udp", "r");
	int fd;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, " %*d: %x:%x %x:%x", &laddr, &lport, &raddr, &rport) == 4 &&
		    laddr == 0x0100007f && raddr == 0x0b00007f && rport == 53)
			port = lport;
	if (f)
		fclose(f);
	if (!port) {
		puts("NOSOCKET");
		return 2;
	}
	inet_pton(AF_INET, "127.0.0.11", &self.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	to.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&self, sizeof(self)))
		return report(errno);
	sleep(atoi(wait_s));
	end = time(NULL) + atoi(serve_s);
	while (time(NULL) < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (time(NULL) != last) {
			for (int i = 0; i < 3; i++)
				if (sendto(fd, junk, sizeof(junk), 0, (struct sockaddr *)&to,
					   sizeof(to)) < 0 && errno == EPERM)
					strcpy(res, "EPERM");
			if (!last)
				puts("READY");
			last = time(NULL);
		}
		if (poll(&p, 1, 300) != 1)
			continue;
		n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n < 12)
			continue;
		memcpy(a, q, 2);
		memcpy(a + 2, "\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00", 10);
		memcpy(a + 12, q + 12, n - 12);
		memcpy(a + n, "\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04"
		       "\xc6\x33\x64\x08", 16);	/* A 198.51.100.8, TTL 300 */
		if (sendto(fd, a, n + 16, 0, (struct sockaddr *)&from, fl) < 0)
			strcpy(res, errno == EPERM ? "EPERM" : res);
		else
			forged++;
	}
	printf("%s forged %u\n", res, forged);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "tcp"))
		return do_connect(SOCK_STREAM, argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "udp"))
		return do_connect(SOCK_DGRAM, argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "dns"))
		return do_dns(argv[2], argc == 4 ? argv[3] : NULL);
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return do_serve(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "addr"))
		return do_addr(argv[2], argv[3]);
	if (argc == 2 && !strcmp(argv[1], "attack"))
		return do_attack();
	if (argc == 4 && !strcmp(argv[1], "hijack"))
		return do_hijack(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "marker")) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

		return fd < 0 ? report(errno) : (close(fd), 0);
	}
	fprintf(stderr, "usage: %s tcp|udp ADDR PORT | dns NAME [SERVER] | serve PORT |"
		" addr IFNAME 4|6 | attack | marker PATH | hijack WAIT SERVE\n", argv[0]);
	return 2;
}
