// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * README claims about the pinned layout version that had no test (issue
 * 10): other commands refuse a pinned set of another layout version, and
 * a running daemon reopens the maps after `upgrade`. Split from
 * claims_resolver.c; the same world, upstream and daemon.
 *
 * Checked against mutated builds (each failed the first test): a daemon
 * that never follows an upgrade ("never reopened the maps"), and a state
 * open that ignores the layout version (attach on layout 99 went on).
 * The last test against main before guards_relist(): 16 of 16 runs failed
 * (the open TCP exchange unlisted, a workload's connect ECONNREFUSED).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <json-c/json.h>
#include <ldns/ldns.h>

#include "harness.h"
#include "moat_abi.h"

#define DAEMON_ARGS		"-v --dns-upstream " KT_DNS4
#define POLL_MS			5000

static struct {
	pid_t daemon;
	char log[PATH_MAX];
	char alt[PATH_MAX];	/* a build with another layout version */
} C;

static void claims_upgrade_setup(void)
{
	memset(&C, 0, sizeof(C));
	C.daemon = daemon_setup(DAEMON_ARGS, C.log);
}

static void claims_upgrade_teardown(void)
{
	struct run_result r;

	if (C.daemon > 0) {
		kill(C.daemon, SIGCONT);	/* a test may fail with it stopped */
		daemon_stop(C.daemon);
	}
	/* never leave another layout pinned for the next test */
	if (C.alt[0]) {
		run(&r, "\"$MOAT_BIN\" upgrade >/dev/null 2>&1 || '%s' unload",
		    C.alt);
		run_free(&r);
	}
	daemon_forget_registrations();
	harness_teardown();
}

#define RCTEST(name)							\
	Test(claims_upgrade, name, .init = claims_upgrade_setup,	\
	     .fini = claims_upgrade_teardown, .timeout = KT_TEST_TIMEOUT_S)

/* ---- the pinned layout version across `upgrade` ---- */

/* Poll a TCP client until EPERM; the last word it got. */
static const char *client_until_eperm(const char *cg, const char *addr,
				      int port)
{
	long long deadline = kt_now_ms() + POLL_MS;
	const char *w;

	do {
		w = client(cg, "tcp", addr, port);
		if (!strcmp(w, "EPERM"))
			break;
		kt_sleep_ms(100);
	} while (kt_now_ms() < deadline);
	return w;
}

/*
 * A build of this tree whose pinned layout version is 99: MOAT_ALT_BIN,
 * else built next to MOAT_BIN (as tools/upgrade-test.sh does).
 */
static void alt_build(void)
{
	const char *env = getenv("MOAT_ALT_BIN");
	char dir[PATH_MAX];
	struct run_result r;

	if (env && *env) {
		snprintf(C.alt, sizeof(C.alt), "%s", env);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", H.moat);
	*strrchr(dir, '/') = 0;
	snprintf(C.alt, sizeof(C.alt), "%.*s/claims-alt/moat-bpf",
		 PATH_MAX - 32, dir);
	run(&r, "make -s -C '%s' OUTPUT='%s/claims-alt' "
	    "MOAT_DEFS=-DMOAT_LAYOUT_VERSION=99 '%s'", H.root, dir, C.alt);
	cr_assert_eq(r.status, 0, "building the layout-99 moat-bpf: %s%s",
		     r.out, r.err);
	run_free(&r);
}

/*
 * README, Upgrades: "Other commands refuse a pinned set of another layout
 * version until `upgrade` has run" and "A daemon notices new maps and
 * reopens them." A layout-99 build upgrades the pinned set; this build's
 * attach, detach, status, run, events and policy reload then fail in one
 * line naming the version, change nothing, and the cgroup stays enforced
 * (unload too: checked at the end, as a failure there unloads all). This build's `upgrade` moves everything back into new maps;
 * the running daemon reopens them: once the address learned before has
 * expired (TTL 1), a new lookup opens it again, in the new pinned map.
 */
RCTEST(other_layout_refused_and_daemon_follows_upgrade)
{
	char name[64], pol[PATH_MAX], *before, *after, *log;
	const char *cg, *other, *w;
	struct run_result r;
	long long deadline;
	__u32 pid;

	alt_build();
	snprintf(name, sizeof(name), "layout-%d", (int)getpid());
	cg = cg_make(name);
	other = cg_make("layout-other");
	snprintf(pol, sizeof(pol), "%s", write_policy(name,
		 "allow:\n  - allowed.test:8080?names=any\ndns:\n  min_ttl: 0\n  grace: 0\n"));
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg, pol);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	expect_allowed(cg, "tcp", W4_A, 8080);

	run(&r, "'%s' upgrade", C.alt);
	cr_assert_eq(r.status, 0, "layout-99 upgrade: %s", r.err);
	run_free(&r);
	run(&r, "'%s' status --json", C.alt);
	cr_assert(strstr(r.out, "\"pinned_layout\":99"), "%s%s", r.out, r.err);
	before = r.out;
	r.out = NULL;
	run_free(&r);

	{
		char cmds[6][PATH_MAX + 64];

		snprintf(cmds[0], sizeof(cmds[0]), "attach %s --allow tcp://"
			 W4_A ":80", other);
		snprintf(cmds[1], sizeof(cmds[1]), "detach %s", cg);
		snprintf(cmds[2], sizeof(cmds[2]), "status");
		snprintf(cmds[3], sizeof(cmds[3]), "run --allow tcp://" W4_A
			 ":80 -- true");
		snprintf(cmds[4], sizeof(cmds[4]), "events");
		snprintf(cmds[5], sizeof(cmds[5]), "policy reload %s", pol);
		for (int i = 0; i < 6; i++) {
			moat(&r, "%s", cmds[i]);
			cr_assert_eq(r.status, 1, "'%s' on layout 99: exit %d: %s",
				     cmds[i], r.status, r.err);
			cr_assert(strstr(r.err, "layout version 99"),
				  "'%s' does not name the layout: %s", cmds[i],
				  r.err);
			run_free(&r);
		}
	}
	run(&r, "'%s' status --json", C.alt);
	after = r.out;
	r.out = NULL;
	run_free(&r);
	cr_assert_str_eq(after, before, "a refused command changed the state");
	free(after);
	free(before);
	expect_blocked(cg, "tcp", W4_B, 8080);
	expect_allowed(other, "tcp", W4_B, 80);	/* its attach was refused */

	/*
	 * The gate of the daemon's sockets from a set without it: cleared
	 * here, `upgrade` must derive it from the listed sockets before the
	 * new programs run; the daemon, stopped, cannot set it again.
	 */
	{
		int ports = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_daemon_ports");
		int listed, ungated;
		__u64 zero = 0;

		cr_assert_geq(ports, 0, "moat_daemon_ports pin: %s", strerror(errno));
		for (__u32 w = 0; w < MOAT_DAEMON_PORT_WORDS; w++)
			bpf_map_update_elem(ports, &w, &zero, BPF_ANY);
		close(ports);
		cr_assert_eq(kill(C.daemon, SIGSTOP), 0);
		moat(&r, "upgrade");
		ungated = daemon_socks_ungated(&listed);
		kill(C.daemon, SIGCONT);
		cr_assert_eq(r.status, 0, "upgrade: %s", r.err);
		run_free(&r);
		cr_assert_geq(listed, 1, "no daemon socket listed across the upgrade");
		cr_assert_eq(ungated, 0, "%d of %d listed daemon sockets lost "
			     "their gate in the upgrade", ungated, listed);
	}
	/* the daemon reopens the new maps (on its 1 s timer) */
	deadline = kt_now_ms() + POLL_MS;
	do {
		log = read_text(C.log);
		if (log && strstr(log, "program set was upgraded; maps reopened"))
			break;
		free(log);
		log = NULL;
		kt_sleep_ms(100);
	} while (kt_now_ms() < deadline);
	cr_assert_not_null(log, "the daemon never reopened the maps");
	free(log);
	w = client_until_eperm(cg, W4_A, 8080);
	cr_assert_str_eq(w, "EPERM", "the learned address never expired: %s", w);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	pid = status_of(cg).policy_id;
	cr_assert(learned_in_pins(pid, W4_A), "the daemon learned " W4_A
		  " into maps that are no longer pinned");
	expect_allowed(cg, "tcp", W4_A, 8080);
	daemon_expect_alive(C.daemon, C.log);
}

/*
 * The same refusals as README's general rules ask for them: "Every error
 * is one line naming what and where", and the pinned state carries "a
 * layout version that a different moat-bpf refuses to touch" (unload
 * included). Kept apart from the test above: this one fails today (see
 * the issue-10 report) and must not hide what that one shows.
 */
RCTEST(other_layout_refusal_one_line_and_unload)
{
	char name[64], pol[PATH_MAX], found[4096] = "";
	static const char *const cmds[] = { "status", "policy reload %s",
					    "attach %s", "detach %s" };
	const char *cg;
	struct run_result r;

	alt_build();
	snprintf(name, sizeof(name), "layout1-%d", (int)getpid());
	cg = cg_make(name);
	snprintf(pol, sizeof(pol), "%s", write_policy(name,
		 "allow:\n  - tcp://" W4_A ":80\n"));
	moat_ok("attach %s --policy %s", cg, pol);
	run(&r, "'%s' upgrade", C.alt);
	cr_assert_eq(r.status, 0, "layout-99 upgrade: %s", r.err);
	run_free(&r);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char cmd[PATH_MAX + 64];

		snprintf(cmd, sizeof(cmd), cmds[i], i == 1 ? pol : cg);
		moat(&r, "%s", cmd);
		if (r.status != 1 || count_lines(r.err) != 1)
			snprintf(found + strlen(found), sizeof(found) - strlen(found),
				 "\n'%.200s': exit %d, %d lines: %.600s", cmd,
				 r.status, count_lines(r.err), r.err);
		run_free(&r);
	}
	moat(&r, "unload");
	if (r.status != 1 || !strstr(r.err, "layout version 99"))
		snprintf(found + strlen(found), sizeof(found) - strlen(found),
			 "\n'unload': exit %d, stderr '%.300s': it removed the "
			 "layout-99 set", r.status, r.err);
	run_free(&r);
	cr_assert_eq(found[0], 0, "refusing layout 99:%s", found);
}

