// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-bpf daemon: the resolver. For every registered (cgroup, netns) it
 * listens on 127.0.0.1 and ::1 inside that netns; the BPF programs send the
 * workload's DNS there. Allowed names are resolved upstream through
 * sockets created in the same netns, and the answer's addresses are
 * written into the policy's exact-address map before the answer is
 * released; if that fails the client gets SERVFAIL. Other names are
 * answered REFUSED (or NXDOMAIN) locally and never leave the host.
 *
 * UDP queries are asynchronous: each registration has one connected
 * socket per upstream, created on first use in the workload's netns, and
 * queries in flight are matched to answers by a random 16-bit id that
 * replaces the client's. TCP clients are still served one at a time
 * (with a deadline). See docs/resolver.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <bpf/bpf.h>
#include <systemd/sd-daemon.h>
#include "cgroup.h"
#include "control.h"
#include "dns.h"
#include "evlog.h"
#include "learn.h"
#include "log.h"
#include "main.h"
#include "state.h"

#define REG_DIR			MOAT_REG_DIR
#define NETNS_DIR		MOAT_RUN_DIR "/netns"
#define UPSTREAM_TIMEOUT_MS	2000
#define CLIENT_TIMEOUT_MS	2000
#define MAX_ANSWER_ADDRS	1024
#define DNS_MSG_BYTES		65535
#define DNS_HEADER_BYTES	12
/*
 * Queries in flight (issue 12, item 3). A registration may have
 * MAX_PENDING_REG; beyond its first MAX_PENDING_RESERVED (always
 * granted) it draws on a pool of MAX_PENDING shared by all. A UDP query
 * beyond is answered SERVFAIL at once; a TCP one waits in its client's
 * buffer. One tenant exhausts its own share, never another's reserve.
 * MAX_PENDING_IDS bounds them all (16-bit ids, some left free).
 */
#define MAX_PENDING		4096
#define MAX_PENDING_REG		1024
#define MAX_PENDING_RESERVED	64
#define MAX_PENDING_IDS		60000
/*
 * Open TCP clients, all registrations / one registration: beyond, new
 * ones wait in the listeners' backlog (LISTEN_BACKLOG each), not accepted
 * until a client of theirs closes (issue 12, item 2: they used to be
 * reset beyond 16).
 */
#define MAX_TCP_CLIENTS		4096
#define MAX_TCP_CLIENTS_REG	512
#define LISTEN_BACKLOG		4096
/*
 * TCP queries go upstream over TCP, asynchronously (issue 12, item 1): at
 * most TCP_QUERIES_CONN in flight per client and TCP_UPSTREAM_REG per
 * registration; further queries wait in their client's buffer, which is
 * not read meanwhile. A registration's first TCP_UPSTREAM_RESERVED are
 * always granted, the rest come from MAX_TCP_UPSTREAM shared by all (a
 * descriptor each). Few: an upstream serves TCP with few workers
 * (dnsmasq forks at most 20 and queues 32 more), and the SYNs it drops
 * beyond cost a second each, half of an exchange's deadline; 64 per
 * registration made 24 of 600 queries time out against dnsmasq.
 */
#define TCP_QUERIES_CONN	16
#define TCP_UPSTREAM_REG	16
#define TCP_UPSTREAM_RESERVED	4
#define MAX_TCP_UPSTREAM	256
/* datagrams read per wakeup of one socket, so that none starves others */
#define RECV_BATCH		64

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE		71
#endif
/* Linux 6.5; missing from Debian 12's headers */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD		77
#endif

/*
 * PIDFD_GET_INFO (Linux 6.13, <linux/pidfd.h>), missing from Debian 12's
 * headers: struct pidfd_info as of PIDFD_INFO_SIZE_VER0 (64 bytes; the
 * kernel takes the size from the ioctl number).
 */
struct moat_pidfd_info {
	__u64 mask;
	__u64 cgroupid;
	__u32 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	__s32 exit_code;
};
#define MOAT_PIDFD_INFO_CGROUPID	(1ULL << 2)
#define MOAT_PIDFD_GET_INFO		_IOWR(0xFF, 11, struct moat_pidfd_info)
_Static_assert(sizeof(struct moat_pidfd_info) == 64, "PIDFD_INFO_SIZE_VER0");

enum ev_kind {
	EV_CONTROL, EV_TIMER, EV_SIGNAL, EV_UDP, EV_TCP, EV_EVENTS, EV_UPSTREAM,
	EV_TCPCONN, EV_TCPUP
};

struct ev {
	enum ev_kind kind;
	int fd;
	struct reg *reg;
	int idx;			/* EV_UPSTREAM: index into reg->up[] */
	bool guarded;			/* guard is in moat_daemon_socks */
	struct moat_daemon_sock_key guard;
};

struct upstream {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* Domain rules by the hash of their domain: lookups flat in N. */
struct rule_index {
	__u32 *head;			/* bucket -> first rule index + 1 */
	__u32 *next;			/* rule index -> next index + 1 */
	__u32 buckets;
};

struct reg {
	struct reg *next;
	__u64 cg_id;
	char *rel;			/* cgroup path below the cgroup2 mount */
	int netns_fd;
	__u64 netns_cookie;
	struct moat_policy_spec spec;	/* domain rules and dns settings */
	struct upstream up[MOAT_MAX_UPSTREAMS];
	struct ev up_ev[MOAT_MAX_UPSTREAMS];	/* fd -1 until first used */
	int n_up;
	struct ev udp4, tcp4, udp6, tcp6;
	unsigned int n_conns;		/* its open TCP clients */
	unsigned int n_pending;		/* its queries in flight */
	unsigned int n_tcp_up;		/* of them, over TCP */
	bool accept_paused;		/* its TCP listeners are not polled */
	/*
	 * The policy id its rules are for (`bind`, `update`): answers are
	 * learned into it, and only while the cgroup runs it. 0: none yet.
	 */
	__u32 pid;
	__u32 learned_pid;
	long learned;			/* learned entries of learned_pid in the maps */
	unsigned long recounted;	/* the tick learned was last counted at */
	json_object *saved;		/* the registration, until persisted */
	struct rule_index ix;		/* its domain rules, indexed */
	char *search[DNS_SEARCH_MAX];	/* its resolv.conf's search domains */
	size_t n_search;
};

/* A query forwarded upstream, waiting for its answer. */
struct pending {
	struct pending *prev, *next;	/* by deadline: the oldest first */
	struct reg *reg;
	bool tcp;			/* from a TCP client, asked over TCP */
	struct tcpconn *conn;		/* that client; NULL once it is gone */
	struct tcpup *tup;		/* the upstream exchange under way */
	int client_fd;			/* the listener it came in on */
	struct sockaddr_storage from;
	socklen_t from_len;
	__u16 client_id;		/* qu.id holds the id used upstream */
	int up;				/* the upstream asked: reg->up[up] */
	bool drained;			/* its socket was read past the deadline */
	__u64 deadline_ms;
	struct moat_addr_val ports;	/* what the matching rules allow */
	struct dns_question qu;
	size_t qlen;
	__u8 query[];			/* canonical, with the client's id */
};

/*
 * A TCP client: read without blocking (an idle client costs nothing but
 * a descriptor), dropped after CLIENT_TIMEOUT_MS without progress while
 * none of its queries is in flight or waiting.
 */
struct tcpconn {
	struct ev ev;			/* first: the epoll cookie */
	struct tcpconn *prev, *next;	/* by deadline: the oldest first */
	__u64 deadline_ms;
	unsigned int inflight;		/* its queries upstream */
	bool parked;			/* a whole query waits for a slot */
	bool eof;			/* it shut down its side: not read again */
	size_t got;
	__u8 buf[2 + DNS_MSG_BYTES];	/* length prefix and one query */
};

/* One TCP exchange with an upstream for a pending query. */
struct tcpup {
	struct ev ev;			/* first: the epoll cookie */
	struct tcpup *dead_next;	/* freed after the batch */
	struct pending *p;
	bool sending;			/* connecting, or the query not all out */
	size_t out_len, sent;
	size_t need, got;		/* the answer: 2 bytes, then its length */
	__u8 *ans;
	__u8 hdr[2];
	__u8 out[];			/* length prefix and query */
};

struct daemon {
	struct moat_state st;
	int epfd, host_netns;
	struct ev control, timer, signal, events;
	struct evlog *log;
	struct reg *regs;
	const char *default_upstream;
	unsigned long ticks;
	unsigned long n_query, n_refused, n_forwarded, n_servfail, n_malformed;
	unsigned long n_stray;
	struct pending *by_id[65536];	/* upstream id -> query in flight */
	struct pending *oldest, *newest;
	unsigned int n_pending;
	unsigned int n_pending_pool;	/* of them, beyond their reserve */
	struct reg *dead;		/* see reap_dead() */
	struct tcpconn *conn_oldest, *conn_newest, *conn_dead;
	unsigned int n_conns;
	unsigned int n_tcp_up;		/* TCP exchanges upstream, all regs */
	unsigned int n_parked;		/* clients waiting for a TCP slot */
	unsigned int n_accept_paused;	/* registrations not accepting */
	struct tcpup *tup_dead;
	bool stop;
};

static __u8 buf_q[DNS_MSG_BYTES], buf_a[DNS_MSG_BYTES + 2];
static __u8 buf_fwd[DNS_MSG_BYTES];

static int parse_upstream(const char *s, struct upstream *u)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&u->sa;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&u->sa;
	char host[64];
	const char *port = NULL, *end;
	long p = 53;

