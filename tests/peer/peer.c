// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-test-peer: both ends of the end-to-end tests. libc, plus ldns to
 * build and read DNS messages (never by hand).
 *
 *   serve --log FILE [--netns PATH] [--tcp ADDR:PORT]... [--udp ADDR:PORT]...
 *   client [--cgroup DIR] [--netns PATH] [--move-to DIR] [--family 4|6|mapped]
 *          tcp|udp|udp-connect|tcp-fastopen ADDR PORT
 *   udp-responder [--cgroup DIR] [--netns PATH] [--ready FILE] BINDADDR PORT
 *   udp-ask [--cgroup DIR] [--netns PATH] ADDR PORT
 *   dns-query [--cgroup DIR] [--netns PATH] [--tcp|--udp-connect] [--ttl]
 *             ADDR PORT NAME TYPE
 *   dns-raw [--cgroup DIR] [--netns PATH] [--tcp] ADDR PORT HEX
 *   resolve [--cgroup DIR] [--netns PATH] --resolv-conf FILE
 *           [--family 4|6] [--connect PORT] NAME
 *
 * client, udp-responder and udp-ask print exactly one word on stdout:
 * "OK", "EPERM", "ERR <errno name>" or "TIMEOUT", and exit 0 for OK, 1 for
 * EPERM, 2 for anything else. EPERM is printed only when the call a
 * cgroup sock_addr program judges (connect, or sendto on an unconnected UDP
 * socket) failed with it; any other failing call prints "ERR <name>".
 * Diagnostics go to stderr.
 *
 * dns-query sends one query (RD set, class IN) for NAME and TYPE (A, AAAA,
 * TXT, ...) to ADDR PORT: by default with sendto() on an unconnected UDP
 * socket, with --udp-connect on a connected one, with --tcp over TCP. It
 * prints the response's rcode and its answer section on one line, e.g.
 *   NOERROR CNAME=allowed.test. A=198.51.100.7
 *   REFUSED
 * and with --ttl each record's TTL after a slash ("A=198.51.100.7/600")
 * (exit 0), or EPERM (exit 1), or "ERR <why>" / TIMEOUT (exit 2). The
 * reply must appear to come from ADDR PORT (recvfrom's source, or
 * getpeername over TCP): "ERR FROM <addr>" otherwise.
 *
 * dns-raw sends the bytes HEX (hex digits) as one datagram, or with --tcp
 * as they are on a new connection (no length prefix added), and prints
 * "REPLY <n>" (the first reply's size), "NOREPLY" (nothing within 1 s),
 * "EOF" (TCP closed), or EPERM / "ERR <errno>"; exit 0 unless EPERM or ERR.
 *
 * resolve runs getaddrinfo(NAME) in a private mount namespace where FILE
 * is bind-mounted over /etc/resolv.conf; every nameserver named there must
 * be loopback or a test network (the host's own resolver is never asked).
 * It prints "OK ADDR..." (each address once, in getaddrinfo's order) or
 * "ERR EAI_<name>"; with --connect PORT each address is followed by
 * "=VERDICT", the result of a TCP client to ADDR PORT from the same
 * process ("OK 198.51.100.7=OK 2001:db8:1::7=EPERM"). Exit 0 for OK.
 *
 * serve logs one line per TCP connection or UDP datagram to FILE:
 *   tcp 198.51.100.7:80 from 198.18.0.1:41234
 *   udp [2001:db8:1::7]:53 from [2001:db8:ff::1]:50000
 * and, once every socket is bound, creates FILE.ready holding one
 * "PROTO ADDR:PORT" line per socket (so port 0 can be used). It runs until
 * SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <ldns/ldns.h>

#define PEER_MAX_SOCKS		128
#define PEER_MAX_CONNS		256
#define PEER_LINE_BYTES		512
#define PEER_ADDR_TEXT_LEN	(INET6_ADDRSTRLEN + 10)
#define CLIENT_WAIT_MS		2000	/* connect, then echo */
#define RESPONDER_WAIT_MS	5000
#define CONN_IDLE_MS		5000	/* server drops silent connections */
#define PING			"ping\n"
#define DNS_WAIT_MS		4000	/* the resolver waits 2 s upstream */
#define RAW_WAIT_MS		1000
#define DNS_MAX_MSG		65535
#define RESOLVE_LINE_BYTES	4096

enum { EXIT_PEER_OK = 0, EXIT_PEER_EPERM = 1, EXIT_PEER_OTHER = 2 };

static const char *prog = "moat-test-peer";

static void warnx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int report_word(const char *word, int code);

static int usage(void)
{
	fprintf(stderr,
		"usage: %s serve --log FILE [--netns PATH] [--tcp ADDR:PORT]... [--udp ADDR:PORT]...\n"
		"       %s client [--cgroup DIR] [--netns PATH] [--move-to DIR] [--family 4|6|mapped]\n"
		"              [--again FILE] tcp|udp|udp-connect|tcp-fastopen ADDR PORT\n"
		"       %s udp-responder [--cgroup DIR] [--netns PATH] [--ready FILE] BINDADDR PORT\n"
		"       %s udp-ask [--cgroup DIR] [--netns PATH] ADDR PORT\n"
		"       %s dns-query [--cgroup DIR] [--netns PATH] [--tcp|--udp-connect] ADDR PORT NAME TYPE\n"
		"       %s dns-raw [--cgroup DIR] [--netns PATH] [--tcp] ADDR PORT HEX\n"
		"       %s resolve [--cgroup DIR] [--netns PATH] --resolv-conf FILE [--family 4|6]\n"
		"              [--connect PORT] NAME\n",
		prog, prog, prog, prog, prog, prog, prog);
	return EXIT_PEER_OTHER;
}

/* Usage error of a command whose stdout is one word. */
static int usage_word(void)
{
	usage();
	return report_word("ERR EINVAL", EXIT_PEER_OTHER);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_left(long long deadline)
{
	long long left = deadline - now_ms();

	return left < 0 ? 0 : (int)left;
}

static const char *errno_name(int err)
{
	static char buf[32];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof(buf), "%d", err);
	return buf;
}

/* The result of the call a sock_addr program judged. */
static int report_judged(int err)
{
	if (err == EPERM) {
		puts("EPERM");
		return EXIT_PEER_EPERM;
	}
	printf("ERR %s\n", errno_name(err));
	return EXIT_PEER_OTHER;
}

/* The result of any other call: never reported as a verdict. */
static int report_other(int err)
{
	printf("ERR %s\n", errno_name(err));
	return EXIT_PEER_OTHER;
}

static int report_word(const char *word, int code)
{
	puts(word);
	return code;
}

/* ---- addresses ---- */

struct peer_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

enum family_opt { FAM_AUTO = 0, FAM_4, FAM_6, FAM_MAPPED };

static int parse_port(const char *text, unsigned short *port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 0 || v > 65535)
		return -EINVAL;
	*port = (unsigned short)v;
	return 0;
}

/* "a.b.c.d" or "v6" or "[v6]" plus a port into a sockaddr. */
static int make_addr(const char *host, unsigned short port,
		     enum family_opt fam, struct peer_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 2];
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
	size_t n = strlen(host);
	struct in_addr v4;

	if (n >= sizeof(buf))
		return -EINVAL;
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']')
			return -EINVAL;
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, host, n + 1);
	}

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		if (fam == FAM_6)
			return -EAFNOSUPPORT;
		if (fam == FAM_MAPPED) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(port);
			s6->sin6_addr.s6_addr[10] = 0xff;
			s6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&s6->sin6_addr.s6_addr[12], &v4, 4);
			a->len = sizeof(*s6);
			return 0;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr = v4;
		a->len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
		if (fam == FAM_4 || fam == FAM_MAPPED)
			return -EAFNOSUPPORT;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		a->len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