/* ---- an upstream exchange open across the follow ---- */

#define SILENT_PORT		5399	/* none of testnet.sh's world_ports */
#define CLIENT_NS_ADDR		"198.18.0.1"	/* veth0: the daemon's source */

/* A TCP listener on W4_A:SILENT_PORT in the world that never answers. */
static int silent_upstream(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(SILENT_PORT) };
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int world = open(KT_NS_WORLD, O_RDONLY | O_CLOEXEC);
	int fd = -1, one = 1, err = 0;

	cr_assert(self >= 0 && world >= 0, "netns: %s", strerror(errno));
	inet_pton(AF_INET, W4_A, &sa.sin_addr);
	cr_assert_eq(setns(world, CLONE_NEWNET), 0, "setns: %s", strerror(errno));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 8))
		err = errno;
	cr_assert_eq(setns(self, CLONE_NEWNET), 0, "setns back: %s", strerror(errno));
	close(self);
	close(world);
	cr_assert_eq(err, 0, "listening on " W4_A ":%d in the world: %s",
		     SILENT_PORT, strerror(err));
	return fd;
}

/* An A query for NAME as sent over TCP (length first); its size. */
static size_t tcp_query(const char *name, __u8 *buf, size_t len)
{
	ldns_pkt *q = NULL;
	uint8_t *w = NULL;
	size_t n = 0;

	cr_assert_eq(ldns_pkt_query_new_frm_str(&q, name, LDNS_RR_TYPE_A,
						LDNS_RR_CLASS_IN, LDNS_RD),
		     LDNS_STATUS_OK);
	cr_assert_eq(ldns_pkt2wire(&w, q, &n), LDNS_STATUS_OK);
	cr_assert_leq(n + 2, len);
	buf[0] = n >> 8;
	buf[1] = n & 0xff;
	memcpy(buf + 2, w, n);
	free(w);
	ldns_pkt_free(q);
	return n + 2;
}

