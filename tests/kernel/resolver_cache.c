// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The resolver's answer cache (issue 18) end to end. Two upstreams of
 * the test's own, each a dnsmasq in the world netns with its own query
 * log and authoritative for "test." (so that its negative answers carry
 * a SOA, RFC 2308): U_LONG (198.51.100.54, every TTL and the SOA's
 * MINIMUM 3600 s) and U_SHORT (198.51.100.55, 3 s). They answer
 * split.test differently (198.51.100.7 and .8). Policies pick one with
 * dns.upstream; the daemon is `moat-bpf daemon -d -v` as in resolver.c.
 *
 * How these fail on a daemon without the cache: the second query shows
 * in the upstream's log and its TTL does not go down. On a cache that
 * does not learn what it serves: the address is denied once the first
 * answer's deadline passes, though a cached answer naming it was handed
 * out before. On a cache shared across upstreams: the second cgroup gets
 * the first upstream's address. On one not flushed by `policy reload`:
 * the upstream sees nothing after the reload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <json-c/json.h>

#include "harness.h"
#include "learn.h"
#include "moat_abi.h"

#define U_LONG			"198.51.100.54"
#define U_SHORT			"198.51.100.55"
#define WORLD			KT_PREFIX "-world"
#define EXACT4_PIN		"/sys/fs/bpf/moat/maps/moat_exact4"
#define NEG_CAP_S		30	/* DCACHE_NEG_MAX_S */

static struct {
	pid_t daemon;
	char log[PATH_MAX];
	char ulog[2][PATH_MAX];		/* U_LONG's and U_SHORT's query logs */
} C;

static void upstream_start(int i, const char *addr, int ttl, const char *split)
{
	char pid[PATH_MAX];
	struct run_result r;
	long long end;

	snprintf(C.ulog[i], sizeof(C.ulog[i]), "%.*s/u%d.log", PATH_MAX - 64,
		 H.tmpdir, i);
	snprintf(pid, sizeof(pid), "%.*s/u%d.pid", PATH_MAX - 64, H.tmpdir, i);
	run(&r, "ip -n " WORLD " addr replace %s/32 dev lo", addr);
	cr_assert_eq(r.status, 0, "address %s in the world: %s", addr, r.err);
	run_free(&r);
	spawn_bg("exec nsenter --net=" KT_NS_WORLD " /usr/sbin/dnsmasq "
		 "--keep-in-foreground --conf-file=/dev/null --user=root "
		 "--pid-file=%s --no-resolv --no-hosts --no-poll "
		 "--bind-interfaces --listen-address=%s --port=53 "
		 "--log-queries --log-facility=%s "
		 "--auth-zone=test --auth-soa=1,hostmaster.test "
		 "--auth-ttl=%d --auth-server=ns.test,%s "
		 "--host-record=c.test," W4_A " --host-record=b.test," W4_A " "
		 "--host-record=r.test," W4_A " --host-record=o.test," W4_A " "
		 "--host-record=split.test,%s",
		 pid, addr, C.ulog[i], ttl, addr, split);
	for (end = kt_now_ms() + 5000; kt_now_ms() < end; kt_sleep_ms(20)) {
		char *t = read_text(C.ulog[i]);
		bool up = t && strstr(t, "started,");

		free(t);
		if (up && !strncmp(dns_query_x(&(struct client_opts){
				.netns = KT_NS_WORLD }, "", addr, 53,
				"split.test", "A"), "NOERROR", 7))
			return;
	}
	cr_assert_fail("dnsmasq on %s did not come up", addr);
}

static void cache_setup(void)
{
	memset(&C, 0, sizeof(C));
	harness_setup();
	testnet_dns_up();
	daemon_forget_registrations();
	upstream_start(0, U_LONG, 3600, W4_A);
	upstream_start(1, U_SHORT, 3, W4_B);
	snprintf(C.log, sizeof(C.log), "%.*s/daemon.log", PATH_MAX - 64,
		 H.tmpdir);
	C.daemon = daemon_start("-v --dns-upstream " KT_DNS4, C.log);
}

static void cache_teardown(void)
{
	struct run_result r;

	if (C.daemon > 0) {
		int rc = daemon_stop(C.daemon);

		if (rc)
			cr_log_error("the resolver daemon exited %d", rc);
	}
	daemon_forget_registrations();
	harness_teardown();	/* stops the upstreams (spawn_bg) */
	run(&r, "ip -n " WORLD " addr del " U_LONG "/32 dev lo; "
		"ip -n " WORLD " addr del " U_SHORT "/32 dev lo");
	run_free(&r);
}