	memset(u, 0, sizeof(*u));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || (size_t)(end - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, end - s - 1);
		host[end - s - 1] = 0;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		snprintf(host, sizeof(host), "%s", s);
		char *c = strchr(host, ':');

		if (c && strchr(c + 1, ':'))
			c = NULL;	/* bare IPv6 */
		if (c) {
			*c = 0;
			port = s + (c - host) + 1;
		}
	}
	if (port) {
		char *e;

		p = strtol(port, &e, 10);
		if (*e || p < 1 || p > 65535)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(p);
		u->len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(p);
		u->len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

/* A socket in the registration's netns; it keeps that netns for life. */
static int netns_socket(struct daemon *d, struct reg *r, int family, int type)
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

/*
 * Issue 11, item 4. The daemon's upstream sockets live in the workload's
 * netns; conntrack there would let a workload that sent first (from
 * 127.0.0.11:53, say) own the flow, receive our queries and answer them.
 * So each one is listed by its local end in moat_daemon_socks before it
 * sends anything, and the BPF programs refuse and drop every packet of an
 * enforced cgroup to it. A socket that cannot be listed is not used.
 */
static int guard_sock(struct daemon *d, int fd, int proto,
		      struct moat_daemon_sock_key *k)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), clen = sizeof(k->netns_cookie);
	__u8 one = 1;

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
	return bpf_map_update_elem(d->st.map[M_DAEMON_SOCKS], k, &one, BPF_ANY) ?
	       -errno : 0;
}

static void unguard_sock(struct daemon *d, const struct moat_daemon_sock_key *k)
{
	bpf_map_delete_elem(d->st.map[M_DAEMON_SOCKS], k);
}

/* Left by a daemon that was killed: their sockets are gone. */
static void guards_clear(struct daemon *d)
{
	struct moat_daemon_sock_key k;

	while (!bpf_map_get_next_key(d->st.map[M_DAEMON_SOCKS], NULL, &k))
		if (bpf_map_delete_elem(d->st.map[M_DAEMON_SOCKS], &k))
			break;
}

/* ---- answering ---- */

static int ev_add(struct daemon *d, struct ev *ev)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = ev };

	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev->fd, &e) ? -errno : 0;
}

static void ev_close(struct daemon *d, struct ev *ev)
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


static __u32 reg_policy_id(struct daemon *d, struct reg *r)
{
	struct moat_cgroup cg;

	if (bpf_map_lookup_elem(d->st.map[M_CGROUPS], &r->cg_id, &cg))
		return 0;
	return cg.policy_id;
}

static __u32 domain_hash(const char *s, size_t len)
{
	__u32 h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void rule_index_free(struct rule_index *ix)
{
	free(ix->head);
	free(ix->next);
	memset(ix, 0, sizeof(*ix));
}

static int rule_index_build(const struct moat_policy_spec *spec,
			    struct rule_index *ix)
{
	size_t n = spec->n_allow;

	ix->buckets = 64;
	while (ix->buckets < 2 * n)
		ix->buckets *= 2;
	ix->head = calloc(ix->buckets, sizeof(*ix->head));
	ix->next = calloc(n ? n : 1, sizeof(*ix->next));
	if (!ix->head || !ix->next) {
		rule_index_free(ix);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct moat_rule *rule = &spec->allow[i];
		__u32 b;

		if (rule->kind != RULE_DOMAIN && rule->kind != RULE_WILDCARD)
			continue;
		b = domain_hash(rule->domain, strlen(rule->domain)) & (ix->buckets - 1);
		ix->next[i] = ix->head[b];
		ix->head[b] = i + 1;
	}
	return 0;
}

/*
 * Which rules allow NAME: the union of their ports, or 0 ranges. Every
 * suffix of NAME that starts after a dot (a superset of its label
 * boundaries) is looked up; domain_rule_match() makes the exact decision.
 */
static void match_rules(struct reg *r, const char *name,
			struct moat_addr_val *add)
{
	size_t len = strlen(name);

	memset(add, 0, sizeof(*add));
	for (size_t start = 0; start < len; start++) {
		__u32 b;

		if (start && name[start - 1] != '.')
			continue;
		b = domain_hash(name + start, len - start) & (r->ix.buckets - 1);
		for (__u32 i = r->ix.head[b]; i; i = r->ix.next[i - 1]) {
			const struct moat_rule *rule = &r->spec.allow[i - 1];

			if (!strcmp(rule->domain, name + start) &&
			    domain_rule_match(rule, name))
				ranges_add(add, rule->protos, rule->port_first,
					   rule->port_last);
		}
	}
}

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * A TCP socket toward upstream U, bound and guarded (guard_sock) before
 * its SYN: its local address is the one the route to U picks, found by
 * connecting a UDP socket (which sends nothing).
 */
static int tcp_upstream_socket(struct daemon *d, struct reg *r,
			       const struct upstream *u,
			       struct moat_daemon_sock_key *k)
{
	struct sockaddr_storage src;
	socklen_t len = sizeof(src);
	int probe, fd, err = 0;

	probe = netns_socket(d, r, u->sa.ss_family, SOCK_DGRAM);
	if (probe < 0)
		return probe;
	if (connect(probe, (struct sockaddr *)&u->sa, u->len) ||
	    getsockname(probe, (struct sockaddr *)&src, &len))
		err = -errno;
	close(probe);
	if (err)
		return err;
	((struct sockaddr_in *)&src)->sin_port = 0;	/* same place in sin6 */
	fd = netns_socket(d, r, u->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK);
	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&src, len))
		err = -errno;
	if (!err)
		err = guard_sock(d, fd, IPPROTO_TCP, k);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static __u64 deadline_ns(const struct reg *r, __u32 ttl)
{
	__u32 lo = r->spec.dns.min_ttl_s, hi = r->spec.dns.max_ttl_s;

	ttl = ttl < lo ? lo : ttl > hi ? hi : ttl;
	return boottime_ns() + ((__u64)ttl + r->spec.dns.grace_s) * 1000000000ull;
}

static void path_of(char *buf, size_t len, const char *dir, __u64 id);

/* R's rules are for policy id PID from now on; kept across restarts. */
static void reg_bind(struct reg *r, __u32 pid)
{
	char p[PATH_MAX];

	r->pid = pid;
	path_of(p, sizeof(p), REG_DIR, r->cg_id);
	if (!r->saved && control_reg_file_update(p, NULL, pid))
		p_err("moat-bpfd: %s: its policy id will not survive a restart", r->rel);
	else if (r->saved)
		json_object_object_add(r->saved, "policy_id", json_object_new_int64(pid));
}

static const char *addr_str(const struct learned_addr *a, char *buf, size_t len)
{
	return inet_ntop(a->family, a->addr, buf, len);
}

/*
 * Write every address of the answer; any failure fails the whole answer
 * (SERVFAIL). Addresses written before the failure stay: they are the
 * answer's own, under their deadline.
 */
static int learn_answer(struct daemon *d, struct reg *r,
			const struct dns_question *qu,
			const struct moat_addr_val *ports, size_t alen)
{
	static struct dns_addr addrs[MAX_ANSWER_ADDRS];
	static struct learned_addr fresh[MAX_ANSWER_ADDRS];
	const char *name = qu->qname;
	unsigned int tc = 0;
	size_t n = 0, n_fresh = 0;
	__u32 pid;
	int err;

	/* -EBADMSG, -ESRCH: not the answer to QU, to be ignored */
	err = dns_answer_take(buf_a, alen, qu, addrs, MAX_ANSWER_ADDRS, &n, &tc);
	if (err)
		return err;
	dns_strip_ech(buf_a, alen);	/* before release: docs/names.md */
	/*
	 * Issue 11, item 5: an answer is learned into the policy id its rules
	 * are for (r->pid, from `bind`/`update`), and only while the
	 * cgroup runs that id: between a flip by `policy reload` or `attach`
	 * and our update, the answer is refused (SERVFAIL), never written
	 * under the new id.
	 */
	pid = reg_policy_id(d, r);
	if (!pid)
		return -ENOENT;
	if (pid != r->pid)
		return -ESTALE;
	if (pid != r->learned_pid) {
		r->learned = learn_count(&d->st, pid, boottime_ns());
		r->learned_pid = pid;
		r->recounted = d->ticks;
	}
	for (size_t i = 0; i < n; i++) {
		struct learned_addr a = { .family = addrs[i].family };
		struct moat_addr_val add = *ports;
		char s[INET6_ADDRSTRLEN];
		bool created;

		memcpy(a.addr, addrs[i].addr, sizeof(a.addr));
		if (learn_refused(&d->st, pid, &a)) {
			p_info("moat-bpfd: %s: not learning %s for %s (denied address)",
			       r->rel, addr_str(&a, s, sizeof(s)), name);
			continue;
		}
		add.expires_ns = deadline_ns(r, addrs[i].ttl_s);
		err = learn_write(&d->st, pid, &a, &add,
				  r->learned < (long)r->spec.dns.max_addresses,
				  &created);
		if (err == -EDQUOT && r->recounted != d->ticks) {
			/*
			 * Issue 12, item 4: what counts is what is in the maps
			 * now (expired entries excluded), at most once a tick.
			 */
			r->learned = learn_count(&d->st, pid, boottime_ns());
			r->recounted = d->ticks;
			err = learn_write(&d->st, pid, &a, &add,
					  r->learned < (long)r->spec.dns.max_addresses,
					  &created);
		}
		if (err) {
			p_err("moat-bpfd: %s: learning %s for %s: %s", r->rel,
			      addr_str(&a, s, sizeof(s)), name,
			      err == -EDQUOT ? "the policy's max_addresses reached" :
			      strerror(-err));
			return err;
		}
		r->learned += created;
		if (created)
			fresh[n_fresh++] = a;
		evlog_learned(d->log, a.family, a.addr, name, add.expires_ns);
		p_debug("moat-bpfd: %s: learned %s for %s", r->rel,
			addr_str(&a, s, sizeof(s)), name);
	}
	/*
	 * A writer may have flipped the cgroup and purged PID since it was
	 * read: then what we created is taken back (a freed id is reused by
	 * the next policy). A flip after this check purges it itself.
	 */
	if (reg_policy_id(d, r) != pid) {
		for (size_t i = 0; i < n_fresh; i++)
			learn_forget(&d->st, pid, &fresh[i]);
		r->learned_pid = 0;	/* recount */
		return -ESTALE;
	}
	return 0;
}