/*
 * The workload (forked): one TCP connection to its DNS server, that is
 * the daemon. PROBE is answered at once (a refused name): the daemon has
 * accepted the connection and watches it. Its local port to the parent,
 * then Q when told, "w" once written; it holds the connection until told.
 */
static void workload(const char *cg, int to_parent, int from_parent,
		     const __u8 *probe, size_t probe_len, const __u8 *q,
		     size_t q_len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	socklen_t len = sizeof(sa);
	struct timeval tv = { .tv_sec = 5 };
	__u8 ans[2];
	char c;
	int fd;

	inet_pton(AF_INET, KT_DNS4, &sa.sin_addr);
	if (kt_enter(cg, KT_NS_CLIENT))
		_exit(2);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, probe, probe_len) != (ssize_t)probe_len ||
	    recv(fd, ans, 2, MSG_WAITALL) != 2 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) ||
	    write(to_parent, &sa.sin_port, 2) != 2 ||
	    read(from_parent, &c, 1) != 1 ||
	    write(fd, q, q_len) != (ssize_t)q_len || write(to_parent, "w", 1) != 1)
		_exit(3);
	(void)!read(from_parent, &c, 1);
	_exit(0);
}

/* Read one byte's worth (N) from FD within MS; false on timeout or EOF. */
static bool read_within(int fd, void *buf, size_t n, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && read(fd, buf, n) == (ssize_t)n;
}