#define CTEST(name)							\
	static void ctest_##name(void);					\
	Test(resolver_cache, name, .init = cache_setup,			\
	     .fini = cache_teardown, .timeout = KT_TEST_TIMEOUT_S)	\
	{								\
		ctest_##name();						\
		daemon_expect_alive(C.daemon, C.log);			\
	}								\
	static void ctest_##name(void)

/* A cgroup enforced with a policy whose upstream is UP. */
static const char *cg_up(const char *name, const char *up, const char *extra)
{
	char text[1024];
	const char *cg = cg_make(name);

	snprintf(text, sizeof(text),
		 "allow:\n  - \"*.test:8080?names=any\"\n"
		 "dns:\n  upstream: [\"%s\"]\n%s", up, extra);
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg,
		write_policy(name, text));
	return cg;
}

/* How many queries for NAME upstream I logged ("auth[A] NAME from"). */
static int asked(int i, const char *name)
{
	char *t = read_text(C.ulog[i]), *p, want[128];
	int n = 0;

	snprintf(want, sizeof(want), "] %s from ", name);
	for (p = t; p && (p = strstr(p, want)); p += strlen(want))
		n++;
	free(t);
	return n;
}

/* The TTL of the first record of TYPE (e.g. "A=", "AUTH:SOA=") in W. */
static long ttl_of(const char *w, const char *type)
{
	const char *p = strstr(w, type), *slash;

	cr_assert_not_null(p, "no %s in '%s'", type, w);
	slash = strchr(p, '/');
	cr_assert_not_null(slash, "no TTL in '%s'", w);
	return strtol(slash + 1, NULL, 10);
}

static const char *ask(const char *cg, const char *server, const char *name,
		       const char *type)
{
	return dns_query(cg, "--ttl", server, name, type);
}

static unsigned long long now_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The deadline of ADDR learned for CG's policy; 0 when absent. */
static unsigned long long deadline_of(const char *cg, const char *addr)
{
	struct moat_exact4_key k = { .policy_id = status_of(cg).policy_id };
	struct moat_addr_val v;
	int fd = bpf_obj_get(EXACT4_PIN), err;

	cr_assert_geq(fd, 0, "cannot open %s", EXACT4_PIN);
	cr_assert_eq(inet_pton(AF_INET, addr, &k.addr), 1);
	err = bpf_map_lookup_elem(fd, &k, &v);
	close(fd);
	return err ? 0 : v.expires_ns;
}

static unsigned long long counter(const char *key)
{
	json_object *o = daemon_call("list"), *x;
	unsigned long long n;

	cr_assert_not_null(o, "list");
	cr_assert(json_object_object_get_ex(o, key, &x), "list has no %s", key);
	n = json_object_get_uint64(x);
	json_object_put(o);
	return n;
}

/* The second query is answered from memory, its TTL counted down. */
CTEST(hit_not_upstream_ttl_down)
{
	const char *cg = cg_up("hit", U_LONG, "");
	unsigned long long cached = counter("cached");
	const char *w;
	long t1, t2;

	w = ask(cg, KT_DNS4, "c.test", "A");
	cr_assert(has_word(w, "NOERROR"), "%s", w);
	t1 = ttl_of(w, "A=" W4_A);
	cr_assert_eq(asked(0, "c.test"), 1);
	kt_sleep_ms(2100);
	/* another case: the key ignores it, the answer echoes the client's */
	w = ask(cg, KT_DNS4, "C.Test", "A");
	t2 = ttl_of(w, "A=" W4_A);
	cr_assert_eq(asked(0, "c.test") + asked(0, "C.Test"), 1,
		     "the second query reached the upstream");
	cr_assert(t2 <= t1 - 2 && t2 >= t1 - 4,
		  "TTL %ld then %ld 2.1 s later, want it 2 to 4 lower", t1, t2);
	cr_assert_eq(counter("cached"), cached + 1);
	/* the record type is part of the key */
	ask(cg, KT_DNS4, "c.test", "AAAA");
	cr_assert_eq(asked(0, "c.test"), 2);
}

