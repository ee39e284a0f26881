// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The resolver daemon's entry (do_daemon), its setup and event loop, and
 * the plumbing every part uses: epoll registration, sockets created in a
 * workload's netns, and the guards that keep those sockets the daemon's
 * own. What the parts own is in resolver.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <bpf/bpf.h>
#include <systemd/sd-daemon.h>
#include "cmd_args.h"
#include "log.h"
#include "main.h"
#include "paths.h"
#include "resolver.h"

/* A socket in the registration's netns; it keeps that netns for life. */
int netns_socket(struct daemon *d, struct reg *r, int family, int type)
{
	int fd, err = 0;

	if (setns(r->netns_fd, CLONE_NEWNET))
		return -errno;
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		err = -errno;
	if (setns(d->host_netns, CLONE_NEWNET)) {
		/* cannot get back: every later socket would be wrong */
		p_errno(-errno, "returning to the host netns");
		abort();
	}
	return fd < 0 ? err : fd;
}

/* A socket toward R's upstreams: a child's from the daemon's own netns. */
int up_socket(struct daemon *d, struct reg *r, int family, int type)
{
	int fd;

	if (!r->child)
		return netns_socket(d, r, family, type);
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

/*
 * Issue 11, item 4. The daemon's upstream sockets live in the workload's
 * netns; conntrack there would let a workload that sent first (from
 * 127.0.0.11:53, say) own the flow, receive our queries and answer them.
 * So each one is listed by its local end in moat_daemon_socks before it
 * sends anything, and the BPF programs refuse and drop every packet of an
 * enforced cgroup to it. A socket that cannot be listed is not used.
 */
/*
 * The gate in front of moat_daemon_socks (moat_daemon_ports): PORT's bit
 * set or cleared. Read-modify-write of one word: the daemon is the map's
 * only writer (`upgrade` fills a new map before any program uses it).
 */
static int gate_port(struct daemon *d, __u16 port, bool on)
{
	__u64 bits = 0, bit = 1ull << (port % 64);
	__u32 word = port / 64;
	int fd = d->st.map[M_DAEMON_PORTS];

	if (bpf_map_lookup_elem(fd, &word, &bits))
		return -errno;
	bits = on ? bits | bit : bits & ~bit;
	return bpf_map_update_elem(fd, &word, &bits, BPF_ANY) ? -errno : 0;
}

/*
 * A port is gated while any of our listed sockets uses it, in whatever
 * netns: sockets share ports across namespaces, and one closing must not
 * open the gate for another (counted, not cleared blindly). The bit is
 * written before each listing, so a map that lost it gets it back.
 */
static int port_ref(struct daemon *d, __u16 port)
{
	int err = gate_port(d, port, true);

	if (!err)
		d->port_refs[port]++;
	return err;
}

static void port_unref(struct daemon *d, __u16 port)
{
	if (d->port_refs[port] && !--d->port_refs[port])
		gate_port(d, port, false);
}

static void relist(struct daemon *d, const struct ev *ev)
{
	__u8 one = 1;

	if (ev->fd >= 0 && ev->guarded)
		bpf_map_update_elem(d->st.map[M_DAEMON_SOCKS], &ev->guard, &one,
				    BPF_ANY);
}

/*
 * `upgrade` copied the old maps at some moment before we followed: a
 * socket guarded since then is in the old map only (a TCP exchange
 * started meanwhile, say), so every socket we hold guarded is listed
 * again from memory, not trusted to the copy. The counts per port are
 * ours and unchanged: only the bits are set again.
 */
void guards_relist(struct daemon *d)
{
	struct pending *p;
	struct reg *r;

	for (unsigned int port = 0; port < 65536; port++)
		if (d->port_refs[port])
			gate_port(d, port, true);
	LIST_FOREACH(r, &d->regs, entry)
		for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
			relist(d, &r->up_ev[i]);
	/* every open TCP exchange belongs to a query in flight */
	TAILQ_FOREACH(p, &d->pending, entry)
		if (p->tup)
			relist(d, &p->tup->ev);
}

int guard_sock(struct daemon *d, int fd, int proto,
	       struct moat_daemon_sock_key *k)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), clen = sizeof(k->netns_cookie);
	__u8 one = 1;
	int err;

	memset(k, 0, sizeof(*k));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) ||
	    getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &k->netns_cookie, &clen))
		return -errno;
	k->protocol = proto;
	k->family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		k->addr[0] = in->sin_addr.s_addr;
		k->port = in->sin_port;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		memcpy(k->addr, &in6->sin6_addr, sizeof(k->addr));
		k->port = in6->sin6_port;
	}
	if (!k->port)
		return -EADDRNOTAVAIL;	/* not bound yet: nothing to guard */
	/* the gate first: a listed socket behind a clear bit is not guarded */
	err = port_ref(d, ntohs(k->port));
	if (err)
		return err;
	if (bpf_map_update_elem(d->st.map[M_DAEMON_SOCKS], k, &one, BPF_ANY)) {
		err = -errno;
		port_unref(d, ntohs(k->port));
	}
	return err;
}