/* FD (a connection) not closed by its peer; what it sent is read and dropped. */
static bool still_open(int fd)
{
	char buf[512];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	return n < 0 && errno == EAGAIN;
}

/* /proc/PID/stat says it is stopped (SIGSTOP is delivered asynchronously). */
static bool stopped(pid_t pid)
{
	char path[64], *t, *paren;
	bool s;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	t = read_text(path);
	paren = t ? strrchr(t, ')') : NULL;
	s = paren && paren[1] == ' ' && paren[2] == 'T';
	free(t);
	return s;
}

/*
 * The daemon's 1 s timer (a timerfd on CLOCK_BOOTTIME, from which it
 * follows an upgrade): *TICKS expirations not read yet, *DUE_MS until the
 * next. False if it has none or more than one.
 */
static bool daemon_timer(pid_t pid, unsigned long long *ticks, long long *due_ms)
{
	char dir[64], path[PATH_MAX], link[64];
	struct dirent *e;
	int found = 0;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	dp = opendir(dir);
	if (!dp)
		return false;
	while ((e = readdir(dp))) {
		ssize_t n;
		char *t, *a, *b;
		long long s, ns;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (strcmp(link, "anon_inode:[timerfd]"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, e->d_name);
		t = read_text(path);
		a = t ? strstr(t, "ticks: ") : NULL;
		b = t ? strstr(t, "it_value: (") : NULL;
		/* CLOCK_BOOTTIME: not the children's rescan timer (monotonic) */
		if (t && strstr(t, "clockid: 7\n") && a && b && sscanf(a, "ticks: %llu", ticks) == 1 &&
		    sscanf(b, "it_value: (%lld, %lld)", &s, &ns) == 2) {
			*due_ms = s * 1000 + ns / 1000000;
			found++;
		}
		free(t);
	}
	closedir(dp);
	return found == 1;
}

/*
 * Bytes waiting to be read on the daemon's end of the workload's
 * connection from local port CPORT (/proc/PID/net/tcp of a task in the
 * client netns); -1 if there is no such socket.
 */
static long daemon_end_rx(pid_t pid, __u16 cport)
{
	char path[64], *t, *line;
	long rx = -1;

	snprintf(path, sizeof(path), "/proc/%d/net/tcp", (int)pid);
	t = read_text(path);
	for (line = t ? strchr(t, '\n') : NULL; line && *++line;
	     line = strchr(line, '\n')) {
		unsigned int lport, rport;
		unsigned long q;

		if (sscanf(line, " %*d: %*x:%x %*x:%x %*x %*x:%lx", &lport,
			   &rport, &q) == 3 && rport == cport && lport != cport)
			rx = (long)q;
	}
	free(t);
	return rx;
}

/*
 * Whether the pinned moat_daemon_socks lists local port PORT (network
 * order), in any netns; with ADDR, only as a TCP socket on ADDR.
 */
static bool sock_listed(const struct in_addr *addr, __u16 port)
{
	int socks = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_daemon_socks");
	struct moat_daemon_sock_key k, *prev = NULL;
	bool found = false;

	cr_assert_geq(socks, 0, "moat_daemon_socks pin: %s", strerror(errno));
	while (!found && !bpf_map_get_next_key(socks, prev, &k)) {
		prev = &k;
		found = k.port == port &&
			(!addr || (k.protocol == IPPROTO_TCP && k.family == AF_INET &&
				   k.addr[0] == addr->s_addr));
	}
	close(socks);
	return found;
}

/* Whether PORT's bit is set in the pinned moat_daemon_ports. */
static bool port_gated(__u16 port)
{
	int ports = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_daemon_ports");
	__u32 word = port / 64;
	__u64 bits = 0;

	cr_assert_geq(ports, 0, "moat_daemon_ports pin: %s", strerror(errno));
	bpf_map_lookup_elem(ports, &word, &bits);
	close(ports);
	return bits & (1ull << (port % 64));
}

/*
 * A TCP upstream exchange the daemon starts after `upgrade` copied the
 * maps and before it follows is listed in the old moat_daemon_socks only;
 * following must list it in the new one, or a workload reaches that open
 * socket (it was left out: only the UDP sockets were listed again).
 *
 * The order is made, not hoped for: the workload's connection is
 * accepted (a refused probe answered); the daemon is stopped at a moment
 * its 1 s timer is not due for 200 ms, the workload's query arrives
 * (checked: waiting on the daemon's end), and its timer has still not
 * fired (checked); then two upgrades (to layout 99 and back: new maps),
 * SIGCONT. epoll's ready list is first come first served: the query
 * (to a silent upstream, over TCP) is taken before the timer that
 * follows. The exchange stays open for UPSTREAM_TIMEOUT_MS (2 s) from
 * then on.
 */
RCTEST(tcp_exchange_open_across_follow_is_listed)
{
	__u8 probe[300], q[300];
	size_t probe_len, q_len;
	int lfd, afd, up[2], down[2], tries = 0;
	char name[64], pol[PATH_MAX], c, *log;
	unsigned long long ticks;
	long long due, deadline;
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	struct run_result r;
	const char *cg, *w;
	__u16 cport, port;
	off_t from;
	pid_t kid;
	long rx;

	alt_build();
	snprintf(name, sizeof(name), "tcpup-%d", (int)getpid());
	cg = cg_make(name);
	/* the daemon's source address allowed: only its listing refuses it */
	snprintf(pol, sizeof(pol), "%s", write_policy(name,
		 "allow:\n  - allowed.test:8080\n  - tcp://" CLIENT_NS_ADDR "\n"
		 "dns:\n  upstream: [\"" W4_A ":5399\"]\n"));
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg, pol);
	lfd = silent_upstream();
	probe_len = tcp_query("blocked.test", probe, sizeof(probe));
	q_len = tcp_query("allowed.test", q, sizeof(q));
	cr_assert(!pipe2(up, O_CLOEXEC) && !pipe2(down, O_CLOEXEC));
	kid = fork();
	cr_assert_geq(kid, 0);
	if (!kid)
		workload(cg, up[1], down[0], probe, probe_len, q, q_len);
	close(up[1]);
	close(down[0]);
	cr_assert(read_within(up[0], &cport, 2, 10000),
		  "the workload's probe over TCP was not answered");
	cport = ntohs(cport);

	for (;;) {
		cr_assert_eq(kill(C.daemon, SIGSTOP), 0);
		for (deadline = kt_now_ms() + 2000; !stopped(C.daemon) &&
		     kt_now_ms() < deadline; kt_sleep_ms(1))
			;
		cr_assert(stopped(C.daemon), "the daemon did not stop");
		cr_assert(daemon_timer(C.daemon, &ticks, &due),
			  "the daemon's timerfd not found");
		if (!ticks && due >= 200)
			break;
		kill(C.daemon, SIGCONT);
		cr_assert_lt(++tries, 5, "the daemon's timer never had 200 ms to go");
		kt_sleep_ms(due + 100);
	}
	cr_assert_eq(write(down[1], "q", 1), 1);
	cr_assert(read_within(up[0], &c, 1, 5000), "the workload did not send");
	for (deadline = kt_now_ms() + 1000;
	     (rx = daemon_end_rx(kid, cport)) <= 0 && kt_now_ms() < deadline;
	     kt_sleep_ms(1))
		;
	cr_assert_gt(rx, 0, "the query never reached the daemon's end (%ld)", rx);
	cr_assert(daemon_timer(C.daemon, &ticks, &due) && !ticks,
		  "the daemon's timer fired before the query arrived: the "
		  "order this test needs was not made");

	run(&r, "'%s' upgrade", C.alt);
	cr_assert_eq(r.status, 0, "layout-99 upgrade: %s", r.err);
	run_free(&r);
	moat(&r, "upgrade");
	cr_assert_eq(r.status, 0, "upgrade: %s", r.err);
	run_free(&r);
	from = file_size(C.log);
	cr_assert_eq(kill(C.daemon, SIGCONT), 0);

	/* the exchange: its socket's local end is the accepted peer */
	{
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		cr_assert_eq(poll(&p, 1, 5000), 1, "the daemon never asked the "
			     "silent upstream over TCP");
	}
	afd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
	cr_assert_geq(afd, 0, "accept: %s", strerror(errno));
	port = ntohs(peer.sin_port);
	for (deadline = kt_now_ms() + POLL_MS;; kt_sleep_ms(20)) {
		log = read_text(C.log);
		if (log && (off_t)strlen(log) > from &&
		    strstr(log + from, "program set was upgraded; maps reopened"))
			break;
		free(log);
		log = NULL;
		cr_assert_lt(kt_now_ms(), deadline, "the daemon never followed");
	}
	free(log);
	/*
	 * That line is said before the sockets are listed again: a reply on
	 * the control socket comes after the whole follow (one thread).
	 */
	json_object_put(daemon_call("list"));

	{
		bool listed = sock_listed(&peer.sin_addr, peer.sin_port);
		int n, ungated = daemon_socks_ungated(&n);

		w = client(cg, "tcp", CLIENT_NS_ADDR, port);
		/* still open: what was checked is the exchange started before */
		cr_assert(still_open(afd),
			  "the exchange closed before its checks were done");
		cr_assert(listed, "the open TCP upstream socket " CLIENT_NS_ADDR
			  ":%u is not in the new moat_daemon_socks (the "
			  "workload's connect to it: %s)", port, w);
		cr_assert_eq(ungated, 0, "%d of %d listed sockets not gated",
			     ungated, n);
		cr_assert_str_eq(w, "EPERM", "the workload connected to the "
				 "daemon's upstream socket: %s", w);
	}

	/* the upstream's 2 s pass: closed, and unlisted from the new map */
	for (deadline = kt_now_ms() + 10000; still_open(afd); kt_sleep_ms(20))
		cr_assert_lt(kt_now_ms(), deadline, "the exchange never ended");
	for (deadline = kt_now_ms() + 2000;
	     sock_listed(&peer.sin_addr, peer.sin_port) && kt_now_ms() < deadline;
	     kt_sleep_ms(20))
		;
	cr_assert_not(sock_listed(&peer.sin_addr, peer.sin_port),
		      "the closed exchange is still listed");
	cr_assert_eq(port_gated(port), sock_listed(NULL, htons(port)),
		     "port %u: gated %d, but listed %d", port, port_gated(port),
		     sock_listed(NULL, htons(port)));
	close(afd);
	close(lfd);
	(void)!write(down[1], "x", 1);
	cr_assert_eq(wait_bg(kid, 5000), 0, "the workload failed");
	daemon_expect_alive(C.daemon, C.log);
}
