// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-escape: the hostile escape suite's workload. Run inside an enforced
 * cgroup (tests/escape/run.sh does that: `moat-bpf run`, as root with
 * Docker's default capabilities and as an unprivileged uid, and under
 * `attach`), it tries every technique it knows to reach the blocked hosts
 * of the tests' world network namespace and prints one line each:
 *
 *   TECHNIQUE name: blocked (how) | escaped (how) | n/a (why)
 *   CONTROL name: ok (how) | FAIL (why)       allowed traffic must work
 *   NOTE name: text                           informational, never gating
 *
 * Usage: moat-escape [--group netns|host|names] [--only NAME[,NAME]...] [--list]
 *                    [--probe] [--mode run|attach] [--ll ADDR%IF] [--host-port N]
 *
 * --group netns (default): the techniques for the client netns of
 * tools/testnet.sh (PREFIX-client; hosts below). --group names: the name
 * check's paths (client netns, policy esc-names; see that section). --group host: only
 * loopback techniques for the host netns (--host-port: a port where the
 * runner's server listens on 127.0.0.1 and [::1]); nothing else is sent
 * from the host netns. --ll: the world veth's IPv6 link-local address with
 * the client's interface as scope. --mode attach: a technique that only
 * `moat-bpf run` (seccomp, read-only cgroupfs, its mount namespace) or the
 * container runtime (no CAP_NET_RAW) defends is reported as "n/a in attach
 * mode (documented limit: ...)" when it gets through.
 *
 * Judging. "blocked" says why: EPERM at the syscall a cgroup hook judges,
 * seccomp, a missing capability, a read-only mount, the resolver's answer.
 * A TCP connect that was not refused at the syscall and got no answer is
 * reported as blocked only provisionally ("counter-checked"): the runner
 * counts every packet that reaches a blocked host (nftables in the world
 * netns) per technique and turns any technique with packets into an
 * escape. Non-IP families (AF_PACKET, AF_XDP, AF_VSOCK, ...) are judged by
 * socket() alone: nothing is ever sent on them, above all never on vsock.
 *
 * Network rule: only the test hosts (198.51.100.0/24, 203.0.113.0/24,
 * 2001:db8::/32, the test veths' link-local addresses) and loopback.
 *
 * Each technique runs in a child process of its own (unshare, cgroup moves
 * and seccomp kills stay there), with a time limit. Exit status: 0 when
 * nothing escaped and every control passed, 1 otherwise, 2 usage.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/icmp6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <linux/seg6.h>
#include <linux/time_types.h>

/* tools/testnet.sh */
#define A4		"198.51.100.7"		/* allowed by the suite's policy */
#define A6		"2001:db8:1::7"
#define B4		"198.51.100.8"		/* blocked */
#define C4		"203.0.113.9"		/* blocked, another network */
#define B6		"2001:db8:1::8"		/* blocked */
#define DNS4		"198.51.100.53"		/* the upstream (dnsmasq) */
#define DNS6		"2001:db8:1::53"
#define BCAST4		"198.18.0.3"		/* the veth /30's broadcast */
#define TPORT		80			/* echo servers: tcp and udp */
#define UPORT		8080
#define DNS_PORT	53

#define WAIT_MS		2000		/* connect, echo */
#define DNS_WAIT_MS	4000		/* the resolver waits 2 s upstream */
#define TECH_TIMEOUT_S	30
#define HOW_LEN		900

#ifndef AF_XDP
#define AF_XDP		44
#endif
#ifndef AF_VSOCK
#define AF_VSOCK	40
#endif
#ifndef SOCK_PACKET
#define SOCK_PACKET	10
#endif
#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP	132
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open	434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd	438
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

enum verdict { V_BLOCKED, V_ESCAPED, V_NA, V_OK, V_FAIL, V_NOTE };

struct result {
	enum verdict v;
	char how[HOW_LEN];
};

/* ---- options and global facts ---- */

static const char *opt_group = "netns";
static const char *opt_only;
static bool opt_attach;
static const char *opt_ll;
static int opt_host_port;
static pid_t outer_parent;	/* whoever started us: outside the cgroup */

static void set(struct result *r, enum verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set(struct result *r, enum verdict v, const char *fmt, ...)
{
	va_list ap;

	r->v = v;
	va_start(ap, fmt);
	vsnprintf(r->how, sizeof(r->how), fmt, ap);
	va_end(ap);
}

static const char *en(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

/* The effective capability set and the seccomp mode, for saying why. */
static bool has_cap(int cap)
{
	char line[256];
	unsigned long long eff = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return eff & (1ULL << cap);
}

static bool seccomp_on(void)
{
	char line[256];
	int mode = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode == 2;
}

/* ---- addresses ---- */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[96];
};

static struct addr mk(const char *ip, int port)
{
	struct addr a;
	char buf[96], *pct;

	memset(&a, 0, sizeof(a));
	snprintf(buf, sizeof(buf), "%s", ip);
	if (strchr(buf, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if ((pct = strchr(buf, '%'))) {
			*pct = 0;
			s6->sin6_scope_id = if_nametoindex(pct + 1);
		}
		if (inet_pton(AF_INET6, buf, &s6->sin6_addr) != 1) {
			fprintf(stderr, "moat-escape: bad address %s\n", ip);
			exit(2);
		}
		a.len = sizeof(*s6);
		snprintf(a.text, sizeof(a.text), "[%s]:%d", ip, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, buf, &s4->sin_addr) != 1) {
			fprintf(stderr, "moat-escape: bad address %s\n", ip);
			exit(2);
		}
		a.len = sizeof(*s4);
		snprintf(a.text, sizeof(a.text), "%s:%d", ip, port);
	}
	return a;
}

#define SA(a) ((struct sockaddr *)&(a)->ss)

static int sock(int family, int type, int proto)
{
	return socket(family, type | SOCK_CLOEXEC, proto);
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	return n;
}

/*
 * Judge a connect() toward a blocked destination: EPERM at the syscall is
 * the hook. Anything else is an escape, except silence, which the runner's
 * packet counter decides (a SYN may have left, or been dropped by a
 * backstop; only the world can tell).
 */
static void judge_connect(struct result *r, int fd, const struct addr *a,
			  const char *hook, const char *what)
{
	socklen_t l = sizeof(int);
	int e = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (!connect(fd, SA(a), a->len)) {
		set(r, V_ESCAPED, "%sconnected to %s", what, a->text);
		return;
	}
	if (errno == EPERM) {
		set(r, V_BLOCKED, "%sEPERM at connect() to %s: %s", what, a->text, hook);
		return;
	}
	if (errno != EINPROGRESS) {
		set(r, V_ESCAPED, "%sconnect() to %s failed with %s, not EPERM at the hook",
		    what, a->text, en(errno));
		return;
	}
	if (wait_fd(fd, POLLOUT, WAIT_MS) == 0) {
		set(r, V_BLOCKED, "%sconnect() to %s not refused at the syscall; no answer "
		    "in %d ms (counter-checked: the runner fails this if a packet arrived)",
		    what, a->text, WAIT_MS);
		return;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
	if (!e)
		set(r, V_ESCAPED, "%sconnected to %s", what, a->text);
	else if (e == ECONNREFUSED)
		set(r, V_ESCAPED, "%sRST from %s: the SYN reached it", what, a->text);
	else
		set(r, V_ESCAPED, "%sconnect() to %s: %s after the SYN left", what,
		    a->text, en(e));
}

static void tcp_to(struct result *r, const struct addr *a, int family, int proto,
		   const char *hook)
{
	int fd = sock(family, SOCK_STREAM, proto);

	if (fd < 0) {
		set(r, V_ESCAPED, "socket(): %s (cannot test)", en(errno));
		return;
	}
	judge_connect(r, fd, a, hook, "");
	close(fd);
}

/* A datagram accepted by the kernel toward a blocked host has left. */
static void judge_send(struct result *r, ssize_t n, const struct addr *a,
		       const char *hook, const char *what)
{
	if (n >= 0)
		set(r, V_ESCAPED, "%sdatagram to %s sent (%zd bytes)", what, a->text, n);
	else if (errno == EPERM)
		set(r, V_BLOCKED, "%sEPERM at send to %s: %s", what, a->text, hook);
	else
		set(r, V_ESCAPED, "%ssend to %s failed with %s, not EPERM at the hook",
		    what, a->text, en(errno));
}

/*
 * A setup step of a technique failed (errno): EPERM or EACCES is a defence
 * doing its work (WHY says which); anything else means the technique never
 * got to what it tests, which must not read as blocked.
 */
static void setup_refused(struct result *r, const char *step, const char *why)
{
	if (errno == EPERM || errno == EACCES || errno == EROFS)
		set(r, V_BLOCKED, "%s: %s%s", step, en(errno), why);
	else
		set(r, V_ESCAPED, "%s: %s, not a refusal (cannot test)", step, en(errno));
}

static void udp_sendto(struct result *r, const struct addr *a, int family,
		       const char *hook)
{
	int fd = sock(family, SOCK_DGRAM, 0);
	ssize_t n;

	if (fd < 0) {
		set(r, V_ESCAPED, "socket(): %s (cannot test)", en(errno));
		return;
	}
	n = sendto(fd, "escape\n", 7, 0, SA(a), a->len);
	judge_send(r, n, a, hook, "unconnected sendto(): ");
	close(fd);
}

/* An echo round trip to an allowed host: the controls. */
static bool echo_tcp(const struct addr *a, char *why, size_t wl)
{
	int fd = sock(a->ss.ss_family, SOCK_STREAM, 0);
	char buf[64];
	ssize_t n;

	if (fd < 0 || connect(fd, SA(a), a->len)) {
		snprintf(why, wl, "connect %s: %s", a->text, en(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (send(fd, "ping\n", 5, MSG_NOSIGNAL) != 5 || wait_fd(fd, POLLIN, WAIT_MS) != 1 ||
	    (n = recv(fd, buf, sizeof(buf), 0)) != 5 || memcmp(buf, "ping\n", 5)) {
		snprintf(why, wl, "no echo from %s", a->text);
		close(fd);
		return false;
	}
	close(fd);
	snprintf(why, wl, "tcp echo from %s", a->text);
	return true;
}

static bool echo_udp(const struct addr *a, char *why, size_t wl)
{
	int fd = sock(a->ss.ss_family, SOCK_DGRAM, 0);
	char buf[64];
	ssize_t n;

	if (fd < 0 || sendto(fd, "ping\n", 5, 0, SA(a), a->len) != 5) {
		snprintf(why, wl, "sendto %s: %s", a->text, en(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (wait_fd(fd, POLLIN, WAIT_MS) != 1 || (n = recv(fd, buf, sizeof(buf), 0)) != 5) {
		snprintf(why, wl, "no echo from %s", a->text);
		close(fd);
		return false;
	}
	close(fd);
	snprintf(why, wl, "udp echo from %s", a->text);
	return true;
}

/* ---- DNS, by hand: the malformed and smuggling queries are the point ---- */

#define DNS_T_A		1
#define DNS_T_TXT	16
#define DNS_T_SOA	6
#define DNS_T_OPT	41

struct dnsb {
	uint8_t b[512];
	size_t n;
};

static void put8(struct dnsb *d, uint8_t v) { d->b[d->n++] = v; }
static void put16(struct dnsb *d, uint16_t v) { put8(d, v >> 8); put8(d, v & 0xff); }
static void put32(struct dnsb *d, uint32_t v) { put16(d, v >> 16); put16(d, v & 0xffff); }
static void putmem(struct dnsb *d, const void *p, size_t l)
{
	memcpy(d->b + d->n, p, l);
	d->n += l;
}

/* LABELS: "allowed.test" (dots separate labels) */
static void put_name(struct dnsb *d, const char *name)
{
	const char *p = name;

	while (*p) {
		size_t l = strcspn(p, ".");

		put8(d, l);
		putmem(d, p, l);
		p += l;
		if (*p)
			p++;
	}
	put8(d, 0);
}

static void dns_header(struct dnsb *d, uint16_t id, int opcode, int qd, int an,
		       int ns, int ar)
{
	d->n = 0;
	put16(d, id);
	put16(d, (opcode & 0xf) << 11 | 0x0100);	/* RD */
	put16(d, qd);
	put16(d, an);
	put16(d, ns);
	put16(d, ar);
}

static void dns_simple(struct dnsb *d, uint16_t id, const char *name, int type)
{
	dns_header(d, id, 0, 1, 0, 0, 0);
	put_name(d, name);
	put16(d, type);
	put16(d, 1);
}

struct dns_reply {
	int rcode;		/* -1: none */
	int ancount;
	bool echo;		/* the bytes we sent came back: an echo server */
	bool leaked;		/* the upstream's TXT "leaked" is in it */
	bool has_a;
	size_t len;
};

static void dns_read_reply(const struct dnsb *q, const uint8_t *b, size_t n,
			   struct dns_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->len = n;
	rep->rcode = -1;
	if (n == q->n && !memcmp(b, q->b, n)) {
		rep->echo = true;
		return;
	}
	if (n < 12)
		return;
	rep->rcode = b[3] & 0xf;
	rep->ancount = b[6] << 8 | b[7];
	rep->leaked = memmem(b, n, "leaked", 6) != NULL;
	/* an A answer for allowed.test carries 198.51.100.7 */
	rep->has_a = rep->ancount && memmem(b, n, "\xc6\x33\x64\x07", 4) != NULL;
}

static const char *rcode_name(int rc)
{
	static const char *names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
				       "NOTIMP", "REFUSED" };

	if (rc < 0)
		return "none";
	return rc < 6 ? names[rc] : "other";
}

/* One UDP exchange; returns 0 with a reply, or -errno (ETIMEDOUT). */
static int dns_udp(const struct addr *srv, const struct dnsb *q, bool do_connect,
		   struct dns_reply *rep)
{
	uint8_t buf[4096];
	int fd = sock(srv->ss.ss_family, SOCK_DGRAM, 0), e;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (do_connect) {
		if (connect(fd, SA(srv), srv->len) || send(fd, q->b, q->n, 0) < 0)
			goto err;
	} else if (sendto(fd, q->b, q->n, 0, SA(srv), srv->len) < 0) {
		goto err;
	}
	if (wait_fd(fd, POLLIN, DNS_WAIT_MS) != 1) {
		close(fd);
		return -ETIMEDOUT;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		goto err;
	dns_read_reply(q, buf, n, rep);
	close(fd);
	return 0;
err:
	e = errno;
	close(fd);
	return -e;
}

static int read_n(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k;

		if (wait_fd(fd, POLLIN, DNS_WAIT_MS) != 1)
			return -ETIMEDOUT;
		k = recv(fd, p + got, n - got, 0);
		if (k <= 0)
			return k < 0 ? -errno : -ECONNRESET;
		got += k;
	}
	return 0;
}

/*
 * NQ queries on one TCP connection, all written before any answer is read
 * (pipelining). rep[i].rcode stays -1 for an unanswered one. Returns 0, or
 * -errno of the connect.
 */
static int dns_tcp(const struct addr *srv, const struct dnsb *q, int nq,
		   struct dns_reply *rep)
{
	uint8_t out[2048], buf[4096];
	size_t on = 0;
	int fd = sock(srv->ss.ss_family, SOCK_STREAM, 0), e;

	for (int i = 0; i < nq; i++) {
		memset(&rep[i], 0, sizeof(rep[i]));
		rep[i].rcode = -1;
	}
	if (fd < 0)
		return -errno;
	if (connect(fd, SA(srv), srv->len)) {
		e = errno;
		close(fd);
		return -e;
	}
	for (int i = 0; i < nq; i++) {
		out[on++] = q[i].n >> 8;
		out[on++] = q[i].n & 0xff;
		memcpy(out + on, q[i].b, q[i].n);
		on += q[i].n;
	}
	if (send(fd, out, on, MSG_NOSIGNAL) != (ssize_t)on) {
		e = errno;
		close(fd);
		return -e;
	}
	for (int i = 0; i < nq; i++) {
		uint8_t l[2];
		size_t n;

		if (read_n(fd, l, 2))
			break;
		n = (size_t)l[0] << 8 | l[1];
		if (n > sizeof(buf) || read_n(fd, buf, n))
			break;
		/* match the answer to its query by id */
		for (int j = 0; j < nq; j++)
			if (n >= 2 && !memcmp(buf, q[j].b, 2))
				dns_read_reply(&q[j], buf, n, &rep[j]);
	}
	close(fd);
	return 0;
}

/* Judge one exfiltration attempt by what came back. */
static void judge_dns(struct result *r, int err, const struct dns_reply *rep,
		      const char *what, bool silence_is_drop)
{
	if (err == -EPERM) {
		set(r, V_BLOCKED, "%s: EPERM at the syscall (no resolver redirect)", what);
		return;
	}
	if (err == -ETIMEDOUT || (!err && rep->rcode < 0 && !rep->echo)) {
		if (silence_is_drop)
			set(r, V_BLOCKED, "%s: no answer: the resolver dropped it "
			    "(upstream log and marker counter checked by the runner)", what);
		else
			set(r, V_ESCAPED, "%s: no answer: not refused by the resolver", what);
		return;
	}
	if (err) {
		set(r, V_ESCAPED, "%s: %s, not refused by the resolver", what, en(-err));
		return;
	}
	if (rep->echo)
		set(r, V_ESCAPED, "%s: the query came back verbatim: it reached the "
		    "echo server at the address named", what);
	else if (rep->leaked || (rep->rcode == 0 && rep->ancount))
		set(r, V_ESCAPED, "%s: answered %s with %d answers%s: the upstream "
		    "resolved it", what, rcode_name(rep->rcode), rep->ancount,
		    rep->leaked ? " (TXT \"leaked\")" : "");
	else
		set(r, V_BLOCKED, "%s: the resolver answered %s (upstream log checked "
		    "by the runner)", what, rcode_name(rep->rcode));
}

#define EXFIL_NAME	"secret.exfil.blocked.test"

/* ---- io_uring, with raw syscalls (no liburing) ---- */

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r)
{
	struct io_uring_params p;
	size_t sl, cl;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, 8, &p);
	if (r->fd < 0)
		return -errno;
	sl = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	cl = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sl = cl = sl > cl ? sl : cl;
	sq = mmap(NULL, sl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		  IORING_OFF_SQ_RING);
	if (sq == MAP_FAILED)
		return -errno;
	cq = sq;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		cq = mmap(NULL, cl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			  r->fd, IORING_OFF_CQ_RING);
		if (cq == MAP_FAILED)
			return -errno;
	}
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

/* Submit N prepared sqes and wait for N completions; res[user_data]. */
static int ring_run(struct ring *r, const struct io_uring_sqe *sqes, int n, int *res)
{
	unsigned tail = *r->sq_tail, head;
	int got = 0;

	for (int i = 0; i < n; i++) {
		unsigned idx = (tail + i) & *r->sq_mask;

		r->sqes[idx] = sqes[i];
		r->sq_array[idx] = idx;
	}
	__atomic_store_n(r->sq_tail, tail + n, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, n, n, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	head = *r->cq_head;
	while (got < n && head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
		struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];

		if (c->user_data < (unsigned)n)
			res[c->user_data] = c->res;
		head++;
		got++;
	}
	__atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
	return got == n ? 0 : -EIO;
}

/* kernel.io_uring_disabled: 0 allowed, 1 only for io_uring_group, 2 never */
static int uring_sysctl(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/*
 * An EPERM from io_uring_setup is seccomp's only where the sysctl lets
 * io_uring be set up at all; otherwise the technique tested nothing and is
 * n/a, which the runner refuses (the io_uring hooks would go untested).
 */
static bool uring_denied(struct result *r, int err)
{
	int sysctl = uring_sysctl();

	if (!err)
		return false;
	if (err == -EPERM && sysctl == 0 && seccomp_on())
		set(r, V_BLOCKED, "io_uring_setup(): EPERM (seccomp filter of moat-bpf run)");
	else if (err == -EPERM && sysctl != 0)
		set(r, V_NA, "io_uring disabled by kernel.io_uring_disabled=%d", sysctl);
	else if (err == -ENOSYS)
		set(r, V_NA, "io_uring not in this kernel: io_uring_setup() ENOSYS");
	else
		set(r, V_ESCAPED, "io_uring_setup(): %s with no filter and io_uring "
		    "enabled (cannot test)", en(-err));
	return true;
}

/* ---- i386 compat syscalls (int $0x80) ---- */

#define I386_CLOSE	6
#define I386_SOCKET	359
#define I386_CONNECT	362

static long sys32(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory", "cc", "r8", "r9", "r10", "r11");
	return (int)ret;
}

/* ---- mechanisms a machine may not offer ---- */

/*
 * A technique that needs something the machine lacks is n/a, never an
 * escape and never blocked. Whether the machine offers it is asked once,
 * by the runner, in an unfiltered and unenforced process (moat-escape
 * --probe), and handed to every run as MOAT_ESC_MECH_<NAME>=present or
 * absent:<why>. The variable also forces the answer, for testing the other
 * branch on a machine that cannot take it for real. Without the variable
 * the probe runs here, in a child: under seccomp its SIGSYS says nothing
 * about the machine, so it counts as present (the technique then runs and
 * is judged as usual).
 */
enum mech_id { M_NONE, M_I386, M_SCTP, M_ADDRFORM, M__N };

struct mech {
	const char *name;		/* --list and PROBE lines */
	const char *env;
	bool (*probe)(char *why, size_t len);
};

/* Machines of one kind differ here: some raise a general protection fault
 * on int $0x80 (the gate is not installed although CONFIG_IA32_EMULATION=y). */
static bool probe_i386(char *why, size_t len)
{
	int st = 0;
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(why, len, "fork: %s", en(errno));
		return true;	/* unknown: let the technique run and be judged */
	}
	if (pid == 0) {
		/* getpid is 20 on i386 */
		_exit(sys32(20, 0, 0, 0) == getpid() ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		snprintf(why, len, "int $0x80 getpid returned the caller's pid");
		return true;
	}
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) {
		snprintf(why, len, "int $0x80 killed by SIGSYS: a seccomp filter "
			 "answered, the machine was not asked");
		return true;
	}
	if (WIFSIGNALED(st))
		snprintf(why, len, "compat syscalls absent: int $0x80 getpid died of "
			 "signal %d (SIGSEGV: the machine refuses the compat entry)",
			 WTERMSIG(st));
	else
		snprintf(why, len, "compat syscalls absent: int $0x80 getpid did not "
			 "return the caller's pid");
	return false;
}

static bool probe_sctp(char *why, size_t len)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP);

	if (fd >= 0) {
		close(fd);
		snprintf(why, len, "socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) works");
		return true;
	}
	if (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT) {
		snprintf(why, len, "SCTP is not in this kernel: socket(IPPROTO_SCTP) %s",
			 en(errno));
		return false;
	}
	snprintf(why, len, "socket(IPPROTO_SCTP): %s", en(errno));
	return true;
}

/* IPV6_ADDRFORM was deprecated in 5.x; kernels that dropped it answer
 * ENOPROTOOPT for any socket, connected or not. */
static bool probe_addrform(char *why, size_t len)
{
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), v4 = AF_INET;
	bool ok;

	if (fd < 0) {
		snprintf(why, len, "socket(AF_INET6): %s", en(errno));
		return true;
	}
	ok = !setsockopt(fd, IPPROTO_IPV6, IPV6_ADDRFORM, &v4, sizeof(v4)) ||
	     errno != ENOPROTOOPT;
	snprintf(why, len, ok ? "IPV6_ADDRFORM is known" :
		 "this kernel has no IPV6_ADDRFORM: setsockopt() ENOPROTOOPT");
	close(fd);
	return ok;
}

static const struct mech MECH[M__N] = {
	[M_I386] = { "i386", "MOAT_ESC_MECH_I386", probe_i386 },
	[M_SCTP] = { "sctp", "MOAT_ESC_MECH_SCTP", probe_sctp },
	[M_ADDRFORM] = { "addrform", "MOAT_ESC_MECH_ADDRFORM", probe_addrform },
};

/* Does the machine offer M? false fills WHY (for the n/a). Cached. */
static bool mech_present(enum mech_id m, char *why, size_t len)
{
	static int known[M__N];		/* 0 unknown, 1 present, 2 absent */
	static char reason[M__N][256];
	const char *v;

	if (m == M_NONE)
		return true;
	if (!known[m]) {
		v = getenv(MECH[m].env);
		if (v && !strcmp(v, "present")) {
			known[m] = 1;
		} else if (v && !strncmp(v, "absent:", 7)) {
			known[m] = 2;
			snprintf(reason[m], sizeof(reason[m]), "%s", v + 7);
		} else {
			known[m] = MECH[m].probe(reason[m], sizeof(reason[m])) ? 1 : 2;
		}
	}
	snprintf(why, len, "%s", reason[m]);
	return known[m] == 1;
}

/* moat-escape --probe: one line per mechanism, for the runner's environment. */
static int probe_all(void)
{
	for (int m = M_NONE + 1; m < M__N; m++) {
		char why[256];
		bool ok = MECH[m].probe(why, sizeof(why));

		printf("PROBE %s %s %s%s\n", MECH[m].name, MECH[m].env,
		       ok ? "present" : "absent:", ok ? "" : why);
	}
	return 0;
}

/* ---- cgroups ---- */

/* The cgroup2 mount: its mount point and its root within the hierarchy. */
static bool cg2_mount(char *mnt, size_t ml, char *root, size_t rl)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char r[PATH_MAX], m[PATH_MAX], *dash = strstr(line, " - ");

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2)
			continue;
		snprintf(mnt, ml, "%s", m);
		snprintf(root, rl, "%s", r);
		found = true;
	}
	fclose(f);
	return found;
}

static void own_cgroup(char *buf, size_t len)
{
	char line[PATH_MAX + 8];
	FILE *f = fopen("/proc/self/cgroup", "re");

	snprintf(buf, len, "?");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%.*s", (int)len - 1, line + 3);
		}
	fclose(f);
}