static void dns_event(struct daemon *d, struct reg *r, const char *verdict,
		      const char *name, const char *reason)
{
	json_object *o = json_object_new_object();
	char when[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "kind", json_object_new_string("dns"));
	json_object_object_add(o, "verdict", json_object_new_string(verdict));
	json_object_object_add(o, "name", json_object_new_string(name[0] ? name : "."));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "cgroup", json_object_new_string(r->rel));
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(r->cg_id));
	json_object_object_add(o, "policy", json_object_new_string(r->spec.name));
	evlog_write(d->log, o);
}

/*
 * Issue 12, item 8: whether NAME is one of the workload's search domains
 * or below one. glibc ends its search at the first REFUSED (Go and node
 * at any answer but NXDOMAIN): a candidate "api.corp.example" built from
 * "search corp.example" must be NXDOMAIN for "api" itself to be asked.
 */
static bool under_search(const struct reg *r, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < r->n_search; i++) {
		size_t n = strlen(r->search[i]);

		if (len >= n && !strcmp(name + len - n, r->search[i]) &&
		    (len == n || name[len - n - 1] == '.'))
			return true;
	}
	return false;
}

static const char *servfail_reason(const struct reg *r, int err)
{
	return !r->n_up ? "no upstream configured" :
	       err == -EDQUOT ? "max_addresses reached" :
	       err == -E2BIG ? "address map full" :
	       err == -ENOSPC ? "too many port ranges" :
	       err == -EBUSY ? "too many queries in flight" :
	       err == -ETIMEDOUT ? "no upstream answered" :
	       err == -ESTALE ? "the cgroup's policy is being replaced" :
	       err == -ESRCH || err == -EBADMSG ? "no valid answer from upstream" :
	       strerror(-err);
}

/* An rcode answer to query Q into buf_a; -EBADMSG if Q cannot have one. */
static int local_answer(const __u8 *q, size_t qlen, int rcode, size_t *alen)
{
	*alen = DNS_MSG_BYTES;
	return dns_reply_rcode(q, qlen, rcode, buf_a, alen) ? -EBADMSG : 0;
}

/*
 * Decide a query. Returns 1 with the canonical query in buf_fwd (*flen)
 * when it goes upstream, 0 with a local answer in buf_a (*alen), or
 * -EBADMSG for a packet to drop without answer.
 */
static int classify(struct daemon *d, struct reg *r, const __u8 *q, size_t qlen,
		    struct dns_question *qu, struct moat_addr_val *ports,
		    size_t *flen, size_t *alen)
{
	d->n_query++;
	if (dns_query_parse(q, qlen, qu)) {
		d->n_malformed++;
		return -EBADMSG;
	}
	match_rules(r, qu->qname, ports);
	if (!ports->n_ranges) {
		d->n_refused++;
		dns_event(d, r, "refused", qu->qname, "no rule allows it");
		return local_answer(q, qlen, r->spec.dns.refuse == DNS_REFUSE_NXDOMAIN ||
				    under_search(r, qu->qname) ?
				    DNS_RCODE_NXDOMAIN : DNS_RCODE_REFUSED, alen);
	}
	/* forward what was parsed, not what was received */
	*flen = sizeof(buf_fwd);
	if (dns_query_canonical(q, qlen, buf_fwd, flen)) {
		d->n_malformed++;
		return -EBADMSG;
	}
	if (!r->n_up) {
		d->n_servfail++;
		dns_event(d, r, "servfail", qu->qname, servfail_reason(r, -ENOENT));
		return local_answer(q, qlen, DNS_RCODE_SERVFAIL, alen);
	}
	return 1;
}

/* ---- UDP: queries in flight ---- */

static void pending_unlink(struct daemon *d, struct pending *p)
{
	*(p->prev ? &p->prev->next : &d->oldest) = p->next;
	*(p->next ? &p->next->prev : &d->newest) = p->prev;
	p->prev = p->next = NULL;
}

static void pending_append(struct daemon *d, struct pending *p)
{
	p->prev = d->newest;
	*(d->newest ? &d->newest->next : &d->oldest) = p;
	d->newest = p;
}

static __u16 random_id(void);
static void tup_close(struct daemon *d, struct tcpup *t);
static int tup_start(struct daemon *d, struct pending *p);
static bool conn_reply(struct daemon *d, struct tcpconn *c, const __u8 *a,
		       size_t alen);

static void pending_free(struct daemon *d, struct pending *p)
{
	pending_unlink(d, p);
	d->by_id[p->qu.id] = NULL;
	d->n_pending--;
	if (p->tup)
		tup_close(d, p->tup);
	if (p->tcp) {
		p->reg->n_tcp_up--;
		d->n_tcp_up--;
		if (p->conn)
			p->conn->inflight--;
	}
	p->reg->n_pending--;
	if (p->reg->n_pending >= MAX_PENDING_RESERVED)
		d->n_pending_pool--;
	free(p);
}

/* Whether R may have one more query in flight (see MAX_PENDING_REG). */
static bool pending_may(const struct daemon *d, const struct reg *r)
{
	if (d->n_pending >= MAX_PENDING_IDS || r->n_pending >= MAX_PENDING_REG)
		return false;
	return r->n_pending < MAX_PENDING_RESERVED || d->n_pending_pool < MAX_PENDING;
}

/* P (of R) is in flight from now on; pending_may() said it may be. */
static void pending_take(struct daemon *d, struct reg *r, struct pending *p)
{
	__u16 id;

	/* unpredictable ids: an answer must name one to be taken */
	for (id = random_id(); d->by_id[id]; id++)
		;
	p->qu.id = id;
	d->by_id[id] = p;
	d->n_pending++;
	if (r->n_pending >= MAX_PENDING_RESERVED)
		d->n_pending_pool++;
	r->n_pending++;
	pending_append(d, p);
}

/* The registration's socket toward upstream I, in the workload's netns. */
static int upstream_fd(struct daemon *d, struct reg *r, int i)
{
	struct ev *u = &r->up_ev[i];
	int fd, err;

	if (u->fd >= 0)
		return u->fd;
	fd = netns_socket(d, r, r->up[i].sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK);
	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&r->up[i].sa, r->up[i].len)) {
		err = -errno;
		close(fd);
		return err;
	}
	*u = (struct ev){ .kind = EV_UPSTREAM, .fd = fd, .reg = r, .idx = i };
	/* before the first query: see guard_sock() */
	err = guard_sock(d, fd, IPPROTO_UDP, &u->guard);
	u->guarded = !err;
	if (!err)
		err = ev_add(d, u);
	if (err) {
		ev_close(d, u);
		return err;
	}
	return fd;
}

/*
 * Answers to UDP clients are queued and sent together (sendmmsg per
 * listener) once the events of one wakeup are handled: on a small machine
 * waking the client for every answer cost more than building them.
 */
#define OUT_SLOTS	64
#define OUT_SLOT_BYTES	4096

static struct {
	struct mmsghdr msg[OUT_SLOTS];
	struct iovec iov[OUT_SLOTS];
	struct sockaddr_storage to[OUT_SLOTS];
	int fd[OUT_SLOTS];
	__u8 buf[OUT_SLOTS][OUT_SLOT_BYTES];
	unsigned int n;
} out;

static void out_flush(void)
{
	for (unsigned int i = 0, j; i < out.n; i = j) {
		for (j = i + 1; j < out.n && out.fd[j] == out.fd[i]; j++)
			;
		/* a client that cannot take its answer retries: skip it */
		for (unsigned int k = i; k < j; ) {
			int sent = sendmmsg(out.fd[i], &out.msg[k], j - k, MSG_DONTWAIT);

			k += sent > 0 ? (unsigned int)sent : 1;
		}
	}
	out.n = 0;
}

static void send_answer(int fd, const struct sockaddr_storage *to,
			socklen_t to_len, const __u8 *a, size_t alen)
{
	unsigned int i;

	if (alen > OUT_SLOT_BYTES) {
		sendto(fd, a, alen, MSG_DONTWAIT, (const struct sockaddr *)to, to_len);
		return;
	}
	if (out.n == OUT_SLOTS)
		out_flush();
	i = out.n++;
	out.fd[i] = fd;
	memcpy(out.buf[i], a, alen);
	memcpy(&out.to[i], to, to_len);
	out.iov[i] = (struct iovec){ .iov_base = out.buf[i], .iov_len = alen };
	out.msg[i] = (struct mmsghdr){ .msg_hdr = {
		.msg_name = &out.to[i], .msg_namelen = to_len,
		.msg_iov = &out.iov[i], .msg_iovlen = 1,
	} };
}