void unguard_sock(struct daemon *d, const struct moat_daemon_sock_key *k)
{
	bpf_map_delete_elem(d->st.map[M_DAEMON_SOCKS], k);
	port_unref(d, ntohs(k->port));
}

/* Left by a daemon that was killed: their sockets are gone, gates too. */
static void guards_clear(struct daemon *d)
{
	struct moat_daemon_sock_key k;
	__u64 zero = 0;

	while (!bpf_map_get_next_key(d->st.map[M_DAEMON_SOCKS], NULL, &k))
		if (bpf_map_delete_elem(d->st.map[M_DAEMON_SOCKS], &k))
			break;
	for (__u32 w = 0; w < MOAT_DAEMON_PORT_WORDS; w++)
		bpf_map_update_elem(d->st.map[M_DAEMON_PORTS], &w, &zero, BPF_ANY);
}

int ev_add(struct daemon *d, struct ev *ev)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = ev };

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev->fd, &e) ? -errno : 0;
}

void ev_close(struct daemon *d, struct ev *ev)
{
	if (ev->fd < 0)
		return;
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	close(ev->fd);
	ev->fd = -1;
	/* after the close: the socket never exists unguarded */
	if (ev->guarded)
		unguard_sock(d, &ev->guard);
	ev->guarded = false;
}

int ev_want(struct daemon *d, struct ev *ev, __u32 events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(d->epfd, EPOLL_CTL_MOD, ev->fd, &e) ? -errno : 0;
}

__u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void set_timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Until the oldest query's or TCP client's deadline, for epoll_wait. */
static int next_expiry_ms(const struct daemon *d)
{
	struct pending *p = TAILQ_FIRST(&d->pending);
	struct tcpconn *c = TAILQ_FIRST(&d->conns);
	__u64 now = now_ms(), next = UINT64_MAX;

	if (p)
		next = p->deadline_ms;
	if (c && c->deadline_ms < next)
		next = c->deadline_ms;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

/*
 * Expired addresses leave the maps, their names the log's table, and
 * each registration's count of learned addresses is what is left in the
 * maps (issue 12, item 4: it used to only grow).
 */
static void gc(struct daemon *d)
{
	static long live[MOAT_MAX_POLICIES];
	__u64 now = boottime_ns();

	learn_gc(&d->st, now, live);
	struct reg *r;

	LIST_FOREACH(r, &d->regs, entry)
		if (r->learned_pid && r->learned_pid < MOAT_MAX_POLICIES)
			r->learned = live[r->learned_pid];
	evlog_gc(d->log, now);	/* its table unmaps what it no longer needs */
}

static void on_timer(struct daemon *d)
{
	__u64 ticks;

	if (read(d->timer.fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	follow_upgrade(d);
	gc(d);
	if (++d->ticks % 5 == 0)
		reap_regs(d);
}

static int setup(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct itimerspec its = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };
	sigset_t mask;
	mode_t old;
	int err;

	if ((mkdir(MOAT_REG_DIR, 0700) && errno != EEXIST) ||
	    (mkdir(MOAT_NETNS_DIR, 0700) && errno != EEXIST))
		return -errno;
	/*
	 * One daemon: a second one would take the control socket and clear
	 * the first's listed upstream sockets (guards_clear), leaving them
	 * open to the workloads (moat_daemon_socks). Held for the daemon's
	 * life; daemon()'s child keeps it, a death releases it.
	 */
	d->lock_fd = open(MOAT_DAEMON_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (d->lock_fd < 0)
		return -errno;
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK)
			return -errno;
		p_err("moat-bpf daemon: another moat-bpf daemon is running (it holds %s)",
		      MOAT_DAEMON_LOCK);
		return -EBUSY;
	}
	d->host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->host_netns < 0 || d->epfd < 0)
		return -errno;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->signal = (struct ev){ .kind = EV_SIGNAL, .fd = signalfd(-1, &mask, SFD_CLOEXEC) };
	d->timer = (struct ev){ .kind = EV_TIMER,
		.fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK) };
	if (d->signal.fd < 0 || d->timer.fd < 0 ||
	    timerfd_settime(d->timer.fd, 0, &its, NULL))
		return -errno;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", MOAT_CONTROL_SOCK);
	unlink(MOAT_CONTROL_SOCK);
	d->control = (struct ev){ .kind = EV_CONTROL,
		.fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0) };
	if (d->control.fd < 0)
		return -errno;
	old = umask(0177);	/* 0600 from the start: no window */
	err = bind(d->control.fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(old);
	if (err || listen(d->control.fd, 16))
		return err ?: -errno;
	d->log = evlog_open(&d->st);
	if (!d->log)
		return -errno ?: -ENOMEM;
	d->events = (struct ev){ .kind = EV_EVENTS, .fd = evlog_fd(d->log) };
	if ((err = childreg_setup(d)))
		return err;
	if ((err = ev_add(d, &d->control)) || (err = ev_add(d, &d->timer)) ||
	    (err = ev_add(d, &d->signal)) || (err = ev_add(d, &d->events)))
		return err;
	return 0;
}