/* ---- the techniques ---- */

struct ctx {
	struct addr b4t, c4t, b6t, m4t;		/* blocked, TCP port */
	struct addr b4u, c4u, b6u, m4u;		/* blocked, UDP port */
	struct addr a4t, a6t, a4u, a6u;		/* allowed */
};
static struct ctx X;

#define H_C4	"cgroup/connect4"
#define H_C6	"cgroup/connect6"
#define H_S4	"cgroup/sendmsg4"
#define H_S6	"cgroup/sendmsg6"

static void t_tcp4(struct result *r) { tcp_to(r, &X.b4t, AF_INET, 0, H_C4); }
static void t_tcp4_other(struct result *r) { tcp_to(r, &X.c4t, AF_INET, 0, H_C4); }
static void t_tcp6(struct result *r) { tcp_to(r, &X.b6t, AF_INET6, 0, H_C6); }
static void t_tcp6_mapped(struct result *r)
{
	tcp_to(r, &X.m4t, AF_INET6, 0, H_C6 " (v4-mapped decoded)");
}

/* IPv4 spelled as IPv6 in the other ways: IPv4-compatible ::a.b.c.d and
 * the NAT64 well-known prefix 64:ff9b::/96 (neither is v4-mapped). */
static void t_tcp6_v4_spellings(struct result *r)
{
	struct addr c = mk("::" B4, TPORT), n = mk("64:ff9b::" B4, TPORT);
	struct result r2;

	tcp_to(r, &c, AF_INET6, 0, H_C6);
	tcp_to(&r2, &n, AF_INET6, 0, H_C6);
	if (r2.v != V_BLOCKED || r->v != V_BLOCKED)
		*r = r->v != V_BLOCKED ? *r : r2;
	else
		snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
			 "; %s", r2.how);
}

static void t_udp4(struct result *r) { udp_sendto(r, &X.b4u, AF_INET, H_S4); }
static void t_udp6(struct result *r) { udp_sendto(r, &X.b6u, AF_INET6, H_S6); }
static void t_udp6_mapped(struct result *r)
{
	udp_sendto(r, &X.m4u, AF_INET6, H_S4 " (AF_INET6 socket, v4-mapped)");
}

static void t_udp_connect(struct result *r)
{
	int fd = sock(AF_INET, SOCK_DGRAM, 0);

	if (connect(fd, SA(&X.b4u), X.b4u.len) == 0) {
		judge_send(r, send(fd, "x", 1, 0), &X.b4u, "", "connect() succeeded; ");
		if (r->v == V_BLOCKED)
			r->v = V_ESCAPED;	/* the connect itself was let through */
	} else if (errno == EPERM) {
		set(r, V_BLOCKED, "EPERM at connect() to %s: " H_C4, X.b4u.text);
	} else {
		set(r, V_ESCAPED, "connect(): %s, not EPERM", en(errno));
	}
	close(fd);
}

static void t_udp6_mapped_connect(struct result *r)
{
	int fd = sock(AF_INET6, SOCK_DGRAM, 0);

	if (connect(fd, SA(&X.m4u), X.m4u.len) == 0) {
		judge_send(r, send(fd, "x", 1, 0), &X.m4u, "", "connect() succeeded; ");
		r->v = V_ESCAPED;
	} else if (errno == EPERM) {
		set(r, V_BLOCKED, "EPERM at connect() to %s: " H_C6 " (v4-mapped decoded)",
		    X.m4u.text);
	} else {
		set(r, V_ESCAPED, "connect(): %s, not EPERM", en(errno));
	}
	close(fd);
}

/* Connected to an allowed host, then sendto() naming a blocked one. */
static void connected_then_sendto(struct result *r, int family, const struct addr *ok,
				  const struct addr *bad, const char *hook)
{
	int fd = sock(family, SOCK_DGRAM, 0);

	if (connect(fd, SA(ok), ok->len)) {
		set(r, V_ESCAPED, "connect() to allowed %s failed: %s (cannot test)",
		    ok->text, en(errno));
	} else {
		judge_send(r, sendto(fd, "x", 1, 0, SA(bad), bad->len), bad, hook,
			   "connected to the allowed host, sendto() another: ");
	}
	close(fd);
}

static void t_udp_connected_sendto(struct result *r)
{
	connected_then_sendto(r, AF_INET, &X.a4u, &X.b4u, H_S4);
}

static void t_udp6_connected_sendto(struct result *r)
{
	connected_then_sendto(r, AF_INET6, &X.a6u, &X.b6u, H_S6);
}

/* IPV6_ADDRFORM: a v6 socket connected to a v4-mapped allowed host turns into
 * an AF_INET socket; then sendto() a blocked IPv4 host. */
static void t_udp_addrform(struct result *r)
{
	int fd = sock(AF_INET6, SOCK_DGRAM, 0), v4 = AF_INET;
	struct addr ok = mk("::ffff:" A4, UPORT);

	if (connect(fd, SA(&ok), ok.len)) {
		set(r, V_ESCAPED, "connect() to allowed %s failed: %s (cannot test)",
		    ok.text, en(errno));
	} else if (setsockopt(fd, IPPROTO_IPV6, IPV6_ADDRFORM, &v4, sizeof(v4))) {
		if (errno == EPERM)
			set(r, V_BLOCKED, "IPV6_ADDRFORM: EPERM: cgroup/setsockopt");
		else if (errno == ENOPROTOOPT)
			set(r, V_NA, "IPV6_ADDRFORM: ENOPROTOOPT: not in this kernel");
		else
			set(r, V_ESCAPED, "IPV6_ADDRFORM: %s (cannot test)", en(errno));
	} else {
		judge_send(r, sendto(fd, "x", 1, 0, SA(&X.b4u), X.b4u.len), &X.b4u, H_S4,
			   "IPV6_ADDRFORM to AF_INET, then sendto(): ");
	}
	close(fd);
}

static void t_sendmmsg(struct result *r)
{
	int fd = sock(AF_INET, SOCK_DGRAM, 0);
	const struct addr *dst[] = { &X.a4u, &X.b4u, &X.c4u };
	struct mmsghdr m[3];
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	int n;

	memset(m, 0, sizeof(m));
	for (int i = 0; i < 3; i++) {
		m[i].msg_hdr.msg_name = (void *)&dst[i]->ss;
		m[i].msg_hdr.msg_namelen = dst[i]->len;
		m[i].msg_hdr.msg_iov = &iov;
		m[i].msg_hdr.msg_iovlen = 1;
	}
	/* allowed, blocked, blocked: one sent, then the hook stops it */
	n = sendmmsg(fd, m, 3, 0);
	if (n == 1) {
		n = sendmmsg(fd, m + 1, 2, 0);
		if (n < 0 && errno == EPERM)
			set(r, V_BLOCKED, "sendmmsg() of [allowed, %s, %s] sent 1; "
			    "the rest EPERM: " H_S4 " per message", X.b4u.text, X.c4u.text);
		else
			set(r, V_ESCAPED, "sendmmsg() of [%s, %s]: %d (%s)", X.b4u.text,
			    X.c4u.text, n, n < 0 ? en(errno) : "sent");
	} else {
		set(r, n > 1 ? V_ESCAPED : V_ESCAPED, "sendmmsg() of [allowed, %s, %s] "
		    "returned %d%s%s (want 1)", X.b4u.text, X.c4u.text, n,
		    n < 0 ? ": " : "", n < 0 ? en(errno) : "");
	}
	close(fd);
}

static void fastopen(struct result *r, const struct addr *a, const char *hook)
{
	int fd = sock(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ssize_t n = sendto(fd, "GET /\r\n", 7, MSG_FASTOPEN, SA(a), a->len);

	if (n >= 0)
		set(r, V_ESCAPED, "sendto(MSG_FASTOPEN) to %s sent %zd bytes", a->text, n);
	else if (errno == EPERM)
		set(r, V_BLOCKED, "EPERM at sendto(MSG_FASTOPEN) to %s: %s (pre_connect)",
		    a->text, hook);
	else if (errno == EOPNOTSUPP)
		set(r, V_NA, "TCP Fast Open client disabled (net.ipv4.tcp_fastopen)");
	else if (errno == EINPROGRESS)
		set(r, V_ESCAPED, "sendto(MSG_FASTOPEN) to %s: EINPROGRESS: the SYN left",
		    a->text);
	else
		set(r, V_ESCAPED, "sendto(MSG_FASTOPEN) to %s: %s, not EPERM", a->text,
		    en(errno));
	close(fd);
}

static void t_tfo4(struct result *r) { fastopen(r, &X.b4t, H_C4); }
static void t_tfo6(struct result *r) { fastopen(r, &X.b6t, H_C6); }

static void t_tfo_connect(struct result *r)
{
	int fd = sock(AF_INET, SOCK_STREAM, 0), one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)))
		set(r, V_NA, "TCP_FASTOPEN_CONNECT: %s", en(errno));
	else
		judge_connect(r, fd, &X.b4t, H_C4, "TCP_FASTOPEN_CONNECT: ");
	close(fd);
}

static void mptcp(struct result *r, const struct addr *a, const char *hook)
{
	int fd = sock(a->ss.ss_family, SOCK_STREAM, IPPROTO_MPTCP);

	if (fd < 0) {
		if (errno == EPROTONOSUPPORT || errno == ENOPROTOOPT || errno == EINVAL)
			set(r, V_NA, "MPTCP unavailable: socket() %s", en(errno));
		else
			set(r, V_ESCAPED, "socket(IPPROTO_MPTCP): %s (cannot test)", en(errno));
		return;
	}
	judge_connect(r, fd, a, hook, "MPTCP: ");
	close(fd);
}

static void t_mptcp4(struct result *r) { mptcp(r, &X.b4t, H_C4 " (the subflow's pre_connect)"); }
static void t_mptcp6(struct result *r) { mptcp(r, &X.b6t, H_C6 " (the subflow's pre_connect)"); }