static void reply_to(struct daemon *d, struct pending *p, const __u8 *a,
		     size_t alen)
{
	if (!p->tcp)
		send_answer(p->client_fd, &p->from, p->from_len, a, alen);
	else if (p->conn)	/* else the client left: nobody to tell */
		conn_reply(d, p->conn, a, alen);
}

static void pending_fail(struct daemon *d, struct pending *p, int err)
{
	size_t alen;

	d->n_servfail++;
	dns_event(d, p->reg, "servfail", p->qu.qname, servfail_reason(p->reg, err));
	if (!local_answer(p->query, p->qlen, DNS_RCODE_SERVFAIL, &alen))
		reply_to(d, p, buf_a, alen);
	pending_free(d, p);
}

/* Ask upstream p->up, or the next ones; SERVFAIL when none is left. */
static void pending_send(struct daemon *d, struct pending *p, int err)
{
	struct reg *r = p->reg;

	for (; p->up < r->n_up; p->up++) {
		int fd;

		if (p->tcp) {
			err = tup_start(d, p);
			if (err)
				continue;
			pending_unlink(d, p);
			p->deadline_ms = now_ms() + UPSTREAM_TIMEOUT_MS;
			pending_append(d, p);
			return;
		}
		fd = upstream_fd(d, r, p->up);

		if (fd < 0) {
			err = fd;
			continue;
		}
		memcpy(buf_fwd, p->query, p->qlen);
		buf_fwd[0] = p->qu.id >> 8;
		buf_fwd[1] = p->qu.id & 0xff;
		if (send(fd, buf_fwd, p->qlen, MSG_DONTWAIT) == (ssize_t)p->qlen) {
			pending_unlink(d, p);
			p->deadline_ms = now_ms() + UPSTREAM_TIMEOUT_MS;
			pending_append(d, p);
			return;
		}
		err = -errno;
	}
	pending_fail(d, p, err);
}

/* getrandom() once per 2048 ids, not per query (arc4random's cost here) */
static __u16 random_id(void)
{
	static __u16 pool[2048];
	static unsigned int left;

	if (!left) {
		if (getrandom(pool, sizeof(pool), 0) != sizeof(pool))
			arc4random_buf(pool, sizeof(pool));
		left = sizeof(pool) / sizeof(pool[0]);
	}
	return pool[--left];
}

static void forward_udp(struct daemon *d, struct reg *r, int fd,
			const struct sockaddr_storage *from, socklen_t from_len,
			const struct dns_question *qu,
			const struct moat_addr_val *ports, size_t flen)
{
	struct pending *p;

	if (!pending_may(d, r) || !(p = calloc(1, sizeof(*p) + flen))) {
		size_t alen;

		d->n_servfail++;
		dns_event(d, r, "servfail", qu->qname, servfail_reason(r, -EBUSY));
		if (!local_answer(buf_fwd, flen, DNS_RCODE_SERVFAIL, &alen))
			send_answer(fd, from, from_len, buf_a, alen);
		return;
	}
	*p = (struct pending){
		.reg = r, .client_fd = fd, .from = *from, .from_len = from_len,
		.client_id = qu->id, .ports = *ports, .qu = *qu, .qlen = flen,
	};
	memcpy(p->query, buf_fwd, flen);
	pending_take(d, r, p);
	pending_send(d, p, -ENOENT);
}

static void serve_udp(struct daemon *d, struct reg *r, int fd)
{
	struct moat_addr_val ports;
	struct dns_question qu;

	for (int i = 0; i < RECV_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		size_t alen = 0, flen = 0;
		ssize_t n;
		int ret;

		n = recvfrom(fd, buf_q, sizeof(buf_q), MSG_DONTWAIT,
			     (struct sockaddr *)&from, &from_len);
		if (n < 0)
			return;
		ret = classify(d, r, buf_q, n, &qu, &ports, &flen, &alen);
		if (ret > 0)
			forward_udp(d, r, fd, &from, from_len, &qu, &ports, flen);
		else if (!ret)
			send_answer(fd, &from, from_len, buf_a, alen);
	}
}

/* Every query waiting on upstream I of R moves on: ICMP said it is down. */
static void upstream_down(struct daemon *d, struct reg *r, int i, int err)
{
	struct pending *p, *next;

	for (p = d->oldest; p; p = next) {
		next = p->next;
		if (p->reg == r && p->up == i && !p->tcp) {
			p->up++;
			pending_send(d, p, err);
		}
	}
}

static void serve_upstream(struct daemon *d, struct ev *u)
{
	struct reg *r = u->reg;

	if (u->fd < 0)
		return;	/* closed during this batch */
	for (int i = 0; i < RECV_BATCH; i++) {
		struct pending *p;
		ssize_t n;
		int err;

		n = recv(u->fd, buf_a, DNS_MSG_BYTES, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH)
				upstream_down(d, r, u->idx, -errno);
			if (errno == EAGAIN)
				return;
			continue;
		}
		if (n < DNS_HEADER_BYTES) {
			d->n_malformed++;
			continue;
		}
		p = d->by_id[buf_a[0] << 8 | buf_a[1]];
		/* not a question we asked there (late, or forged): ignore */
		if (!p || p->reg != r || p->up != u->idx || p->tcp) {
			d->n_stray++;
			continue;
		}
		err = learn_answer(d, r, &p->qu, &p->ports, n);
		if (err == -EBADMSG || err == -ESRCH) {
			d->n_stray++;
			continue;
		}
		if (err) {
			/* never release an answer whose addresses are not in the maps */
			pending_fail(d, p, err);
			continue;
		}
		buf_a[0] = p->client_id >> 8;
		buf_a[1] = p->client_id & 0xff;
		reply_to(d, p, buf_a, n);
		d->n_forwarded++;
		pending_free(d, p);
	}
}

/* Queries past their deadline go to the next upstream. Returns ms to wait. */
/*
 * Queries past their deadline go to the next upstream. Their upstream
 * socket is read first: after a long stall (a TCP client) the answer may
 * be waiting there unread.
 */
static void expire_pending(struct daemon *d)
{
	__u64 now = now_ms();

	while (d->oldest && d->oldest->deadline_ms <= now) {
		struct pending *p = d->oldest;

		if (p->tcp) {
			if (p->tup)
				tup_close(d, p->tup);
			p->up++;
			pending_send(d, p, -ETIMEDOUT);
			continue;
		}
		if (!p->drained) {
			p->drained = true;
			serve_upstream(d, &p->reg->up_ev[p->up]);
			continue;	/* p may be answered and gone */
		}
		p->drained = false;
		p->up++;
		pending_send(d, p, -ETIMEDOUT);
	}
}

/* Until the oldest query's or TCP client's deadline, for epoll_wait. */
static int next_expiry_ms(const struct daemon *d)
{
	__u64 now = now_ms(), next = UINT64_MAX;

	if (d->oldest)
		next = d->oldest->deadline_ms;
	if (d->conn_oldest && d->conn_oldest->deadline_ms < next)
		next = d->conn_oldest->deadline_ms;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

static void drop_pending(struct daemon *d, struct reg *r)
{
	struct pending *p, *next;

	for (p = d->oldest; p; p = next) {
		next = p->next;
		if (p->reg == r)
			pending_free(d, p);
	}
}

/* ---- TCP: clients and upstream exchanges, never blocking ---- */

static int ev_want(struct daemon *d, struct ev *ev, __u32 events)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(d->epfd, EPOLL_CTL_MOD, ev->fd, &e) ? -errno : 0;
}

/* Closed now, freed after the batch (its events may still be in it). */
static void tup_close(struct daemon *d, struct tcpup *t)
{
	ev_close(d, &t->ev);
	if (t->p)
		t->p->tup = NULL;
	t->p = NULL;
	free(t->ans);
	t->ans = NULL;
	t->dead_next = d->tup_dead;
	d->tup_dead = t;
}

/*
 * Start the exchange of P with upstream p->up: a guarded socket (see
 * tcp_upstream_socket), a non-blocking connect; serve_tcpup() does the
 * rest as the socket becomes writable, then readable.
 */
static int tup_start(struct daemon *d, struct pending *p)
{
	const struct upstream *u = &p->reg->up[p->up];
	struct tcpup *t;
	int fd, err;

	t = calloc(1, sizeof(*t) + 2 + p->qlen);
	if (!t)
		return -ENOMEM;
	fd = tcp_upstream_socket(d, p->reg, u, &t->ev.guard);
	if (fd < 0) {
		free(t);
		return fd;
	}
	t->ev.kind = EV_TCPUP;
	t->ev.fd = fd;
	t->ev.reg = p->reg;
	t->ev.guarded = true;
	t->p = p;
	t->sending = true;
	t->need = 2;
	t->out[0] = p->qlen >> 8;
	t->out[1] = p->qlen & 0xff;
	memcpy(t->out + 2, p->query, p->qlen);
	t->out[2] = p->qu.id >> 8;	/* the id used upstream */
	t->out[3] = p->qu.id & 0xff;
	t->out_len = 2 + p->qlen;
	if (connect(fd, (struct sockaddr *)&u->sa, u->len) && errno != EINPROGRESS) {
		err = -errno;
		goto fail;
	}
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = &t->ev };

	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &e)) {
		err = -errno;
		goto fail;
	}
	p->tup = t;
	return 0;