/* "a.b.c.d:port" or "[v6]:port". */
static int parse_hostport(const char *text, struct peer_addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	unsigned short port;
	size_t n;

	if (!colon || colon == text)
		return -EINVAL;
	n = (size_t)(colon - text);
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = '\0';
	/* A bare IPv6 address has colons of its own: require brackets. */
	if (host[0] != '[' && strchr(host, ':'))
		return -EINVAL;
	if (parse_port(colon + 1, &port))
		return -EINVAL;
	return make_addr(host, port, FAM_AUTO, a);
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "family-%d", sa->sa_family);
	}
}

/* ---- the network rule ---- */

static bool in_v4_net(const unsigned char *a, unsigned int net, int len)
{
	unsigned int v = (unsigned int)a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3];

	return len == 0 || (v >> (32 - len)) == (net >> (32 - len));
}

/* 1 loopback, 2 a test network, 0 anything else. */
static int dest_class(const struct sockaddr_storage *ss)
{
	static const unsigned char v6_loop[16] = { [15] = 1 };
	const unsigned char *v4 = NULL;

	if (ss->ss_family == AF_INET) {
		v4 = (const unsigned char *)
		     &((const struct sockaddr_in *)ss)->sin_addr;
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a6 =
			&((const struct sockaddr_in6 *)ss)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			v4 = &a6->s6_addr[12];
		} else {
			if (!memcmp(a6->s6_addr, v6_loop, 16))
				return 1;
			/* 2001:db8::/32 */
			if (a6->s6_addr[0] == 0x20 && a6->s6_addr[1] == 0x01 &&
			    a6->s6_addr[2] == 0x0d && a6->s6_addr[3] == 0xb8)
				return 2;
			return 0;
		}
	}
	if (!v4)
		return 0;
	/* 0.0.0.0 is sent to loopback; the rest of 0/8 is unicast */
	if (in_v4_net(v4, 0x7f000000, 8) || in_v4_net(v4, 0, 32))
		return 1;
	if (in_v4_net(v4, 0xc6336400, 24) ||	/* 198.51.100.0/24 */
	    in_v4_net(v4, 0xcb007100, 24) ||	/* 203.0.113.0/24 */
	    in_v4_net(v4, 0xc6120000, 15) ||	/* 198.18.0.0/15 */
	    in_v4_net(v4, 0x00010203, 32))	/* the world's 0.1.2.3 */
		return 2;
	return 0;
}

/* The initial netns's fixed inode number on recent kernels (nsfs). */
#define PEER_INIT_NETNS_INO	0xEFFFFFF9U
#define PEER_RTF_REJECT		0x0200

/*
 * Whether the current netns can reach the world: a default route (IPv4 or
 * IPv6, not a reject route) or the initial netns's inode. The netns the
 * tests create have neither. Unreadable counts as "yes".
 */
static bool netns_reaches_world(void)
{
	char line[512], dst[64], mask[16];
	unsigned int flags, plen;
	struct stat st;
	bool found = false;
	FILE *f;

	if (stat("/proc/self/ns/net", &st) || st.st_ino == PEER_INIT_NETNS_INO)
		return true;

	f = fopen("/proc/self/net/route", "r");
	if (!f)
		return true;
	while (!found && fgets(line, sizeof(line), f)) {
		/* Iface Destination Gateway Flags RefCnt Use Metric Mask */
		if (sscanf(line, "%*s %63s %*s %x %*s %*s %*s %15s", dst,
			   &flags, mask) == 3 && !strcmp(dst, "00000000") &&
		    !strcmp(mask, "00000000") && !(flags & PEER_RTF_REJECT))
			found = true;
	}
	fclose(f);

	f = fopen("/proc/self/net/ipv6_route", "r");
	if (!f)
		return found || errno != ENOENT;	/* no IPv6 at all */
	while (!found && fgets(line, sizeof(line), f)) {
		/* dst plen src splen nexthop metric refcnt use flags dev */
		if (sscanf(line, "%63s %x %*s %*s %*s %*s %*s %*s %x", dst,
			   &plen, &flags) == 3 &&
		    !strcmp(dst, "00000000000000000000000000000000") &&
		    plen == 0 && !(flags & PEER_RTF_REJECT))
			found = true;
	}
	fclose(f);
	return found;
}

/*
 * The tests may only reach loopback, or the test networks from inside a
 * namespace without a default route (the ones tools/testnet.sh makes):
 * never anything through the host's own routes, whatever the code under
 * test did with --netns.
 */
