/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
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
 * replaces the client's. TCP clients are read without blocking and their
 * queries go upstream over TCP, also asynchronously. See docs/resolver.md.
 *
 * The daemon is split by role over this header (OpenBSD ntpd style):
 *   resolver.c        do_daemon, setup and the event loop; the epoll and
 *                     netns plumbing every part uses (ev_*, netns_socket,
 *                     the guards of upstream sockets)
 *   resolver_query.c  one query decided (classify) and one answer learned
 *                     (learn_answer): the rule index, the SERVFAIL and
 *                     local answers, the dns events of the log
 *   resolver_cache.c  answers kept for their TTL (resolver_cache.h); a
 *                     hit is learned like an upstream answer
 *   resolver_udp.c    queries in flight (struct pending, both transports),
 *                     UDP clients and upstreams, answers batched per wakeup
 *   resolver_tcp.c    TCP clients (struct tcpconn) and TCP exchanges with
 *                     upstreams (struct tcpup), with their quotas
 *   resolver_reg.c    registrations: create, remove, persist, restore, and
 *                     following an upgrade of the pinned maps
 *   resolver_ctl.c    the control socket: who may talk, and its ops
 */
#ifndef MOAT_RESOLVER_H
#define MOAT_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/types.h>
#include <json-c/json.h>
#include "dns.h"
#include "evlog.h"
#include "learn.h"
#include "policy.h"
#include "resolver_cache.h"
#include "resolver_children.h"
#include "paths.h"
#include "state.h"

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
/* buckets of the queries in flight by id (MAX_PENDING_IDS at most) */
#define ID_BUCKETS		4096
/* datagrams read per wakeup of one socket, so that none starves others */
#define RECV_BATCH		64


#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE		71
#endif

enum ev_kind {
	EV_CONTROL, EV_TIMER, EV_SIGNAL, EV_UDP, EV_TCP, EV_EVENTS, EV_UPSTREAM,
	EV_TCPCONN, EV_TCPUP, EV_CHILDREN
};

struct ev {
	enum ev_kind kind;
	int fd;
	struct reg *reg;
	int idx;			/* EV_UPSTREAM: index into reg->up[] */
	bool guarded;			/* guard is in moat_daemon_socks */
	struct moat_daemon_sock_key guard;
};

/* An upstream's address: IP only, so not a 128-byte sockaddr_storage. */
struct upstream {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	socklen_t len;
};

/* Domain rules by the hash of their domain: lookups flat in N. */
struct rule_index {
	__u32 *head;			/* bucket -> first rule index + 1 */
	__u32 *next;			/* rule index -> next index + 1 */
	__u32 buckets;
};

struct kid_user {
	__u64 id;
	char *rel;
};

struct reg {
	LIST_ENTRY(reg) entry;		/* in d->regs, or d->dead */
	__u64 cg_id;
	char *rel;			/* cgroup path below the cgroup2 mount */
	/*
	 * Issue 15: an enforced parent registered without a netns (netns_fd
	 * -1) serves nothing itself; each netns of its children gets a
	 * registration of its own, with the parent's cg_id and rules, made
	 * through resolver_childreg.c: CHILD is the child cgroup that vouched
	 * for it (REL its path), never persisted, upstreams asked from the
	 * daemon's own netns (never from a file the child controls).
	 */
	__u64 child;
	/*
	 * The other child cgroups whose tasks use this netns (a pod's
	 * containers share the pod's): the registration goes with the last
	 * of them (childreg_release()).
	 */
	struct kid_user *users;
	unsigned int n_users;
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
	struct rule_index ix;		/* its domain rules, indexed */
	/*
	 * Its cached answers (resolver_cache.h): emptied whenever its rules,
	 * policy id or upstreams are set (reg_set_upstreams, op_bind).
	 */
	struct dcache_owner cache;
	char *search[DNS_SEARCH_MAX];	/* its resolv.conf's search domains */
	size_t n_search;
};

/* A query forwarded upstream, waiting for its answer (resolver_udp.c). */
struct pending {
	TAILQ_ENTRY(pending) entry;	/* in d->pending, by deadline */
	LIST_ENTRY(pending) by_id;	/* in d->by_id[qu.id % ID_BUCKETS] */
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
	bool answered;			/* its answer is in the batch being learned */
	__u64 deadline_ms;
	struct moat_addr_val ports;	/* what the matching rules allow */
	struct dns_question qu;
	size_t qlen;
	size_t raw_len;			/* the client's query, at query + qlen */
	__u8 query[];			/* canonical, with the client's id */
};