fail:
	close(fd);
	unguard_sock(d, &t->ev.guard);
	free(t);
	return err;
}

/* This upstream failed P: the next one, or SERVFAIL. */
static void tup_fail(struct daemon *d, struct tcpup *t, int err)
{
	struct pending *p = t->p;

	tup_close(d, t);
	p->up++;
	pending_send(d, p, err);
}

static void serve_tcpup(struct daemon *d, struct tcpup *t)
{
	struct pending *p = t->p;
	ssize_t n;
	int err;

	if (t->ev.fd < 0 || !p)
		return;	/* closed during this batch */
	if (t->sending) {
		socklen_t len = sizeof(err);

		if (getsockopt(t->ev.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			tup_fail(d, t, err ? -err : -errno);
			return;
		}
		n = send(t->ev.fd, t->out + t->sent, t->out_len - t->sent,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN)
				tup_fail(d, t, -errno);
			return;
		}
		t->sent += n;
		if (t->sent < t->out_len)
			return;
		t->sending = false;
		if (ev_want(d, &t->ev, EPOLLIN))
			tup_fail(d, t, -errno);
		return;
	}
	for (;;) {
		__u8 *dst = t->ans ? t->ans : t->hdr;

		n = recv(t->ev.fd, dst + t->got, t->need - t->got, MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && errno == EAGAIN)
				return;
			tup_fail(d, t, n ? -errno : -ECONNRESET);
			return;
		}
		t->got += n;
		if (t->got < t->need)
			continue;
		if (t->ans)
			break;
		t->need = (size_t)t->hdr[0] << 8 | t->hdr[1];
		t->got = 0;
		if (t->need < DNS_HEADER_BYTES || !(t->ans = malloc(t->need))) {
			tup_fail(d, t, -EBADMSG);
			return;
		}
	}
	/* a whole answer: the same checks and learning as over UDP */
	memcpy(buf_a, t->ans, t->need);
	err = learn_answer(d, p->reg, &p->qu, &p->ports, t->need);
	if (err == -EBADMSG || err == -ESRCH) {
		d->n_stray++;
		tup_fail(d, t, err);
		return;
	}
	if (err) {
		pending_fail(d, p, err);
		return;
	}
	buf_a[0] = p->client_id >> 8;
	buf_a[1] = p->client_id & 0xff;
	reply_to(d, p, buf_a, t->need);
	d->n_forwarded++;
	pending_free(d, p);
}

static void conn_unlink(struct daemon *d, struct tcpconn *c)
{
	*(c->prev ? &c->prev->next : &d->conn_oldest) = c->next;
	*(c->next ? &c->next->prev : &d->conn_newest) = c->prev;
	c->prev = c->next = NULL;
}

static void conn_append(struct daemon *d, struct tcpconn *c)
{
	c->deadline_ms = now_ms() + CLIENT_TIMEOUT_MS;
	c->prev = d->conn_newest;
	*(d->conn_newest ? &d->conn_newest->next : &d->conn_oldest) = c;
	d->conn_newest = c;
}

static bool accept_may(const struct daemon *d, const struct reg *r)
{
	return d->n_conns < MAX_TCP_CLIENTS && r->n_conns < MAX_TCP_CLIENTS_REG;
}

/* R's TCP listeners polled again (or not): see MAX_TCP_CLIENTS_REG. */
static void accept_pause(struct daemon *d, struct reg *r, bool pause)
{
	if (r->accept_paused == pause)
		return;
	r->accept_paused = pause;
	d->n_accept_paused += pause ? 1 : -1;
	if (r->tcp4.fd >= 0)
		ev_want(d, &r->tcp4, pause ? 0 : EPOLLIN);
	if (r->tcp6.fd >= 0)
		ev_want(d, &r->tcp6, pause ? 0 : EPOLLIN);
}

static void conn_park(struct daemon *d, struct tcpconn *c, bool park)
{
	if (c->parked == park)
		return;
	c->parked = park;
	d->n_parked += park ? 1 : -1;
	ev_want(d, &c->ev, park || c->eof ? 0 : EPOLLIN);
}

/*
 * Closed now, freed after the batch (its events may still be in it). Its
 * queries in flight finish without it (they hold their slots until then).
 */
static void conn_close(struct daemon *d, struct tcpconn *c)
{
	struct reg *r = c->ev.reg;

	conn_park(d, c, false);
	conn_unlink(d, c);
	ev_close(d, &c->ev);
	r->n_conns--;
	d->n_conns--;
	if (c->inflight)
		for (struct pending *p = d->oldest; p; p = p->next)
			if (p->conn == c)
				p->conn = NULL;
	c->inflight = 0;
	c->next = d->conn_dead;
	d->conn_dead = c;
	if (d->n_accept_paused) {
		for (struct reg *x = d->regs; x; x = x->next)
			if (x->accept_paused && accept_may(d, x))
				accept_pause(d, x, false);
	}
}

/* The answer to one of C's queries; false if C had to be closed. */
static bool conn_reply(struct daemon *d, struct tcpconn *c, const __u8 *a,
		       size_t alen)
{
	__u8 len[2] = { alen >> 8, alen & 0xff };

	/* it must fit the socket's send buffer at once, or the client goes */
	if (send(c->ev.fd, len, 2, MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE) != 2 ||
	    send(c->ev.fd, a, alen, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)alen) {
		conn_close(d, c);
		return false;
	}
	return true;
}

static bool tcp_slot(const struct daemon *d, const struct tcpconn *c)
{
	const struct reg *r = c->ev.reg;

	return c->inflight < TCP_QUERIES_CONN && r->n_tcp_up < TCP_UPSTREAM_REG &&
	       (r->n_tcp_up < TCP_UPSTREAM_RESERVED ||
		d->n_tcp_up < MAX_TCP_UPSTREAM) && pending_may(d, r);
}

/*
 * Take the whole queries in C's buffer: refused ones are answered at
 * once, allowed ones go upstream while there is a slot (tcp_slot());
 * without one C is parked: not read until resume_conns() finds a slot.
 */
static void conn_parse(struct daemon *d, struct tcpconn *c)
{
	struct reg *r = c->ev.reg;

	while (c->got >= 2 && c->ev.fd >= 0) {
		size_t qlen = (size_t)c->buf[0] << 8 | c->buf[1], flen, alen;
		struct moat_addr_val ports;
		struct dns_question qu;
		struct pending *p;
		int ret;

		if (!qlen) {
			conn_close(d, c);
			return;
		}
		if (c->got < 2 + qlen)
			break;
		if (!tcp_slot(d, c)) {
			conn_park(d, c, true);
			return;
		}
		ret = classify(d, r, c->buf + 2, qlen, &qu, &ports, &flen, &alen);
		if (ret < 0 || (!ret && !conn_reply(d, c, buf_a, alen))) {
			if (c->ev.fd >= 0)
				conn_close(d, c);
			return;
		}
		if (ret > 0) {
			p = calloc(1, sizeof(*p) + flen);
			if (!p) {
				conn_close(d, c);
				return;
			}
			*p = (struct pending){
				.reg = r, .tcp = true, .conn = c, .client_fd = -1,
				.client_id = qu.id, .ports = ports, .qu = qu,
				.qlen = flen,
			};
			memcpy(p->query, buf_fwd, flen);
			pending_take(d, r, p);
			c->inflight++;
			r->n_tcp_up++;
			d->n_tcp_up++;
			pending_send(d, p, -ENOENT);
		}
		if (c->ev.fd < 0)
			return;	/* closed by a failed answer */
		c->got -= 2 + qlen;
		memmove(c->buf, c->buf + 2 + qlen, c->got);
	}
	conn_park(d, c, false);
}

/* After a batch: parked clients whose slot has come. */
static void resume_conns(struct daemon *d)
{
	struct tcpconn *c, *next;

	for (c = d->conn_oldest; c && d->n_parked; c = next) {
		next = c->next;
		if (c->parked && tcp_slot(d, c))
			conn_parse(d, c);
	}
}

static void serve_tcp(struct daemon *d, struct reg *r, int lfd)
{
	for (int i = 0; i < RECV_BATCH; i++) {
		struct tcpconn *c;
		int fd;

		if (!accept_may(d, r)) {
			/* the next ones wait in the backlog: see conn_close() */
			accept_pause(d, r, true);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			/* out of descriptors: wait for a client to close */
			if (errno == EMFILE || errno == ENFILE)
				accept_pause(d, r, true);
			return;
		}
		if (!(c = malloc(sizeof(*c)))) {
			close(fd);	/* the client retries, or falls back to UDP */
			continue;
		}
		c->ev = (struct ev){ .kind = EV_TCPCONN, .fd = fd, .reg = r };
		c->got = 0;
		c->inflight = 0;
		c->parked = false;
		c->eof = false;
		c->prev = c->next = NULL;
		if (ev_add(d, &c->ev)) {
			close(fd);
			free(c);
			continue;
		}
		r->n_conns++;
		d->n_conns++;
		conn_append(d, c);
	}
}