static int check_dest(const struct sockaddr_storage *ss)
{
	char text[PEER_ADDR_TEXT_LEN];
	int cls = dest_class(ss);

	if (cls == 1)
		return 0;
	format_addr((const struct sockaddr *)ss, text, sizeof(text));
	if (cls == 0) {
		warnx("refusing %s: neither loopback nor a test network",
		      text);
		return -1;
	}
	if (netns_reaches_world()) {
		warnx("refusing %s from a network namespace with a default "
		      "route (the host's?): the tests only reach the hosts "
		      "of their own namespaces", text);
		return -1;
	}
	return 0;
}

/* ---- namespaces and cgroups ---- */

static int join_cgroup(const char *dir)
{
	char path[4096], pid[32];
	int fd, n, err;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		warnx("open %s: %s", path, strerror(err));
		return -err;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (write(fd, pid, (size_t)n) != n) {
		err = errno;
		warnx("write %s: %s", path, strerror(err));
		close(fd);
		return -err;
	}
	close(fd);
	return 0;
}

static int enter_netns(const char *path)
{
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		warnx("open %s: %s", path, strerror(err));
		return -err;
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = errno;
		warnx("setns %s: %s", path, strerror(err));
		close(fd);
		return -err;
	}
	close(fd);
	return 0;
}

/* Write FILE via FILE.tmp and rename, so readers never see it half done. */
static int write_file_atomic(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		warnx("create %s: %s", tmp, strerror(errno));
		return -1;
	}
	fputs(text, f);
	if (fclose(f) || rename(tmp, path)) {
		warnx("write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- serve ---- */

struct listener {
	int fd;
	int type;			/* SOCK_STREAM / SOCK_DGRAM */
	char local[PEER_ADDR_TEXT_LEN];
};

struct conn {
	int fd;
	long long deadline;
	size_t n;
	char buf[PEER_LINE_BYTES];
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	stop_requested = 1;
}

static int open_listener(const struct peer_addr *a, int type,
			 struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1, fd;

	fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		goto err;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len))
		goto err;
	if (type == SOCK_STREAM && listen(fd, 128))
		goto err;
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		goto err;
	format_addr((struct sockaddr *)&ss, l->local, sizeof(l->local));
	l->fd = fd;
	l->type = type;
	return 0;
err:
	one = errno;
	close(fd);
	return -one;
}

static void log_line(FILE *log, const char *proto, const char *local,
		     const struct sockaddr *from)
{
	char peer[PEER_ADDR_TEXT_LEN];

	format_addr(from, peer, sizeof(peer));
	fprintf(log, "%s %s from %s\n", proto, local, peer);
	fflush(log);
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Echo the line back once it is complete (or on EOF / a full buffer). */
static void conn_read(struct conn *c)
{
	ssize_t n = read(c->fd, c->buf + c->n, sizeof(c->buf) - c->n);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c);
		return;
	}
	c->n += (size_t)n;
	if (n == 0 || memchr(c->buf, '\n', c->n) || c->n == sizeof(c->buf)) {
		if (c->n && send(c->fd, c->buf, c->n, MSG_NOSIGNAL) < 0)
			warnx("echo: %s", strerror(errno));
		conn_close(c);
	}
}

static void tcp_accept(const struct listener *l, FILE *log,
		       struct conn *conns)
{
	struct sockaddr_storage from, local;
	socklen_t flen = sizeof(from), llen = sizeof(local);
	char local_text[PEER_ADDR_TEXT_LEN];
	int fd, i;

	fd = accept4(l->fd, (struct sockaddr *)&from, &flen,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		format_addr((struct sockaddr *)&local, local_text,
			    sizeof(local_text));
	else
		snprintf(local_text, sizeof(local_text), "%s", l->local);
	log_line(log, "tcp", local_text, (struct sockaddr *)&from);

	for (i = 0; i < PEER_MAX_CONNS; i++) {
		if (conns[i].fd < 0) {
			conns[i].fd = fd;
			conns[i].n = 0;
			conns[i].deadline = now_ms() + CONN_IDLE_MS;
			return;
		}
	}
	warnx("too many connections, dropping one");
	close(fd);
}

static void udp_echo(const struct listener *l, FILE *log)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char buf[PEER_LINE_BYTES];
	ssize_t n;

	n = recvfrom(l->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
		     &flen);
	if (n < 0)
		return;
	log_line(log, "udp", l->local, (struct sockaddr *)&from);
	if (sendto(l->fd, buf, (size_t)n, 0, (struct sockaddr *)&from,
		   flen) < 0)
		warnx("udp echo: %s", strerror(errno));
}