/*
 * Deadlines carry LEARN_SLACK_NS (learn.h) past what an answer needs, so
 * that a cached answer, its TTLs counted down in whole seconds, finds its
 * need covered and writes nothing.
 */
#define SLACK_NS	LEARN_SLACK_NS
#define S_NS		1000000000ull

/* Wait until CLOCK_BOOTTIME reaches T (ns). */
static void until_boot_ns(unsigned long long t)
{
	while (now_boot_ns() < t)
		kt_sleep_ms(10);
}

/*
 * U_SHORT: TTL 3, min_ttl 0, grace 0: the first answer's deadline d0 is
 * t0 + 3 s + the slack. A cached answer served 2.8 s later says TTL 1:
 * the client may use the address until t0 + 3.8 s, which d0 covers, so
 * the map is not written; the address is reachable until then.
 */
CTEST(cached_answer_covered_by_deadline)
{
	const char *cg = cg_up("covered", U_SHORT, "  min_ttl: 0\n  grace: 0\n");
	unsigned long long d0, d1, t0, th;
	const char *w;

	expect_blocked(cg, "tcp", W4_A, 8080);
	w = ask(cg, KT_DNS4, "b.test", "A");
	cr_assert_eq(ttl_of(w, "A=" W4_A), 3, "%s", w);
	d0 = deadline_of(cg, W4_A);
	cr_assert_gt(d0, 0ull, "b.test's address not learned");
	t0 = d0 - 3 * S_NS - SLACK_NS;
	until_boot_ns(t0 + 2800000000ull);
	th = now_boot_ns();
	w = ask(cg, KT_DNS4, "b.test", "A");
	cr_assert(now_boot_ns() < t0 + 3 * S_NS, "the query took too long to tell");
	cr_assert_eq(asked(1, "b.test"), 1, "not served from the cache");
	cr_assert_eq(ttl_of(w, "A=" W4_A), 1, "%s", w);
	d1 = deadline_of(cg, W4_A);
	cr_assert_geq(d1, th + 1 * S_NS,
		      "deadline %llu, the cached answer served at %llu says 1 s",
		      d1, th);
	cr_assert_eq(d1, d0, "a covered hit wrote the map (%llu -> %llu)", d0, d1);
	until_boot_ns(th + 1 * S_NS);
	expect_allowed(cg, "tcp", W4_A, 8080);
	/* and past the cached answer's own end, the upstream again */
	until_boot_ns(d1);
	w = ask(cg, KT_DNS4, "b.test", "A");
	cr_assert_eq(ttl_of(w, "A=" W4_A), 3, "%s", w);
	cr_assert_eq(asked(1, "b.test"), 2);
}

/*
 * min_ttl 5 over U_SHORT's TTL 3: the kernel keeps an address 5 s after
 * any answer naming it, a cached one too. A hit 2.5 s after the first
 * answer needs the deadline moved from t0 + 6 s to at least th + 5 s
 * before it leaves: a cache that does not learn what it serves fails.
 */
CTEST(cached_answer_refreshes_deadline)
{
	const char *cg = cg_up("refresh", U_SHORT, "  min_ttl: 5\n  grace: 0\n");
	unsigned long long d0, d1, t0, th;
	const char *w;

	w = ask(cg, KT_DNS4, "b.test", "A");
	cr_assert_eq(ttl_of(w, "A=" W4_A), 3, "%s", w);
	d0 = deadline_of(cg, W4_A);
	cr_assert_gt(d0, 0ull, "b.test's address not learned");
	t0 = d0 - 5 * S_NS - SLACK_NS;
	until_boot_ns(t0 + 2500000000ull);
	th = now_boot_ns();
	w = ask(cg, KT_DNS4, "b.test", "A");
	cr_assert(now_boot_ns() < t0 + 3 * S_NS, "the query took too long to tell");
	cr_assert_eq(asked(1, "b.test"), 1, "not served from the cache");
	d1 = deadline_of(cg, W4_A);
	cr_assert_geq(d1, th + 5 * S_NS,
		      "deadline %llu -> %llu: not refreshed by the cached answer "
		      "served at %llu", d0, d1, th);
	until_boot_ns(d0 + 200000000ull);
	expect_allowed(cg, "tcp", W4_A, 8080);
}