static void serve_tcpconn(struct daemon *d, struct tcpconn *c)
{
	ssize_t n;
	char b;

	if (c->parked || c->eof) {
		/* not polled for input: only an error (reset) wakes us */
		n = recv(c->ev.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			conn_close(d, c);
		return;
	}
	n = recv(c->ev.fd, c->buf + c->got, sizeof(c->buf) - c->got, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0 || (!n && !c->inflight && c->got < 2)) {
		conn_close(d, c);
		return;
	}
	if (!n) {
		/*
		 * Shut down for writing after its queries: they are still
		 * answered; the client goes once none is left (expire_conns).
		 */
		c->eof = true;
		ev_want(d, &c->ev, 0);
		return;
	}
	c->got += n;
	/* progress: a new deadline */
	conn_unlink(d, c);
	conn_append(d, c);
	conn_parse(d, c);
}

/* Idle clients go; one with queries in flight or waiting is not idle. */
static void expire_conns(struct daemon *d)
{
	__u64 now = now_ms();

	while (d->conn_oldest && d->conn_oldest->deadline_ms <= now) {
		struct tcpconn *c = d->conn_oldest;

		conn_unlink(d, c);
		if (c->inflight || c->parked)
			conn_append(d, c);
		else {
			conn_append(d, c);	/* conn_close unlinks it */
			conn_close(d, c);
		}
	}
}

static void reg_close_conns(struct daemon *d, struct reg *r)
{
	struct tcpconn *c, *next;

	for (c = d->conn_oldest; c; c = next) {
		next = c->next;
		if (c->ev.reg == r)
			conn_close(d, c);
	}
	accept_pause(d, r, false);
}

/* ---- registrations ---- */

/* UDP and TCP on the same port of ADDR; returns the port or -errno. */
static int listen_pair(struct daemon *d, struct reg *r, int family,
		       struct ev *u, struct ev *t)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) :
					    sizeof(struct sockaddr_in6);
	int one = 1, err;

	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	for (int tries = 0; tries < 16; tries++) {
		u->fd = netns_socket(d, r, family, SOCK_DGRAM);
		t->fd = netns_socket(d, r, family, SOCK_STREAM | SOCK_NONBLOCK);
		if (u->fd < 0 || t->fd < 0) {
			err = u->fd < 0 ? u->fd : t->fd;
			goto fail;
		}
		if (family == AF_INET6)
			setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		((struct sockaddr_in *)&ss)->sin_port = 0;
		if (bind(u->fd, (struct sockaddr *)&ss, len) ||
		    getsockname(u->fd, (struct sockaddr *)&ss, &len)) {
			err = -errno;
			goto fail;
		}
		if (!bind(t->fd, (struct sockaddr *)&ss, len) &&
		    !listen(t->fd, LISTEN_BACKLOG))
			break;
		/* the port is taken for TCP: try another */
		close(u->fd);
		close(t->fd);
		u->fd = t->fd = -1;
	}
	if (u->fd < 0)
		return -EADDRINUSE;
	u->kind = EV_UDP;
	t->kind = EV_TCP;
	u->reg = t->reg = r;
	if ((err = ev_add(d, u)) || (err = ev_add(d, t)))
		goto fail;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
fail:
	ev_close(d, u);
	ev_close(d, t);
	return err;
}

/* Its sockets and queries; events of this batch may still name its evs. */
static void reg_close(struct daemon *d, struct reg *r)
{
	/* queued answers name its listeners' fds: send them before closing */
	out_flush();
	drop_pending(d, r);
	for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
		ev_close(d, &r->up_ev[i]);
	ev_close(d, &r->udp4);
	ev_close(d, &r->tcp4);
	ev_close(d, &r->udp6);
	ev_close(d, &r->tcp6);
	reg_close_conns(d, r);
}

/* Its memory: only once no event of the current batch can name it. */
static void reg_release(struct reg *r)
{
	if (r->netns_fd >= 0)
		close(r->netns_fd);
	policy_free(&r->spec);
	rule_index_free(&r->ix);
	for (size_t i = 0; i < r->n_search; i++)
		free(r->search[i]);
	if (r->saved)
		json_object_put(r->saved);
	free(r->rel);
	free(r);
}

static void reg_free(struct daemon *d, struct reg *r)
{
	reg_close(d, r);
	reg_release(r);
}

/* Registrations removed while handling a batch of events, freed after it. */
static void reap_dead(struct daemon *d)
{
	while (d->tup_dead) {
		struct tcpup *t = d->tup_dead;

		d->tup_dead = t->dead_next;
		free(t);
	}
	while (d->conn_dead) {
		struct tcpconn *c = d->conn_dead;

		d->conn_dead = c->next;
		free(c);
	}
	if (!d->dead)
		return;
	while (d->dead) {
		struct reg *r = d->dead;

		d->dead = r->next;
		reg_release(r);
	}
	malloc_trim(0);	/* a large policy's rules go back to the system */
}

static struct reg *reg_find(struct daemon *d, __u64 id, struct reg ***link)
{
	struct reg **pp;

	for (pp = &d->regs; *pp; pp = &(*pp)->next)
		if ((*pp)->cg_id == id) {
			if (link)
				*link = pp;
			return *pp;
		}
	return NULL;
}

static void path_of(char *buf, size_t len, const char *dir, __u64 id)
{
	snprintf(buf, len, "%s/%llu%s", dir, (unsigned long long)id,
		 !strcmp(dir, REG_DIR) ? ".json" : "");
}

static void reg_remove(struct daemon *d, __u64 id)
{
	struct reg **pp, *r = reg_find(d, id, &pp);
	char p[PATH_MAX];

	if (r) {
		struct moat_resolver_key k = { r->cg_id, r->netns_cookie };

		bpf_map_delete_elem(d->st.map[M_RESOLVERS], &k);
		*pp = r->next;
		reg_close(d, r);
		r->next = d->dead;
		d->dead = r;
	}
	path_of(p, sizeof(p), NETNS_DIR, id);
	umount2(p, MNT_DETACH);
	unlink(p);
	path_of(p, sizeof(p), REG_DIR, id);
	unlink(p);
}

/* Keep a reference to the netns that outlives this process. */
static int pin_netns(__u64 id, int netns_fd)
{
	char p[PATH_MAX], src[64];
	int fd;

	path_of(p, sizeof(p), NETNS_DIR, id);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", netns_fd);
	umount2(p, MNT_DETACH);
	fd = open(p, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return mount(src, p, NULL, MS_BIND, NULL) ? -errno : 0;
}

/*
 * The policy's dns.upstream, else --dns-upstream, else the nameservers of
 * the workload's resolv.conf that the registration O carries.
 */
static void reg_set_upstreams(struct daemon *d, struct reg *r, json_object *o)
{
	json_object *x;

	r->n_up = 0;
	for (size_t i = 0; i < r->spec.dns.n_upstream; i++)
		if (!parse_upstream(r->spec.dns.upstream[i], &r->up[r->n_up]))
			r->n_up++;
	if (!r->n_up && d->default_upstream &&
	    !parse_upstream(d->default_upstream, &r->up[0]))
		r->n_up = 1;
	if (r->n_up || !json_object_object_get_ex(o, "resolv_upstream", &x) ||
	    !json_object_is_type(x, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(x) &&
			   r->n_up < MOAT_MAX_UPSTREAMS; i++) {
		const char *a = json_object_get_string(json_object_array_get_idx(x, i));

		if (a && !parse_upstream(a, &r->up[r->n_up]))
			r->n_up++;
	}
}

/* Build a registration from its JSON and a netns fd (taken over). */
static int reg_create(struct daemon *d, json_object *o, int netns_fd,
		      struct moat_err *err)
{
	struct moat_resolver res = { .addr4 = htonl(INADDR_LOOPBACK) };
	struct moat_resolver_key key;
	socklen_t clen = sizeof(__u64);
	json_object *x;
	struct reg *r;
	int port, ret;

	r = calloc(1, sizeof(*r));
	if (!r) {
		close(netns_fd);
		return -ENOMEM;
	}
	r->netns_fd = netns_fd;
	r->udp4.fd = r->tcp4.fd = r->udp6.fd = r->tcp6.fd = -1;
	for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
		r->up_ev[i].fd = -1;
	policy_init(&r->spec);
	if (!json_object_object_get_ex(o, "cgroup_id", &x) ||
	    !(r->cg_id = json_object_get_uint64(x)) ||
	    !json_object_object_get_ex(o, "cgroup", &x)) {
		snprintf(err->msg, sizeof(err->msg), "cgroup_id and cgroup are required");
		ret = -EINVAL;
		goto fail;
	}
	r->rel = strdup(json_object_get_string(x) ?: "");
	if (!r->rel) {
		ret = -ENOMEM;
		goto fail;
	}
	/*
	 * See struct reg. Registrations saved before there were policy ids
	 * (no key at all) keep the id their cgroup runs as they are restored.
	 */
	if (json_object_object_get_ex(o, "policy_id", &x))
		r->pid = json_object_get_int64(x);
	else
		r->pid = reg_policy_id(d, r);
	ret = control_policy_parse(o, &r->spec, err);
	if (!ret)
		ret = rule_index_build(&r->spec, &r->ix);
	if (ret)
		goto fail;
	reg_set_upstreams(d, r, o);
	if (json_object_object_get_ex(o, "resolv_search", &x) &&
	    json_object_is_type(x, json_type_array))
		for (size_t i = 0; i < json_object_array_length(x) &&
				   r->n_search < DNS_SEARCH_MAX; i++) {
			const char *s = json_object_get_string(json_object_array_get_idx(x, i));

			if (s && *s && strlen(s) < DNS_NAME_STR_LEN &&
			    (r->search[r->n_search] = strdup(s)))
				r->n_search++;
		}

	port = listen_pair(d, r, AF_INET, &r->udp4, &r->tcp4);
	if (port < 0) {
		ret = port;
		snprintf(err->msg, sizeof(err->msg),
			 "cannot listen on 127.0.0.1 in the netns: %s", strerror(-ret));
		goto fail;
	}
	res.port4 = htons(port);
	port = listen_pair(d, r, AF_INET6, &r->udp6, &r->tcp6);
	if (port > 0) {	/* no IPv6 in the netns: v6 DNS fails closed */
		memcpy(res.addr6, &in6addr_loopback, 16);
		res.port6 = htons(port);
	}
	if (getsockopt(r->udp4.fd, SOL_SOCKET, SO_NETNS_COOKIE,
		       &r->netns_cookie, &clen)) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "SO_NETNS_COOKIE: %s", strerror(errno));
		goto fail;
	}
	key = (struct moat_resolver_key){ r->cg_id, r->netns_cookie };
	if (reg_find(d, r->cg_id, NULL))
		reg_remove(d, r->cg_id);
	if (bpf_map_update_elem(d->st.map[M_RESOLVERS], &key, &res, BPF_ANY)) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "writing the resolver entry: %s",
			 strerror(errno));
		goto fail;
	}
	r->saved = json_object_get(o);
	r->next = d->regs;
	d->regs = r;
	p_info("moat-bpfd: serving %s (policy '%s', %zu rule(s)) on 127.0.0.1:%u%s",
	       r->rel, r->spec.name, policy_domain_rules(&r->spec), ntohs(res.port4),
	       res.port6 ? " and [::1]" : "");
	return 0;