static void t_uring_connect(struct result *r)
{
	struct __kernel_timespec ts = { .tv_sec = WAIT_MS / 1000 };
	struct io_uring_sqe s[2];
	struct ring ring;
	int res[2] = { 1, 1 }, fd, err = ring_init(&ring);

	if (uring_denied(r, err))
		return;
	fd = sock(AF_INET, SOCK_STREAM, 0);
	memset(s, 0, sizeof(s));
	s[0].opcode = IORING_OP_CONNECT;
	s[0].fd = fd;
	s[0].addr = (unsigned long)&X.b4t.ss;
	s[0].off = X.b4t.len;
	s[0].flags = IOSQE_IO_LINK;
	s[0].user_data = 0;
	s[1].opcode = IORING_OP_LINK_TIMEOUT;
	s[1].fd = -1;
	s[1].addr = (unsigned long)&ts;
	s[1].len = 1;
	s[1].user_data = 1;
	err = ring_run(&ring, s, 2, res);
	if (err)
		set(r, V_ESCAPED, "io_uring_enter(): %s (cannot test)", en(-err));
	else if (res[0] == -EPERM)
		set(r, V_BLOCKED, "IORING_OP_CONNECT to %s completed with EPERM: " H_C4,
		    X.b4t.text);
	else if (res[0] == -ECANCELED)
		set(r, V_BLOCKED, "IORING_OP_CONNECT to %s not refused; no answer in %d ms "
		    "(counter-checked)", X.b4t.text, WAIT_MS);
	else
		set(r, V_ESCAPED, "IORING_OP_CONNECT to %s completed with %s", X.b4t.text,
		    res[0] ? en(-res[0]) : "success");
	close(fd);
}

static void t_uring_sendmsg(struct result *r)
{
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr mh = { .msg_name = &X.b4u.ss, .msg_namelen = X.b4u.len,
			     .msg_iov = &iov, .msg_iovlen = 1 };
	struct io_uring_sqe s;
	struct ring ring;
	int res = 1, fd, err = ring_init(&ring);

	if (uring_denied(r, err))
		return;
	fd = sock(AF_INET, SOCK_DGRAM, 0);
	memset(&s, 0, sizeof(s));
	s.opcode = IORING_OP_SENDMSG;
	s.fd = fd;
	s.addr = (unsigned long)&mh;
	s.len = 1;
	err = ring_run(&ring, &s, 1, &res);
	if (err)
		set(r, V_ESCAPED, "io_uring_enter(): %s (cannot test)", en(-err));
	else if (res == -EPERM)
		set(r, V_BLOCKED, "IORING_OP_SENDMSG to %s completed with EPERM: " H_S4,
		    X.b4u.text);
	else
		set(r, V_ESCAPED, "IORING_OP_SENDMSG to %s completed with %d%s%s", X.b4u.text,
		    res, res < 0 ? " " : "", res < 0 ? en(-res) : "");
	close(fd);
}

/*
 * IORING_OP_SOCKET: its descriptor or -errno; false when the ring could
 * not be set up or run (R then says why: seccomp's EPERM, or cannot test).
 */
static bool uring_socket(struct result *r, int family, int type, int proto,
			 int *ret)
{
	struct io_uring_sqe s;
	struct ring ring;
	int err = ring_init(&ring);

	if (uring_denied(r, err))
		return false;
	memset(&s, 0, sizeof(s));
	s.opcode = IORING_OP_SOCKET;
	s.fd = family;
	s.off = type;
	s.len = proto;
	err = ring_run(&ring, &s, 1, ret);
	if (err)
		set(r, V_ESCAPED, "io_uring_enter(): %s (cannot test)", en(-err));
	return !err;
}

/* io_uring's socket op does not pass the seccomp filter on socket(). */
static void t_uring_socket_vsock(struct result *r)
{
	int res = 1;

	if (!uring_socket(r, AF_VSOCK, SOCK_STREAM, 0, &res))
		return;
	if (res >= 0)
		set(r, V_ESCAPED, "IORING_OP_SOCKET(AF_VSOCK) created a socket (closed "
		    "unused: nothing sent)");
	else if (res == -EINVAL || res == -EOPNOTSUPP)
		set(r, V_NA, "IORING_OP_SOCKET unsupported: %s", en(-res));
	else if (res == -EPERM || res == -EACCES)
		set(r, V_BLOCKED, "IORING_OP_SOCKET(AF_VSOCK): %s", en(-res));
	else
		set(r, V_ESCAPED, "IORING_OP_SOCKET(AF_VSOCK): %s, not a refusal (cannot "
		    "test)", en(-res));
	if (res >= 0)
		close(res);
}

/* socket() only, for families with no inet hook. Never sends. */
static void socket_only(struct result *r, int family, int type, int proto,
			const char *label, bool needs_net_raw, bool seccomp_family)
{
	int fd = sock(family, type, proto);

	if (fd >= 0) {
		close(fd);
		set(r, V_ESCAPED, "socket(%s) succeeded (closed unused: nothing sent)", label);
		return;
	}
	if (errno != EPERM && errno != EACCES) {
		/* no family here (the runner refuses such an n/a unless a
		 * probe says so), or an error that refuses nothing */
		if (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT ||
		    errno == ESOCKTNOSUPPORT)
			set(r, V_NA, "socket(%s): %s: not in this kernel", label, en(errno));
		else
			set(r, V_ESCAPED, "socket(%s): %s, not a refusal (cannot test)",
			    label, en(errno));
		return;
	}
	if (seccomp_family && seccomp_on() && (!needs_net_raw || has_cap(CAP_NET_RAW)))
		set(r, V_BLOCKED, "socket(%s): %s: seccomp filter of moat-bpf run%s", label,
		    en(errno), needs_net_raw ? " (CAP_NET_RAW held)" : "");
	else if (needs_net_raw && !has_cap(CAP_NET_RAW))
		set(r, V_BLOCKED, "socket(%s): %s: no CAP_NET_RAW%s", label, en(errno),
		    seccomp_family && seccomp_on() ? " (the seccomp rule is proven "
		    "with the capability held: mode run-allcaps)" : "");
	else
		set(r, V_BLOCKED, "socket(%s): %s", label, en(errno));
}

static void t_af_packet(struct result *r)
{
	socket_only(r, AF_PACKET, SOCK_RAW, htons(0x0003), "AF_PACKET, SOCK_RAW", true, true);
	if (r->v != V_ESCAPED)
		socket_only(r, AF_PACKET, SOCK_DGRAM, htons(0x0003),
			    "AF_PACKET, SOCK_DGRAM", true, true);
}

/* The obsolete (PF_INET, SOCK_PACKET) makes a packet socket: the family
 * the seccomp filter sees is AF_INET. */
static void t_sock_packet(struct result *r)
{
	socket_only(r, AF_INET, SOCK_PACKET, htons(0x0003), "AF_INET, SOCK_PACKET",
		    true, false);
}

static void t_af_xdp(struct result *r)
{
	socket_only(r, AF_XDP, SOCK_RAW, 0, "AF_XDP", true, true);
}

static void t_af_vsock(struct result *r)
{
	static const int types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET };
	static const char *names[] = { "AF_VSOCK, SOCK_STREAM", "AF_VSOCK, SOCK_DGRAM",
				       "AF_VSOCK, SOCK_SEQPACKET" };

	for (int i = 0; i < 3; i++) {
		socket_only(r, AF_VSOCK, types[i], 0, names[i], false, true);
		if (r->v == V_ESCAPED)
			return;
	}
}

/* Every other family: a socket of one that can leave the host is an escape. */
static void t_other_families(struct result *r)
{
	static const int types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET };
	char got[600] = "", local[300] = "";

	for (int fam = 1; fam < 64; fam++) {
		bool is_local = fam == AF_UNIX || fam == AF_NETLINK || fam == 38 /* AF_ALG */;

		if (fam == AF_INET || fam == AF_INET6 || fam == AF_PACKET ||
		    fam == AF_VSOCK || fam == AF_XDP)
			continue;	/* hooked, or techniques of their own */
		for (int t = 0; t < 4; t++) {
			int fd = sock(fam, types[t], 0);
			char one[24];

			if (fd < 0)
				continue;
			close(fd);
			snprintf(one, sizeof(one), " %d/%d", fam, types[t]);
			strncat(is_local ? local : got, one,
				(is_local ? sizeof(local) - strlen(local) :
					    sizeof(got) - strlen(got)) - 1);
		}
	}
	if (got[0])
		set(r, V_ESCAPED, "socket() succeeded for family/type%s (closed unused)", got);
	else
		set(r, V_BLOCKED, "no family but host-local ones (unix, netlink, alg:%s) "
		    "gives a socket", local[0] ? local : " none");
}

static void raw(struct result *r, int family, int proto, const struct addr *dst,
		const char *label)
{
	int fd = sock(family, SOCK_RAW, proto);

	if (fd < 0) {
		if (errno == EPERM && !has_cap(CAP_NET_RAW))
			set(r, V_BLOCKED, "socket(%s): EPERM: no CAP_NET_RAW "
			    "(cgroup/sock_create not reached)", label);
		else if (errno == EPERM)
			set(r, V_BLOCKED, "socket(%s): EPERM with CAP_NET_RAW: "
			    "cgroup/sock_create (sockets: raw: deny)", label);
		else
			set(r, V_BLOCKED, "socket(%s): %s", label, en(errno));
		return;
	}
	/* a UDP-less payload: an ICMP echo request would be as good */
	if (family == AF_INET) {
		struct icmphdr ic = { .type = ICMP_ECHO };

		judge_send(r, sendto(fd, &ic, sizeof(ic), 0, SA(dst), dst->len), dst,
			   "EPERM", "raw socket created; ");
	} else {
		struct icmp6_hdr ic = { .icmp6_type = ICMP6_ECHO_REQUEST };

		judge_send(r, sendto(fd, &ic, sizeof(ic), 0, SA(dst), dst->len), dst,
			   "EPERM", "raw socket created; ");
	}
	r->v = V_ESCAPED;	/* a raw socket in an enforced cgroup is one */
	close(fd);
}

static void t_raw4(struct result *r)
{
	struct addr d = mk(B4, 0);

	raw(r, AF_INET, IPPROTO_ICMP, &d, "AF_INET, SOCK_RAW, IPPROTO_ICMP");
}

static void t_raw6(struct result *r)
{
	struct addr d = mk(B6, 0);

	raw(r, AF_INET6, IPPROTO_ICMPV6, &d, "AF_INET6, SOCK_RAW, IPPROTO_ICMPV6");
}

static void ping(struct result *r, int family, int proto, const struct addr *dst,
		 const char *label)
{
	int fd = sock(family, SOCK_DGRAM, proto);

	if (fd < 0) {
		if (errno == EPERM)
			set(r, V_BLOCKED, "socket(%s): EPERM: cgroup/sock_create "
			    "(sockets: ping: deny)", label);
		else if (errno == EACCES)
			set(r, V_BLOCKED, "socket(%s): EACCES: the gid is outside "
			    "net.ipv4.ping_group_range (cgroup/sock_create not reached)", label);
		else
			set(r, V_BLOCKED, "socket(%s): %s", label, en(errno));
		return;
	}
	if (family == AF_INET) {
		struct icmphdr ic = { .type = ICMP_ECHO };

		judge_send(r, sendto(fd, &ic, sizeof(ic), 0, SA(dst), dst->len), dst,
			   "EPERM", "ping socket created; ");
	} else {
		struct icmp6_hdr ic = { .icmp6_type = ICMP6_ECHO_REQUEST };

		judge_send(r, sendto(fd, &ic, sizeof(ic), 0, SA(dst), dst->len), dst,
			   "EPERM", "ping socket created; ");
	}
	r->v = V_ESCAPED;
	close(fd);
}

static void t_ping4(struct result *r)
{
	struct addr d = mk(B4, 0);

	ping(r, AF_INET, IPPROTO_ICMP, &d, "AF_INET, SOCK_DGRAM, IPPROTO_ICMP");
}

static void t_ping6(struct result *r)
{
	struct addr d = mk(B6, 0);

	ping(r, AF_INET6, IPPROTO_ICMPV6, &d, "AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6");
}

static void t_sctp(struct result *r)
{
	int fd = sock(AF_INET, SOCK_STREAM, IPPROTO_SCTP);

	if (fd < 0 && (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT))
		set(r, V_NA, "SCTP is not in this kernel (socket(AF_INET, SOCK_STREAM, "
		    "IPPROTO_SCTP): %s)", en(errno));
	else if (fd < 0)
		set(r, V_BLOCKED, "socket(IPPROTO_SCTP): %s", en(errno));
	else
		judge_connect(r, fd, &X.b4t, "cgroup/connect4", "SCTP: ");
	if (fd >= 0)
		close(fd);
}

static void t_i386_connect(struct result *r)
{
	struct sockaddr_in *low;
	long fd, rc;

	low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (low == MAP_FAILED) {
		set(r, V_ESCAPED, "mmap(MAP_32BIT): %s (cannot test)", en(errno));
		return;
	}
	memcpy(low, &X.b4t.ss, sizeof(*low));
	/* killed here by SIGSYS under a native-arch-only seccomp filter */
	fd = sys32(I386_SOCKET, AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		/* no hook refuses an AF_INET socket: any failure means the
		 * technique could not be tried (ENOSYS: no compat table) */
		set(r, V_ESCAPED, "compat socket(AF_INET): %s (cannot test)", en(-fd));
		return;
	}
	rc = sys32(I386_CONNECT, fd, (long)low, sizeof(*low));
	if (rc == -EPERM)
		set(r, V_BLOCKED, "compat (int $0x80) connect() to %s: EPERM: " H_C4,
		    X.b4t.text);
	else
		set(r, V_ESCAPED, "compat (int $0x80) connect() to %s: %s", X.b4t.text,
		    rc ? en(-rc) : "connected");
	sys32(I386_CLOSE, fd, 0, 0);
}

static void t_i386_vsock(struct result *r)
{
	long fd = sys32(I386_SOCKET, AF_VSOCK, SOCK_STREAM, 0);

	if (fd >= 0) {
		sys32(I386_CLOSE, fd, 0, 0);
		set(r, V_ESCAPED, "compat (int $0x80) socket(AF_VSOCK) succeeded "
		    "(closed unused: nothing sent)");
	} else if (fd == -EPERM || fd == -EACCES) {
		set(r, V_BLOCKED, "compat socket(AF_VSOCK): %s%s", en(-fd),
		    seccomp_on() ? " (seccomp filter)" : "");
	} else {
		set(r, V_ESCAPED, "compat socket(AF_VSOCK): %s, not a refusal (cannot "
		    "test)", en(-fd));
	}
}

static void t_linklocal(struct result *r)
{
	struct addr t, u;
	struct result r2;

	if (!opt_ll) {
		set(r, V_NA, "no --ll address given");
		return;
	}
	t = mk(opt_ll, TPORT);
	u = mk(opt_ll, UPORT);
	tcp_to(r, &t, AF_INET6, 0, H_C6);
	udp_sendto(&r2, &u, AF_INET6, H_S6);
	if (r2.v == V_ESCAPED || r->v != V_BLOCKED)
		*r = r2.v == V_ESCAPED ? r2 : *r;
	else
		snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
			 "; UDP: %s", r2.how);
}

static void t_broadcast(struct result *r)
{
	int fd = sock(AF_INET, SOCK_DGRAM, 0), one = 1;
	struct addr b = mk(BCAST4, UPORT), all = mk("255.255.255.255", UPORT);
	struct addr mc = mk("224.0.0.251", 5353);
	struct result r2, r3;

	setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	judge_send(r, sendto(fd, "x", 1, 0, SA(&b), b.len), &b, H_S4, "");
	judge_send(&r2, sendto(fd, "x", 1, 0, SA(&all), all.len), &all, H_S4, "");
	judge_send(&r3, sendto(fd, "x", 1, 0, SA(&mc), mc.len), &mc, H_S4, "");
	if (r2.v == V_ESCAPED)
		*r = r2;
	else if (r3.v == V_ESCAPED)
		*r = r3;
	else if (r->v == V_BLOCKED)
		set(r, V_BLOCKED, "EPERM for %s, %s and %s: " H_S4, b.text, all.text, mc.text);
	close(fd);
}

static void t_multicast6(struct result *r)
{
	char ll[64];
	struct addr m;

	snprintf(ll, sizeof(ll), "ff02::1%%%s", "veth0");
	m = mk(ll, UPORT);
	udp_sendto(r, &m, AF_INET6, H_S6);
}

/*
 * IPv4 loose source routing: the hook judges the address passed to the
 * call (an allowed host); the packet's destination is the first hop.
 */
static const uint8_t *lsrr_via(const char *hop, uint8_t opt[8])
{
	struct in_addr a;

	inet_pton(AF_INET, hop, &a);
	opt[0] = IPOPT_LSRR;
	opt[1] = 7;
	opt[2] = 4;
	memcpy(opt + 3, &a, 4);
	opt[7] = IPOPT_END;
	return opt;
}

static void t_lsrr_tcp(struct result *r)
{
	int fd = sock(AF_INET, SOCK_STREAM, 0);
	uint8_t opt[8];

	if (setsockopt(fd, IPPROTO_IP, IP_OPTIONS, lsrr_via(B4, opt), 8)) {
		setup_refused(r, "setsockopt(IP_OPTIONS, LSRR via " B4 ")",
			      errno == EPERM && !has_cap(CAP_NET_RAW) ?
			      " (source routing options need CAP_NET_RAW)" :
			      " (cgroup/setsockopt)");
	} else {
		judge_connect(r, fd, &X.a4t, H_C4, "LSRR via " B4 ", connect() to allowed: ");
		if (r->v == V_ESCAPED)
			snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
				 " (the SYN's destination was the first hop %s)", B4);
	}
	close(fd);
}