/*
 * The learned entry deleted behind the daemon's back (bpftool) while its
 * answer is cached: the daemon trusts what it last read or wrote for an
 * address for LEARN_MEMO_TRUST_NS (learn.h), and the first hit after
 * that creates the entry again before the answer leaves; a hit trusting
 * what it wrote before for longer fails. (moat-bpf's own deletes, the
 * purges, empty the memo at once: reattach_relearns_at_once.)
 */
CTEST(cached_answer_relearns_deleted)
{
	const char *cg = cg_up("relearn", U_LONG, "");
	struct moat_exact4_key k = { .policy_id = status_of(cg).policy_id };
	unsigned long long th, d, t1;
	const char *w;
	long ttl;
	int fd;

	w = ask(cg, KT_DNS4, "c.test", "A");
	t1 = now_boot_ns();	/* the daemon read the map before this */
	cr_assert(has_word(w, "NOERROR"), "%s", w);
	expect_allowed(cg, "tcp", W4_A, 8080);
	fd = bpf_obj_get(EXACT4_PIN);
	cr_assert_geq(fd, 0, "cannot open %s", EXACT4_PIN);
	cr_assert_eq(inet_pton(AF_INET, W4_A, &k.addr), 1);
	cr_assert_eq(bpf_map_delete_elem(fd, &k), 0, "delete: %s", strerror(errno));
	close(fd);
	expect_blocked(cg, "tcp", W4_A, 8080);
	until_boot_ns(t1 + LEARN_MEMO_TRUST_NS);
	th = now_boot_ns();
	w = ask(cg, KT_DNS4, "c.test", "A");
	cr_assert_eq(asked(0, "c.test"), 1, "not served from the cache");
	ttl = ttl_of(w, "A=" W4_A);
	d = deadline_of(cg, W4_A);
	cr_assert_geq(d, th + (unsigned long long)ttl * S_NS,
		      "deadline %llu after a hit at %llu saying TTL %ld", d, th, ttl);
	expect_allowed(cg, "tcp", W4_A, 8080);
}

/*
 * A purge empties the memo at once (learn.h): detached, the cgroup's
 * policy id is purged and freed, and attached again the cgroup gets the
 * same id (the slot search starts where its cgroup id says). Its next
 * answer, well inside LEARN_MEMO_TRUST_NS of the one before, must create
 * the entry again: a memo that outlived the purge says it is there, and
 * the address stays refused.
 */
CTEST(reattach_relearns_at_once)
{
	const char *cg = cg_up("reattach", U_LONG, "");
	unsigned long long pid = status_of(cg).policy_id, t0;
	char text[1024];
	const char *w;

	snprintf(text, sizeof(text), "allow:\n  - \"*.test:8080?names=any\"\n"
		 "dns:\n  upstream: [\"" U_LONG "\"]\n");
	t0 = now_boot_ns();
	w = ask(cg, KT_DNS4, "r.test", "A");
	cr_assert(has_word(w, "A=" W4_A "/3600"), "%s", w);
	cr_assert_gt(deadline_of(cg, W4_A), 0ull, "r.test's address not learned");
	moat_ok("detach %s", cg);
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg,
		write_policy("reattach2", text));
	cr_assert_eq(status_of(cg).policy_id, pid,
		     "attached again under another id: cannot tell");
	cr_assert_eq(deadline_of(cg, W4_A), 0ull, "the purge left the entry");
	w = ask(cg, KT_DNS4, "r.test", "A");
	cr_assert(now_boot_ns() < t0 + LEARN_MEMO_TRUST_NS,
		  "detach and attach took too long to tell");
	cr_assert(has_word(w, "A=" W4_A "/3600"), "%s", w);
	cr_assert_gt(deadline_of(cg, W4_A), 0ull,
		     "the answer left unlearned after the purge");
	expect_allowed(cg, "tcp", W4_A, 8080);
}

/* Registrations with different upstreams never see each other's answers. */
CTEST(upstreams_apart)
{
	const char *cg1 = cg_up("split1", U_LONG, "");
	const char *cg2 = cg_up("split2", U_SHORT, "");

	cr_assert(has_word(ask(cg1, KT_DNS4, "split.test", "A"),
			   "A=" W4_A "/3600"));
	cr_assert(has_word(ask(cg2, KT_DNS4, "split.test", "A"),
			   "A=" W4_B "/3"));
	cr_assert_eq(asked(1, "split.test"), 1 + 1, /* + upstream_start's */
		     "cgroup 2's query did not reach its own upstream");
	cr_assert(!strncmp(ask(cg1, KT_DNS4, "split.test", "A"),
			   "NOERROR A=" W4_A, 17));
	cr_assert(!strncmp(ask(cg2, KT_DNS4, "split.test", "A"),
			   "NOERROR A=" W4_B, 17));
	cr_assert_eq(asked(0, "split.test"), 1 + 1);
	cr_assert_eq(asked(1, "split.test"), 1 + 1);
}