fail:
	reg_free(d, r);
	return ret;
}

static int persist(struct reg *r, int netns_fd)
{
	char p[PATH_MAX];
	int err;

	err = pin_netns(r->cg_id, netns_fd);
	if (err)
		return err;
	path_of(p, sizeof(p), REG_DIR, r->cg_id);
	err = json_object_to_file_ext(p, r->saved, JSON_C_TO_STRING_PLAIN) ? -EIO : 0;
	/* restore() reads the file: no need to keep it in memory */
	json_object_put(r->saved);
	r->saved = NULL;
	return err;
}

static void restore(struct daemon *d)
{
	struct dirent *de;
	DIR *dir = opendir(REG_DIR);

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char p[PATH_MAX];
		struct moat_err err = {};
		unsigned long long id;
		json_object *o;
		int fd;

		if (sscanf(de->d_name, "%llu.json", &id) != 1)
			continue;
		snprintf(p, sizeof(p), "%s/%s", REG_DIR, de->d_name);
		o = json_object_from_file(p);
		path_of(p, sizeof(p), NETNS_DIR, id);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (!o || fd < 0 || reg_create(d, o, fd, &err)) {
			p_err("moat-bpfd: dropping registration %llu: %s", id,
			      err.msg[0] ? err.msg : "unreadable");
			if (fd >= 0 && !o)
				close(fd);
			reg_remove(d, id);
		} else {
			json_object_put(d->regs->saved);	/* already on disk */
			d->regs->saved = NULL;
		}
		if (o)
			json_object_put(o);
	}
	closedir(dir);
}

/* ---- control ---- */

static void follow_upgrade(struct daemon *d);

/* The cgroup id of the cgroup2 directory FD. */
static int fd_cgroup_id(int fd, __u64 *id)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh.handle_bytes = sizeof(__u64) };
	int mount_id;

	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH))
		return -errno;
	if (h.fh.handle_bytes != sizeof(__u64))
		return -EOPNOTSUPP;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* The id of the cgroup2 mount's root, where walks up stop. */
static int fd_cgroup_id_root(__u64 *id)
{
	const char *mnt = cgroup2_mount();
	int fd = mnt ? open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	int err;

	if (fd < 0)
		return -ENOENT;
	err = fd_cgroup_id(fd, id);
	close(fd);
	return err;
}

/* Process PID's cgroup2 directory, opened (O_PATH), or -errno. */
static int open_cgroup_of(pid_t pid)
{
	char p[64], line[PATH_MAX + 8], abs[PATH_MAX * 2];
	const char *mnt = cgroup2_mount();
	FILE *f;
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	line[0] = 0;
	while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		line[0] = 0;
	fclose(f);
	if (strncmp(line, "0::", 3) || !mnt)
		return -ENOENT;
	line[strcspn(line, "\n")] = 0;
	snprintf(abs, sizeof(abs), "%s%s", mnt, strcmp(line + 3, "/") ? line + 3 : "");
	fd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Peers must be root and outside every enforced cgroup (issue 11, item
 * 6). SO_PEERCRED's uid is the peer's at connect(); its pid may name
 * another process by now. So the peer's pidfd (SO_PEERPIDFD, which holds
 * on to the very process) says which cgroup it is in: PIDFD_GET_INFO
 * gives its id (and fails once the peer has exited). The directory of
 * that cgroup is found through /proc/PID/cgroup and taken only if its id
 * is the pidfd's; from it the walk up goes through "..", by descriptor.
 * Kernels without PIDFD_GET_INFO (6.5-6.12): the directory is taken if
 * the pidfd's process is still alive once it is open (a pid is not
 * reused before its process is reaped). Without SO_PEERPIDFD (before
 * 6.5) nobody is accepted: fail closed.
 */
static const char *peer_refused(struct daemon *d, int fd)
{
	struct moat_pidfd_info info = { .mask = MOAT_PIDFD_INFO_CGROUPID };
	const char *why = NULL;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct moat_cgroup cg;
	int pidfd, dfd;
	bool by_info;
	__u64 id, root;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid)
		return "peer is not root";
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len))
		return errno == ENOPROTOOPT ?
		       "the kernel has no SO_PEERPIDFD: peers cannot be checked" :
		       "the peer has exited";
	by_info = !ioctl(pidfd, MOAT_PIDFD_GET_INFO, &info);
	if (!by_info && errno != ENOTTY && errno != EINVAL) {
		close(pidfd);
		return "the peer has exited";
	}
	if (by_info && !(info.mask & MOAT_PIDFD_INFO_CGROUPID)) {
		close(pidfd);
		return "the kernel gives no cgroup for the peer";
	}
	dfd = open_cgroup_of(cred.pid);
	if (dfd < 0 || fd_cgroup_id(dfd, &id))
		why = "cannot find the peer's cgroup";
	else if (by_info ? id != info.cgroupid :
		 syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0)
		why = "the peer has exited";
	close(pidfd);
	if (!why && fd_cgroup_id_root(&root))
		why = "no cgroup2 mount to check the peer against";
	if (why)
		goto out;
	for (int depth = 0; ; depth++) {
		int up;

		if (!bpf_map_lookup_elem(d->st.map[M_CGROUPS], &id, &cg)) {
			why = "peer runs in an enforced cgroup";
			break;
		}
		if (id == root)
			break;
		up = depth < 4096 ? openat(dfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
		close(dfd);
		dfd = up;
		if (dfd < 0 || fd_cgroup_id(dfd, &id)) {
			why = "cannot walk up the peer's cgroup";
			break;
		}
	}
out:
	if (dfd >= 0)
		close(dfd);
	return why;
}

static json_object *op_list(struct daemon *d)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	for (struct reg *r = d->regs; r; r = r->next) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "cgroup_id", json_object_new_uint64(r->cg_id));
		json_object_object_add(e, "cgroup", json_object_new_string(r->rel));
		json_object_object_add(e, "policy", json_object_new_string(r->spec.name));
		json_object_object_add(e, "learned", json_object_new_int64(r->learned));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "registrations", a);
	json_object_object_add(o, "queries", json_object_new_uint64(d->n_query));
	json_object_object_add(o, "refused", json_object_new_uint64(d->n_refused));
	json_object_object_add(o, "forwarded", json_object_new_uint64(d->n_forwarded));
	json_object_object_add(o, "servfail", json_object_new_uint64(d->n_servfail));
	json_object_object_add(o, "malformed", json_object_new_uint64(d->n_malformed));
	json_object_object_add(o, "stray_answers", json_object_new_uint64(d->n_stray));
	json_object_object_add(o, "in_flight", json_object_new_uint64(d->n_pending));
	json_object_object_add(o, "names", json_object_new_int64(evlog_names(d->log)));
	return o;
}