static int cmd_serve(int argc, char **argv)
{
	static struct listener ls[PEER_MAX_SOCKS];
	static struct conn conns[PEER_MAX_CONNS];
	struct pollfd pfd[PEER_MAX_SOCKS + PEER_MAX_CONNS];
	int cidx[PEER_MAX_CONNS];
	const char *log_path = NULL, *netns = NULL;
	char ready_path[4096], *ready = NULL;
	size_t ready_len = 0;
	int n_ls = 0, i, err;
	struct sigaction sa;
	FILE *log, *rs;

	for (i = 0; i < PEER_MAX_CONNS; i++)
		conns[i].fd = -1;

	/* Namespace first: every socket is bound inside it. */
	for (i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--netns"))
			netns = argv[i + 1];
	if (netns && enter_netns(netns))
		return EXIT_PEER_OTHER;

	for (i = 1; i < argc; i++) {
		const char *opt = argv[i];
		struct peer_addr a;
		int type;

		if (i + 1 >= argc)
			return usage();
		if (!strcmp(opt, "--log")) {
			log_path = argv[++i];
			continue;
		}
		if (!strcmp(opt, "--netns")) {
			i++;
			continue;
		}
		if (!strcmp(opt, "--tcp"))
			type = SOCK_STREAM;
		else if (!strcmp(opt, "--udp"))
			type = SOCK_DGRAM;
		else
			return usage();
		i++;
		if (parse_hostport(argv[i], &a)) {
			warnx("bad address %s (want ADDR:PORT or [ADDR]:PORT)",
			      argv[i]);
			return EXIT_PEER_OTHER;
		}
		if (n_ls == PEER_MAX_SOCKS) {
			warnx("too many sockets");
			return EXIT_PEER_OTHER;
		}
		err = open_listener(&a, type, &ls[n_ls]);
		if (err) {
			warnx("bind %s %s: %s", opt + 2, argv[i],
			      strerror(-err));
			return EXIT_PEER_OTHER;
		}
		n_ls++;
	}
	if (!log_path)
		return usage();

	log = fopen(log_path, "a");
	if (!log) {
		warnx("open %s: %s", log_path, strerror(errno));
		return EXIT_PEER_OTHER;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;	/* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rs = open_memstream(&ready, &ready_len);
	if (!rs)
		return EXIT_PEER_OTHER;
	for (i = 0; i < n_ls; i++)
		fprintf(rs, "%s %s\n", ls[i].type == SOCK_STREAM ? "tcp" : "udp",
			ls[i].local);
	fclose(rs);
	snprintf(ready_path, sizeof(ready_path), "%s.ready", log_path);
	if (write_file_atomic(ready_path, ready))
		return EXIT_PEER_OTHER;
	free(ready);

	while (!stop_requested) {
		int n = 0, nc = 0, ret;
		long long now = now_ms();

		for (i = 0; i < n_ls; i++) {
			pfd[n].fd = ls[i].fd;
			pfd[n++].events = POLLIN;
		}
		for (i = 0; i < PEER_MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			if (now > conns[i].deadline) {
				conn_close(&conns[i]);
				continue;
			}
			cidx[nc++] = i;
			pfd[n].fd = conns[i].fd;
			pfd[n++].events = POLLIN;
		}
		ret = poll(pfd, (nfds_t)n, 1000);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			warnx("poll: %s", strerror(errno));
			return EXIT_PEER_OTHER;
		}
		for (i = 0; i < n_ls; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLERR)))
				continue;
			if (ls[i].type == SOCK_STREAM)
				tcp_accept(&ls[i], log, conns);
			else
				udp_echo(&ls[i], log);
		}
		for (i = 0; i < nc; i++)
			if (pfd[n_ls + i].revents)
				conn_read(&conns[cidx[i]]);
	}
	fclose(log);
	return EXIT_PEER_OK;
}

/* ---- client side ---- */

struct client_opts {
	const char *cgroup;
	const char *netns;
	const char *move_to;
	const char *ready;
	const char *again;	/* udp-connect: once FILE exists, send again */
	enum family_opt family;
	/* dns-query, dns-raw and resolve only */
	bool tcp;
	bool udp_connect;
	bool ttl;			/* dns-query: each record's TTL too */
	const char *resolv_conf;
	const char *connect_port;
};

/* Options the older commands do not take. */
static bool dns_opts(const struct client_opts *o)
{
	return o->tcp || o->udp_connect || o->ttl || o->resolv_conf ||
	       o->connect_port;
}

/* Parse leading options; returns the index of the first positional. */
static int parse_client_opts(int argc, char **argv, struct client_opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
		const char *opt = argv[i];

		if (!strcmp(opt, "--")) {
			i++;
			break;
		}
		if (!strcmp(opt, "--tcp")) {
			o->tcp = true;
			continue;
		}
		if (!strcmp(opt, "--udp-connect")) {
			o->udp_connect = true;
			continue;
		}
		if (!strcmp(opt, "--ttl")) {
			o->ttl = true;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		if (!strcmp(opt, "--resolv-conf")) {
			o->resolv_conf = argv[++i];
		} else if (!strcmp(opt, "--connect")) {
			o->connect_port = argv[++i];
		} else if (!strcmp(opt, "--cgroup")) {
			o->cgroup = argv[++i];
		} else if (!strcmp(opt, "--netns")) {
			o->netns = argv[++i];
		} else if (!strcmp(opt, "--move-to")) {
			o->move_to = argv[++i];
		} else if (!strcmp(opt, "--ready")) {
			o->ready = argv[++i];
		} else if (!strcmp(opt, "--again")) {
			o->again = argv[++i];
		} else if (!strcmp(opt, "--family")) {
			const char *f = argv[++i];

			if (!strcmp(f, "4"))
				o->family = FAM_4;
			else if (!strcmp(f, "6"))
				o->family = FAM_6;
			else if (!strcmp(f, "mapped"))
				o->family = FAM_MAPPED;
			else
				return -1;
		} else {
			return -1;
		}
	}
	return i;
}

/* Join the cgroup, then the netns: the socket is created after both. */
static int enter_context(const struct client_opts *o)
{
	int err;

	if (o->cgroup) {
		err = join_cgroup(o->cgroup);
		if (err)
			return err;
	}
	if (o->netns) {
		err = enter_netns(o->netns);
		if (err)
			return err;
	}
	return 0;
}

static int target(const char *host, const char *port_text,
		  enum family_opt fam, struct peer_addr *a)
{
	unsigned short port;
	int err;

	if (parse_port(port_text, &port)) {
		warnx("bad port %s", port_text);
		return -EINVAL;
	}
	err = make_addr(host, port, fam, a);
	if (err)
		warnx("bad address %s for this --family", host);
	return err;
}

/*
 * Wait for the echo of PING on fd until the deadline. Errors here were not
 * judged by a sock_addr program, so they never read as EPERM.
 */
static int wait_echo(int fd, long long deadline)
{
	char buf[PEER_LINE_BYTES];
	size_t got = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ret = poll(&p, 1, ms_left(deadline));
		ssize_t n;

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return report_other(errno);
		if (ret == 0)
			return report_word("TIMEOUT", EXIT_PEER_OTHER);
		n = recv(fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return report_other(errno);
		}
		if (n == 0)
			return report_word("ERR EOF", EXIT_PEER_OTHER);
		got += (size_t)n;
		if (got >= strlen(PING) || got == sizeof(buf)) {
			if (got == strlen(PING) && !memcmp(buf, PING, got))
				return report_word("OK", EXIT_PEER_OK);
			return report_other(EBADMSG);
		}
	}
}

static int client_tcp(int fd, const struct peer_addr *a, int fastopen)
{
	long long deadline = now_ms() + CLIENT_WAIT_MS;
	socklen_t elen = sizeof(int);
	int soerr = 0;

	if (fastopen) {
		struct timeval tv = { CLIENT_WAIT_MS / 1000, 0 };

		/* A blocking sendto() waits for the handshake: bound it. */
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
			return report_other(errno);
		/* Judged at pre_connect; data rides on the SYN (or follows). */
		if (sendto(fd, PING, strlen(PING), MSG_FASTOPEN | MSG_NOSIGNAL,
			   (const struct sockaddr *)&a->ss, a->len) < 0 &&
		    errno != EINPROGRESS)
			return report_judged(errno);
		return wait_echo(fd, deadline + CLIENT_WAIT_MS);
	}

	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS)
		return report_judged(errno);

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int ret = poll(&p, 1, ms_left(deadline));

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return report_other(errno);
		if (ret == 0)
			return report_word("TIMEOUT", EXIT_PEER_OTHER);
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen))
		return report_other(errno);
	if (soerr)
		return report_other(soerr);
	if (send(fd, PING, strlen(PING), MSG_NOSIGNAL) < 0)
		return report_other(errno);
	return wait_echo(fd, now_ms() + CLIENT_WAIT_MS);
}

