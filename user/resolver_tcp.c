// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP, never blocking: clients (struct tcpconn) read as their bytes come,
 * their queries sent upstream over TCP (struct tcpup), with quotas per
 * client, per registration and in all; clients beyond wait in the
 * listeners' backlog, queries beyond in their client's buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include "resolver.h"

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

	probe = up_socket(d, r, u->addr.sa.sa_family, SOCK_DGRAM);
	if (probe < 0)
		return probe;
	if (connect(probe, &u->addr.sa, u->len) ||
	    getsockname(probe, (struct sockaddr *)&src, &len))
		err = -errno;
	close(probe);
	if (err)
		return err;
	((struct sockaddr_in *)&src)->sin_port = 0;	/* same place in sin6 */
	fd = up_socket(d, r, u->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK);
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

/* Closed now, freed after the batch (its events may still be in it). */
void tup_close(struct daemon *d, struct tcpup *t)
{
	ev_close(d, &t->ev);
	if (t->p)
		t->p->tup = NULL;
	t->p = NULL;
	free(t->ans);
	t->ans = NULL;
	SLIST_INSERT_HEAD(&d->tup_dead, t, dead);
}

/*
 * Start the exchange of P with upstream p->up: a guarded socket (see
 * tcp_upstream_socket), a non-blocking connect; serve_tcpup() does the
 * rest as the socket becomes writable, then readable.
 */
int tup_start(struct daemon *d, struct pending *p)
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
	if (connect(fd, &u->addr.sa, u->len) && errno != EINPROGRESS) {
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

void serve_tcpup(struct daemon *d, struct tcpup *t)
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
	err = learn_answer(d, p->reg, &p->qu, &p->ports, t->ans, t->need);
	if (err == -EBADMSG || err == -ESRCH) {
		d->n_stray++;
		tup_fail(d, t, err);
		return;
	}
	if (err) {
		pending_fail(d, p, err);
		return;
	}
	cache_answer(d, p, t->ans, t->need);
	t->ans[0] = p->client_id >> 8;
	t->ans[1] = p->client_id & 0xff;
	reply_to(d, p, t->ans, t->need);
	d->n_forwarded++;
	pending_free(d, p);
}

/* C progressed: a new deadline, the latest of all. */
static void conn_rearm(struct daemon *d, struct tcpconn *c)
{
	TAILQ_REMOVE(&d->conns, c, entry);
	c->deadline_ms = now_ms() + CLIENT_TIMEOUT_MS;
	TAILQ_INSERT_TAIL(&d->conns, c, entry);
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
	struct reg *r = c->ev.reg, *x;
	struct pending *p;

	conn_park(d, c, false);
	TAILQ_REMOVE(&d->conns, c, entry);
	ev_close(d, &c->ev);
	r->n_conns--;
	d->n_conns--;
	if (c->inflight)
		TAILQ_FOREACH(p, &d->pending, entry)
			if (p->conn == c)
				p->conn = NULL;
	c->inflight = 0;
	SLIST_INSERT_HEAD(&d->conn_dead, c, dead);
	if (d->n_accept_paused) {
		LIST_FOREACH(x, &d->regs, entry)
			if (x->accept_paused && accept_may(d, x))
				accept_pause(d, x, false);
	}
}

/* The answer to one of C's queries; false if C had to be closed. */
bool conn_reply(struct daemon *d, struct tcpconn *c, const __u8 *a,
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
		flen = sizeof(d->fwd);
		alen = sizeof(d->a);
		ret = classify(d, r, true, c->buf + 2, qlen, &qu, &ports, d->fwd,
			       &flen, d->a, &alen);
		if (ret < 0 || (!ret && !conn_reply(d, c, d->a, alen))) {
			if (c->ev.fd >= 0)
				conn_close(d, c);
			return;
		}
		if (ret > 0) {
			p = calloc(1, sizeof(*p) + flen + qlen);
			if (!p) {
				conn_close(d, c);
				return;
			}
			*p = (struct pending){
				.reg = r, .tcp = true, .conn = c, .client_fd = -1,
				.client_id = qu.id, .ports = ports, .qu = qu,
				.qlen = flen, .raw_len = qlen,
			};
			memcpy(p->query, d->fwd, flen);
			memcpy(p->query + flen, c->buf + 2, qlen);
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
void resume_conns(struct daemon *d)
{
	struct tcpconn *c, *next;

	for (c = TAILQ_FIRST(&d->conns); c && d->n_parked; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->parked && tcp_slot(d, c))
			conn_parse(d, c);
	}
}

void serve_tcp(struct daemon *d, struct reg *r, int lfd)
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
		if (ev_add(d, &c->ev)) {
			close(fd);
			free(c);
			continue;
		}
		r->n_conns++;
		d->n_conns++;
		c->deadline_ms = now_ms() + CLIENT_TIMEOUT_MS;
		TAILQ_INSERT_TAIL(&d->conns, c, entry);
	}
}

void serve_tcpconn(struct daemon *d, struct tcpconn *c)
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
	conn_rearm(d, c);
	conn_parse(d, c);
}

/* Idle clients go; one with queries in flight or waiting is not idle. */
void expire_conns(struct daemon *d)
{
	__u64 now = now_ms();

	struct tcpconn *c;

	while ((c = TAILQ_FIRST(&d->conns)) && c->deadline_ms <= now) {
		conn_rearm(d, c);
		if (!c->inflight && !c->parked)
			conn_close(d, c);
	}
}

void reg_close_conns(struct daemon *d, struct reg *r)
{
	struct tcpconn *c, *next;

	for (c = TAILQ_FIRST(&d->conns); c; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->ev.reg == r)
			conn_close(d, c);
	}
	accept_pause(d, r, false);
}