/*
 * A TCP client: read without blocking (an idle client costs nothing but
 * a descriptor), dropped after CLIENT_TIMEOUT_MS without progress while
 * none of its queries is in flight or waiting.
 */
struct tcpconn {
	struct ev ev;			/* first: the epoll cookie */
	TAILQ_ENTRY(tcpconn) entry;	/* in d->conns, by deadline */
	SLIST_ENTRY(tcpconn) dead;	/* in d->conn_dead once closed */
	__u64 deadline_ms;
	unsigned int inflight;		/* its queries upstream */
	bool parked;			/* a whole query waits for a slot */
	bool eof;			/* it shut down its side: not read again */
	size_t got;
	__u8 buf[2 + DNS_MSG_BYTES];	/* length prefix and one query */
};

/* One TCP exchange with an upstream for a pending query (resolver_tcp.c). */
struct tcpup {
	struct ev ev;			/* first: the epoll cookie */
	SLIST_ENTRY(tcpup) dead;	/* in d->tup_dead once closed */
	struct pending *p;
	bool sending;			/* connecting, or the query not all out */
	size_t out_len, sent;
	size_t need, got;		/* the answer: 2 bytes, then its length */
	__u8 *ans;
	__u8 hdr[2];
	__u8 out[];			/* length prefix and query */
};

/*
 * Answers to UDP clients are queued and sent together (sendmmsg per
 * listener) once the events of one wakeup are handled: on a small machine
 * waking the client for every answer cost more than building them.
 */
#define OUT_SLOTS	64
#define OUT_SLOT_BYTES	4096

struct outbatch {
	struct mmsghdr msg[OUT_SLOTS];
	struct iovec iov[OUT_SLOTS];
	struct sockaddr_storage to[OUT_SLOTS];
	int fd[OUT_SLOTS];
	__u8 buf[OUT_SLOTS][OUT_SLOT_BYTES];
	unsigned int n;
};

/*
 * UDP queries read with one recvmmsg: a slot per datagram, each as large
 * as a datagram can be (pages are touched only as far as queries go).
 */
#define IN_SLOTS	16

struct inbatch {
	struct mmsghdr msg[IN_SLOTS];
	struct iovec iov[IN_SLOTS];
	struct sockaddr_storage from[IN_SLOTS];
	__u8 buf[IN_SLOTS][DNS_MSG_BYTES];
};

/*
 * The queries of one recvmmsg that go upstream leave together (sendmmsg
 * per upstream socket): one syscall per batch, not per query. The
 * messages point into their pending queries; the ids are kept here.
 */
struct upbatch {
	struct mmsghdr msg[IN_SLOTS];
	struct iovec iov[IN_SLOTS][2];
	struct pending *p[IN_SLOTS];
	int fd[IN_SLOTS];
	__u8 id[IN_SLOTS][2];
	unsigned int n;
	bool on;			/* serve_udp() is collecting */
};