/*
 * Connected UDP, twice on one socket: the first exchange, then (after
 * FILE appears, within CLIENT_WAIT_MS * 5) the second; a line for each.
 */
static int udp_again(int fd, const char *file)
{
	long long deadline = now_ms() + 5 * CLIENT_WAIT_MS;
	int ret = wait_echo(fd, now_ms() + CLIENT_WAIT_MS);

	fflush(stdout);
	if (ret != EXIT_PEER_OK)
		return ret;
	while (access(file, F_OK)) {
		if (now_ms() > deadline)
			return report_word("TIMEOUT", EXIT_PEER_OTHER);
		usleep(10000);
	}
	if (send(fd, PING, strlen(PING), 0) < 0)
		return report_judged(errno);
	return wait_echo(fd, now_ms() + CLIENT_WAIT_MS);
}

static int cmd_client(int argc, char **argv)
{
	struct client_opts o;
	struct peer_addr a;
	const char *mode;
	int first, fd, type, err, one = 0;

	first = parse_client_opts(argc, argv, &o);
	if (first < 0 || argc - first != 3 || o.ready || dns_opts(&o))
		return usage_word();
	mode = argv[first];
	if (o.again && strcmp(mode, "udp-connect"))
		return usage_word();
	if (strcmp(mode, "tcp") && strcmp(mode, "tcp-fastopen") &&
	    strcmp(mode, "udp") && strcmp(mode, "udp-connect"))
		return usage_word();
	type = !strncmp(mode, "tcp", 3) ? SOCK_STREAM : SOCK_DGRAM;

	err = target(argv[first + 1], argv[first + 2], o.family, &a);
	if (err)
		return report_other(-err);
	err = enter_context(&o);
	if (err)
		return report_other(-err);
	if (check_dest(&a.ss))
		return report_word("ERR REFUSED", EXIT_PEER_OTHER);

	fd = socket(a.ss.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report_other(errno);
	if (o.family == FAM_MAPPED &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))
		return report_other(errno);
	if (type == SOCK_STREAM && !strcmp(mode, "tcp") &&
	    fcntl(fd, F_SETFL, O_NONBLOCK))
		return report_other(errno);

	/* The socket stays judged by the cgroup it was created in. */
	if (o.move_to) {
		err = join_cgroup(o.move_to);
		if (err)
			return report_other(-err);
	}

	if (type == SOCK_STREAM)
		return client_tcp(fd, &a, !strcmp(mode, "tcp-fastopen"));

	if (!strcmp(mode, "udp-connect")) {
		if (connect(fd, (const struct sockaddr *)&a.ss, a.len))
			return report_judged(errno);
		/* Connected UDP: send() is not judged again. */
		if (send(fd, PING, strlen(PING), 0) < 0)
			return report_other(errno);
		if (o.again)
			return udp_again(fd, o.again);
	} else if (sendto(fd, PING, strlen(PING), 0,
			  (const struct sockaddr *)&a.ss, a.len) < 0) {
		return report_judged(errno);
	}
	return wait_echo(fd, now_ms() + CLIENT_WAIT_MS);
}

static int cmd_udp_responder(int argc, char **argv)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char buf[PEER_LINE_BYTES];
	struct client_opts o;
	struct peer_addr a;
	struct pollfd p;
	int first, fd, err, one = 1, ret;
	long long deadline;
	ssize_t n;

	first = parse_client_opts(argc, argv, &o);
	if (first < 0 || argc - first != 2 || o.move_to ||
	    o.family != FAM_AUTO || dns_opts(&o))
		return usage_word();
	err = target(argv[first], argv[first + 1], FAM_AUTO, &a);
	if (err)
		return report_other(-err);
	err = enter_context(&o);
	if (err)
		return report_other(-err);

	fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report_other(errno);
	if (a.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a.ss, a.len))
		return report_other(errno);
	if (o.ready && write_file_atomic(o.ready, "ready\n"))
		return report_other(EIO);

	deadline = now_ms() + RESPONDER_WAIT_MS;
	for (;;) {
		p.fd = fd;
		p.events = POLLIN;
		ret = poll(&p, 1, ms_left(deadline));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return report_other(errno);
		if (ret == 0)
			return report_word("TIMEOUT", EXIT_PEER_OTHER);
		break;
	}
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	if (n < 0)
		return report_other(errno);
	if (check_dest(&from))
		return report_word("ERR REFUSED", EXIT_PEER_OTHER);
	if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) < 0)
		return report_judged(errno);
	return report_word("OK", EXIT_PEER_OK);
}

static int cmd_udp_ask(int argc, char **argv)
{
	struct client_opts o;
	struct peer_addr a;
	char buf[PEER_LINE_BYTES];
	long long deadline;
	int first, fd, err;

	first = parse_client_opts(argc, argv, &o);
	if (first < 0 || argc - first != 2 || o.move_to || o.ready ||
	    dns_opts(&o))
		return usage_word();
	err = target(argv[first], argv[first + 1], o.family, &a);
	if (err)
		return report_other(-err);
	err = enter_context(&o);
	if (err)
		return report_other(-err);
	if (check_dest(&a.ss))
		return report_word("ERR REFUSED", EXIT_PEER_OTHER);

	fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report_other(errno);
	if (sendto(fd, PING, strlen(PING), 0, (const struct sockaddr *)&a.ss,
		   a.len) < 0)
		return report_judged(errno);

	deadline = now_ms() + CLIENT_WAIT_MS;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ret = poll(&p, 1, ms_left(deadline));

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return report_other(errno);
		if (ret == 0)
			return report_word("TIMEOUT", EXIT_PEER_OTHER);
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			return report_word("OK", EXIT_PEER_OK);
		if (errno != EAGAIN && errno != EINTR)
			return report_other(errno);
	}
}