/*
 * --cache-mib 0: nothing is kept, every query goes upstream, and the
 * answers are learned as ever (the memory bench runs the daemon so).
 */
CTEST(cache_off)
{
	const char *cg;
	int rc = daemon_stop(C.daemon);

	cr_assert_eq(rc, 0, "the resolver daemon exited %d", rc);
	C.daemon = daemon_start("-v --cache-mib 0 --dns-upstream " KT_DNS4, C.log);
	cg = cg_up("off", U_LONG, "");
	for (int i = 0; i < 3; i++) {
		const char *w = ask(cg, KT_DNS4, "o.test", "A");

		cr_assert(has_word(w, "A=" W4_A "/3600"), "query %d: %s", i, w);
	}
	cr_assert_eq(asked(0, "o.test"), 3, "answers kept with --cache-mib 0");
	cr_assert_eq(counter("cache_entries"), 0ull);
	expect_allowed(cg, "tcp", W4_A, 8080);
}

/* `policy reload` empties the registration's cache. */
CTEST(reload_flushes)
{
	const char *cg = cg_make("reload");
	char pol[PATH_MAX];
	struct run_result r;
	static const char text[] = "allow:\n  - \"*.test:8080?names=any\"\n"
				   "dns:\n  upstream: [\"" U_LONG "\"]\n";

	snprintf(pol, sizeof(pol), "%s", write_policy("cache-reload", text));
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg, pol);
	ask(cg, KT_DNS4, "r.test", "A");
	ask(cg, KT_DNS4, "r.test", "A");
	cr_assert_eq(asked(0, "r.test"), 1, "not cached before the reload");
	moat(&r, "policy reload %s", pol);
	cr_assert_eq(r.status, 0, "policy reload: %s", r.err);
	run_free(&r);
	cr_assert(has_word(ask(cg, KT_DNS4, "r.test", "A"),
			   "A=" W4_A "/3600"));
	cr_assert_eq(asked(0, "r.test"), 2, "served from before the reload");
}

/*
 * NXDOMAIN and NODATA are cached (RFC 2308): from U_LONG, whose SOA says
 * 3600 s, for at most NEG_CAP_S (the served SOA TTL shows it); from
 * U_SHORT (3 s) until the SOA's TTL runs out, then asked again.
 */
CTEST(negative_cached_capped)
{
	const char *cg = cg_up("neg", U_LONG, "");
	const char *cs = cg_up("negs", U_SHORT, "");
	const char *w;
	long long t0;

	w = ask(cg, KT_DNS4, "nx.test", "A");
	cr_assert(!strncmp(w, "NXDOMAIN", 8), "%s", w);
	w = ask(cg, KT_DNS4, "nx.test", "A");
	cr_assert(!strncmp(w, "NXDOMAIN", 8), "%s", w);
	cr_assert_eq(asked(0, "nx.test"), 1, "NXDOMAIN not cached");
	cr_assert_leq(ttl_of(w, "AUTH:SOA="), NEG_CAP_S, "%s", w);
	/* NODATA: c.test has no TXT record */
	w = ask(cg, KT_DNS4, "c.test", "TXT");
	w = ask(cg, KT_DNS4, "c.test", "TXT");
	cr_assert(!strncmp(w, "NOERROR AUTH:SOA=", 17), "%s", w);
	cr_assert_leq(ttl_of(w, "AUTH:SOA="), NEG_CAP_S, "%s", w);
	cr_assert_eq(asked(0, "c.test"), 1, "NODATA not cached");

	t0 = kt_now_ms();
	ask(cs, KT_DNS4, "nx.test", "A");
	ask(cs, KT_DNS4, "nx.test", "A");
	cr_assert_eq(asked(1, "nx.test"), 1);
	kt_sleep_ms(3100 - (int)(kt_now_ms() - t0));
	ask(cs, KT_DNS4, "nx.test", "A");
	cr_assert_eq(asked(1, "nx.test"), 2, "a negative answer outlived its SOA TTL");
}