static void t_lsrr_udp(struct result *r)
{
	int fd = sock(AF_INET, SOCK_DGRAM, 0);
	uint8_t opt[8];

	if (setsockopt(fd, IPPROTO_IP, IP_OPTIONS, lsrr_via(B4, opt), 8)) {
		setup_refused(r, "setsockopt(IP_OPTIONS, LSRR via " B4 ")",
			      errno == EPERM && !has_cap(CAP_NET_RAW) ?
			      " (source routing options need CAP_NET_RAW)" :
			      " (cgroup/setsockopt)");
	} else {
		ssize_t n = sendto(fd, "x", 1, 0, SA(&X.a4u), X.a4u.len);

		if (n >= 0)
			set(r, V_ESCAPED, "sendto() allowed %s with LSRR via %s accepted: "
			    "the datagram's destination is %s", X.a4u.text, B4, B4);
		else
			set(r, V_BLOCKED, "sendto() allowed %s with LSRR via %s: %s",
			    X.a4u.text, B4, en(errno));
	}
	close(fd);
}

/* The same through a control message, on a socket connected to an allowed
 * host: no sendmsg hook runs for a connected socket at all. */
static void t_lsrr_cmsg(struct result *r)
{
	int fd = sock(AF_INET, SOCK_DGRAM, 0);
	union {
		char buf[CMSG_SPACE(8)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	uint8_t opt[8];
	ssize_t n;

	memset(&u, 0, sizeof(u));
	if (connect(fd, SA(&X.a4u), X.a4u.len)) {
		set(r, V_ESCAPED, "connect() to allowed %s: %s (cannot test)", X.a4u.text,
		    en(errno));
		close(fd);
		return;
	}
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_RETOPTS;
	c->cmsg_len = CMSG_LEN(8);
	memcpy(CMSG_DATA(c), lsrr_via(B4, opt), 8);
	n = sendmsg(fd, &mh, 0);
	if (n >= 0)
		set(r, V_ESCAPED, "sendmsg() on a socket connected to allowed %s with an "
		    "IP_RETOPTS LSRR via %s accepted: the datagram's destination is %s",
		    X.a4u.text, B4, B4);
	else
		set(r, V_BLOCKED, "sendmsg() with IP_RETOPTS LSRR via %s: %s%s", B4, en(errno),
		    errno == EPERM && !has_cap(CAP_NET_RAW) ?
		    " (source routing options need CAP_NET_RAW)" : "");
	close(fd);
}

/* IPv6 segment routing header (type 4): the first segment is the
 * destination of the packet, the hook saw the last. */
static int set_srh(int fd, const char *via, const char *final)
{
	uint8_t buf[8 + 2 * 16];
	struct ipv6_sr_hdr *h = (struct ipv6_sr_hdr *)buf;

	memset(buf, 0, sizeof(buf));
	h->hdrlen = (sizeof(buf) >> 3) - 1;
	h->type = 4;
	h->segments_left = 1;
	h->first_segment = 1;
	inet_pton(AF_INET6, final, &h->segments[0]);
	inet_pton(AF_INET6, via, &h->segments[1]);
	return setsockopt(fd, IPPROTO_IPV6, IPV6_RTHDR, buf, sizeof(buf));
}

static void t_srh_tcp(struct result *r)
{
	int fd = sock(AF_INET6, SOCK_STREAM, 0);

	if (set_srh(fd, B6, A6)) {
		setup_refused(r, "setsockopt(IPV6_RTHDR, SRH via " B6 ")",
			      errno == EPERM && !has_cap(CAP_NET_RAW) ?
			      " (type 4 routing headers need CAP_NET_RAW)" :
			      " (cgroup/setsockopt)");
	} else {
		judge_connect(r, fd, &X.a6t, H_C6, "SRH via " B6 ", connect() to allowed: ");
		if (r->v == V_ESCAPED)
			snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
				 " (the SYN's destination was the first segment %s)", B6);
	}
	close(fd);
}

static void t_srh_udp(struct result *r)
{
	int fd = sock(AF_INET6, SOCK_DGRAM, 0);

	if (set_srh(fd, B6, A6)) {
		setup_refused(r, "setsockopt(IPV6_RTHDR, SRH via " B6 ")",
			      errno == EPERM && !has_cap(CAP_NET_RAW) ?
			      " (type 4 routing headers need CAP_NET_RAW)" :
			      " (cgroup/setsockopt)");
	} else {
		ssize_t n = sendto(fd, "x", 1, 0, SA(&X.a6u), X.a6u.len);

		if (n >= 0)
			set(r, V_ESCAPED, "sendto() allowed %s with an SRH via %s accepted: "
			    "the datagram's destination is %s", X.a6u.text, B6, B6);
		else
			set(r, V_BLOCKED, "sendto() allowed %s with an SRH via %s: %s",
			    X.a6u.text, B6, en(errno));
	}
	close(fd);
}

/*
 * "A UDP socket may reply to a peer it received a datagram from": make a
 * datagram from the blocked host arrive over loopback (a socket bound to
 * the blocked address: IPV6_FREEBIND, unprivileged; IPv4 needs
 * IP_TRANSPARENT, i.e. CAP_NET_RAW), then reply to it.
 */
#define NONLOCAL6 "/proc/sys/net/ipv6/ip_nonlocal_bind"
#define NONLOCAL4 "/proc/sys/net/ipv4/ip_nonlocal_bind"

static bool write_file(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, v, strlen(v)) == (ssize_t)strlen(v);
	close(fd);
	return ok;
}

static void reply_spoof(struct result *r, int family, bool by_sysctl)
{
	bool v6 = family == AF_INET6;
	struct addr lo = mk(v6 ? "::1" : "127.0.0.1", 0), fake = v6 ? X.b6u : X.b4u;
	struct addr any = mk(v6 ? "::" : "0.0.0.0", 0);
	int rx = sock(family, SOCK_DGRAM, 0), tx = sock(family, SOCK_DGRAM, 0), one = 1;
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	char buf[16];
	ssize_t n;

	/* the wildcard: its reply leaves from the veth's address */
	if (bind(rx, SA(&any), any.len) || getsockname(rx, SA(&any), &any.len)) {
		set(r, V_ESCAPED, "bind: %s (cannot test)", en(errno));
		goto out;
	}
	/*
	 * IPv4 refuses a non-local source toward 127.0.0.0/8 (ENETUNREACH):
	 * aim at our own veth address, which is delivered over loopback too.
	 * Its address is the source of a socket connected toward the allowed
	 * host (a UDP connect sends nothing).
	 */
	if (!v6 && by_sysctl) {
		int c = sock(AF_INET, SOCK_DGRAM, 0);
		socklen_t l = lo.len;

		if (c < 0 || connect(c, SA(&X.a4u), X.a4u.len) ||
		    getsockname(c, SA(&lo), &l)) {
			set(r, V_ESCAPED, "finding our own address: %s (cannot test)",
			    en(errno));
			if (c >= 0)
				close(c);
			goto out;
		}
		close(c);
	}
	memcpy(v6 ? (void *)&((struct sockaddr_in6 *)&lo.ss)->sin6_port :
		    (void *)&((struct sockaddr_in *)&lo.ss)->sin_port,
	       v6 ? (void *)&((struct sockaddr_in6 *)&any.ss)->sin6_port :
		    (void *)&((struct sockaddr_in *)&any.ss)->sin_port, 2);
	if (by_sysctl) {
		/*
		 * The netns sysctl instead of a socket option. No workload of
		 * ours may write it (read-only /proc/sys, no CAP_NET_ADMIN), so
		 * the runner sets it for this technique, as a privileged
		 * neighbour could: what is judged is the reply below.
		 */
		char v[4] = "";
		const char *path = v6 ? NONLOCAL6 : NONLOCAL4;
		FILE *f = fopen(path, "re");

		if (f) {
			if (!fgets(v, sizeof(v), f))
				v[0] = 0;
			fclose(f);
		}
		if (v[0] != '1' && !write_file(path, "1\n")) {
			setup_refused(r, v6 ? "writing 1 to " NONLOCAL6 : "writing 1 to "
				      NONLOCAL4, " (the runner should "
				      "have set it: the reply was not tested)");
			r->v = V_ESCAPED;
			goto out;
		}
	} else if (v6 ? setsockopt(tx, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) :
			setsockopt(tx, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one))) {
		setup_refused(r, v6 ? "IPV6_FREEBIND" : "IP_TRANSPARENT", errno != EPERM ? "" :
			      has_cap(CAP_NET_RAW) ? " (cgroup/setsockopt)" :
			      " (no CAP_NET_RAW/CAP_NET_ADMIN)");
		goto out;
	}
	if (bind(tx, SA(&fake), fake.len)) {
		set(r, V_ESCAPED, "bind() to the blocked %s: %s (cannot test)", fake.text,
		    en(errno));
		goto out;
	}
	n = sendto(tx, "spoof", 5, 0, SA(&lo), lo.len);
	if (n < 0) {
		setup_refused(r, "sendto() loopback from the blocked address", "");
		goto out;
	}
	if (wait_fd(rx, POLLIN, WAIT_MS) != 1 ||
	    recvfrom(rx, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) < 0) {
		set(r, V_ESCAPED, "a datagram sourced from %s was not delivered over "
		    "loopback (cannot test)", fake.text);
		goto out;
	}
	n = sendto(rx, "exfil", 5, 0, SA(&fake), fake.len);
	judge_send(r, n, &fake, v6 ? H_S6 : H_S4, by_sysctl ?
		   "set net.ipv6.ip_nonlocal_bind=1 in the netns, got a datagram from "
		   "the blocked host over loopback, then replied: " :
		   "got a datagram from the blocked host over loopback (bound with "
		   "freebind/transparent), then replied: ");
out:
	close(rx);
	close(tx);
}

static void t_reply_spoof6(struct result *r) { reply_spoof(r, AF_INET6, false); }
static void t_reply_spoof4(struct result *r) { reply_spoof(r, AF_INET, false); }
static void t_reply_spoof6_sysctl(struct result *r) { reply_spoof(r, AF_INET6, true); }
static void t_reply_spoof4_sysctl(struct result *r) { reply_spoof(r, AF_INET, true); }

/* Namespaces. */
static void t_unshare_net(struct result *r)
{
	if (unshare(CLONE_NEWNET)) {
		set(r, V_BLOCKED, "unshare(CLONE_NEWNET): %s%s", en(errno),
		    errno == EPERM ? " (no CAP_SYS_ADMIN)" : "");
		return;
	}
	tcp_to(r, &X.b4t, AF_INET, 0, H_C4);
	if (r->v != V_BLOCKED && strstr(r->how, "ENETUNREACH"))
		set(r, V_BLOCKED, "unshare(CLONE_NEWNET) worked: the new netns has no "
		    "route out (ENETUNREACH)");
}

static void t_userns_net(struct result *r)
{
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET)) {
		set(r, V_BLOCKED, "unshare(CLONE_NEWUSER|CLONE_NEWNET): %s", en(errno));
		return;
	}
	tcp_to(r, &X.b4t, AF_INET, 0, H_C4);
	if (r->v != V_BLOCKED && strstr(r->how, "ENETUNREACH"))
		set(r, V_BLOCKED, "a new user+net namespace has no route out "
		    "(connect: ENETUNREACH); its interfaces cannot reach the world");
}

static void t_setns_host(struct result *r)
{
	int fd = open("/proc/1/ns/net", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		setup_refused(r, "open(/proc/1/ns/net)", "");
		return;
	}
	if (setns(fd, CLONE_NEWNET))
		set(r, V_BLOCKED, "setns(/proc/1/ns/net): %s%s", en(errno),
		    errno == EPERM ? " (no CAP_SYS_ADMIN)" : "");
	else
		set(r, V_ESCAPED, "joined pid 1's network namespace (nothing sent from it)");
	close(fd);
}

/* Outside processes: the one that started us runs outside the cgroup. */
static void t_pidfd_getfd(struct result *r)
{
	int pfd = syscall(SYS_pidfd_open, outer_parent, 0);
	int got = 0, last = 0;

	if (pfd < 0) {
		/* pidfd_open checks no permission: a failure means no target */
		set(r, V_ESCAPED, "pidfd_open(%d): %s (cannot test)", outer_parent, en(errno));
		return;
	}
	for (int fd = 0; fd < 64; fd++) {
		int n = syscall(SYS_pidfd_getfd, pfd, fd, 0);

		if (n >= 0) {
			close(n);
			got++;
		} else if (errno != EBADF) {
			last = errno;
		}
	}
	if (!got && last != EPERM && last != EACCES) {
		close(pfd);
		set(r, V_ESCAPED, "pidfd_getfd() on pid %d: %s, not a refusal (cannot test)",
		    outer_parent, last ? en(last) : "no descriptor open");
		return;
	}
	close(pfd);
	if (got)
		set(r, V_ESCAPED, "pidfd_getfd() took %d descriptors from pid %d (outside "
		    "the cgroup)", got, outer_parent);
	else if (ptrace(PTRACE_ATTACH, outer_parent, 0, 0) == 0)
		set(r, V_ESCAPED, "ptrace(PTRACE_ATTACH, %d) succeeded", outer_parent);
	else
		set(r, V_BLOCKED, "pidfd_getfd() on pid %d (outside): %s; PTRACE_ATTACH: %s",
		    outer_parent, en(last), en(errno));
}

/* ---- cgroup escapes ---- */

static bool moved(const char *before, char *now, size_t nl)
{
	own_cgroup(now, nl);
	return strcmp(before, now) != 0;
}

static void t_cgroup_write(struct result *r)
{
	char mnt[PATH_MAX], root[PATH_MAX], p[PATH_MAX + 32], before[PATH_MAX],
		now[PATH_MAX], pid[32];
	int fd, n;

	if (!cg2_mount(mnt, sizeof(mnt), root, sizeof(root))) {
		set(r, V_BLOCKED, "no cgroup2 mount visible");
		return;
	}
	own_cgroup(before, sizeof(before));
	snprintf(p, sizeof(p), "%s/cgroup.procs", mnt);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		set(r, V_BLOCKED, "open(%s, O_WRONLY): %s%s", p, en(errno),
		    errno == EROFS ? " (read-only cgroupfs)" : "");
		return;
	}
	n = snprintf(pid, sizeof(pid), "%d\n", getpid());
	if (write(fd, pid, n) != n)
		set(r, V_BLOCKED, "write(%s): %s", p, en(errno));
	else if (moved(before, now, sizeof(now)))
		set(r, V_ESCAPED, "wrote own pid to %s (mount root %s): moved from %s to %s",
		    p, root, before, now);
	else
		set(r, V_BLOCKED, "write(%s) accepted but the cgroup is still %s", p, now);
	close(fd);
}

/*
 * clone3(CLONE_INTO_CGROUP) with a descriptor of the hierarchy's root: the
 * kernel checks write permission on the destination's cgroup.procs inode,
 * not whether the mount the descriptor came from is read-only.
 */
static void t_cgroup_clone3(struct result *r)
{
	char mnt[PATH_MAX], root[PATH_MAX], before[PATH_MAX];
	struct clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD };
	char msg[HOW_LEN / 2] = "";
	int pfd[2], cfd, st;
	pid_t pid;

	if (!cg2_mount(mnt, sizeof(mnt), root, sizeof(root))) {
		set(r, V_BLOCKED, "no cgroup2 mount visible");
		return;
	}
	own_cgroup(before, sizeof(before));
	cfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0) {
		set(r, V_BLOCKED, "open(%s): %s", mnt, en(errno));
		return;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		set(r, V_ESCAPED, "pipe: %s (cannot test)", en(errno));
		return;
	}
	args.cgroup = cfd;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		set(r, V_BLOCKED, "clone3(CLONE_INTO_CGROUP, %s): %s", mnt, en(errno));
		close(cfd);
		return;
	}
	if (pid == 0) {
		char now[PATH_MAX], out[HOW_LEN / 2];
		struct result cr;

		own_cgroup(now, sizeof(now));
		if (opt_attach) {
			/* moved at all: escaped (the verdict char leads) */
			snprintf(out, sizeof(out), "%cchild is in %.100s (was %.100s)",
				 strcmp(now, before) ? 'E' : 'B', now, before);
		} else {
			/*
			 * Landing in the cgroup namespace's root is landing in
			 * our own cgroup; what counts is the blocked host.
			 */
			tcp_to(&cr, &X.b4t, AF_INET, 0, H_C4);
			snprintf(out, sizeof(out), "%cchild is in %.60s (was %.60s); then %s: %.250s",
				 strcmp(now, before) || cr.v != V_BLOCKED ? 'E' : 'B', now,
				 before, cr.v == V_BLOCKED ? "blocked" : "ESCAPED", cr.how);
		}
		if (write(pfd[1], out, strlen(out)) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], msg, sizeof(msg) - 1) < 0)
		msg[0] = 0;
	waitpid(pid, &st, 0);
	close(pfd[0]);
	close(cfd);
	set(r, msg[0] == 'B' ? V_BLOCKED : V_ESCAPED,
	    "clone3(CLONE_INTO_CGROUP) with an fd of %s (mount root %s, "
	    "mounted read-only: %s): %s", mnt, root,
	    access(mnt, W_OK) && errno == EROFS ? "yes" : "no", msg[0] ? msg + 1 : msg);
}

static void t_cgroup_remount(struct result *r)
{
	char mnt[PATH_MAX], root[PATH_MAX];

	if (!cg2_mount(mnt, sizeof(mnt), root, sizeof(root))) {
		set(r, V_BLOCKED, "no cgroup2 mount visible");
		return;
	}
	if (!mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND, NULL))
		set(r, V_ESCAPED, "remounted %s read-write", mnt);
	else if (!mount("none", "/tmp", "cgroup2", 0, NULL))
		set(r, V_ESCAPED, "mounted a new cgroup2 (remount: %s)", en(errno));
	else
		set(r, V_BLOCKED, "remount %s rw and a new cgroup2 mount: %s%s", mnt,
		    en(errno), errno == EPERM ? " (no CAP_SYS_ADMIN)" : "");
}

/*
 * In a user namespace of our own we hold every capability, over it: try
 * the cgroup moves again from there.
 */
