// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Queries in flight (struct pending, whichever transport the client
 * used): their ids, quotas and deadlines, the way to the next upstream
 * and to SERVFAIL. UDP clients and the UDP upstream sockets, and answers
 * to UDP clients batched per wakeup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include "resolver.h"

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

/* The query in flight with upstream id ID, or NULL. */
static struct pending *pending_by_id(const struct daemon *d, __u16 id)
{
	struct pending *p;

	LIST_FOREACH(p, &d->by_id[id % ID_BUCKETS], by_id)
		if (p->qu.id == id)
			return p;
	return NULL;
}

/* P was just asked upstream: a new deadline, the latest of all. */
static void pending_rearm(struct daemon *d, struct pending *p)
{
	TAILQ_REMOVE(&d->pending, p, entry);
	p->deadline_ms = now_ms() + UPSTREAM_TIMEOUT_MS;
	TAILQ_INSERT_TAIL(&d->pending, p, entry);
}

void pending_free(struct daemon *d, struct pending *p)
{
	TAILQ_REMOVE(&d->pending, p, entry);
	LIST_REMOVE(p, by_id);
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
bool pending_may(const struct daemon *d, const struct reg *r)
{
	if (d->n_pending >= MAX_PENDING_IDS || r->n_pending >= MAX_PENDING_REG)
		return false;
	return r->n_pending < MAX_PENDING_RESERVED || d->n_pending_pool < MAX_PENDING;
}

/* P (of R) is in flight from now on; pending_may() said it may be. */
void pending_take(struct daemon *d, struct reg *r, struct pending *p)
{
	__u16 id;

	/* unpredictable ids: an answer must name one to be taken */
	for (id = random_id(); pending_by_id(d, id); id++)
		;
	p->qu.id = id;
	LIST_INSERT_HEAD(&d->by_id[id % ID_BUCKETS], p, by_id);
	d->n_pending++;
	if (r->n_pending >= MAX_PENDING_RESERVED)
		d->n_pending_pool++;
	r->n_pending++;
	TAILQ_INSERT_TAIL(&d->pending, p, entry);
}

/* The registration's socket toward upstream I, in the workload's netns. */
static int upstream_fd(struct daemon *d, struct reg *r, int i)
{
	struct ev *u = &r->up_ev[i];
	int fd, err;

	if (u->fd >= 0)
		return u->fd;
	fd = up_socket(d, r, r->up[i].addr.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK);
	if (fd < 0)
		return fd;
	if (connect(fd, &r->up[i].addr.sa, r->up[i].len)) {
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

void out_flush(struct outbatch *out)
{
	for (unsigned int i = 0, j; i < out->n; i = j) {
		for (j = i + 1; j < out->n && out->fd[j] == out->fd[i]; j++)
			;
		/* a client that cannot take its answer retries: skip it */
		for (unsigned int k = i; k < j; ) {
			int sent = sendmmsg(out->fd[i], &out->msg[k], j - k, MSG_DONTWAIT);

			k += sent > 0 ? (unsigned int)sent : 1;
		}
	}
	out->n = 0;
}

static void send_answer(struct outbatch *out, int fd,
			const struct sockaddr_storage *to, socklen_t to_len,
			const __u8 *a, size_t alen)
{
	unsigned int i;

	if (alen > OUT_SLOT_BYTES) {
		sendto(fd, a, alen, MSG_DONTWAIT, (const struct sockaddr *)to, to_len);
		return;
	}
	if (out->n == OUT_SLOTS)
		out_flush(out);
	i = out->n++;
	out->fd[i] = fd;
	memcpy(out->buf[i], a, alen);
	memcpy(&out->to[i], to, to_len);
	out->iov[i] = (struct iovec){ .iov_base = out->buf[i], .iov_len = alen };
	out->msg[i] = (struct mmsghdr){ .msg_hdr = {
		.msg_name = &out->to[i], .msg_namelen = to_len,
		.msg_iov = &out->iov[i], .msg_iovlen = 1,
	} };
}

void reply_to(struct daemon *d, struct pending *p, const __u8 *a,
	      size_t alen)
{
	if (!p->tcp)
		send_answer(&d->out, p->client_fd, &p->from, p->from_len, a, alen);
	else if (p->conn)	/* else the client left: nobody to tell */
		conn_reply(d, p->conn, a, alen);
}

void pending_fail(struct daemon *d, struct pending *p, int err)
{
	size_t alen = sizeof(d->a);

	if (!servfail(d, p->reg, p->qu.qname, err, p->query, p->qlen, d->a, &alen))
		reply_to(d, p, d->a, alen);
	pending_free(d, p);
}

/* P's query with the id used upstream in place of the client's. */
static ssize_t send_query(int fd, const struct pending *p)
{
	__u8 id[2] = { p->qu.id >> 8, p->qu.id & 0xff };
	struct iovec iov[2] = {
		{ .iov_base = id, .iov_len = 2 },
		{ .iov_base = (void *)(p->query + 2), .iov_len = p->qlen - 2 },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	return sendmsg(fd, &mh, MSG_DONTWAIT);
}

/* P goes to FD with the next up_flush(), in flight from now. */
static void up_queue(struct daemon *d, int fd, struct pending *p)
{
	struct upbatch *up = &d->up;
	unsigned int i = up->n++;

	up->p[i] = p;
	up->fd[i] = fd;
	up->id[i][0] = p->qu.id >> 8;
	up->id[i][1] = p->qu.id & 0xff;
	up->iov[i][0] = (struct iovec){ .iov_base = up->id[i], .iov_len = 2 };
	up->iov[i][1] = (struct iovec){ .iov_base = p->query + 2, .iov_len = p->qlen - 2 };
	up->msg[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = up->iov[i], .msg_iovlen = 2 } };
	pending_rearm(d, p);
}

/*
 * What up_queue() collected, a sendmmsg per run of one socket. A query
 * that could not go moves on to the next upstream (at once: collecting
 * has stopped), as pending_send() does when its send fails.
 */
static void up_flush(struct daemon *d)
{
	struct upbatch *up = &d->up;
	unsigned int n = up->n;

	up->on = false;
	up->n = 0;
	for (unsigned int i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && up->fd[j] == up->fd[i]; j++)
			;
		for (unsigned int k = i; k < j; ) {
			int sent = sendmmsg(up->fd[i], &up->msg[k], j - k, MSG_DONTWAIT);
			struct pending *p;

			if (sent > 0) {
				k += (unsigned int)sent;
				continue;
			}
			p = up->p[k++];
			p->up++;
			pending_send(d, p, -errno);
		}
	}
}

/* Ask upstream p->up, or the next ones; SERVFAIL when none is left. */
void pending_send(struct daemon *d, struct pending *p, int err)
{
	struct reg *r = p->reg;

	for (; p->up < r->n_up; p->up++) {
		int fd;

		if (p->tcp) {
			err = tup_start(d, p);
			if (err)
				continue;
			pending_rearm(d, p);
			return;
		}
		fd = upstream_fd(d, r, p->up);

		if (fd < 0) {
			err = fd;
			continue;
		}
		if (d->up.on && d->up.n < IN_SLOTS) {
			up_queue(d, fd, p);
			return;
		}
		if (send_query(fd, p) == (ssize_t)p->qlen) {
			pending_rearm(d, p);
			return;
		}
		err = -errno;
	}
	pending_fail(d, p, err);
}

/* Canonical query FWD (FLEN bytes) of a UDP client, in flight from now. */
static void forward_udp(struct daemon *d, struct reg *r, int fd,
			const struct sockaddr_storage *from, socklen_t from_len,
			const struct dns_question *qu,
			const struct moat_addr_val *ports, const __u8 *fwd,
			size_t flen, const __u8 *q, size_t qlen)
{
	struct pending *p;

	if (!pending_may(d, r) || !(p = calloc(1, sizeof(*p) + flen + qlen))) {
		size_t alen = sizeof(d->a);

		if (!servfail(d, r, qu->qname, -EBUSY, fwd, flen, d->a, &alen))
			send_answer(&d->out, fd, from, from_len, d->a, alen);
		return;
	}
	*p = (struct pending){
		.reg = r, .client_fd = fd, .from = *from, .from_len = from_len,
		.client_id = qu->id, .ports = *ports, .qu = *qu, .qlen = flen,
		.raw_len = qlen,
	};
	memcpy(p->query, fwd, flen);
	memcpy(p->query + flen, q, qlen);
	pending_take(d, r, p);
	pending_send(d, p, -ENOENT);
}

void serve_udp(struct daemon *d, struct reg *r, int fd)
{
	struct inbatch *in = &d->in;
	struct moat_addr_val ports;
	struct dns_question qu;

	/* at most RECV_BATCH queries a wakeup: the other sockets' turn */
	for (int round = 0; round < RECV_BATCH / IN_SLOTS; round++) {
		int n;

		for (int i = 0; i < IN_SLOTS; i++) {
			in->iov[i] = (struct iovec){
				.iov_base = in->buf[i], .iov_len = sizeof(in->buf[i]),
			};
			in->msg[i].msg_hdr = (struct msghdr){
				.msg_name = &in->from[i],
				.msg_namelen = sizeof(in->from[i]),
				.msg_iov = &in->iov[i], .msg_iovlen = 1,
			};
		}
		n = recvmmsg(fd, in->msg, IN_SLOTS, MSG_DONTWAIT, NULL);
		d->up.on = true;
		for (int i = 0; i < n; i++) {
			size_t alen = sizeof(d->a), flen = sizeof(d->fwd);
			const struct msghdr *h = &in->msg[i].msg_hdr;
			int ret;

			ret = classify(d, r, false, in->buf[i], in->msg[i].msg_len,
				       &qu, &ports, d->fwd, &flen, d->a, &alen);
			if (ret > 0)
				forward_udp(d, r, fd, &in->from[i], h->msg_namelen,
					    &qu, &ports, d->fwd, flen, in->buf[i],
					    in->msg[i].msg_len);
			else if (!ret)
				send_answer(&d->out, fd, &in->from[i],
					    h->msg_namelen, d->a, alen);
		}
		up_flush(d);
		/* level-triggered: what came after this read wakes us again */
		if (n < IN_SLOTS)
			return;
	}
}

/* Every query waiting on upstream I of R moves on: ICMP said it is down. */
static void upstream_down(struct daemon *d, struct reg *r, int i, int err)
{
	struct pending *p, *next;

	for (p = TAILQ_FIRST(&d->pending); p; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->reg == r && p->up == i && !p->tcp) {
			p->up++;
			pending_send(d, p, err);
		}
	}
}

/* An answer learned, waiting for its batch's end to be released. */
struct learned {
	struct pending *p;
	__u8 *a;
	size_t n;
	bool wrote;
};

/*
 * Answer A (N bytes) from upstream U of R: learned and kept into *L
 * (then 1), or ignored, or SERVFAIL at once (0).
 */
static int upstream_answer(struct daemon *d, struct reg *r, struct ev *u,
			   struct learn_batch *lb, __u8 *a, size_t n,
			   struct learned *l)
{
	struct pending *p;
	int err;

	if (n < DNS_HEADER_BYTES) {
		d->n_malformed++;
		return 0;
	}
	p = pending_by_id(d, a[0] << 8 | a[1]);
	/* not a question we asked there (late, forged, or a duplicate): ignore */
	if (!p || p->reg != r || p->up != u->idx || p->tcp || p->answered) {
		d->n_stray++;
		return 0;
	}
	err = learn_answer_in(d, r, lb, &p->qu, &p->ports, a, n, &l->wrote);
	if (err == -EBADMSG || err == -ESRCH) {
		d->n_stray++;
		return 0;
	}
	if (err) {
		/* never release an answer whose addresses are not in the maps */
		pending_fail(d, p, err);
		return 0;
	}
	cache_answer(d, p, a, n);	/* d->addrs is this answer's now */
	p->answered = true;
	*l = (struct learned){ .p = p, .a = a, .n = n, .wrote = l->wrote };
	return 1;
}

/*
 * The answers of one recvmmsg (N in IN), learned as one batch (issue 18:
 * the policy id read twice a batch, not twice an answer), then released
 * or, if the id flipped under the batch, SERVFAIL for those that wrote
 * (their entries are taken back; a withheld answer leaves the cache too).
 */
static void upstream_batch(struct daemon *d, struct reg *r, struct ev *u,
			   struct inbatch *in, int n)
{
	struct learned l[IN_SLOTS];
	struct learn_batch lb;
	int k = 0, err;

	learn_batch_open(&lb);
	for (int i = 0; i < n; i++)
		k += upstream_answer(d, r, u, &lb, in->buf[i], in->msg[i].msg_len, &l[k]);
	err = learn_batch_close(d, r, &lb);
	for (int i = 0; i < k; i++) {
		struct pending *p = l[i].p;

		if (err && l[i].wrote) {
			dcache_drop(&r->cache, p->query + p->qlen, p->raw_len);
			pending_fail(d, p, err);
			continue;
		}
		l[i].a[0] = p->client_id >> 8;
		l[i].a[1] = p->client_id & 0xff;
		reply_to(d, p, l[i].a, l[i].n);
		d->n_forwarded++;
		pending_free(d, p);
	}
}

void serve_upstream(struct daemon *d, struct ev *u)
{
	struct inbatch *in = &d->in;
	struct reg *r = u->reg;

	/* at most RECV_BATCH answers a wakeup, IN_SLOTS a recvmmsg */
	for (int round = 0; round < RECV_BATCH / IN_SLOTS; round++) {
		int n;

		if (u->fd < 0)
			return;	/* closed during this batch */
		for (int i = 0; i < IN_SLOTS; i++) {
			in->iov[i] = (struct iovec){
				.iov_base = in->buf[i], .iov_len = sizeof(in->buf[i]),
			};
			in->msg[i].msg_hdr = (struct msghdr){
				.msg_iov = &in->iov[i], .msg_iovlen = 1,
			};
		}
		n = recvmmsg(u->fd, in->msg, IN_SLOTS, MSG_DONTWAIT, NULL);
		if (n < 0) {
			/* ICMP said so (the error comes alone, before any datagram) */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH)
				upstream_down(d, r, u->idx, -errno);
			if (errno == EAGAIN)
				return;
			continue;
		}
		upstream_batch(d, r, u, in, n);
		if (n < IN_SLOTS)
			return;	/* level-triggered: the rest wakes us again */
	}
}

/*
 * Queries past their deadline go to the next upstream. Their upstream
 * socket is read first: after a long stall (a TCP client) the answer may
 * be waiting there unread.
 */
void expire_pending(struct daemon *d)
{
	__u64 now = now_ms();
	struct pending *p;

	while ((p = TAILQ_FIRST(&d->pending)) && p->deadline_ms <= now) {
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

void drop_pending(struct daemon *d, struct reg *r)
{
	struct pending *p, *next;

	for (p = TAILQ_FIRST(&d->pending); p; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->reg == r)
			pending_free(d, p);
	}
}