struct daemon {
	struct moat_state st;
	int epfd, host_netns;
	struct ev control, timer, signal, events, kids_ev;
	struct children *kids;		/* see struct reg */
	struct evlog *log;
	LIST_HEAD(, reg) regs;
	const char *default_upstream;
	unsigned long ticks;
	unsigned long n_query, n_refused, n_forwarded, n_servfail, n_malformed;
	unsigned long n_stray, n_cached;
	struct dcache cache;		/* every registration's answers */
	struct learn_memo memo;		/* what the maps hold: see learn.h */
	/*
	 * Upstream id -> query in flight: ids are random, so chains stay
	 * short; a flat array of every id (512 KiB) ended up all resident
	 * once the ids had spread over it (issue 18).
	 */
	LIST_HEAD(, pending) by_id[ID_BUCKETS];
	TAILQ_HEAD(, pending) pending;	/* the oldest deadline first */
	unsigned int n_pending;
	unsigned int n_pending_pool;	/* of them, beyond their reserve */
	/* closed during a batch of events, freed after it: see reap_dead() */
	LIST_HEAD(, reg) dead;
	SLIST_HEAD(, tcpconn) conn_dead;
	SLIST_HEAD(, tcpup) tup_dead;
	TAILQ_HEAD(, tcpconn) conns;	/* the oldest deadline first */
	unsigned int n_conns;
	unsigned int n_tcp_up;		/* TCP exchanges upstream, all regs */
	unsigned int n_parked;		/* clients waiting for a TCP slot */
	unsigned int n_accept_paused;	/* registrations not accepting */
	int lock_fd;			/* MOAT_DAEMON_LOCK, held for life */
	bool stop;
	/*
	 * One message at a time: a query read, its canonical form, an answer.
	 * Handlers lend them to what they call as parameters.
	 */
	struct inbatch in;
	__u8 fwd[DNS_MSG_BYTES], a[DNS_MSG_BYTES];
	/* the addresses of the answer being learned (learn_answer, hits) */
	struct dns_addr addrs[MAX_ANSWER_ADDRS];
	size_t n_addrs;
	struct outbatch out;		/* see out_flush() */
	struct upbatch up;		/* see up_flush() */
	/* our listed sockets per local port: the gate, see guard_sock() */
	__u16 port_refs[65536];
};

/* a port's count never wraps: the map holds fewer sockets than that */
_Static_assert(MOAT_MAX_DAEMON_SOCKS < 65536,
	       "port_refs counts listed sockets in 16 bits");


/* resolver.c: the loop's plumbing */
int ev_add(struct daemon *d, struct ev *ev);
int ev_want(struct daemon *d, struct ev *ev, __u32 events);
/* closes and unguards EV's socket; EV may be named by this batch still */
void ev_close(struct daemon *d, struct ev *ev);
int netns_socket(struct daemon *d, struct reg *r, int family, int type);
int up_socket(struct daemon *d, struct reg *r, int family, int type);
int guard_sock(struct daemon *d, int fd, int proto, struct moat_daemon_sock_key *k);
void unguard_sock(struct daemon *d, const struct moat_daemon_sock_key *k);
/* after an upgrade: every socket we hold guarded listed and gated anew */
void guards_relist(struct daemon *d);
__u64 now_ms(void);
void set_timeouts(int fd, int ms);

/* resolver_query.c: deciding queries and learning answers */
__u32 reg_policy_id(struct daemon *d, struct reg *r);
int rule_index_build(const struct moat_policy_spec *spec, struct rule_index *ix);
void rule_index_free(struct rule_index *ix);
/*
 * Decide query Q (QLEN bytes) of R, parsed into *QU, from a TCP client
 * or not. Returns 1 when it goes upstream: the canonical query in FWD,
 * *PORTS what its rules allow; 0 with an answer in A (REFUSED, NXDOMAIN,
 * SERVFAIL, or one from the cache, learned already); -EBADMSG for
 * a packet to drop without answer. *flen and *alen: the room in FWD and
 * A, then the length written.
 */
int classify(struct daemon *d, struct reg *r, bool tcp, const __u8 *q,
	     size_t qlen, struct dns_question *qu, struct moat_addr_val *ports,
	     __u8 *fwd, size_t *flen, __u8 *a, size_t *alen);
/*
 * Answer A (ALEN, the upstream's id) to P's query was released: kept,
 * under the query as the client sent it (see classify), with the
 * addresses learn_answer() just took from it (d->addrs).
 */
void cache_answer(struct daemon *d, const struct pending *p, const __u8 *a,
		  size_t alen);
/*
 * Write the addresses of answer A (ALEN bytes, to QU) into R's policy
 * maps; ECH is stripped from A. 0: A may be released; -EBADMSG, -ESRCH:
 * not the answer to QU (ignore it); other errors: answer SERVFAIL.
 */
int learn_answer(struct daemon *d, struct reg *r, const struct dns_question *qu,
		 const struct moat_addr_val *ports, __u8 *a, size_t alen);
/*
 * Answers learned together (one upstream recvmmsg, issue 18): the
 * cgroup's policy id is read before the first answer and after the last
 * write, not around each answer. learn_answer_in() as learn_answer(),
 * *WROTE saying whether the answer created or extended an entry; such an
 * answer is released only if learn_batch_close() then returns 0 (else
 * SERVFAIL with its error). An answer that wrote nothing may go at once.
 */