static void t_cgroup_userns(struct result *r)
{
	char mnt[PATH_MAX], root[PATH_MAX], before[PATH_MAX], now[PATH_MAX];
	char p[PATH_MAX + 32], pid[32], rem[64], wr[64], cl[64];
	struct clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD };
	int fd, n, pfd[2], st;
	pid_t child;

	if (!cg2_mount(mnt, sizeof(mnt), root, sizeof(root))) {
		set(r, V_BLOCKED, "no cgroup2 mount visible");
		return;
	}
	own_cgroup(before, sizeof(before));
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS)) {
		set(r, V_BLOCKED, "unshare(CLONE_NEWUSER|CLONE_NEWNS): %s", en(errno));
		return;
	}
	snprintf(rem, sizeof(rem), "remount rw: %s",
		 mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND, NULL) ? en(errno) : "ok");
	snprintf(p, sizeof(p), "%s/cgroup.procs", mnt);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = snprintf(pid, sizeof(pid), "%d\n", getpid());
		snprintf(wr, sizeof(wr), "write cgroup.procs: %s",
			 write(fd, pid, n) == n ? "ok" : en(errno));
		close(fd);
		if (moved(before, now, sizeof(now))) {
			set(r, V_ESCAPED, "in a user namespace (%s): wrote own pid to %s: moved "
			    "from %.100s to %.100s", rem, p, before, now);
			return;
		}
	} else {
		snprintf(wr, sizeof(wr), "open cgroup.procs: %s", en(errno));
	}
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || pipe2(pfd, O_CLOEXEC)) {
		snprintf(cl, sizeof(cl), "open %.30s: %s", mnt, en(errno));
	} else {
		args.cgroup = fd;
		child = syscall(SYS_clone3, &args, sizeof(args));
		if (child == 0) {
			own_cgroup(now, sizeof(now));
			if (write(pfd[1], now, strlen(now)) < 0)
				_exit(1);
			_exit(0);
		}
		close(pfd[1]);
		if (child < 0) {
			snprintf(cl, sizeof(cl), "clone3 into the root: %s", en(errno));
		} else {
			n = read(pfd[0], now, sizeof(now) - 1);
			now[n > 0 ? n : 0] = 0;
			waitpid(child, &st, 0);
			if (strcmp(now, before)) {
				set(r, V_ESCAPED, "in a user namespace (%s): clone3(CLONE_INTO_CGROUP) "
				    "put a child in %.100s (was %.100s)", rem, now, before);
				return;
			}
			snprintf(cl, sizeof(cl), "clone3: child stayed in %.30s", now);
		}
		close(pfd[0]);
	}
	set(r, V_BLOCKED, "in a user namespace of our own: %s; %s; %s (the host's "
	    "cgroup.procs belongs to a uid not mapped there)", rem, wr, cl);
}

/* ---- BPF tamper ---- */

static long bpf_(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static void t_bpf_query(struct result *r)
{
	char mnt[PATH_MAX], root[PATH_MAX];
	union bpf_attr a;
	__u32 ids[16];
	int fd;

	if (!cg2_mount(mnt, sizeof(mnt), root, sizeof(root)) ||
	    (fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		set(r, V_BLOCKED, "no cgroup directory to query");
		return;
	}
	memset(&a, 0, sizeof(a));
	a.query.target_fd = fd;
	a.query.attach_type = BPF_CGROUP_INET4_CONNECT;
	a.query.query_flags = BPF_F_QUERY_EFFECTIVE;
	a.query.prog_ids = (unsigned long)ids;
	a.query.prog_cnt = 16;
	if (bpf_(BPF_PROG_QUERY, &a) == 0)
		set(r, V_ESCAPED, "BPF_PROG_QUERY on %s succeeded (%u programs)", mnt,
		    a.query.prog_cnt);
	else
		set(r, V_BLOCKED, "BPF_PROG_QUERY: %s", en(errno));
	close(fd);
}

static void t_bpf_link_ids(struct result *r)
{
	union bpf_attr a;
	int opened = 0, e;

	memset(&a, 0, sizeof(a));
	if (bpf_(BPF_LINK_GET_NEXT_ID, &a)) {
		e = errno;
		memset(&a, 0, sizeof(a));
		for (__u32 id = 1; id < 200; id++) {
			a.link_id = id;
			int fd = bpf_(BPF_LINK_GET_FD_BY_ID, &a);

			if (fd >= 0) {
				close(fd);
				opened++;
			}
		}
		if (opened)
			set(r, V_ESCAPED, "BPF_LINK_GET_FD_BY_ID opened %d links "
			    "(BPF_LINK_DETACH would follow; not done)", opened);
		else
			set(r, V_BLOCKED, "BPF_LINK_GET_NEXT_ID: %s; BPF_LINK_GET_FD_BY_ID: %s",
			    en(e), en(errno));
		return;
	}
	set(r, V_ESCAPED, "BPF_LINK_GET_NEXT_ID succeeded (link id %u)", a.next_id);
}

/* Walk bpffs: a descriptor of a pinned link or map is enough to detach the
 * link (BPF_LINK_DETACH) or rewrite a policy map. Nothing is changed. */
static int pins_walk(const char *dir, int depth, char *first, size_t fl, int *denied,
		     int *lasterr)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int got = 0;

	if (!d) {
		(*denied)++;
		*lasterr = errno;
		return 0;
	}
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode) && depth < 4) {
			got += pins_walk(p, depth + 1, first, fl, denied, lasterr);
		} else if (S_ISREG(st.st_mode)) {
			union bpf_attr a;
			int fd;

			memset(&a, 0, sizeof(a));
			a.pathname = (unsigned long)p;
			fd = bpf_(BPF_OBJ_GET, &a);
			if (fd >= 0) {
				if (!got && strstr(p, "/moat/"))
					snprintf(first, fl, "%s", p);
				close(fd);
				got++;
			} else {
				(*denied)++;
				*lasterr = errno;
			}
		}
	}
	closedir(d);
	return got;
}

static void t_bpf_obj_get(struct result *r)
{
	char first[PATH_MAX] = "";
	int denied = 0, err = 0, got;
	struct statvfs sv;

	if (statvfs("/sys/fs/bpf", &sv) || access("/sys/fs/bpf/moat", F_OK)) {
		set(r, V_BLOCKED, "bpffs pins not reachable (/sys/fs/bpf/moat: %s)", en(errno));
		return;
	}
	got = pins_walk("/sys/fs/bpf/moat", 0, first, sizeof(first), &denied, &err);
	if (got)
		set(r, V_ESCAPED, "BPF_OBJ_GET opened %d pinned objects of moat-bpf "
		    "(e.g. %s): with one, BPF_LINK_DETACH or a map update removes "
		    "enforcement (not done)", got, first[0] ? first : "?");
	else
		set(r, V_BLOCKED, "bpffs visible but no pin opened (%d refused, %s)", denied,
		    en(err));
}

static void t_bpffs_unlink(struct result *r)
{
	const char *dirs[] = { "/sys/fs/bpf/moat/links", "/sys/fs/bpf/moat/maps",
			       "/sys/fs/bpf/moat" };

	for (int i = 0; i < 3; i++) {
		if (access(dirs[i], F_OK))
			continue;
		if (!faccessat(AT_FDCWD, dirs[i], W_OK | X_OK, AT_EACCESS)) {
			set(r, V_ESCAPED, "%s is writable for us: unlinking a pin (the last "
			    "reference of a link) detaches it (not done)", dirs[i]);
			return;
		}
	}
	if (access("/sys/fs/bpf/moat", F_OK) && errno == ENOENT)
		set(r, V_BLOCKED, "bpffs pins not visible");
	else
		set(r, V_BLOCKED, "pin directories not writable (%s)", en(errno));
}

static void t_bpffs_mount(struct result *r)
{
	char tmp[] = "/tmp/moat-esc-bpf-XXXXXX";

	if (!mkdtemp(tmp)) {
		set(r, V_ESCAPED, "mkdtemp: %s (cannot test)", en(errno));
		return;
	}
	if (!mount("bpf", tmp, "bpf", 0, NULL)) {
		umount2(tmp, MNT_DETACH);
		set(r, V_ESCAPED, "mounted a bpffs (CAP_SYS_ADMIN)");
	} else {
		set(r, V_BLOCKED, "mount(bpf): %s%s", en(errno),
		    errno == EPERM ? " (no CAP_SYS_ADMIN)" : "");
	}
	rmdir(tmp);
}

static void t_control_socket(struct result *r)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX,
				   .sun_path = "/run/moat-bpf/control.sock" };
	const char *req = "{\"op\":\"unregister\",\"cgroup_id\":1}";
	char buf[512];
	int fd = sock(AF_UNIX, SOCK_SEQPACKET, 0);
	ssize_t n;

	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			set(r, V_NA, "no resolver daemon control socket (%s)", en(errno));
		else if (errno == EACCES)
			/* the peer check is what run-root and attach prove */
			set(r, V_BLOCKED, "connect(%s): EACCES: /run/moat-bpf is 0700 "
			    "(not the daemon's peer check)", sun.sun_path);
		else
			setup_refused(r, "connect(" "/run/moat-bpf/control.sock" ")", "");
		close(fd);
		return;
	}
	/*
	 * A daemon that refuses the peer answers at once, without reading,
	 * and closes: a request sent meanwhile makes the answer come after an
	 * ECONNRESET. So wait for an unsolicited answer first.
	 */
	if (wait_fd(fd, POLLIN, 500) == 1) {
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	} else if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 && errno != EPIPE &&
		   errno != ECONNRESET) {
		n = -1;
	} else if (wait_fd(fd, POLLIN, WAIT_MS) != 1) {
		n = -1;
	} else {
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0 && errno == ECONNRESET)
			n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	}
	if (n <= 0) {
		/* a refusing daemon says so before it closes: silence proves
		 * nothing (the request may have been carried out) */
		set(r, V_ESCAPED, "control request got no reply (%s): not a refusal",
		    n < 0 ? en(errno) : "EOF");
		close(fd);
		return;
	}
	buf[n] = 0;
	if (strstr(buf, "\"ok\""))
		set(r, V_ESCAPED, "the daemon accepted a request from inside: %s", buf);
	else
		set(r, V_BLOCKED, "the daemon refused: %s", buf);
	close(fd);
}

/* ---- DNS ---- */

static void t_dns_udp(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_simple(&q, 0x4501, EXFIL_NAME, DNS_T_TXT);
	err = dns_udp(&s, &q, false, &rep);
	judge_dns(r, err, &rep, "UDP TXT " EXFIL_NAME " to " DNS4 ":53", false);
}

static void t_dns_udp_connected(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_simple(&q, 0x4502, EXFIL_NAME, DNS_T_TXT);
	err = dns_udp(&s, &q, true, &rep);
	judge_dns(r, err, &rep, "connected UDP TXT " EXFIL_NAME " to " DNS4 ":53", false);
}

static void t_dns_tcp(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_simple(&q, 0x4503, EXFIL_NAME, DNS_T_TXT);
	err = dns_tcp(&s, &q, 1, &rep);
	judge_dns(r, err, &rep, "TCP TXT " EXFIL_NAME " to " DNS4 ":53", false);
}

static void t_dns_v6(struct result *r)
{
	struct addr s = mk(DNS6, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_simple(&q, 0x4504, EXFIL_NAME, DNS_T_TXT);
	err = dns_udp(&s, &q, false, &rep);
	judge_dns(r, err, &rep, "UDP TXT " EXFIL_NAME " to [" DNS6 "]:53", false);
}

static void t_dns_other_udp(struct result *r)
{
	struct addr s = mk(C4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_simple(&q, 0x4505, EXFIL_NAME, DNS_T_TXT);
	err = dns_udp(&s, &q, false, &rep);
	judge_dns(r, err, &rep, "UDP TXT " EXFIL_NAME " to " C4 ":53 (not the upstream)",
		  false);
}

static void t_dns_other_tcp(struct result *r)
{
	struct addr s = mk(C4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_simple(&q, 0x4506, EXFIL_NAME, DNS_T_TXT);
	err = dns_tcp(&s, &q, 1, &rep);
	judge_dns(r, err, &rep, "TCP TXT " EXFIL_NAME " to " C4 ":53 (not the upstream)",
		  false);
}

/* An allowed name first, then the secret, on one TCP connection. */
static void t_dns_pipelined(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep[2];
	struct dnsb q[2];
	int err;

	dns_simple(&q[0], 0x4507, "allowed.test", DNS_T_A);
	dns_simple(&q[1], 0x4508, EXFIL_NAME, DNS_T_TXT);
	err = dns_tcp(&s, q, 2, rep);
	judge_dns(r, err, &rep[1], "TCP, allowed.test then " EXFIL_NAME " pipelined",
		  true);
	if (!err)
		snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
			 "; allowed.test: %s", rcode_name(rep[0].rcode));
}

/* Two questions: allowed.test and the secret. */
static void t_dns_two_questions(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_header(&q, 0x4509, 0, 2, 0, 0, 0);
	put_name(&q, "allowed.test");
	put16(&q, DNS_T_A);
	put16(&q, 1);
	put_name(&q, EXFIL_NAME);
	put16(&q, DNS_T_TXT);
	put16(&q, 1);
	err = dns_udp(&s, &q, false, &rep);
	judge_dns(r, err, &rep, "QDCOUNT=2 (allowed.test, " EXFIL_NAME ")", true);
}

/* An allowed question, the secret in an additional-section record. The
 * runner's marker counter matches "\5exfil\0" at that record's offset in
 * any datagram reaching the upstream. */
static void t_dns_additional(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_header(&q, 0x450a, 0, 1, 0, 0, 1);
	put_name(&q, "allowed.test");		/* ends at offset 30 */
	put16(&q, DNS_T_A);
	put16(&q, 1);
	put_name(&q, "exfil");
	put16(&q, DNS_T_TXT);
	put16(&q, 1);
	put32(&q, 0);
	put16(&q, 15);
	put8(&q, 14);
	putmem(&q, "secret-payload", 14);
	err = dns_udp(&s, &q, false, &rep);
	if (!err && rep.rcode == 0 && !rep.echo)
		set(r, V_BLOCKED, "allowed.test with an additional TXT record 'exfil' "
		    "answered NOERROR by the upstream: the runner's marker counter "
		    "decides whether the record went with the query");
	else
		judge_dns(r, err, &rep, "allowed.test with an additional record", true);
}

/* The secret in an EDNS option (code 65001) of an allowed query; marker
 * "exfil" at the option's data offset. */
static void t_dns_edns_option(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_header(&q, 0x450b, 0, 1, 0, 0, 1);
	put_name(&q, "allowed.test");
	put16(&q, DNS_T_A);
	put16(&q, 1);
	put8(&q, 0);			/* root */
	put16(&q, DNS_T_OPT);
	put16(&q, 1232);
	put32(&q, 0);
	put16(&q, 4 + 14);
	put16(&q, 65001);
	put16(&q, 14);
	putmem(&q, "exfil-secret!!", 14);	/* data at offset 45 */
	err = dns_udp(&s, &q, false, &rep);
	if (!err && rep.rcode == 0 && !rep.echo)
		set(r, V_BLOCKED, "allowed.test with EDNS option 65001 'exfil-secret' "
		    "answered NOERROR by the upstream: the runner's marker counter decides "
		    "whether the option went with the query");
	else
		judge_dns(r, err, &rep, "allowed.test with an EDNS option", true);
}

/* DNS UPDATE (opcode 5) for zone allowed.test, the secret as an update. */
static void t_dns_update(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_header(&q, 0x450c, 5, 1, 0, 1, 0);
	put_name(&q, "allowed.test");
	put16(&q, DNS_T_SOA);
	put16(&q, 1);
	put_name(&q, EXFIL_NAME);
	put16(&q, DNS_T_TXT);
	put16(&q, 1);
	put32(&q, 0);
	put16(&q, 7);
	put8(&q, 6);
	putmem(&q, "secret", 6);
	err = dns_udp(&s, &q, false, &rep);
	judge_dns(r, err, &rep, "UPDATE zone allowed.test adding " EXFIL_NAME, true);
}

/* A label with a NUL byte: "allowed" "test\0exfil" is not allowed.test. */
static void t_dns_nul_label(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_header(&q, 0x450d, 0, 1, 0, 0, 0);
	put8(&q, 7);
	putmem(&q, "allowed", 7);
	put8(&q, 10);
	putmem(&q, "test\0exfil", 10);
	put8(&q, 0);
	put16(&q, DNS_T_A);
	put16(&q, 1);
	err = dns_udp(&s, &q, false, &rep);
	judge_dns(r, err, &rep, "name allowed.test\\000exfil (NUL in a label)", true);
	if (r->v == V_BLOCKED && rep.has_a)
		set(r, V_ESCAPED, "name allowed.test\\000exfil answered with allowed.test's "
		    "address: it was forwarded");
}

/* The upstream's address on ports other than 53: address rules. */
static void t_dns_other_ports(struct result *r)
{
	struct addr u = mk(DNS4, 5353), t = mk(DNS4, 853);
	struct result r2;

	udp_sendto(r, &u, AF_INET, H_S4 " (port 5353 is not captured)");
	tcp_to(&r2, &t, AF_INET, 0, H_C4 " (port 853 is not captured)");
	if (r2.v != V_BLOCKED || r->v != V_BLOCKED)
		*r = r->v != V_BLOCKED ? *r : r2;
	else
		snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
			 "; TCP: %s", r2.how);
}

/* ---- the host netns group: loopback only ---- */

static void host_tcp(struct result *r, const char *ip, int family)
{
	struct addr a = mk(ip, opt_host_port);

	if (!opt_host_port) {
		set(r, V_NA, "no --host-port given");
		return;
	}
	tcp_to(r, &a, family, 0, family == AF_INET ? H_C4 : H_C6);
	if (r->v == V_BLOCKED)
		snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
			 " (host netns: loopback is open only by explicit rules)");
}

static void t_host_any4(struct result *r) { host_tcp(r, "0.0.0.0", AF_INET); }
static void t_host_any6(struct result *r) { host_tcp(r, "::", AF_INET6); }
static void t_host_lo4(struct result *r) { host_tcp(r, "127.0.0.1", AF_INET); }
static void t_host_lo6(struct result *r) { host_tcp(r, "::1", AF_INET6); }
static void t_host_mapped(struct result *r) { host_tcp(r, "::ffff:127.0.0.1", AF_INET6); }
static void t_host_mapped_any(struct result *r) { host_tcp(r, "::ffff:0.0.0.0", AF_INET6); }