static unsigned int count_regs(const struct daemon *d)
{
	unsigned int n = 0;

	const struct reg *r;

	LIST_FOREACH(r, &d->regs, entry)
		n++;
	return n;
}

int do_daemon(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dns-upstream", required_argument, NULL, 'u' },
		{ "cache-mib", required_argument, NULL, 'c' },
		HELP_OPTION,
		{ 0 }
	};
	/*
	 * static: the id table is 512 KiB. Zeroed (.bss), the fds set below:
	 * an initializer put all 2 MB in .data, in every moat-bpf's file.
	 */
	static struct daemon d;
	struct epoll_event evs[16];
	bool foreground = false, check = false;
	size_t cache_bytes = DCACHE_TOTAL_BYTES;
	struct rlimit rl;
	int opt, err;

	d.epfd = d.host_netns = -1;
	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "dnvh", opts)) >= 0) {
		switch (opt) {
		case 'd': foreground = true; break;
		case 'n': check = true; break;
		case 'v': verbose++; break;
		case 'u':
			if (upstream_parse(optarg, NULL, NULL)) {
				p_err("--dns-upstream: '%s' is not ADDR, ADDR:PORT or [ADDR6]:PORT",
				      optarg);
				return -EINVAL;
			}
			d.default_upstream = optarg;
			break;
		case 'c': {
			char *end;
			unsigned long mib;

			errno = 0;
			mib = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    mib > CACHE_MAX_MIB) {
				p_err("--cache-mib: '%s' is not a number of MiB from 0 to %u",
				      optarg, CACHE_MAX_MIB);
				return -EINVAL;
			}
			cache_bytes = (size_t)mib << 20;
			break;
		}
		case 'h':
			fprintf(stderr,
				"Usage: moat-bpf daemon [-d] [-n] [-v] [--dns-upstream ADDR] [--cache-mib N]\n"
				"  the resolver: answers DNS for enforced cgroups, learns the\n"
				"  addresses of allowed names\n"
				"  -d  stay in the foreground   -n  check the configuration and exit\n"
				"  -v  more detail (repeatable)\n"
				"  --dns-upstream ADDR  ADDR, ADDR:PORT or [ADDR6]:PORT\n"
				"  --cache-mib N  the answer cache's bound in total (default %u, 0: none),\n"
				"                 a sixteenth of it for what the maps hold\n",
				DCACHE_TOTAL_BYTES >> 20);
			return 0;
		default:
			return cmd_bad_option(argv);
		}
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc) {
		p_err("daemon: unexpected argument '%s'", argv[0]);
		return -EINVAL;
	}
	if (check) {
		p_info("moat-bpfd: configuration OK");
		return 0;
	}
	/*
	 * TCP clients and upstream exchanges take a descriptor each (up to
	 * MAX_TCP_CLIENTS + MAX_TCP_UPSTREAM): the soft limit goes up to the
	 * hard one.
	 */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	TAILQ_INIT(&d.pending);
	TAILQ_INIT(&d.conns);
	/* a sixteenth of the bound remembers what the maps hold (learn.h) */
	err = learn_memo_init(&d.memo, cache_bytes / 16);
	if (err) {
		p_err("moat-bpfd: cannot allocate the learned-address memo: %s",
		      strerror(-err));
		return err;
	}
	cache_bytes -= cache_bytes / 16;
	/* a registration's share is never above the total */
	dcache_init(&d.cache, cache_bytes, cache_bytes < DCACHE_OWNER_BYTES ?
		    cache_bytes : DCACHE_OWNER_BYTES);
	state_init(&d.st);
	/* hold the writers' lock only while loading */
	err = state_lock(&d.st);
	if (!err)
		err = state_open(&d.st, true);
	if (d.st.lock_fd >= 0) {
		close(d.st.lock_fd);
		d.st.lock_fd = -1;
	}
	if (err) {
		p_errno(err, "opening the pinned state");
		return err;
	}
	err = setup(&d);
	if (err == -EBUSY) {	/* said; the socket is the other daemon's */
		state_close(&d.st);
		return err;
	}
	if (err) {
		p_errno(err, "setting up the daemon");
		goto out;
	}
	guards_clear(&d);
	if (!foreground && daemon(0, 0)) {
		err = -errno;
		goto out;
	}
	/*
	 * A signalfd in epoll waits on the sighand of the process that added
	 * it: after daemon()'s fork that was the parent, and SIGTERM to us
	 * would never wake the loop. Add it again from here.
	 */
	if (!foreground &&
	    (epoll_ctl(d.epfd, EPOLL_CTL_DEL, d.signal.fd, NULL) ||
	     (err = ev_add(&d, &d.signal)))) {
		err = err ?: -errno;
		p_errno(err, "watching signals after going to the background");
		goto out;
	}
	restore(&d);
	p_info("moat-bpfd: listening on %s", MOAT_CONTROL_SOCK);
	/* registrations are served again: systemd may start what needs us */
	sd_notifyf(0, "READY=1\nSTATUS=serving %u registration(s)", count_regs(&d));
	while (!d.stop) {
		int n = epoll_wait(d.epfd, evs, 16, next_expiry_ms(&d));

		if (n < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev *ev = evs[i].data.ptr;

			if (ev->fd < 0)
				continue;	/* closed by an earlier event */
			switch (ev->kind) {
			case EV_CONTROL: serve_control(&d); break;
			case EV_TIMER: on_timer(&d); break;
			case EV_SIGNAL: d.stop = true; break;
			case EV_UDP: serve_udp(&d, ev->reg, ev->fd); break;
			case EV_TCP: serve_tcp(&d, ev->reg, ev->fd); break;
			case EV_EVENTS: evlog_consume(d.log); break;
			case EV_CHILDREN: children_dispatch(d.kids); break;
			case EV_UPSTREAM: serve_upstream(&d, ev); break;
			case EV_TCPCONN:
				serve_tcpconn(&d, (struct tcpconn *)ev);
				break;
			case EV_TCPUP:
				serve_tcpup(&d, (struct tcpup *)ev);
				break;
			}
		}
		expire_pending(&d);
		expire_conns(&d);
		resume_conns(&d);
		out_flush(&d.out);
		reap_dead(&d);
	}
	sd_notify(0, "STOPPING=1");
	p_info("moat-bpfd: stopping; registrations stay in %s", MOAT_REG_DIR);
out:
	while (!LIST_EMPTY(&d.regs)) {
		struct reg *r = LIST_FIRST(&d.regs);
		struct moat_resolver_key k = { r->cg_id, r->netns_cookie };

		/*
		 * A clean stop removes the redirect targets: DNS then gets EPERM
		 * (fail-closed) and nobody else can bind our old ports to answer
		 * it. After kill -9 they stay, and DNS fails closed by refusal.
		 */
		if (d.st.map[M_RESOLVERS] >= 0)
			bpf_map_delete_elem(d.st.map[M_RESOLVERS], &k);
		LIST_REMOVE(r, entry);
		reg_free(&d, r);
	}
	children_free(d.kids);
	evlog_close(d.log);
	unlink(MOAT_CONTROL_SOCK);
	state_close(&d.st);
	learn_memo_fini(&d.memo);
	return err;
}