/* ---- DNS: dns-query, dns-raw, resolve ---- */

static bool same_sockaddr(const struct sockaddr_storage *ss,
			  const struct peer_addr *a)
{
	if (ss->ss_family != a->ss.ss_family)
		return false;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)ss;
		const struct sockaddr_in *y = (const struct sockaddr_in *)&a->ss;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)ss;
		const struct sockaddr_in6 *y =
			(const struct sockaddr_in6 *)&a->ss;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
	return false;
}

/* 1 readable, 0 deadline passed, -errno. */
static int wait_readable(int fd, long long deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ret = poll(&p, 1, ms_left(deadline));

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		return ret;
	}
}

/* Exactly LEN bytes: 0, -ETIMEDOUT, -ECONNRESET on EOF, or -errno. */
static int read_exact(int fd, uint8_t *buf, size_t len, long long deadline)
{
	size_t got = 0;

	while (got < len) {
		int ret = wait_readable(fd, deadline);
		ssize_t n;

		if (ret < 0)
			return ret;
		if (ret == 0)
			return -ETIMEDOUT;
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

/*
 * A non-blocking TCP connect bounded by DEADLINE. Returns 0, or prints the
 * verdict (EPERM only when connect() itself said so) and returns the exit
 * code.
 */
static int tcp_open(int fd, const struct peer_addr *a, long long deadline,
		    int *code)
{
	socklen_t elen = sizeof(int);
	int soerr = 0;

	if (fcntl(fd, F_SETFL, O_NONBLOCK))
		return *code = report_other(errno), -1;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS)
		return *code = report_judged(errno), -1;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int ret = poll(&p, 1, ms_left(deadline));

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return *code = report_other(errno), -1;
		if (ret == 0)
			return *code = report_word("TIMEOUT",
						   EXIT_PEER_OTHER), -1;
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen))
		return *code = report_other(errno), -1;
	if (soerr)
		return *code = report_other(soerr), -1;
	return 0;
}

/* Print "RCODE [TC] TYPE=RDATA..." for a response. */
static int print_response(const ldns_pkt *r, bool ttl)
{
	const ldns_rr_list *ans = ldns_pkt_answer(r);
	char *rcode = ldns_pkt_rcode2str(ldns_pkt_get_rcode(r));
	size_t i, j, n_ans = ans ? ldns_rr_list_rr_count(ans) : 0;

	printf("%s%s", rcode ? rcode : "RCODE?", ldns_pkt_tc(r) ? " TC" : "");
	free(rcode);
	/* with --ttl, the authority section too ("AUTH:SOA=...") */
	if (ttl && ldns_pkt_authority(r))
		ans = ldns_rr_list_cat_clone(ans, ldns_pkt_authority(r));
	for (i = 0; ans && i < ldns_rr_list_rr_count(ans); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ans, i);
		char *type = ldns_rr_type2str(ldns_rr_get_type(rr));

		printf(" %s%s=", i >= n_ans ? "AUTH:" : "", type ? type : "?");
		free(type);
		for (j = 0; j < ldns_rr_rd_count(rr); j++) {
			char *text = ldns_rdf2str(ldns_rr_rdf(rr, j));
			size_t n = text ? strlen(text) : 0;

			/* TXT strings come quoted: print them bare */
			if (n >= 2 && text[0] == '"' && text[n - 1] == '"')
				printf("%s%.*s", j ? "," : "", (int)n - 2,
				       text + 1);
			else
				printf("%s%s", j ? "," : "", text ? text : "?");
			free(text);
		}
		if (ttl)
			printf("/%u", ldns_rr_ttl(rr));
	}
	if (ans != ldns_pkt_answer(r))
		ldns_rr_list_deep_free((ldns_rr_list *)ans);
	putchar('\n');
	return EXIT_PEER_OK;
}