static void t_host_any_udp(struct result *r)
{
	struct addr a4 = mk("0.0.0.0", opt_host_port), a6 = mk("::", opt_host_port);
	struct result r2;

	if (!opt_host_port) {
		set(r, V_NA, "no --host-port given");
		return;
	}
	udp_sendto(r, &a4, AF_INET, H_S4);
	udp_sendto(&r2, &a6, AF_INET6, H_S6);
	if (r2.v != V_BLOCKED || r->v != V_BLOCKED)
		*r = r->v != V_BLOCKED ? *r : r2;
	else
		snprintf(r->how + strlen(r->how), sizeof(r->how) - strlen(r->how),
			 "; %s", r2.how);
}

/* ---- controls ---- */

static void c_tcp4(struct result *r)
{
	char why[256];

	set(r, echo_tcp(&X.a4t, why, sizeof(why)) ? V_OK : V_FAIL, "%s", why);
}

static void c_udp4(struct result *r)
{
	char why[256];

	set(r, echo_udp(&X.a4u, why, sizeof(why)) ? V_OK : V_FAIL, "%s", why);
}

static void c_tcp6(struct result *r)
{
	char why[256];

	set(r, echo_tcp(&X.a6t, why, sizeof(why)) ? V_OK : V_FAIL, "%s", why);
}

static void c_udp6(struct result *r)
{
	char why[256];

	set(r, echo_udp(&X.a6u, why, sizeof(why)) ? V_OK : V_FAIL, "%s", why);
}

static void c_dns(struct result *r)
{
	struct addr s = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	dns_simple(&q, 0x4510, "allowed.test", DNS_T_A);
	err = dns_udp(&s, &q, false, &rep);
	if (!err && rep.rcode == 0 && rep.has_a)
		set(r, V_OK, "allowed.test A answered NOERROR with " A4 " (through the resolver)");
	else
		set(r, V_FAIL, "allowed.test A: %s", err ? en(-err) : rcode_name(rep.rcode));
}

static void n_mptcp_allowed(struct result *r)
{
	int fd = sock(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);

	if (fd < 0) {
		set(r, V_NOTE, "MPTCP unavailable (%s)", en(errno));
		return;
	}
	if (connect(fd, SA(&X.a4t), X.a4t.len))
		set(r, V_NOTE, "MPTCP connect to the allowed %s: %s (over-blocking, not "
		    "an escape)", X.a4t.text, en(errno));
	else
		set(r, V_NOTE, "MPTCP connect to the allowed %s: ok", X.a4t.text);
	close(fd);
}

/* ---- issue 11: 0.0.0.0/8, UDP-Lite, IPV6_2292PKTOPTIONS ---- */

/*
 * 0.x.y.z is not loopback: since Linux 5.3 only 0.0.0.0 goes to lo, the
 * rest of 0/8 is routed like any unicast address. tools/testnet.sh puts a
 * world host at ZERO4 (routed from the client netns only; the runner's
 * counter counts it as blocked), which the policy does not allow: the
 * netns loopback default must not open it, on any path or family.
 */
#define ZERO4		"0.1.2.3"

static void t_tcp4_zero(struct result *r)
{
	struct addr a = mk(ZERO4, TPORT);

	tcp_to(r, &a, AF_INET, 0, H_C4 " (0/8 is not loopback)");
}

static void t_udp4_zero(struct result *r)
{
	struct addr a = mk(ZERO4, UPORT);

	udp_sendto(r, &a, AF_INET, H_S4 " (0/8 is not loopback)");
}

static void t_tcp6_mapped_zero(struct result *r)
{
	struct addr a = mk("::ffff:" ZERO4, TPORT);

	tcp_to(r, &a, AF_INET6, 0, H_C6 " (v4-mapped decoded; 0/8 is not loopback)");
}

static void t_udp6_mapped_zero(struct result *r)
{
	struct addr a = mk("::ffff:" ZERO4, UPORT);

	udp_sendto(r, &a, AF_INET6, H_S4 " (AF_INET6 socket, v4-mapped; 0/8 is not loopback)");
}

/* connect() then send(): connect4 judges, then nothing until the backstop. */
static void udp_connect_send(struct result *r, const struct addr *a, const char *hook)
{
	int fd = sock(a->ss.ss_family, SOCK_DGRAM, 0);

	if (fd < 0) {
		set(r, V_ESCAPED, "socket(): %s (cannot test)", en(errno));
		return;
	}
	if (connect(fd, SA(a), a->len) == 0) {
		judge_send(r, send(fd, "x", 1, 0), a, "the egress backstop",
			   "connect() succeeded; ");
		r->v = V_ESCAPED;	/* the connect itself was let through */
	} else if (errno == EPERM) {
		set(r, V_BLOCKED, "EPERM at connect() to %s: %s", a->text, hook);
	} else {
		set(r, V_ESCAPED, "connect() to %s: %s, not EPERM", a->text, en(errno));
	}
	close(fd);
}

static void t_udp4_zero_connect(struct result *r)
{
	struct addr a = mk(ZERO4, UPORT);

	udp_connect_send(r, &a, H_C4 " (0/8 is not loopback)");
}

/*
 * UDP-Lite shares UDP's sendmsg and recvmsg hooks but not its
 * pre_connect: connect() runs no connect hook at all, so no rule and no
 * DNS redirect sees it. Only TCP, MPTCP and UDP sockets are created
 * freely in an enforced cgroup (sockets: other: deny by default).
 */
/* A UDP-Lite socket FD (created, so sock_create let it be) connects to A. */
static void udplite_connect_fd(struct result *r, int fd, const struct addr *a,
			       const char *what)
{
	char pre[200];

	if (connect(fd, SA(a), a->len) == 0) {
		snprintf(pre, sizeof(pre), "%sconnect() succeeded (no connect hook ran); ",
			 what);
		judge_send(r, send(fd, "x", 1, 0), a, "the egress backstop", pre);
		r->v = V_ESCAPED;
	} else if (errno == EPERM) {
		set(r, V_BLOCKED, "%sEPERM at connect() to %s", what, a->text);
	} else {
		set(r, V_ESCAPED, "%sconnect() to %s: %s, not EPERM", what, a->text,
		    en(errno));
	}
}

static void udplite(struct result *r, const struct addr *a)
{
	int fd = sock(a->ss.ss_family, SOCK_DGRAM, IPPROTO_UDPLITE);

	if (fd < 0) {
		if (errno == EPERM)
			set(r, V_BLOCKED, "socket(IPPROTO_UDPLITE): EPERM: cgroup/sock_create "
			    "(sockets: other: deny)");
		else if (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT)
			set(r, V_NA, "UDP-Lite is not in this kernel: socket() %s", en(errno));
		else
			set(r, V_BLOCKED, "socket(IPPROTO_UDPLITE): %s", en(errno));
		return;
	}
	udplite_connect_fd(r, fd, a, "UDP-Lite socket created, ");
	close(fd);
}

static void t_udplite4(struct result *r) { udplite(r, &X.b4u); }
static void t_udplite6(struct result *r) { udplite(r, &X.b6u); }

/*
 * IPV6_2292PKTOPTIONS: sticky RFC 2292 control messages, a routing header
 * among them. A kernel with CONFIG_IPV6_MIP6 takes a type 2 routing
 * header there (its address becomes the packet's destination); others
 * answer EINVAL for that header but take the option itself. The
 * setsockopt program refuses the option whatever it carries (the backstop
 * would drop a routed packet as well).
 */
static int pktoptions(int fd, int type, const void *data, size_t len)
{
	union {
		char buf[CMSG_SPACE(24)];
		struct cmsghdr align;
	} u;
	struct cmsghdr *c = (struct cmsghdr *)u.buf;

	memset(&u, 0, sizeof(u));
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	return setsockopt(fd, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, u.buf, CMSG_SPACE(len));
}

static void t_2292pktoptions(struct result *r)
{
	int fd = sock(AF_INET6, SOCK_DGRAM, 0), hl = 7, e1;
	uint8_t rh2[24] = { 0, 2 /* hdrlen */, 2 /* type 2 */, 1 /* segments left */ };
	ssize_t n;

	inet_pton(AF_INET6, B6, rh2 + 8);
	if (!pktoptions(fd, IPV6_2292RTHDR, rh2, sizeof(rh2))) {
		n = sendto(fd, "x", 1, 0, SA(&X.a6u), X.a6u.len);
		set(r, V_ESCAPED, "setsockopt(IPV6_2292PKTOPTIONS) installed a type 2 "
		    "routing header via %s; sendto() allowed %s then: %s", B6, X.a6u.text,
		    n >= 0 ? "sent" : en(errno));
	} else if (errno == EPERM) {
		set(r, V_BLOCKED, "setsockopt(IPV6_2292PKTOPTIONS, routing header via %s): "
		    "EPERM: cgroup/setsockopt", B6);
	} else if (e1 = errno, !pktoptions(fd, IPV6_2292HOPLIMIT, &hl, sizeof(hl))) {
		set(r, V_ESCAPED, "setsockopt(IPV6_2292PKTOPTIONS) is not refused by "
		    "cgroup/setsockopt: a hop limit was installed (this kernel refused "
		    "the type 2 routing header itself: %s; a CONFIG_IPV6_MIP6 kernel "
		    "takes it)", en(e1));
	} else if (errno == EPERM) {
		set(r, V_BLOCKED, "setsockopt(IPV6_2292PKTOPTIONS): EPERM: cgroup/setsockopt");
	} else {
		set(r, V_NA, "this kernel refuses IPV6_2292PKTOPTIONS itself: %s", en(errno));
	}
	close(fd);
}

/*
 * The same options through io_uring's socket command (Linux 6.7+,
 * SOCKET_URING_OP_SETSOCKOPT), which reaches do_sock_setsockopt without
 * the setsockopt syscall: cgroup/setsockopt must run there too. The SQE
 * fields are set by offset: Debian 12's uapi header predates them.
 */
#define URING_SOCK_SETSOCKOPT	3	/* SOCKET_URING_OP_SETSOCKOPT */

static void t_uring_setsockopt(struct result *r)
{
	uint8_t srh[8 + 2 * 16];
	struct ipv6_sr_hdr *h = (struct ipv6_sr_hdr *)srh;
	struct io_uring_sqe s;
	struct ring ring;
	int res = 1, fd, err = ring_init(&ring);

	if (uring_denied(r, err))
		return;
	memset(srh, 0, sizeof(srh));
	h->hdrlen = (sizeof(srh) >> 3) - 1;
	h->type = 4;
	h->segments_left = 1;
	h->first_segment = 1;
	inet_pton(AF_INET6, A6, &h->segments[0]);
	inet_pton(AF_INET6, B6, &h->segments[1]);
	fd = sock(AF_INET6, SOCK_DGRAM, 0);
	memset(&s, 0, sizeof(s));
	s.opcode = IORING_OP_URING_CMD;
	s.fd = fd;
	s.cmd_op = URING_SOCK_SETSOCKOPT;
	s.addr = (uint64_t)IPV6_RTHDR << 32 | IPPROTO_IPV6;	/* optname, level */
	s.splice_fd_in = sizeof(srh);				/* optlen */
	s.addr3 = (unsigned long)srh;				/* optval */
	err = ring_run(&ring, &s, 1, &res);
	if (err) {
		set(r, V_ESCAPED, "io_uring_enter(): %s (cannot test)", en(-err));
	} else if (res == -EPERM) {
		set(r, V_BLOCKED, "io_uring setsockopt(IPV6_RTHDR, SRH via %s): EPERM: %s",
		    B6, has_cap(CAP_NET_RAW) ? "cgroup/setsockopt" :
		    "type 4 routing headers need CAP_NET_RAW");
	} else if (res == 0) {
		ssize_t n = sendto(fd, "x", 1, 0, SA(&X.a6u), X.a6u.len);

		set(r, V_ESCAPED, "io_uring setsockopt(IPV6_RTHDR) installed an SRH via %s "
		    "past cgroup/setsockopt; sendto() allowed %s then: %s", B6, X.a6u.text,
		    n >= 0 ? "sent" : en(errno));
	} else {
		set(r, V_NA, "io_uring socket setsockopt unsupported here: %s", en(-res));
	}
	close(fd);
}

/* io_uring's socket op creates through the same path: sock_create runs. */
static void t_uring_socket_udplite(struct result *r)
{
	int res = 1;

	if (!uring_socket(r, AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, &res))
		return;
	if (res >= 0) {
		udplite_connect_fd(r, res, &X.b4u, "IORING_OP_SOCKET(IPPROTO_UDPLITE) "
				   "created a socket; ");
		close(res);
	} else if (res == -EPERM) {
		set(r, V_BLOCKED, "IORING_OP_SOCKET(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE): "
		    "EPERM: cgroup/sock_create (sockets: other: deny)");
	} else {
		set(r, V_NA, "IORING_OP_SOCKET(IPPROTO_UDPLITE): %s", en(-res));
	}
}

/*
 * ---- names over shared addresses (group "names", docs/names.md) ----
 * Under the policy esc-names (only domain rules: tcp://allowed.test:80,
 * udp://allowed.test:443) 198.51.100.7 is allowed through a learned
 * address alone, so every TCP connection to it is name-checked. Each
 * technique resolves allowed.test through the resolver (what opens the
 * address), connects to the world's echo server there and sends a request
 * naming another host (or no name) by some path. What the world received
 * judges it: the echo server answering, and the runner's nftables counter
 * of packets to 198.51.100.7 carrying NM_MARK at payload offset 0, 5 (an
 * HTTP request's path) or 11 (a ClientHello's random). Controls carry no
 * marker.
 */
#define NM_MARK		"MOATNAME"
#define NM_OTHER	"exfil.example"
#define NM_HOST		"allowed.test"
#define H_SKMSG		"sk_msg (moat_sk_msg): the name check"

static bool nm_learn(struct result *r)
{
	struct addr srv = mk(DNS4, DNS_PORT);
	struct dns_reply rep;
	struct dnsb q;
	int err;

	memset(&q, 0, sizeof(q));
	dns_simple(&q, 0x4e4d, NM_HOST, DNS_T_A);
	err = dns_udp(&srv, &q, false, &rep);
	if (err || !rep.has_a) {
		set(r, V_ESCAPED, "resolving " NM_HOST ": %s (cannot test)",
		    err ? en(-err) : rcode_name(rep.rcode));
		return false;
	}
	return true;
}