struct learn_batch {
	bool read, wrote;
	__u32 pid;			/* the id read, when read */
	int err;			/* that read's verdict */
	size_t n_fresh;			/* the entries it created */
};
void learn_batch_open(struct learn_batch *lb);
int learn_answer_in(struct daemon *d, struct reg *r, struct learn_batch *lb,
		    const struct dns_question *qu,
		    const struct moat_addr_val *ports, __u8 *a, size_t alen,
		    bool *wrote);
int learn_batch_close(struct daemon *d, struct reg *r, struct learn_batch *lb);
/*
 * The one SERVFAIL: counted, logged with the reason ERR gives, and the
 * answer to Q built into A (*alen as for classify); -EBADMSG if none.
 */
int servfail(struct daemon *d, struct reg *r, const char *qname, int err,
	     const __u8 *q, size_t qlen, __u8 *a, size_t *alen);

/* resolver_udp.c: queries in flight, UDP clients and upstreams */
bool pending_may(const struct daemon *d, const struct reg *r);
void pending_take(struct daemon *d, struct reg *r, struct pending *p);
void pending_send(struct daemon *d, struct pending *p, int err);
void pending_fail(struct daemon *d, struct pending *p, int err);
void pending_free(struct daemon *d, struct pending *p);
void reply_to(struct daemon *d, struct pending *p, const __u8 *a, size_t alen);
void out_flush(struct outbatch *out);
void serve_udp(struct daemon *d, struct reg *r, int fd);
void serve_upstream(struct daemon *d, struct ev *u);
void expire_pending(struct daemon *d);
void drop_pending(struct daemon *d, struct reg *r);

/* resolver_tcp.c: TCP clients and upstream exchanges */
int tup_start(struct daemon *d, struct pending *p);
void tup_close(struct daemon *d, struct tcpup *t);
void serve_tcpup(struct daemon *d, struct tcpup *t);
bool conn_reply(struct daemon *d, struct tcpconn *c, const __u8 *a, size_t alen);
void serve_tcp(struct daemon *d, struct reg *r, int lfd);
void serve_tcpconn(struct daemon *d, struct tcpconn *c);
void expire_conns(struct daemon *d);
void resume_conns(struct daemon *d);
void reg_close_conns(struct daemon *d, struct reg *r);

/* resolver_reg.c: registrations */
/*
 * A registration from its JSON O and a netns fd (taken over), served from
 * now on and returned in *RET_REG (may be NULL); one of the same cgroup
 * is replaced. Every source of registrations comes through here: the
 * control socket's register, restore() at start, and the children of an
 * enforced parent (resolver_childreg.c, never persisted). reg_persist()
 * then keeps O and the netns for the next start.
 */
int reg_create(struct daemon *d, json_object *o, int netns_fd,
	       struct reg **ret_reg, struct moat_err *err);
int reg_persist(const struct reg *r, json_object *o);
/* the registrations kept on disk by reg_persist(), served again */
void restore(struct daemon *d);
struct reg *reg_find(struct daemon *d, __u64 id);
void reg_remove(struct daemon *d, __u64 id);
void reg_drop(struct daemon *d, struct reg *r);
void reg_free(struct daemon *d, struct reg *r);
void reg_set_pid(struct daemon *d, struct reg *r, __u32 pid);
void reg_bind(struct daemon *d, struct reg *r, __u32 pid);
void reg_set_upstreams(struct daemon *d, struct reg *r, json_object *o);
void path_of(char *buf, size_t len, const char *dir, __u64 id);
void reap_dead(struct daemon *d);
void reap_regs(struct daemon *d);
void follow_upgrade(struct daemon *d);

/* resolver_ctl.c: the control socket */
void serve_control(struct daemon *d);

/* resolver_childreg.c: the children of enforced parents (issue 15) */
int childreg_setup(struct daemon *d);
/* R is registered (and persisted): if it is a parent, serve its children */
void childreg_parent(struct daemon *d, struct reg *r);
/* Parent R's rules (MSG, an update) or policy id (MSG NULL) changed */
void childreg_update(struct daemon *d, struct reg *r, json_object *msg);
/* child cgroup CHILD no longer uses child registration R: dropped with its last */
void childreg_release(struct daemon *d, struct reg *r, __u64 child);

#endif