static int cmd_dns_query(int argc, char **argv)
{
	static uint8_t buf[DNS_MAX_MSG + 2];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char text[PEER_ADDR_TEXT_LEN];
	struct client_opts o;
	struct peer_addr a;
	ldns_pkt *q = NULL, *r = NULL;
	ldns_rr_type type;
	uint8_t *wire = NULL;
	size_t wlen = 0, rlen = 0;
	long long deadline;
	int first, fd, err, code = EXIT_PEER_OTHER;

	first = parse_client_opts(argc, argv, &o);
	if (first < 0 || argc - first != 4 || o.move_to || o.ready ||
	    o.resolv_conf || o.connect_port || (o.tcp && o.udp_connect))
		return usage_word();
	err = target(argv[first], argv[first + 1], o.family, &a);
	if (err)
		return report_other(-err);
	type = ldns_get_rr_type_by_name(argv[first + 3]);
	if (!type) {
		warnx("unknown record type %s", argv[first + 3]);
		return report_other(EINVAL);
	}
	if (ldns_pkt_query_new_frm_str(&q, argv[first + 2], type,
				       LDNS_RR_CLASS_IN, LDNS_RD) !=
	    LDNS_STATUS_OK) {
		warnx("cannot build a query for %s", argv[first + 2]);
		return report_other(EINVAL);
	}
	ldns_pkt_set_random_id(q);
	if (ldns_pkt2wire(&wire, q, &wlen) != LDNS_STATUS_OK ||
	    wlen > DNS_MAX_MSG) {
		warnx("cannot encode the query");
		return report_other(EINVAL);
	}

	err = enter_context(&o);
	if (err)
		return report_other(-err);
	if (check_dest(&a.ss))
		return report_word("ERR REFUSED", EXIT_PEER_OTHER);
	fd = socket(a.ss.ss_family,
		    (o.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report_other(errno);
	deadline = now_ms() + DNS_WAIT_MS;

	if (o.tcp) {
		uint8_t len[2];

		if (tcp_open(fd, &a, deadline, &code))
			goto out;
		/* the connection must look like one to ADDR PORT */
		if (getpeername(fd, (struct sockaddr *)&from, &flen))
			return report_other(errno);
		if (!same_sockaddr(&from, &a)) {
			format_addr((struct sockaddr *)&from, text,
				    sizeof(text));
			printf("ERR FROM %s\n", text);
			goto out;
		}
		buf[0] = (uint8_t)(wlen >> 8);
		buf[1] = (uint8_t)wlen;
		memcpy(buf + 2, wire, wlen);
		if (send(fd, buf, wlen + 2, MSG_NOSIGNAL) != (ssize_t)wlen + 2) {
			code = report_other(errno);
			goto out;
		}
		err = read_exact(fd, len, 2, deadline);
		if (!err) {
			rlen = (size_t)len[0] << 8 | len[1];
			err = read_exact(fd, buf, rlen, deadline);
		}
		if (err == -ETIMEDOUT) {
			code = report_word("TIMEOUT", EXIT_PEER_OTHER);
			goto out;
		}
		if (err == -ECONNRESET && !rlen) {
			code = report_word("ERR EOF", EXIT_PEER_OTHER);
			goto out;
		}
		if (err) {
			code = report_other(-err);
			goto out;
		}
	} else {
		ssize_t n;

		if (o.udp_connect) {
			if (connect(fd, (const struct sockaddr *)&a.ss,
				    a.len)) {
				code = report_judged(errno);
				goto out;
			}
			n = send(fd, wire, wlen, 0);
		} else {
			n = sendto(fd, wire, wlen, 0,
				   (const struct sockaddr *)&a.ss, a.len);
		}
		if (n < 0) {
			/* only sendto on an unconnected socket is judged */
			code = o.udp_connect ? report_other(errno) :
					       report_judged(errno);
			goto out;
		}
		err = wait_readable(fd, deadline);
		if (err == 0) {
			code = report_word("TIMEOUT", EXIT_PEER_OTHER);
			goto out;
		}
		n = err < 0 ? -1 : recvfrom(fd, buf, sizeof(buf), 0,
					    (struct sockaddr *)&from, &flen);
		if (n < 0) {
			code = report_other(err < 0 ? -err : errno);
			goto out;
		}
		rlen = (size_t)n;
		if (!same_sockaddr(&from, &a)) {
			format_addr((struct sockaddr *)&from, text,
				    sizeof(text));
			printf("ERR FROM %s\n", text);
			goto out;
		}
	}

	if (ldns_wire2pkt(&r, buf, rlen) != LDNS_STATUS_OK) {
		code = report_word("ERR EBADMSG", EXIT_PEER_OTHER);
		goto out;
	}
	if (ldns_pkt_id(r) != ldns_pkt_id(q) || !ldns_pkt_qr(r)) {
		code = report_word("ERR BADID", EXIT_PEER_OTHER);
		goto out;
	}
	code = print_response(r, o.ttl);
out:
	close(fd);
	ldns_pkt_free(q);
	ldns_pkt_free(r);
	free(wire);
	return code;
}

static int parse_hex(const char *hex, uint8_t *out, size_t max, size_t *n)
{
	size_t len = strlen(hex), i;

	if (len % 2 || len / 2 > max)
		return -EINVAL;
	for (i = 0; i < len; i += 2) {
		char byte[3] = { hex[i], hex[i + 1], 0 };

		if (!isxdigit((unsigned char)byte[0]) ||
		    !isxdigit((unsigned char)byte[1]))
			return -EINVAL;
		out[i / 2] = (uint8_t)strtoul(byte, NULL, 16);
	}
	*n = len / 2;
	return 0;
}

static int cmd_dns_raw(int argc, char **argv)
{
	static uint8_t msg[4096], buf[DNS_MAX_MSG];
	struct client_opts o;
	struct peer_addr a;
	size_t mlen = 0;
	long long deadline;
	ssize_t n;
	int first, fd, err, code = EXIT_PEER_OTHER;

	first = parse_client_opts(argc, argv, &o);
	if (first < 0 || argc - first != 3 || o.move_to || o.ready ||
	    o.resolv_conf || o.connect_port || o.udp_connect)
		return usage_word();
	err = target(argv[first], argv[first + 1], o.family, &a);
	if (err)
		return report_other(-err);
	if (parse_hex(argv[first + 2], msg, sizeof(msg), &mlen) || !mlen) {
		warnx("bad hex payload");
		return report_other(EINVAL);
	}
	err = enter_context(&o);
	if (err)
		return report_other(-err);
	if (check_dest(&a.ss))
		return report_word("ERR REFUSED", EXIT_PEER_OTHER);
	fd = socket(a.ss.ss_family,
		    (o.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return report_other(errno);
	deadline = now_ms() + CLIENT_WAIT_MS;
	if (o.tcp) {
		if (tcp_open(fd, &a, deadline, &code))
			goto out;
		if (send(fd, msg, mlen, MSG_NOSIGNAL) != (ssize_t)mlen) {
			code = report_other(errno);
			goto out;
		}
	} else if (sendto(fd, msg, mlen, 0, (const struct sockaddr *)&a.ss,
			  a.len) < 0) {
		code = report_judged(errno);
		goto out;
	}
	err = wait_readable(fd, now_ms() + RAW_WAIT_MS);
	if (err < 0) {
		code = report_other(-err);
		goto out;
	}
	if (err == 0) {
		code = report_word("NOREPLY", EXIT_PEER_OK);
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && errno == ECONNRESET && o.tcp)
		n = 0;
	if (n < 0) {
		code = report_other(errno);
		goto out;
	}
	if (n == 0) {
		code = report_word("EOF", EXIT_PEER_OK);
		goto out;
	}
	printf("REPLY %zd\n", n);
	code = EXIT_PEER_OK;
out:
	close(fd);
	return code;
}

/* A TCP client to A from this process, quietly: its verdict word. */
static const char *tcp_verdict(const struct peer_addr *a)
{
	static char word[64];
	long long deadline = now_ms() + CLIENT_WAIT_MS;
	socklen_t elen = sizeof(int);
	char buf[PEER_LINE_BYTES];
	size_t got = 0;
	int fd, soerr = 0;

	if (check_dest(&a->ss))
		return "ERR REFUSED";
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		goto err;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS) {
		if (errno == EPERM) {
			close(fd);
			return "EPERM";
		}
		goto err;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int ret = poll(&p, 1, ms_left(deadline));

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			goto err;
		if (ret == 0)
			goto timeout;
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen))
		goto err;
	if (soerr) {
		errno = soerr;
		goto err;
	}
	if (send(fd, PING, strlen(PING), MSG_NOSIGNAL) < 0)
		goto err;
	deadline = now_ms() + CLIENT_WAIT_MS;
	while (got < strlen(PING)) {
		int ret = wait_readable(fd, deadline);
		ssize_t n;

		if (ret < 0) {
			errno = -ret;
			goto err;
		}
		if (ret == 0)
			goto timeout;
		n = recv(fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			goto err;
		if (n == 0) {
			close(fd);
			return "ERR EOF";
		}
		got += (size_t)n;
	}
	close(fd);
	return got == strlen(PING) && !memcmp(buf, PING, got) ? "OK" :
							      "ERR EBADMSG";
timeout:
	close(fd);
	return "TIMEOUT";
err:
	snprintf(word, sizeof(word), "ERR %s", errno_name(errno));
	if (fd >= 0)
		close(fd);
	return word;
}

static const char *eai_name(int e)
{
	static char buf[32];

	switch (e) {
	case EAI_AGAIN: return "EAI_AGAIN";
	case EAI_NONAME: return "EAI_NONAME";
	case EAI_FAIL: return "EAI_FAIL";
	case EAI_NODATA: return "EAI_NODATA";
	case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
	case EAI_FAMILY: return "EAI_FAMILY";
	case EAI_SERVICE: return "EAI_SERVICE";
	case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
	case EAI_MEMORY: return "EAI_MEMORY";
	case EAI_SYSTEM: return "EAI_SYSTEM";
	case EAI_BADFLAGS: return "EAI_BADFLAGS";
	case EAI_OVERFLOW: return "EAI_OVERFLOW";
	default:
		snprintf(buf, sizeof(buf), "EAI_%d", e);
		return buf;
	}
}

/*
 * FILE over /etc/resolv.conf in a mount namespace of our own; then every
 * nameserver it names must be one the tests may reach.
 */
static int private_resolv_conf(const char *file)
{
	char line[512], ns[128];
	int servers = 0;
	FILE *f;

	if (unshare(CLONE_NEWNS)) {
		warnx("unshare(CLONE_NEWNS): %s", strerror(errno));
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		warnx("making / private: %s", strerror(errno));
		return -1;
	}
	if (mount(file, "/etc/resolv.conf", NULL, MS_BIND, NULL)) {
		warnx("bind-mounting %s over /etc/resolv.conf: %s", file,
		      strerror(errno));
		return -1;
	}
	f = fopen("/etc/resolv.conf", "re");
	if (!f) {
		warnx("/etc/resolv.conf: %s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		struct peer_addr a;

		if (sscanf(line, " nameserver %127s", ns) != 1)
			continue;
		if (make_addr(ns, 53, FAM_AUTO, &a) || check_dest(&a.ss)) {
			warnx("nameserver %s: not one the tests may ask", ns);
			fclose(f);
			return -1;
		}
		servers++;
	}
	fclose(f);
	if (!servers) {
		warnx("%s names no nameserver", file);
		return -1;
	}
	return 0;
}

static int cmd_resolve(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char line[RESOLVE_LINE_BYTES], seen[RESOLVE_LINE_BYTES];
	size_t used = 0;
	unsigned short port = 0;
	struct client_opts o;
	int first, err;

	first = parse_client_opts(argc, argv, &o);
	if (first < 0 || argc - first != 1 || o.move_to || o.ready ||
	    !o.resolv_conf || o.tcp || o.udp_connect ||
	    o.family == FAM_MAPPED)
		return usage_word();
	if (o.connect_port && parse_port(o.connect_port, &port)) {
		warnx("bad port %s", o.connect_port);
		return report_other(EINVAL);
	}
	hints.ai_family = o.family == FAM_4 ? AF_INET :
			  o.family == FAM_6 ? AF_INET6 : AF_UNSPEC;
	err = enter_context(&o);
	if (err)
		return report_other(-err);
	if (private_resolv_conf(o.resolv_conf))
		return report_word("ERR REFUSED", EXIT_PEER_OTHER);

	err = getaddrinfo(argv[first], NULL, &hints, &res);
	if (err) {
		printf("ERR %s\n", eai_name(err));
		return EXIT_PEER_OTHER;
	}
	used = (size_t)snprintf(line, sizeof(line), "OK");
	seen[0] = ' ';
	seen[1] = '\0';
	for (ai = res; ai; ai = ai->ai_next) {
		char ip[INET6_ADDRSTRLEN], key[INET6_ADDRSTRLEN + 2];
		const void *src;

		if (ai->ai_family == AF_INET)
			src = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			src = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		else
			continue;
		inet_ntop(ai->ai_family, src, ip, sizeof(ip));
		snprintf(key, sizeof(key), " %s ", ip);
		if (strstr(seen, key))
			continue;
		if (strlen(seen) + strlen(key) < sizeof(seen))
			strcat(seen, key + 1);
		if (used < sizeof(line))
			used += (size_t)snprintf(line + used,
						 sizeof(line) - used, " %s",
						 ip);
		if (o.connect_port && used < sizeof(line)) {
			struct peer_addr a;

			if (make_addr(ip, port, FAM_AUTO, &a))
				continue;
			used += (size_t)snprintf(line + used,
						 sizeof(line) - used, "=%s",
						 tcp_verdict(&a));
		}
	}
	freeaddrinfo(res);
	puts(line);
	return EXIT_PEER_OK;
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	/* Let each command see its own name as argv[0]. */
	argc--;
	argv++;
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc, argv);
	if (!strcmp(cmd, "client"))
		return cmd_client(argc, argv);
	if (!strcmp(cmd, "udp-responder"))
		return cmd_udp_responder(argc, argv);
	if (!strcmp(cmd, "udp-ask"))
		return cmd_udp_ask(argc, argv);
	if (!strcmp(cmd, "dns-query"))
		return cmd_dns_query(argc, argv);
	if (!strcmp(cmd, "dns-raw"))
		return cmd_dns_raw(argc, argv);
	if (!strcmp(cmd, "resolve"))
		return cmd_resolve(argc, argv);
	return usage();
}