/* A connected socket to the echo server on 198.51.100.7:80, or -1 (R set). */
static int nm_conn(struct result *r)
{
	int fd;

	if (!nm_learn(r))
		return -1;
	fd = sock(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, SA(&X.a4t), X.a4t.len)) {
		set(r, V_ESCAPED, "connect() to %s: %s (cannot test)", X.a4t.text, en(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static size_t nm_req(char *b, size_t len, const char *path, const char *host)
{
	return snprintf(b, len, "GET /%s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
}

/* A ClientHello naming SNI ("" none), PAD bytes of padding, ECH: an
 * encrypted_client_hello extension; its random starts with MARK. */
static size_t nm_hello(uint8_t *b, const char *sni, size_t pad, bool ech,
		       const char *mark)
{
	size_t n = strlen(sni), e = 0, p = 0, body;
	static uint8_t ext[20000];

	if (n) {
		uint8_t h[9] = { 0, 0, (n + 5) >> 8, (n + 5) & 0xff, (n + 3) >> 8,
				 (n + 3) & 0xff, 0, n >> 8, n & 0xff };

		memcpy(ext + e, h, 9);
		memcpy(ext + e + 9, sni, n);
		e += 9 + n;
	}
	memcpy(ext + e, "\x00\x2b\x00\x03\x02\x03\x04", 7);	/* TLS 1.3 */
	e += 7;
	if (ech) {
		memcpy(ext + e, "\xfe\x0d\x00\x28", 4);
		memset(ext + e + 4, 1, 40);
		e += 44;
	}
	if (pad) {
		ext[e++] = 0; ext[e++] = 0x15; ext[e++] = pad >> 8; ext[e++] = pad & 0xff;
		memset(ext + e, 0, pad);
		e += pad;
	}
	body = 2 + 32 + 1 + 4 + 2 + 2 + e;
	b[p++] = 0x16; b[p++] = 3; b[p++] = 1;
	b[p++] = (body + 4) >> 8; b[p++] = (body + 4) & 0xff;
	b[p++] = 1; b[p++] = 0; b[p++] = body >> 8; b[p++] = body & 0xff;
	b[p++] = 3; b[p++] = 3;
	memset(b + p, 7, 32);
	memcpy(b + p, mark, strlen(mark));
	p += 32;
	b[p++] = 0;
	memcpy(b + p, "\x00\x02\x13\x01\x01\x00", 6);
	p += 6;
	b[p++] = e >> 8; b[p++] = e & 0xff;
	memcpy(b + p, ext, e);
	return p + e;
}

/*
 * Did anything come back from the echo server within MS? It echoes what
 * came once a newline did, then closes (an EOF is no echo).
 */
static bool nm_echoed(int fd, int ms)
{
	char buf[256];

	return wait_fd(fd, POLLIN, ms) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

/* Judge a send of WHAT: N bytes sent or -1 with ERR. */
static void nm_judge(struct result *r, int fd, ssize_t n, int err, const char *what)
{
	if (nm_echoed(fd, n < 0 ? 300 : 1000))
		set(r, V_ESCAPED, "%s: the echo server at %s answered: the bytes arrived",
		    what, X.a4t.text);
	else if (n < 0 && err == EACCES)
		set(r, V_BLOCKED, "%s: EACCES at the send, nothing arrived: " H_SKMSG, what);
	else if (n < 0 && err == EPERM)
		set(r, V_BLOCKED, "%s: EPERM, nothing arrived", what);
	else if (n < 0)
		set(r, V_ESCAPED, "%s: %s, not a refusal (cannot test)", what, en(err));
	else
		set(r, V_BLOCKED, "%s: send accepted (%zd bytes) but nothing arrived in 1 s "
		    "(held back by the check's cork, or dropped by the egress backstop; "
		    "counter-checked)", what, n);
}

static void nm_send(struct result *r, const void *b, size_t len, size_t chunk,
		    const char *what)
{
	int fd = nm_conn(r), err = 0;
	ssize_t n = 0;

	if (fd < 0)
		return;
	for (size_t o = 0; o < len; o += chunk) {
		size_t k = len - o < chunk ? len - o : chunk;

		n = send(fd, (const char *)b + o, k, 0);
		if (n < 0) {
			err = errno;
			break;
		}
		usleep(20000);
	}
	nm_judge(r, fd, n, err, what);
	close(fd);
}

static void t_nm_http_other(struct result *r)
{
	char b[256];

	nm_send(r, b, nm_req(b, sizeof(b), NM_MARK, NM_OTHER), 4096, "Host: " NM_OTHER);
}

static void t_nm_http_split(struct result *r)
{
	char b[256];

	nm_send(r, b, nm_req(b, sizeof(b), NM_MARK, NM_OTHER), 9,
		"Host: " NM_OTHER " in 9-byte sends");
}

static void t_nm_http_keepalive(struct result *r)
{
	char b[256];
	size_t l;
	ssize_t n;
	int fd = nm_conn(r);

	if (fd < 0)
		return;
	l = nm_req(b, sizeof(b), "first", NM_HOST);
	if (send(fd, b, l, 0) != (ssize_t)l || !nm_echoed(fd, 1000)) {
		set(r, V_ESCAPED, "the first request (Host: " NM_HOST ") got no echo (cannot test)");
		close(fd);
		return;
	}
	l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	n = send(fd, b, l, 0);
	nm_judge(r, fd, n, n < 0 ? errno : 0, "keep-alive: second request's Host: " NM_OTHER);
	close(fd);
}

static void t_nm_tls_other(struct result *r)
{
	static uint8_t b[20000];

	nm_send(r, b, nm_hello(b, NM_OTHER, 0, false, NM_MARK), 4096, "ClientHello SNI " NM_OTHER);
}

static void t_nm_tls_split(struct result *r)
{
	static uint8_t b[20000];

	nm_send(r, b, nm_hello(b, NM_OTHER, 1700, false, NM_MARK), 300,
		"1.8 KB ClientHello SNI " NM_OTHER " in 300-byte sends");
}

static void t_nm_tls_nosni(struct result *r)
{
	static uint8_t b[20000];

	nm_send(r, b, nm_hello(b, "", 0, false, NM_MARK), 4096, "ClientHello without SNI");
}

static void t_nm_tls_oversized(struct result *r)
{
	static uint8_t b[20000];

	nm_send(r, b, nm_hello(b, NM_HOST, 17000, false, NM_MARK), 4096,
		"17 KB ClientHello (more than a record), SNI " NM_HOST);
}

static void t_nm_tls_ech(struct result *r)
{
	static uint8_t b[20000];

	nm_send(r, b, nm_hello(b, NM_HOST, 0, true, NM_MARK), 4096,
		"ClientHello with encrypted_client_hello, outer SNI " NM_HOST);
}

static void t_nm_raw(struct result *r)
{
	nm_send(r, NM_MARK " raw bytes\n", 18, 4096, "raw bytes");
}

static void t_nm_tfo(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	int fd;
	ssize_t n;

	if (!nm_learn(r))
		return;
	fd = sock(AF_INET, SOCK_STREAM, 0);
	n = sendto(fd, b, l, MSG_FASTOPEN, SA(&X.a4t), X.a4t.len);
	if (n < 0 && errno == EPERM)
		set(r, V_BLOCKED, "EPERM at sendto(MSG_FASTOPEN) to %s: " H_C4
		    " (Fast Open refused to a name-checked address)", X.a4t.text);
	else
		nm_judge(r, fd, n, n < 0 ? errno : 0, "sendto(MSG_FASTOPEN)");
	close(fd);
}

static void t_nm_tfo_connect(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	int fd, one = 1;
	ssize_t n;

	if (!nm_learn(r))
		return;
	fd = sock(AF_INET, SOCK_STREAM, 0);
	if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one))) {
		set(r, V_ESCAPED, "TCP_FASTOPEN_CONNECT: %s (cannot test)", en(errno));
	} else if (connect(fd, SA(&X.a4t), X.a4t.len)) {
		if (errno == EPERM)
			set(r, V_BLOCKED, "TCP_FASTOPEN_CONNECT: EPERM at connect() to %s: " H_C4,
			    X.a4t.text);
		else
			set(r, V_ESCAPED, "TCP_FASTOPEN_CONNECT: connect(): %s (cannot test)",
			    en(errno));
	} else {
		n = send(fd, b, l, 0);
		nm_judge(r, fd, n, n < 0 ? errno : 0, "TCP_FASTOPEN_CONNECT, then send");
	}
	close(fd);
}

/*
 * A send issued at once after a non-blocking connect: it waits in
 * tcp_sendmsg (SYN_SENT), outside sk_msg, and is pushed once established.
 */
static void t_nm_synsent(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	int fd, e;
	ssize_t n;

	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	const char *state;

	if (!nm_learn(r))
		return;
	fd = sock(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (!connect(fd, SA(&X.a4t), X.a4t.len) || errno != EINPROGRESS) {
		set(r, V_ESCAPED, "non-blocking connect(): %s (cannot test)", en(errno));
		close(fd);
		return;
	}
	/*
	 * Over this veth the handshake mostly completes inside connect(): then
	 * the send takes sk_msg's path. The SYN_SENT path proper is
	 * tests/kernel/names.c second_line (its world drops the first SYN).
	 */
	state = !getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) &&
		ti.tcpi_state == TCP_SYN_SENT ? "in SYN_SENT" : "(already established)";
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	n = send(fd, b, l, 0);
	e = errno;
	if (nm_echoed(fd, 1000)) {
		set(r, V_ESCAPED, "send %s: the echo server answered", state);
	} else if (n < 0 && e != EACCES) {
		set(r, V_ESCAPED, "send %s: %s (cannot test)", state, en(e));
	} else {
		ssize_t m = send(fd, "x", 1, 0);

		e = errno;
		if (m >= 0 && nm_echoed(fd, 1000))
			set(r, V_ESCAPED, "send %s, then another: the echo server answered",
			    state);
		else
			set(r, V_BLOCKED, "send %s: %s; nothing arrived; the next send: %s "
			    "(backstop and stream check; counter-checked)", state,
			    n < 0 ? "EACCES" : "accepted", m < 0 ? en(e) : "accepted");
	}
	close(fd);
}

static void t_nm_mptcp(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	int fd;
	ssize_t n;

	if (!nm_learn(r))
		return;
	fd = sock(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (fd < 0) {
		set(r, V_ESCAPED, "socket(IPPROTO_MPTCP): %s (cannot test)", en(errno));
		return;
	}
	if (connect(fd, SA(&X.a4t), X.a4t.len)) {
		if (errno == EPERM)
			set(r, V_BLOCKED, "MPTCP: EPERM at connect() to %s: " H_C4
			    " (no SOCKHASH for MPTCP: refused to a name-checked address)",
			    X.a4t.text);
		else
			set(r, V_ESCAPED, "MPTCP connect(): %s (cannot test)", en(errno));
	} else {
		n = send(fd, b, l, 0);
		nm_judge(r, fd, n, n < 0 ? errno : 0, "MPTCP send");
	}
	close(fd);
}

static void t_nm_sendfile(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	int fd, mfd = memfd_create("nm", MFD_CLOEXEC);
	ssize_t n;

	if (mfd < 0 || write(mfd, b, l) != (ssize_t)l) {
		set(r, V_ESCAPED, "memfd: %s (cannot test)", en(errno));
		return;
	}
	fd = nm_conn(r);
	if (fd >= 0) {
		off_t off = 0;

		n = sendfile(fd, mfd, &off, l);
		nm_judge(r, fd, n, n < 0 ? errno : 0, "sendfile()");
		close(fd);
	}
	close(mfd);
}

static void t_nm_splice(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	struct iovec iov = { .iov_base = b, .iov_len = l };
	int fd, p[2];
	ssize_t n;

	if (pipe(p) || vmsplice(p[1], &iov, 1, 0) != (ssize_t)l) {
		set(r, V_ESCAPED, "pipe/vmsplice: %s (cannot test)", en(errno));
		return;
	}
	fd = nm_conn(r);
	if (fd >= 0) {
		n = splice(p[0], NULL, fd, NULL, l, 0);
		nm_judge(r, fd, n, n < 0 ? errno : 0, "vmsplice() into a pipe, splice() to the socket");
		close(fd);
	}
	close(p[0]);
	close(p[1]);
}

static void nm_uring(struct result *r, int op, const char *what)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	struct io_uring_sqe s;
	struct ring ring;
	int res = 1, fd, err = ring_init(&ring);

	if (uring_denied(r, err))
		return;
	fd = nm_conn(r);
	if (fd < 0)
		return;
	memset(&s, 0, sizeof(s));
	s.opcode = op;
	s.fd = fd;
	s.addr = (unsigned long)b;
	s.len = l;
	/* SEND_ZC posts a notification after the result: wait for the first */
	err = ring_run(&ring, &s, 1, &res);
	if (err)
		set(r, V_ESCAPED, "io_uring_enter(): %s (cannot test)", en(-err));
	else if (op == IORING_OP_SEND_ZC && res == -EOPNOTSUPP && !nm_echoed(fd, 300))
		/* tcp_bpf clears SOCK_SUPPORT_ZC on a socket it takes over */
		set(r, V_BLOCKED, "%s: EOPNOTSUPP, nothing arrived: a socket in the name "
		    "check's SOCKHASH has no zero-copy send", what);
	else
		nm_judge(r, fd, res < 0 ? -1 : res, res < 0 ? -res : 0, what);
	close(fd);
}

static void t_nm_uring_send(struct result *r) { nm_uring(r, IORING_OP_SEND, "IORING_OP_SEND"); }
static void t_nm_uring_send_zc(struct result *r) { nm_uring(r, IORING_OP_SEND_ZC, "IORING_OP_SEND_ZC"); }

static void t_nm_zerocopy(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	int fd = nm_conn(r), one = 1;
	ssize_t n;

	if (fd < 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one))) {
		set(r, V_ESCAPED, "SO_ZEROCOPY: %s (cannot test)", en(errno));
	} else {
		n = send(fd, b, l, MSG_ZEROCOPY);
		nm_judge(r, fd, n, n < 0 ? errno : 0, "send(MSG_ZEROCOPY)");
	}
	close(fd);
}

static void t_nm_sendmmsg(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	struct iovec iov[2] = { { b, l / 2 }, { b + l / 2, l - l / 2 } };
	struct mmsghdr m[2];
	int fd = nm_conn(r), n;

	if (fd < 0)
		return;
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 2; i++) {
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	n = sendmmsg(fd, m, 2, 0);
	nm_judge(r, fd, n < 0 ? -1 : (ssize_t)m[0].msg_len, n < 0 ? errno : 0,
		 "sendmmsg() of a request in two messages");
	close(fd);
}

/* The socket used from another process (as SCM_RIGHTS would hand it over). */
static void t_nm_fd_elsewhere(struct result *r)
{
	char b[256];
	size_t l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	int fd = nm_conn(r), st = 0;
	pid_t pid;

	if (fd < 0)
		return;
	pid = fork();
	if (pid == 0)
		_exit(send(fd, b, l, 0) < 0 ? errno : 0);
	waitpid(pid, &st, 0);
	nm_judge(r, fd, WEXITSTATUS(st) ? -1 : (ssize_t)l, WEXITSTATUS(st),
		 "send() from a child holding the descriptor");
	close(fd);
}

/* TLS passed for the allowed name, disconnected, connected again: HTTP. */
static void t_nm_reconnect(struct result *r)
{
	static uint8_t h[20000];
	struct sockaddr sa = { .sa_family = AF_UNSPEC };
	char b[256];
	size_t l = nm_hello(h, NM_HOST, 0, false, "control");
	int fd = nm_conn(r);
	ssize_t n;

	if (fd < 0)
		return;
	/* the echo server answers at a newline: after the pass, one more send */
	if (send(fd, h, l, 0) != (ssize_t)l || send(fd, "\n", 1, 0) != 1 ||
	    !nm_echoed(fd, 1000) ||
	    connect(fd, &sa, sizeof(sa)) || connect(fd, SA(&X.a4t), X.a4t.len)) {
		set(r, V_ESCAPED, "TLS pass, disconnect, reconnect: %s (cannot test)", en(errno));
		close(fd);
		return;
	}
	l = nm_req(b, sizeof(b), NM_MARK, NM_OTHER);
	n = send(fd, b, l, 0);
	nm_judge(r, fd, n, n < 0 ? errno : 0, "after a TLS pass and a reconnect, Host: " NM_OTHER);
	close(fd);
}

static void nm_sockopt(struct result *r, int opt, const void *v, socklen_t vl,
		       const char *what)
{
	int fd = nm_conn(r);

	if (fd < 0)
		return;
	if (!setsockopt(fd, IPPROTO_TCP, opt, v, vl))
		set(r, V_ESCAPED, "%s accepted on a socket whose first bytes were not judged", what);
	else if (errno == EPERM)
		set(r, V_BLOCKED, "%s: EPERM (cgroup/setsockopt: not before the name check "
		    "passed, or no CAP_NET_ADMIN)", what);
	else
		set(r, V_ESCAPED, "%s: %s, not refused by the check", what, en(errno));
	close(fd);
}

static void t_nm_ktls(struct result *r)
{
	nm_sockopt(r, TCP_ULP, "tls", 4, "TCP_ULP \"tls\" (kernel TLS)");
}

static void t_nm_repair(struct result *r)
{
	int one = 1;

	nm_sockopt(r, TCP_REPAIR, &one, sizeof(one), "TCP_REPAIR");
}

static void t_nm_quic(struct result *r)
{
	struct addr q = mk(A4, 443);
	int fd;

	if (!nm_learn(r))
		return;
	fd = sock(AF_INET, SOCK_DGRAM, 0);
	if (connect(fd, SA(&q), q.len))
		judge_send(r, -1, &q, H_C4 " (QUIC to a name-checked address)", "QUIC: ");
	else
		judge_send(r, send(fd, NM_MARK " quic initial", 20, 0), &q, H_S4, "QUIC: ");
	close(fd);
}

/*
 * The echo server answers once a newline came, then closes: NL, one more
 * send of "\n" (after a ClientHello; HTTP ends in one).
 */
static void nm_control(struct result *r, const void *b, size_t l, bool nl,
		       const char *what)
{
	int fd = nm_conn(r);

	if (fd < 0) {
		r->v = V_FAIL;
		return;
	}
	if (send(fd, b, l, 0) == (ssize_t)l && (!nl || send(fd, "\n", 1, 0) == 1) &&
	    nm_echoed(fd, WAIT_MS))
		set(r, V_OK, "%s: the echo server at %s answered", what, X.a4t.text);
	else
		set(r, V_FAIL, "%s: no echo from %s (%s)", what, X.a4t.text, en(errno));
	close(fd);
}

static void c_nm_http(struct result *r)
{
	char b[256];

	nm_control(r, b, nm_req(b, sizeof(b), "control", NM_HOST), false,
		   "HTTP, Host: " NM_HOST);
}

static void c_nm_tls(struct result *r)
{
	static uint8_t b[20000];

	/* under the echo server's 512-byte line, which it would answer and close */
	nm_control(r, b, nm_hello(b, NM_HOST, 0, false, "control"), true,
		   "ClientHello, SNI " NM_HOST);
}

/* ---- the table ---- */

struct technique {
	const char *name;
	const char *group;
	void (*fn)(struct result *);
	enum verdict kind;		/* V_BLOCKED: technique; V_OK: control; V_NOTE */
	const char *attach_limit;	/* why attach mode cannot stop it */
	unsigned flags;			/* T_* */
	enum mech_id mech;		/* what the machine must offer, or M_NONE */
};

/*
 * T_SECCOMP: only run's and moat-runc's seccomp family rules stop it once
 * CAP_NET_RAW is held; the runner runs it again as root with every
 * capability so that those rules, not the missing capability, are proven.
 * T_SIGSYS: a seccomp kill (native-ABI-only filter) is how it is blocked;
 * in any other technique SIGSYS is a harness failure, not a block.
 */
#define T_SECCOMP	(1u << 0)
#define T_SIGSYS	(1u << 1)

#define NOSECCOMP	"no seccomp filter under attach; moat-bpf run and moat-runc install one"
#define NETRAW		"CAP_NET_RAW is Docker's default; moat-runc and run --caps container drop it"
#define HOSTCGFS	"the host cgroupfs is writable for root under attach (no cgroup namespace, no read-only mount)"
#define HOSTBPFFS	"the workload shares the host mount namespace under attach, bpffs included"