static json_object *error_reply(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

/*
 * `policy reload`: a registration's policy changes in place, atomically
 * for its queries (one at a time). Its netns and listeners stay; queries
 * in flight are dropped (their clients retry) and learned addresses
 * belong to the new policy id from the next answer on.
 */
static json_object *op_update(struct daemon *d, json_object *msg)
{
	struct moat_policy_spec spec;
	struct rule_index ix = {};
	struct moat_err err = {};
	char p[PATH_MAX];
	json_object *x, *saved;
	struct reg *r;

	if (!json_object_object_get_ex(msg, "cgroup_id", &x) ||
	    !(r = reg_find(d, json_object_get_uint64(x), NULL)))
		return error_reply("no registration for that cgroup");
	/* built aside: on any error the registration stays as it was */
	policy_init(&spec);
	if (control_policy_parse(msg, &spec, &err) || rule_index_build(&spec, &ix)) {
		policy_free(&spec);
		return error_reply(err.msg[0] ? err.msg : "cannot index the rules");
	}
	drop_pending(d, r);
	for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
		ev_close(d, &r->up_ev[i]);
	policy_free(&r->spec);
	rule_index_free(&r->ix);
	r->spec = spec;
	r->ix = ix;
	r->learned_pid = 0;	/* a new policy id: recount */
	/* the id the new rules are for: the cgroup was flipped to it first */
	r->pid = json_object_object_get_ex(msg, "policy_id", &x) ?
		 json_object_get_int64(x) : 0;
	path_of(p, sizeof(p), REG_DIR, r->cg_id);
	saved = json_object_from_file(p);
	reg_set_upstreams(d, r, saved);
	if (saved)
		json_object_put(saved);
	if (control_reg_file_update(p, &r->spec, r->pid))
		p_err("moat-bpfd: %s: the update will not survive a restart", r->rel);
	p_info("moat-bpfd: %s now serves policy '%s' (%zu domain rule(s))", r->rel,
	       r->spec.name, policy_domain_rules(&r->spec));
	x = json_object_new_object();
	json_object_object_add(x, "ok", json_object_new_boolean(1));
	return x;
}

/* After the attach that follows a registration: see struct reg. */
static json_object *op_bind(struct daemon *d, json_object *msg)
{
	json_object *x;
	struct reg *r;

	if (!json_object_object_get_ex(msg, "cgroup_id", &x) ||
	    !(r = reg_find(d, json_object_get_uint64(x), NULL)))
		return error_reply("no registration for that cgroup");
	if (!json_object_object_get_ex(msg, "policy_id", &x) ||
	    !json_object_get_int64(x))
		return error_reply("bind needs a policy_id");
	r->learned_pid = 0;
	reg_bind(r, json_object_get_int64(x));
	x = json_object_new_object();
	json_object_object_add(x, "ok", json_object_new_boolean(1));
	return x;
}

static void serve_control(struct daemon *d)
{
	json_object *msg = NULL, *reply = NULL, *op;
	struct moat_err err = {};
	const char *why, *name;
	int fd, nfd = -1;

	fd = accept4(d->control.fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	set_timeouts(fd, CLIENT_TIMEOUT_MS);
	if ((why = peer_refused(d, fd))) {
		reply = error_reply(why);
		goto out;
	}
	if (control_recv(fd, &msg, &nfd) || !msg ||
	    !json_object_object_get_ex(msg, "op", &op)) {
		reply = error_reply("malformed request");
		goto out;
	}
	name = json_object_get_string(op);
	/* the maps may have been replaced (upgrade, or unload and reload) */
	follow_upgrade(d);
	if (!strcmp(name, "register")) {
		if (nfd < 0) {
			reply = error_reply("register needs the netns as SCM_RIGHTS");
			goto out;
		}
		int keep = dup(nfd);

		if (reg_create(d, msg, nfd, &err)) {
			close(keep);
			reply = error_reply(err.msg[0] ? err.msg : "registration failed");
		} else {
			struct reg *r = d->regs;

			if (persist(r, keep))
				p_err("moat-bpfd: %s: cannot persist the registration "
				      "(it will not survive a restart)", r->rel);
			close(keep);
			reply = json_object_new_object();
			json_object_object_add(reply, "ok", json_object_new_boolean(1));
		}
		nfd = -1;
	} else if (!strcmp(name, "unregister")) {
		json_object *x;

		if (json_object_object_get_ex(msg, "cgroup_id", &x))
			reg_remove(d, json_object_get_uint64(x));
		reply = json_object_new_object();
		json_object_object_add(reply, "ok", json_object_new_boolean(1));
	} else if (!strcmp(name, "update")) {
		reply = op_update(d, msg);
	} else if (!strcmp(name, "bind")) {
		reply = op_bind(d, msg);
	} else if (!strcmp(name, "list")) {
		reply = op_list(d);
	} else {
		reply = error_reply("unknown op");
	}
out:
	control_send(fd, reply, -1);
	json_object_put(reply);
	if (msg)
		json_object_put(msg);
	if (nfd >= 0)
		close(nfd);
	close(fd);
}

/* Registrations of cgroups that no longer exist (no poststop ran). */
static void reap_regs(struct daemon *d)
{
	char abs[PATH_MAX * 2];
	struct reg *r, *next;
	__u64 id;

	for (r = d->regs; r; r = next) {
		next = r->next;
		snprintf(abs, sizeof(abs), "%s%s", cgroup2_mount(), r->rel);
		if (cgroup_id_of(abs, &id) || id != r->cg_id) {
			p_info("moat-bpfd: %s is gone; dropping its registration", r->rel);
			reg_remove(d, r->cg_id);
		}
	}
}

static __u32 map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) ? info.id : 0;
}

/* After 'moat-bpf upgrade' to a new layout the pinned maps are new ones. */
static void follow_upgrade(struct daemon *d)
{
	int fd = bpf_obj_get(MOAT_PIN_ROOT "/maps/moat_exact4");
	__u32 pinned = map_id(fd);

	if (fd >= 0)
		close(fd);
	if (!pinned || pinned == map_id(d->st.map[M_EXACT4]))
		return;
	state_close(&d->st);
	state_init(&d->st);
	if (state_open(&d->st, false)) {
		p_err("moat-bpfd: the pinned state changed and cannot be reopened");
		return;
	}
	p_info("moat-bpfd: the program set was upgraded; maps reopened");
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->events.fd, NULL);
	if (!evlog_reopen(d->log, &d->st)) {
		d->events.fd = evlog_fd(d->log);
		ev_add(d, &d->events);
	}
	for (struct reg *r = d->regs; r; r = r->next) {
		struct moat_resolver res = { .addr4 = htonl(INADDR_LOOPBACK) };
		struct moat_resolver_key k = { r->cg_id, r->netns_cookie };
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (!getsockname(r->udp4.fd, (struct sockaddr *)&ss, &len))
			res.port4 = ((struct sockaddr_in *)&ss)->sin_port;
		len = sizeof(ss);
		if (r->udp6.fd >= 0 &&
		    !getsockname(r->udp6.fd, (struct sockaddr *)&ss, &len)) {
			memcpy(res.addr6, &in6addr_loopback, 16);
			res.port6 = ((struct sockaddr_in6 *)&ss)->sin6_port;
		}
		bpf_map_update_elem(d->st.map[M_RESOLVERS], &k, &res, BPF_ANY);
		r->learned_pid = 0;	/* recount */
		for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++) {
			__u8 one = 1;

			if (r->up_ev[i].guarded)
				bpf_map_update_elem(d->st.map[M_DAEMON_SOCKS],
						    &r->up_ev[i].guard, &one, BPF_ANY);
		}
	}
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
	for (struct reg *r = d->regs; r; r = r->next)
		if (r->learned_pid && r->learned_pid < MOAT_MAX_POLICIES)
			r->learned = live[r->learned_pid];
	if (evlog_gc(d->log, now) > 0)
		malloc_trim(0);	/* what the names took goes back */
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

	if ((mkdir(REG_DIR, 0700) && errno != EEXIST) ||
	    (mkdir(NETNS_DIR, 0700) && errno != EEXIST))
		return -errno;
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
	if ((err = ev_add(d, &d->control)) || (err = ev_add(d, &d->timer)) ||
	    (err = ev_add(d, &d->signal)) || (err = ev_add(d, &d->events)))
		return err;
	return 0;
}

static unsigned int count_regs(const struct daemon *d)
{
	unsigned int n = 0;

	for (const struct reg *r = d->regs; r; r = r->next)
		n++;
	return n;
}

int do_daemon(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dns-upstream", required_argument, NULL, 'u' },
		{ 0 }
	};
	/* static: the id table is 512 KiB */
	static struct daemon d = { .epfd = -1, .host_netns = -1 };
	struct epoll_event evs[16];
	bool foreground = false, check = false;
	struct upstream u;
	struct rlimit rl;
	int opt, err;

	optind = 0;
	argc++;
	argv--;	/* getopt wants the command name in argv[0] */
	while ((opt = getopt_long(argc, argv, "dnv", opts, NULL)) >= 0) {
		switch (opt) {
		case 'd': foreground = true; break;
		case 'n': check = true; break;
		case 'v': verbose++; break;
		case 'u':
			if (parse_upstream(optarg, &u)) {
				p_err("--dns-upstream: '%s' is not ADDR, ADDR:PORT or [ADDR6]:PORT",
				      optarg);
				return -EINVAL;
			}
			d.default_upstream = optarg;
			break;
		default:
			p_err("usage: moat-bpf daemon [-d] [-n] [-v] [--dns-upstream ADDR]");
			return -EINVAL;
		}
	}
	if (optind != argc) {
		p_err("daemon: unexpected argument '%s'", argv[optind]);
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
		out_flush();
		reap_dead(&d);
	}
	sd_notify(0, "STOPPING=1");
	p_info("moat-bpfd: stopping; registrations stay in %s", REG_DIR);
out:
	while (d.regs) {
		struct reg *r = d.regs;
		struct moat_resolver_key k = { r->cg_id, r->netns_cookie };

		/*
		 * A clean stop removes the redirect targets: DNS then gets EPERM
		 * (fail-closed) and nobody else can bind our old ports to answer
		 * it. After kill -9 they stay, and DNS fails closed by refusal.
		 */
		if (d.st.map[M_RESOLVERS] >= 0)
			bpf_map_delete_elem(d.st.map[M_RESOLVERS], &k);
		d.regs = r->next;
		reg_free(&d, r);
	}
	evlog_close(d.log);
	unlink(MOAT_CONTROL_SOCK);
	state_close(&d.st);
	return err;
}