/* Most rows need neither flags nor a mechanism: their trailing fields are
 * left out and read as 0 (none). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct technique T[] = {
	{ "control-tcp4-allowed", "netns", c_tcp4, V_OK, NULL },
	{ "control-udp4-allowed", "netns", c_udp4, V_OK, NULL },
	{ "control-tcp6-allowed", "netns", c_tcp6, V_OK, NULL },
	{ "control-udp6-allowed", "netns", c_udp6, V_OK, NULL },
	{ "control-dns-allowed", "netns", c_dns, V_OK, NULL },
	{ "mptcp-allowed", "netns", n_mptcp_allowed, V_NOTE, NULL },

	{ "tcp4-connect", "netns", t_tcp4, V_BLOCKED, NULL },
	{ "tcp4-connect-other-net", "netns", t_tcp4_other, V_BLOCKED, NULL },
	{ "tcp6-connect", "netns", t_tcp6, V_BLOCKED, NULL },
	{ "tcp6-v4mapped-connect", "netns", t_tcp6_mapped, V_BLOCKED, NULL },
	{ "tcp6-v4compat-nat64", "netns", t_tcp6_v4_spellings, V_BLOCKED, NULL },
	{ "udp4-sendto", "netns", t_udp4, V_BLOCKED, NULL },
	{ "udp6-sendto", "netns", t_udp6, V_BLOCKED, NULL },
	{ "udp6-v4mapped-sendto", "netns", t_udp6_mapped, V_BLOCKED, NULL },
	{ "udp4-connect-send", "netns", t_udp_connect, V_BLOCKED, NULL },
	{ "udp6-v4mapped-connect", "netns", t_udp6_mapped_connect, V_BLOCKED, NULL },
	{ "udp4-connected-sendto-other", "netns", t_udp_connected_sendto, V_BLOCKED, NULL },
	{ "udp6-connected-sendto-other", "netns", t_udp6_connected_sendto, V_BLOCKED, NULL },
	{ "udp-ipv6-addrform", "netns", t_udp_addrform, V_BLOCKED, NULL, 0, M_ADDRFORM },
	{ "udp4-sendmmsg", "netns", t_sendmmsg, V_BLOCKED, NULL },
	{ "tcp4-fastopen-sendto", "netns", t_tfo4, V_BLOCKED, NULL },
	{ "tcp6-fastopen-sendto", "netns", t_tfo6, V_BLOCKED, NULL },
	{ "tcp4-fastopen-connect", "netns", t_tfo_connect, V_BLOCKED, NULL },
	{ "mptcp4-connect", "netns", t_mptcp4, V_BLOCKED, NULL },
	{ "mptcp6-connect", "netns", t_mptcp6, V_BLOCKED, NULL },
	{ "io-uring-connect", "netns", t_uring_connect, V_BLOCKED, NULL },
	{ "io-uring-sendmsg", "netns", t_uring_sendmsg, V_BLOCKED, NULL },
	{ "io-uring-socket-vsock", "netns", t_uring_socket_vsock, V_BLOCKED, NOSECCOMP, T_SECCOMP, M_NONE },
	{ "raw4-socket-send", "netns", t_raw4, V_BLOCKED, NULL },
	{ "raw6-socket-send", "netns", t_raw6, V_BLOCKED, NULL },
	{ "ping4-socket", "netns", t_ping4, V_BLOCKED, NULL },
	{ "ping6-socket", "netns", t_ping6, V_BLOCKED, NULL },
	{ "af-packet-socket", "netns", t_af_packet, V_BLOCKED, NOSECCOMP "; " NETRAW, T_SECCOMP, M_NONE },
	{ "af-inet-sock-packet", "netns", t_sock_packet, V_BLOCKED, NETRAW },
	{ "af-xdp-socket", "netns", t_af_xdp, V_BLOCKED, NOSECCOMP "; " NETRAW, T_SECCOMP, M_NONE },
	{ "af-vsock-socket", "netns", t_af_vsock, V_BLOCKED, NOSECCOMP, T_SECCOMP, M_NONE },
	{ "other-families", "netns", t_other_families, V_BLOCKED, NULL },
	{ "i386-compat-connect", "netns", t_i386_connect, V_BLOCKED, NULL, T_SIGSYS, M_I386 },
	{ "i386-compat-vsock", "netns", t_i386_vsock, V_BLOCKED, NOSECCOMP, T_SECCOMP | T_SIGSYS, M_I386 },
	{ "sctp", "netns", t_sctp, V_BLOCKED, NULL, 0, M_SCTP },
	{ "ipv6-link-local-scope", "netns", t_linklocal, V_BLOCKED, NULL },
	{ "udp4-broadcast-multicast", "netns", t_broadcast, V_BLOCKED, NULL },
	{ "udp6-multicast-link", "netns", t_multicast6, V_BLOCKED, NULL },
	{ "ipv4-lsrr-tcp", "netns", t_lsrr_tcp, V_BLOCKED, NULL },
	{ "ipv4-lsrr-udp", "netns", t_lsrr_udp, V_BLOCKED, NULL },
	{ "ipv4-lsrr-cmsg-connected-udp", "netns", t_lsrr_cmsg, V_BLOCKED, NULL },
	{ "ipv6-srh-tcp", "netns", t_srh_tcp, V_BLOCKED, NULL },
	{ "ipv6-srh-udp", "netns", t_srh_udp, V_BLOCKED, NULL },
	{ "udp6-reply-to-spoofed-peer", "netns", t_reply_spoof6, V_BLOCKED, NULL },
	{ "udp4-reply-to-spoofed-peer", "netns", t_reply_spoof4, V_BLOCKED, NULL },
	{ "udp6-reply-spoof-nonlocal-bind", "netns", t_reply_spoof6_sysctl, V_BLOCKED, NULL },
	{ "udp4-reply-spoof-nonlocal-bind", "netns", t_reply_spoof4_sysctl, V_BLOCKED, NULL },
	{ "unshare-netns-connect", "netns", t_unshare_net, V_BLOCKED, NULL },
	{ "userns-netns-connect", "netns", t_userns_net, V_BLOCKED, NULL },
	{ "setns-host-netns", "netns", t_setns_host, V_BLOCKED, NULL },
	{ "pidfd-getfd-outside", "netns", t_pidfd_getfd, V_BLOCKED, NULL },
	{ "cgroup-procs-write-root", "netns", t_cgroup_write, V_BLOCKED, HOSTCGFS },
	{ "cgroup-clone3-into-root", "netns", t_cgroup_clone3, V_BLOCKED, HOSTCGFS },
	{ "cgroup-remount-rw", "netns", t_cgroup_remount, V_BLOCKED, NULL },
	{ "cgroup-userns-escape", "netns", t_cgroup_userns, V_BLOCKED, HOSTCGFS },
	{ "bpf-prog-query", "netns", t_bpf_query, V_BLOCKED, NULL },
	{ "bpf-link-by-id", "netns", t_bpf_link_ids, V_BLOCKED, NULL },
	{ "bpf-obj-get-pins", "netns", t_bpf_obj_get, V_BLOCKED, HOSTBPFFS },
	{ "bpffs-unlink-pins", "netns", t_bpffs_unlink, V_BLOCKED, HOSTBPFFS },
	{ "bpffs-mount", "netns", t_bpffs_mount, V_BLOCKED, NULL },
	{ "daemon-control-socket", "netns", t_control_socket, V_BLOCKED, NULL },
	{ "dns-exfil-udp-upstream", "netns", t_dns_udp, V_BLOCKED, NULL },
	{ "dns-exfil-udp-connected", "netns", t_dns_udp_connected, V_BLOCKED, NULL },
	{ "dns-exfil-tcp-upstream", "netns", t_dns_tcp, V_BLOCKED, NULL },
	{ "dns-exfil-udp6-upstream", "netns", t_dns_v6, V_BLOCKED, NULL },
	{ "dns-exfil-udp-other-server", "netns", t_dns_other_udp, V_BLOCKED, NULL },
	{ "dns-exfil-tcp-other-server", "netns", t_dns_other_tcp, V_BLOCKED, NULL },
	{ "dns-exfil-tcp-pipelined", "netns", t_dns_pipelined, V_BLOCKED, NULL },
	{ "dns-exfil-two-questions", "netns", t_dns_two_questions, V_BLOCKED, NULL },
	{ "dns-exfil-additional-record", "netns", t_dns_additional, V_BLOCKED, NULL },
	{ "dns-exfil-edns-option", "netns", t_dns_edns_option, V_BLOCKED, NULL },
	{ "dns-exfil-update-opcode", "netns", t_dns_update, V_BLOCKED, NULL },
	{ "dns-exfil-nul-label", "netns", t_dns_nul_label, V_BLOCKED, NULL },
	{ "dns-server-other-ports", "netns", t_dns_other_ports, V_BLOCKED, NULL },

	{ "tcp4-zero-net", "netns", t_tcp4_zero, V_BLOCKED, NULL },
	{ "udp4-zero-net", "netns", t_udp4_zero, V_BLOCKED, NULL },
	{ "udp4-connect-zero-net", "netns", t_udp4_zero_connect, V_BLOCKED, NULL },
	{ "tcp6-v4mapped-zero-net", "netns", t_tcp6_mapped_zero, V_BLOCKED, NULL },
	{ "udp6-v4mapped-zero-net", "netns", t_udp6_mapped_zero, V_BLOCKED, NULL },
	{ "udplite4-connect", "netns", t_udplite4, V_BLOCKED, NULL },
	{ "udplite6-connect", "netns", t_udplite6, V_BLOCKED, NULL },
	{ "ipv6-2292pktoptions", "netns", t_2292pktoptions, V_BLOCKED, NULL },
	{ "io-uring-setsockopt-rthdr", "netns", t_uring_setsockopt, V_BLOCKED, NULL },
	{ "io-uring-socket-udplite", "netns", t_uring_socket_udplite, V_BLOCKED, NULL },

	{ "control-names-http-allowed", "names", c_nm_http, V_OK, NULL },
	{ "control-names-tls-allowed", "names", c_nm_tls, V_OK, NULL },
	{ "names-http-other-host", "names", t_nm_http_other, V_BLOCKED, NULL },
	{ "names-http-split-sends", "names", t_nm_http_split, V_BLOCKED, NULL },
	{ "names-http-keepalive-second-host", "names", t_nm_http_keepalive, V_BLOCKED, NULL },
	{ "names-tls-other-sni", "names", t_nm_tls_other, V_BLOCKED, NULL },
	{ "names-tls-split-sends", "names", t_nm_tls_split, V_BLOCKED, NULL },
	{ "names-tls-no-sni", "names", t_nm_tls_nosni, V_BLOCKED, NULL },
	{ "names-tls-oversized", "names", t_nm_tls_oversized, V_BLOCKED, NULL },
	{ "names-tls-ech", "names", t_nm_tls_ech, V_BLOCKED, NULL },
	{ "names-raw-bytes", "names", t_nm_raw, V_BLOCKED, NULL },
	{ "names-fastopen-sendto", "names", t_nm_tfo, V_BLOCKED, NULL },
	{ "names-fastopen-connect", "names", t_nm_tfo_connect, V_BLOCKED, NULL },
	{ "names-send-in-syn-sent", "names", t_nm_synsent, V_BLOCKED, NULL },
	{ "names-mptcp", "names", t_nm_mptcp, V_BLOCKED, NULL },
	{ "names-sendfile", "names", t_nm_sendfile, V_BLOCKED, NULL },
	{ "names-vmsplice-splice", "names", t_nm_splice, V_BLOCKED, NULL },
	{ "names-io-uring-send", "names", t_nm_uring_send, V_BLOCKED, NULL },
	{ "names-io-uring-send-zc", "names", t_nm_uring_send_zc, V_BLOCKED, NULL },
	{ "names-msg-zerocopy", "names", t_nm_zerocopy, V_BLOCKED, NULL },
	{ "names-sendmmsg", "names", t_nm_sendmmsg, V_BLOCKED, NULL },
	{ "names-fd-in-another-process", "names", t_nm_fd_elsewhere, V_BLOCKED, NULL },
	{ "names-tls-pass-then-reconnect", "names", t_nm_reconnect, V_BLOCKED, NULL },
	{ "names-ktls-ulp", "names", t_nm_ktls, V_BLOCKED, NULL },
	{ "names-tcp-repair", "names", t_nm_repair, V_BLOCKED, NULL },
	{ "names-quic", "names", t_nm_quic, V_BLOCKED, NULL },

	{ "host-connect-0.0.0.0", "host", t_host_any4, V_BLOCKED, NULL },
	{ "host-connect-[::]", "host", t_host_any6, V_BLOCKED, NULL },
	{ "host-connect-127.0.0.1", "host", t_host_lo4, V_BLOCKED, NULL },
	{ "host-connect-[::1]", "host", t_host_lo6, V_BLOCKED, NULL },
	{ "host-connect-v4mapped-loopback", "host", t_host_mapped, V_BLOCKED, NULL },
	{ "host-connect-v4mapped-any", "host", t_host_mapped_any, V_BLOCKED, NULL },
	{ "host-udp-any", "host", t_host_any_udp, V_BLOCKED, NULL },
};
#pragma GCC diagnostic pop
#define N_T (sizeof(T) / sizeof(T[0]))

static bool selected(const struct technique *t)
{
	const char *p = opt_only;
	size_t l = strlen(t->name);

	if (strcmp(t->group, opt_group))
		return false;
	if (!p)
		return true;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == l && !strncmp(p, t->name, l))
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

/* One technique in a child of its own, with a time limit. */
static void run_one(const struct technique *t, struct result *r)
{
	int pfd[2], st = 0;
	pid_t pid;
	ssize_t n;
	time_t end;

	memset(r, 0, sizeof(*r));
	if (!mech_present(t->mech, r->how, sizeof(r->how))) {
		r->v = V_NA;
		return;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		set(r, V_ESCAPED, "pipe: %s (harness)", en(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct result cr;

		close(pfd[0]);
		memset(&cr, 0, sizeof(cr));
		cr.v = V_ESCAPED;
		snprintf(cr.how, sizeof(cr.how), "the technique returned no verdict");
		t->fn(&cr);
		if (write(pfd[1], &cr, sizeof(cr)) != sizeof(cr))
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	end = time(NULL) + TECH_TIMEOUT_S;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (time(NULL) > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			set(r, t->kind == V_BLOCKED ? V_ESCAPED : V_FAIL,
			    "no verdict within %d s (hung, killed)", TECH_TIMEOUT_S);
			close(pfd[0]);
			return;
		}
		usleep(10000);
	}
	n = read(pfd[0], r, sizeof(*r));
	close(pfd[0]);
	if (n == sizeof(*r))
		return;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS && (t->flags & T_SIGSYS))
		set(r, t->kind == V_BLOCKED ? V_BLOCKED : V_FAIL,
		    "killed by SIGSYS: the seccomp filter allows the native ABI only");
	else if (WIFSIGNALED(st))
		set(r, t->kind == V_BLOCKED ? V_ESCAPED : V_FAIL,
		    "the technique died of signal %d (harness)", WTERMSIG(st));
	else
		set(r, t->kind == V_BLOCKED ? V_ESCAPED : V_FAIL,
		    "the technique exited %d without a verdict (harness)", WEXITSTATUS(st));
}

static int usage(void)
{
	fprintf(stderr, "usage: moat-escape [--group netns|host|names] [--only NAME[,NAME]...] "
		"[--list] [--probe] [--mode run|attach] [--ll ADDR%%IF] [--host-port N]\n");
	return 2;
}

int main(int argc, char **argv)
{
	bool list = false;
	int escaped = 0, failed = 0, n = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--list")) {
			list = true;
		} else if (!strcmp(a, "--probe")) {
			setvbuf(stdout, NULL, _IOLBF, 0);
			return probe_all();
		} else if (!strcmp(a, "--group") && v) {
			opt_group = v;
			i++;
		} else if (!strcmp(a, "--only") && v) {
			opt_only = v;
			i++;
		} else if (!strcmp(a, "--mode") && v) {
			if (strcmp(v, "run") && strcmp(v, "attach"))
				return usage();
			opt_attach = !strcmp(v, "attach");
			i++;
		} else if (!strcmp(a, "--ll") && v) {
			opt_ll = v;
			i++;
		} else if (!strcmp(a, "--host-port") && v) {
			opt_host_port = atoi(v);
			i++;
		} else {
			return usage();
		}
	}
	if (strcmp(opt_group, "netns") && strcmp(opt_group, "host") &&
	    strcmp(opt_group, "names"))
		return usage();
	if (list) {
		/* KIND NAME MECH FLAGS: the runner's list of what may be n/a
		 * (MECH, when the probe says absent) and what T_SECCOMP reruns */
		for (size_t i = 0; i < N_T; i++)
			if (!strcmp(T[i].group, opt_group))
				printf("%s %s %s %s\n", T[i].kind == V_OK ? "CONTROL" :
				       T[i].kind == V_NOTE ? "NOTE" : "TECHNIQUE", T[i].name,
				       T[i].mech ? MECH[T[i].mech].name : "-",
				       T[i].flags & T_SECCOMP ? "seccomp" : "-");
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	outer_parent = getppid();
	X.b4t = mk(B4, TPORT);
	X.c4t = mk(C4, 443);
	X.b6t = mk(B6, TPORT);
	X.m4t = mk("::ffff:" B4, TPORT);
	X.b4u = mk(B4, UPORT);
	X.c4u = mk(C4, UPORT);
	X.b6u = mk(B6, UPORT);
	X.m4u = mk("::ffff:" B4, UPORT);
	X.a4t = mk(A4, TPORT);
	X.a6t = mk(A6, TPORT);
	X.a4u = mk(A4, UPORT);
	X.a6u = mk(A6, UPORT);

	for (size_t i = 0; i < N_T; i++) {
		const struct technique *t = &T[i];
		struct result r;

		if (!selected(t))
			continue;
		run_one(t, &r);
		if (t->kind == V_NOTE) {
			printf("NOTE %s: %s\n", t->name, r.how);
			continue;
		}
		if (t->kind == V_OK) {
			bool ok = r.v == V_OK;

			printf("CONTROL %s: %s (%s)\n", t->name, ok ? "ok" : "FAIL", r.how);
			failed += !ok;
			continue;
		}
		n++;
		if (r.v == V_ESCAPED && opt_attach && t->attach_limit) {
			printf("TECHNIQUE %s: n/a in attach mode (documented limit: %s; "
			       "observed: %s)\n", t->name, t->attach_limit, r.how);
			continue;
		}
		printf("TECHNIQUE %s: %s (%s)\n", t->name,
		       r.v == V_BLOCKED ? "blocked" : r.v == V_NA ? "n/a" : "escaped", r.how);
		escaped += r.v == V_ESCAPED;
	}
	if (!opt_only)
		printf("moat-escape: %d techniques, %d escaped, %d controls failed\n", n,
		       escaped, failed);
	return escaped || failed ? 1 : 0;
}
