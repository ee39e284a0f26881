// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The resolver daemon end to end: a real upstream (dnsmasq in the world,
 * tools/testnet.sh dns-up, query log on), `moat-bpf daemon -d -v
 * --dns-upstream 198.51.100.53` started for every test, cgroups attached
 * with domain rules and --netns of the client namespace, and DNS clients
 * inside them: glibc's getaddrinfo (moat-test-peer resolve, with a
 * resolv.conf of the test's own bind-mounted over /etc/resolv.conf in a
 * private mount namespace), ldns-built queries over UDP and TCP
 * (moat-test-peer dns-query) and busybox nslookup.
 *
 * No test ever asks this machine's own resolver: every resolv.conf here
 * names 198.51.100.53, 2001:db8:1::53 or 127.0.0.53, and the peer refuses
 * any other nameserver.
 *
 * How these tests can fail (each assertion was chosen so that a resolver
 * that forwarded everything, or BPF that did not capture, breaks it):
 *  - dnsmasq answers blocked.test with A 198.51.100.8 and
 *    secret.exfil.blocked.test with a TXT record (upstream_fixture checks
 *    this without moat), so an exact "REFUSED" can only come from moat;
 *  - "absent from the query log" is checked only after a later sentinel
 *    query (a fresh name under *.sentinel.test, allowed) is in the log:
 *    the daemon handles queries in order, so anything it forwarded before
 *    the sentinel would be logged before it;
 *  - a query sent to 203.0.113.9:53 (an echo server in the world) would
 *    come back as the query itself, never as an answer, if not captured;
 *  - every connect after a lookup is first shown EPERM before it, so the
 *    address was opened by what the daemon learned, not by a rule.
 * Checked against mutated builds (each caught by at least one test): a
 * daemon that forwards every name, one that learns nothing, one that
 * ignores the TTL (max_ttl always), one that learns denied addresses,
 * wildcards matching their apex, BPF without the recvmsg/getpeername
 * restore, and BPF without DNS capture.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <json-c/json.h>

#include "harness.h"
#include "control.h"
#include "learn.h"
#include "moat_abi.h"

#define SENTINEL_RULE		"udp://*.sentinel.test:9"
#define DAEMON_ARGS		"-v --dns-upstream " KT_DNS4
#define EXACT4_PIN		"/sys/fs/bpf/moat/maps/moat_exact4"
#define EXACT6_PIN		"/sys/fs/bpf/moat/maps/moat_exact6"
#define POLL_MS			5000

static struct {
	pid_t daemon;
	char log[PATH_MAX];		/* the daemon's stdout and stderr */
	char rc[PATH_MAX];		/* resolv.conf: 198.51.100.53 */
	char rc_tcp[PATH_MAX];		/* the same with use-vc (TCP) */
	char rc6[PATH_MAX];		/* 2001:db8:1::53 */
	char rc_stub[PATH_MAX];		/* 127.0.0.53, a loopback stub */
	off_t dns_start;		/* dnsmasq.log size at the start */
	int sentinels;
	bool docker_nat;		/* Docker's nat table in the client netns */
	char udp_timeout[32];		/* its conntrack UDP timeout, to restore */
} R;

static void write_resolv_conf(char *path, size_t len, const char *name,
			      const char *ns, const char *options)
{
	FILE *f;

	snprintf(path, len, "%.*s/%s", PATH_MAX - 64, H.tmpdir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
	/* "search .": no search list, whatever the host's name is */
	fprintf(f, "search .\nnameserver %s\noptions attempts:1 timeout:3%s\n",
		ns, options);
	cr_assert_eq(fclose(f), 0);
}

static void resolver_setup(void)
{
	memset(&R, 0, sizeof(R));
	harness_setup();
	testnet_dns_up();
	daemon_forget_registrations();
	R.dns_start = file_size(KT_DNS_LOG);
	write_resolv_conf(R.rc, sizeof(R.rc), "resolv.conf", KT_DNS4, "");
	write_resolv_conf(R.rc_tcp, sizeof(R.rc_tcp), "resolv-tcp.conf",
			  KT_DNS4, " use-vc");
	write_resolv_conf(R.rc6, sizeof(R.rc6), "resolv6.conf", KT_DNS6, "");
	write_resolv_conf(R.rc_stub, sizeof(R.rc_stub), "resolv-stub.conf",
			  "127.0.0.53", "");
	snprintf(R.log, sizeof(R.log), "%.*s/daemon.log", PATH_MAX - 64,
		 H.tmpdir);
	R.daemon = daemon_start(DAEMON_ARGS, R.log);
}

static void docker_nat_down(void);

static void resolver_teardown(void)
{
	docker_nat_down();
	if (R.daemon > 0)
		kill(R.daemon, SIGCONT);	/* a test may have stopped it */
	if (R.daemon > 0) {
		bool alive = daemon_alive(R.daemon);
		int rc = daemon_stop(R.daemon);

		/* only logged: criterion does not fail a test from .fini */
		if (alive && rc != 0) {
			char *log = read_text(R.log);

			cr_log_error("the resolver daemon did not stop cleanly "
				     "(exit %d); its log:\n%s", rc,
				     log ? log : "(none)");
			free(log);
		}
	}
	daemon_forget_registrations();
	harness_teardown();
}

/*
 * A resolver test: the body, then the daemon must still be up (a failed
 * assertion in .fini is only logged, so it is checked here).
 */
#define RTEST(name)							\
	static void rtest_##name(void);					\
	Test(resolver, name, .init = resolver_setup,			\
	     .fini = resolver_teardown, .timeout = KT_TEST_TIMEOUT_S)	\
	{								\
		rtest_##name();						\
		daemon_expect_alive(R.daemon, R.log);			\
	}								\
	static void rtest_##name(void)

/* ---- helpers ---- */

/* A test cgroup enforced with RULES (CLI arguments) and the sentinel. */
static const char *cg_dns(const char *name, const char *rules)
{
	const char *cg = cg_make(name);

	moat_ok("attach %s --netns " KT_NS_CLIENT " %s --allow '"
		SENTINEL_RULE "'", cg, rules);
	return cg;
}

/* The same with a policy file whose allow list gets the sentinel. */
static const char *cg_dns_policy(const char *name, const char *yaml)
{
	char text[4096];
	const char *cg = cg_make(name), *pol;

	snprintf(text, sizeof(text), "%s", yaml);
	pol = write_policy(name, text);
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s --allow '"
		SENTINEL_RULE "'", cg, pol);
	return cg;
}

/*
 * Ask moat, from CG, for a fresh allowed name and wait until dnsmasq has
 * logged it: whatever CG asked before has reached the upstream by then,
 * if it ever will.
 */
static void sentinel_at(const char *file, int line, const char *cg)
{
	char name[96];
	off_t from = file_size(KT_DNS_LOG);
	const char *w;

	snprintf(name, sizeof(name), "s%d-%d.sentinel.test", (int)getpid(),
		 ++R.sentinels);
	w = dns_query(cg, "", KT_DNS4, name, "A");
	cr_assert_str_eq(w, "NXDOMAIN", "%s:%d: sentinel %s: got '%s'", file,
			 line, name, w);
	cr_assert(dns_log_wait_query(from, name, POLL_MS),
		  "%s:%d: the sentinel %s never reached dnsmasq", file, line,
		  name);
}
#define sentinel(cg) sentinel_at(__FILE__, __LINE__, cg)

/* NAME never reached dnsmasq since the test began (after a sentinel). */
#define expect_not_upstream(name)					\
	cr_assert_not(dns_log_mentions(R.dns_start, name),		\
		      "%s reached the upstream: dnsmasq.log mentions it",	\
		      name)

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* LINE and WANT have the same words, in any order. */
static bool same_words(const char *line, const char *want)
{
	char *a = strdup(line), *b = strdup(want), *wa[128], *wb[128];
	char *s1 = NULL, *s2 = NULL, *t;
	int na = 0, nb = 0, i;
	bool same;

	for (t = strtok_r(a, " ", &s1); t && na < 128; t = strtok_r(NULL, " ", &s1))
		wa[na++] = t;
	for (t = strtok_r(b, " ", &s2); t && nb < 128; t = strtok_r(NULL, " ", &s2))
		wb[nb++] = t;
	qsort(wa, na, sizeof(char *), cmp_str);
	qsort(wb, nb, sizeof(char *), cmp_str);
	same = na == nb;
	for (i = 0; same && i < na; i++)
		same = !strcmp(wa[i], wb[i]);
	free(a);
	free(b);
	return same;
}

#define expect_words(got, want)						\
	cr_assert(same_words(got, want), "got '%s', want '%s' (any order)", \
		  got, want)

/* Poll a client until it returns WANT; the last word it returned. */
static const char *client_until(const char *cg, const char *mode,
				const char *addr, int port, const char *want,
				int timeout_ms)
{
	long long deadline = kt_now_ms() + timeout_ms;
	const char *w;

	for (;;) {
		w = client(cg, mode, addr, port);
		if (!strcmp(w, want) || kt_now_ms() > deadline)
			return w;
		kt_sleep_ms(100);
	}
}

/* ---- the daemon's control socket: {"op":"list"} ---- */

struct dcount {
	unsigned long long queries, refused, forwarded, servfail, malformed;
};

static unsigned long long get_u64(json_object *o, const char *key)
{
	json_object *x;

	cr_assert(json_object_object_get_ex(o, key, &x),
		  "daemon list: no \"%s\" in %s", key,
		  json_object_to_json_string(o));
	return json_object_get_uint64(x);
}

static struct dcount daemon_counters(void)
{
	json_object *o = daemon_call("list");
	struct dcount c = {
		.queries = get_u64(o, "queries"),
		.refused = get_u64(o, "refused"),
		.forwarded = get_u64(o, "forwarded"),
		.servfail = get_u64(o, "servfail"),
		.malformed = get_u64(o, "malformed"),
	};

	json_object_put(o);
	return c;
}

#define expect_delta(a, b, field, n)					\
	cr_assert_eq((b).field - (a).field, (unsigned long long)(n),	\
		     "daemon counter %s: %llu -> %llu, want +%d", #field,	\
		     (a).field, (b).field, (int)(n))

/* ---- learned entries (the pinned exact-address maps) ---- */

/*
 * Learned entries of policy PID (the ones with a deadline); if ADDR is
 * given, whether it is among them (*V filled).
 */
static int learned(__u32 pid, const char *addr, bool *found,
		   struct moat_addr_val *v)
{
	struct moat_exact4_key k4, n4;
	struct moat_exact6_key k6, n6;
	struct moat_addr_val val;
	__u8 want[16] = { 0 };
	int fd4, fd6, n = 0, fam = 0;
	void *prev;

	if (addr)
		fam = inet_pton(AF_INET, addr, want) == 1 ? AF_INET :
		      inet_pton(AF_INET6, addr, want) == 1 ? AF_INET6 : -1;
	cr_assert_geq(fam, 0, "bad address %s", addr ? addr : "");
	if (found)
		*found = false;
	fd4 = bpf_obj_get(EXACT4_PIN);
	fd6 = bpf_obj_get(EXACT6_PIN);
	cr_assert(fd4 >= 0 && fd6 >= 0, "cannot open the pinned exact maps");
	for (prev = NULL; !bpf_map_get_next_key(fd4, prev, &n4); prev = &k4) {
		k4 = n4;
		if (k4.policy_id != pid ||
		    bpf_map_lookup_elem(fd4, &k4, &val) || !val.expires_ns)
			continue;
		n++;
		if (fam == AF_INET && !memcmp(&k4.addr, want, 4)) {
			*found = true;
			if (v)
				*v = val;
		}
	}
	for (prev = NULL; !bpf_map_get_next_key(fd6, prev, &n6); prev = &k6) {
		k6 = n6;
		if (k6.policy_id != pid ||
		    bpf_map_lookup_elem(fd6, &k6, &val) || !val.expires_ns)
			continue;
		n++;
		if (fam == AF_INET6 && !memcmp(k6.addr, want, 16)) {
			*found = true;
			if (v)
				*v = val;
		}
	}
	close(fd4);
	close(fd6);
	return n;
}

static bool is_learned(const char *cg, const char *addr)
{
	bool found;

	learned(status_of(cg).policy_id, addr, &found, NULL);
	return found;
}

/* ---- the upstream itself ---- */

/*
 * Without moat, dnsmasq answers everything the other tests expect moat to
 * refuse, and logs it: their "REFUSED" and "not in the log" can only come
 * from moat.
 */
RTEST(upstream_fixture)
{
	off_t from = file_size(KT_DNS_LOG);
	struct client_opts o = { .netns = KT_NS_CLIENT };

	cr_assert_str_eq(dns_query(NULL, "", KT_DNS4, "blocked.test", "A"),
			 "NOERROR A=198.51.100.8");
	cr_assert_str_eq(dns_query(NULL, "--tcp", KT_DNS6,
				   "secret.exfil.blocked.test", "TXT"),
			 "NOERROR TXT=leaked");
	cr_assert_str_eq(dns_query(NULL, "", KT_DNS4, "example.test", "A"),
			 "NOERROR A=203.0.113.9");
	cr_assert_str_eq(dns_query(NULL, "", KT_DNS4, "nothing.sentinel.test",
				   "A"), "NXDOMAIN");
	expect_words(resolve_x(&o, R.rc, "", "allowed.test"),
		     "OK 198.51.100.7 2001:db8:1::7");
	cr_assert(dns_log_wait_query(from, "nothing.sentinel.test", POLL_MS));
	cr_assert(dns_log_has_query(from, "blocked.test"));
	cr_assert(dns_log_has_query(from, "secret.exfil.blocked.test"));
	cr_assert(dns_log_mentions(from, "example.test"));
	/* the word match is exact: a longer name is not "blocked.test" */
	cr_assert_not(dns_log_mentions(from, "exfil.blocked.test"));
}

/* ---- answering ---- */

RTEST(allowed_resolves_then_connects)
{
	const char *cg = cg_dns("allowed", "--allow allowed.test:8080?names=any");
	struct dcount c0, c1;

	/* nothing is open before the lookup */
	expect_blocked(cg, "tcp", W4_A, 8080);
	expect_blocked(cg, "tcp", W6_A, 8080);

	c0 = daemon_counters();
	expect_words(resolve(cg, R.rc, "", "allowed.test"),
		     "OK 198.51.100.7 2001:db8:1::7");
	c1 = daemon_counters();
	/* one A and one AAAA query, both forwarded */
	expect_delta(c0, c1, queries, 2);
	expect_delta(c0, c1, forwarded, 2);
	expect_delta(c0, c1, refused, 0);
	cr_assert(dns_log_has_query(R.dns_start, "allowed.test"));

	expect_allowed(cg, "tcp", W4_A, 8080);
	expect_allowed(cg, "tcp", W6_A, 8080);
	/* no protocol in the rule: UDP too */
	expect_allowed(cg, "udp", W4_A, 8080);
	/* a port the rule does not name */
	expect_blocked(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W6_A, 443);
	/* another host */
	expect_blocked(cg, "tcp", W4_B, 8080);
}

/*
 * The "done when": moat-bpf run resolves and connects; blocked
 * names are refused and never reach the upstream.
 */
RTEST(run_end_to_end)
{
	char sent[96];
	struct run_result r;
	off_t from = file_size(KT_DNS_LOG);

	snprintf(sent, sizeof(sent), "run-%d.sentinel.test", (int)getpid());
	moat(&r, "run --netns " KT_NS_CLIENT " --allow allowed.test:8080?names=any "
	     "--allow '" SENTINEL_RULE "' -- sh -c '"
	     "\"$MOAT_PEER\" resolve --resolv-conf %s --connect 8080 "
	     "allowed.test; "
	     "\"$MOAT_PEER\" resolve --resolv-conf %s --family 4 "
	     "--connect 8080 blocked.test; "
	     "\"$MOAT_PEER\" dns-query %s 53 blocked.test A; "
	     "\"$MOAT_PEER\" dns-query %s 53 %s A'",
	     R.rc, R.rc, KT_DNS4, KT_DNS4, sent);
	cr_assert_eq(r.status, 0, "run: exit %d: %s", r.status, r.err);
	{
		char *l1 = strtok(r.out, "\n"), *l2 = strtok(NULL, "\n");
		char *l3 = strtok(NULL, "\n"), *l4 = strtok(NULL, "\n");

		cr_assert(l1 && l2 && l3 && l4, "run printed: %s", r.out);
		expect_words(l1, "OK 198.51.100.7=OK 2001:db8:1::7=OK");
		cr_assert_str_eq(l2, "ERR EAI_AGAIN");
		cr_assert_str_eq(l3, "REFUSED");
		cr_assert_str_eq(l4, "NXDOMAIN");
	}
	run_free(&r);
	cr_assert(dns_log_wait_query(from, sent, POLL_MS));
	cr_assert(dns_log_has_query(from, "allowed.test"));
	expect_not_upstream("blocked.test");
	cr_assert_not(world_log_has(W4_B, 8080));
}

RTEST(blocked_refused_not_upstream)
{
	const char *cg = cg_dns("blocked", "--allow allowed.test:8080?names=any");
	struct dcount c0, c1;

	sentinel(cg);
	cr_assert_str_eq(resolve(cg, R.rc, "", "blocked.test"),
			 "ERR EAI_AGAIN");
	c0 = daemon_counters();
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "blocked.test", "A"),
			 "REFUSED");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "BLOCKED.test.", "AAAA"),
			 "REFUSED");
	c1 = daemon_counters();
	expect_delta(c0, c1, queries, 2);
	expect_delta(c0, c1, refused, 2);
	expect_delta(c0, c1, forwarded, 0);
	sentinel(cg);
	expect_not_upstream("blocked.test");
	/* nothing was learned for it */
	expect_blocked(cg, "tcp", W4_B, 8080);
	cr_assert_eq(learned(status_of(cg).policy_id, NULL, NULL, NULL), 0);
}

/* dns.refuse: nxdomain answers unmatched names with NXDOMAIN instead. */
RTEST(refuse_nxdomain)
{
	const char *cg = cg_dns_policy("nx", "allow:\n"
					     "  - allowed.test:8080?names=any\n"
					     "dns:\n"
					     "  refuse: nxdomain\n");

	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "blocked.test", "A"),
			 "NXDOMAIN");
	cr_assert_str_eq(resolve(cg, R.rc, "", "blocked.test"),
			 "ERR EAI_NONAME");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	sentinel(cg);
	expect_not_upstream("blocked.test");
}

/* A query name is a channel out: names no rule allows never leave. */
RTEST(txt_exfil_not_upstream)
{
	const char *cg = cg_dns("txt", "--allow allowed.test");

	/* other types of an allowed name are forwarded */
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "TXT"),
			 "NOERROR TXT=moat-ok");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4,
				   "secret.exfil.blocked.test", "TXT"),
			 "REFUSED");
	cr_assert_str_eq(dns_query(cg, "--tcp", KT_DNS4,
				   "secret.exfil.blocked.test", "TXT"),
			 "REFUSED");
	cr_assert_str_eq(dns_query(cg, "--udp-connect", KT_DNS6,
				   "secret.exfil.blocked.test", "TXT"),
			 "REFUSED");
	/* a name below an allowed one is not that name */
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "secret.allowed.test",
				   "TXT"), "REFUSED");
	sentinel(cg);
	expect_not_upstream("secret.exfil.blocked.test");
	expect_not_upstream("secret.allowed.test");
}

/*
 * Whatever server the workload names, moat answers: the upstream's own
 * address, another host's port 53, a loopback stub; v4 and v6; UDP
 * unconnected and connected, and TCP. The peer checks the reply appears
 * to come from the server it asked (recvmsg/getpeername restore).
 */
RTEST(direct_query_answered_by_moat)
{
	static const char *const flags[] = { "", "--udp-connect", "--tcp" };
	static const char *const servers[] = { KT_DNS4, KT_DNS6, W4_C,
					       "127.0.0.53", "::1" };
	const char *cg = cg_dns("direct", "--allow allowed.test:8080?names=any");
	size_t i, j;

	for (i = 0; i < sizeof(servers) / sizeof(servers[0]); i++) {
		for (j = 0; j < sizeof(flags) / sizeof(flags[0]); j++) {
			const char *s = servers[i], *f = flags[j];

			cr_assert_str_eq(dns_query(cg, f, s, "blocked.test",
						   "A"), "REFUSED",
					 "blocked.test at %s %s", s, f);
			cr_assert_str_eq(dns_query(cg, f, s, "allowed.test",
						   "A"),
					 "NOERROR A=198.51.100.7",
					 "allowed.test at %s %s", s, f);
		}
	}
	/* the echo server at 203.0.113.9:53 never saw any of it */
	cr_assert_not(world_log_has(W4_C, 53));
	sentinel(cg);
	expect_not_upstream("blocked.test");
	/* glibc through a loopback stub address */
	expect_words(resolve(cg, R.rc_stub, "", "allowed.test"),
		     "OK 198.51.100.7 2001:db8:1::7");
	cr_assert_str_eq(resolve(cg, R.rc_stub, "", "blocked.test"),
			 "ERR EAI_AGAIN");
}

/* DNS over TCP: glibc with use-vc, and single queries. */
RTEST(tcp_dns)
{
	const char *cg = cg_dns("tcp", "--allow allowed.test:8080?names=any");

	expect_blocked(cg, "tcp", W4_A, 8080);
	expect_words(resolve(cg, R.rc_tcp, "--connect 8080", "allowed.test"),
		     "OK 198.51.100.7=OK 2001:db8:1::7=OK");
	/*
	 * glibc maps REFUSED over TCP to EAI_NONAME (over UDP it tries the
	 * next server and ends with EAI_AGAIN); dnsmasq's own REFUSED reads
	 * the same. The exact rcode is checked with dns-query below.
	 */
	cr_assert_str_eq(resolve(cg, R.rc_tcp, "", "blocked.test"),
			 "ERR EAI_NONAME");
	cr_assert_str_eq(dns_query(cg, "--tcp", KT_DNS4, "blocked.test", "A"),
			 "REFUSED");
	cr_assert_str_eq(dns_query(cg, "--tcp", KT_DNS6, "v6only.test",
				   "AAAA"), "REFUSED");
	sentinel(cg);
	expect_not_upstream("blocked.test");
	expect_not_upstream("v6only.test");
	expect_allowed(cg, "tcp", W4_A, 8080);
}

/*
 * Too many addresses for 512 bytes: the UDP answer is truncated, glibc
 * asks again over TCP, and every address of the full answer is learned.
 */
RTEST(truncated_answer_tcp_retry)
{
	const char *cg = cg_dns("big", "--allow big.test:8080?names=any");
	const char *w;
	__u32 pid;

	w = dns_query(cg, "", KT_DNS4, "big.test", "A");
	cr_assert(!strncmp(w, "NOERROR TC ", 11), "got '%s'", w);
	w = resolve(cg, R.rc, "--family 4", "big.test");
	cr_assert(!strncmp(w, "OK ", 3), "got '%s'", w);
	cr_assert(has_word(w, "198.51.100.7") && has_word(w, "198.51.100.159") &&
		  has_word(w, "198.51.100.100"), "got '%s'", w);
	pid = status_of(cg).policy_id;
	cr_assert_eq(learned(pid, NULL, NULL, NULL), 61,
		     "learned %d addresses for big.test, want 61",
		     learned(pid, NULL, NULL, NULL));
	expect_allowed(cg, "tcp", W4_A, 8080);
}

/* ---- churn and expiry ---- */

static void rot_set(const char *addr)
{
	char tmp[PATH_MAX];
	FILE *f;

	/* write elsewhere, then rename in: dnsmasq never reads half a file */
	snprintf(tmp, sizeof(tmp), "%.*s/rot.hosts", PATH_MAX - 64, H.tmpdir);
	f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s rot.test\n", addr);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(rename(tmp, KT_DNS_HOSTSDIR "/rot.hosts"), 0,
		     "rename into %s: %s", KT_DNS_HOSTSDIR, strerror(errno));
}

/* Poll dnsmasq directly (no moat) until it serves ADDR for rot.test. */
static void rot_wait_upstream(const char *addr)
{
	long long deadline = kt_now_ms() + POLL_MS;
	char want[64];
	const char *w;

	snprintf(want, sizeof(want), "NOERROR A=%s", addr);
	do {
		w = dns_query(NULL, "", KT_DNS4, "rot.test", "A");
		if (!strcmp(w, want))
			return;
		kt_sleep_ms(50);
	} while (kt_now_ms() < deadline);
	cr_assert_fail("dnsmasq still answers '%s' for rot.test, want %s", w,
		       addr);
}

/*
 * moat's answer for rot.test once dnsmasq serves WANT: the daemon may
 * hand out the previous answer from its cache until that answer's TTL (1
 * s, --local-ttl=1) runs out, never longer.
 */
static const char *rot_resolve(const char *cg, const char *want)
{
	long long deadline = kt_now_ms() + 1000 + 500;
	const char *w;

	do {
		w = resolve(cg, R.rc, "--family 4", "rot.test");
		if (!strcmp(w, want))
			break;
		kt_sleep_ms(100);
	} while (kt_now_ms() < deadline);
	return w;
}

RTEST(rotation_every_answer_connects)
{
	static const char *const answers[] = { W4_B, W4_C, W4_A };
	const char *cg = cg_dns("rot", "--allow rot.test:8080?names=any");
	char want[64];
	size_t i;

	for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		rot_set(answers[i]);
		rot_wait_upstream(answers[i]);
		expect_blocked(cg, "tcp", answers[i], 8080);
		snprintf(want, sizeof(want), "OK %s", answers[i]);
		cr_assert_str_eq(rot_resolve(cg, want), want);
		expect_allowed(cg, "tcp", answers[i], 8080);
	}
	/* the earlier answers stay allowed until their deadlines */
	for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
		expect_allowed(cg, "tcp", answers[i], 8080);
	expect_blocked(cg, "tcp", W4_A, 80);
	rot_set(W4_B);
}

/*
 * TTL 1 (dnsmasq --local-ttl=1), min_ttl 0, grace 0: the address is
 * allowed right after the answer and denied again a second (plus the
 * deadline's one-second slack) later, by the kernel's own deadline
 * check; a new lookup opens it again.
 */
RTEST(short_ttl_expires)
{
	const char *cg = cg_dns_policy("ttl", "allow:\n"
					      "  - allowed.test:8080?names=any\n"
					      "dns:\n"
					      "  min_ttl: 0\n"
					      "  grace: 0\n");
	struct moat_addr_val v;
	bool found;
	const char *w;
	long long t0;

	t0 = kt_now_ms();
	cr_assert_str_eq(resolve(cg, R.rc, "--family 4 --connect 8080",
				 "allowed.test"), "OK 198.51.100.7=OK");
	learned(status_of(cg).policy_id, W4_A, &found, &v);
	if (found) {	/* the daemon may already have reclaimed it */
		struct timespec ts;
		unsigned long long now;

		clock_gettime(CLOCK_BOOTTIME, &ts);
		now = (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
		/* TTL 1 plus the slack every deadline carries (learn.h) */
		cr_assert_leq(v.expires_ns, now + 1100000000ull + LEARN_SLACK_NS,
			      "deadline %llu ns ahead, want <= 1 s (TTL 1) + %llu ns",
			      (unsigned long long)(v.expires_ns - now),
			      LEARN_SLACK_NS);
	}
	w = client_until(cg, "tcp", W4_A, 8080, "EPERM", POLL_MS);
	cr_assert_str_eq(w, "EPERM", "198.51.100.7:8080 still '%s' %lld ms "
			 "after a TTL-1 answer", w, kt_now_ms() - t0);
	cr_assert_str_eq(resolve(cg, R.rc, "--family 4 --connect 8080",
				 "allowed.test"), "OK 198.51.100.7=OK");
}

/* ---- rules ---- */

/* *.example.test: any depth below example.test, never example.test. */
RTEST(wildcard_semantics)
{
	const char *cg = cg_dns("wild", "--allow '*.example.test:8080?names=any'");

	expect_blocked(cg, "tcp", W4_A, 8080);
	cr_assert_str_eq(resolve(cg, R.rc, "--family 4 --connect 8080",
				 "a.example.test"), "OK 198.51.100.7=OK");
	expect_blocked(cg, "tcp", W4_B, 8080);
	cr_assert_str_eq(resolve(cg, R.rc, "--family 4 --connect 8080",
				 "x.y.example.test"), "OK 198.51.100.8=OK");
	/* case and a trailing dot do not matter */
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "A.Example.TEST.", "A"),
			 "NOERROR A=198.51.100.7");
	/* the name itself is not covered */
	cr_assert_str_eq(resolve(cg, R.rc, "", "example.test"),
			 "ERR EAI_AGAIN");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "example.test", "A"),
			 "REFUSED");
	/* nor a name that merely ends in the same letters */
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "badexample.test", "A"),
			 "REFUSED");
	sentinel(cg);
	expect_not_upstream("example.test");
	expect_not_upstream("badexample.test");
	cr_assert(dns_log_has_query(R.dns_start, "x.y.example.test"));
	expect_blocked(cg, "tcp", W4_C, 8080);
}

/*
 * A learned address gets the ports and protocols of the rule that
 * matched; names sharing an address get the union.
 */
RTEST(port_sets)
{
	const char *cg = cg_dns("ports", "--allow tcp://allowed.test:8080?names=any "
				"--allow 'tcp://*.example.test:443?names=any'");
	struct moat_addr_val v;
	bool found;

	expect_words(resolve(cg, R.rc, "", "allowed.test"),
		     "OK 198.51.100.7 2001:db8:1::7");
	expect_allowed(cg, "tcp", W4_A, 8080);
	expect_blocked(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_A, 443);
	expect_blocked(cg, "udp", W4_A, 8080);	/* tcp:// only */
	learned(status_of(cg).policy_id, W4_A, &found, &v);
	cr_assert(found);
	cr_assert_eq(v.n_ranges, 1);
	/* the rule's opt-out of the name check rides on its range */
	cr_assert(v.ranges[0].first == 8080 && v.ranges[0].last == 8080 &&
		  v.ranges[0].protos == (MOAT_PROTO_TCP | MOAT_PROTO_NAMES_ANY));

	/* a.example.test is 198.51.100.7 too: now 8080 and 443 */
	cr_assert_str_eq(resolve(cg, R.rc, "--family 4", "a.example.test"),
			 "OK 198.51.100.7");
	expect_allowed(cg, "tcp", W4_A, 443);
	expect_allowed(cg, "tcp", W4_A, 8080);
	expect_blocked(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "udp", W4_A, 443);
	/* the IPv6 address was learned for allowed.test only */
	expect_allowed(cg, "tcp", W6_A, 8080);
	expect_blocked(cg, "tcp", W6_A, 443);
}

/* The CNAME chain from the query name: the target's addresses. */
RTEST(cname_connects_to_target)
{
	const char *cg = cg_dns("cname", "--allow cname.test:8080?names=any");

	expect_blocked(cg, "tcp", W4_A, 8080);
	expect_words(resolve(cg, R.rc, "--connect 8080", "cname.test"),
		     "OK 198.51.100.7=OK 2001:db8:1::7=OK");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "cname.test", "A"),
			 "NOERROR CNAME=allowed.test. A=198.51.100.7");
	/* the target's name itself is not allowed */
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "REFUSED");
	expect_blocked(cg, "tcp", W4_A, 80);
}

/* A name with only an AAAA record, asked over IPv6, connects over IPv6. */
RTEST(v6only_over_ipv6)
{
	const char *cg = cg_dns("v6only", "--allow v6only.test:8080?names=any");

	expect_blocked(cg, "tcp", W6_B, 8080);
	cr_assert_str_eq(resolve(cg, R.rc6, "--connect 8080", "v6only.test"),
			 "OK 2001:db8:1::8=OK");
	cr_assert_str_eq(resolve(cg, R.rc6, "--family 4", "v6only.test"),
			 "ERR EAI_NODATA");
	cr_assert_str_eq(dns_query(cg, "--udp-connect", KT_DNS6,
				   "v6only.test", "AAAA"),
			 "NOERROR AAAA=2001:db8:1::8");
	expect_allowed(cg, "tcp", W6_B, 8080);
	expect_blocked(cg, "tcp", W6_B, 80);
	cr_assert_str_eq(resolve(cg, R.rc6, "", "blocked.test"),
			 "ERR EAI_AGAIN");
	sentinel(cg);
	expect_not_upstream("blocked.test");
}

/*
 * Answers pointing at metadata (or anything the policy denies) are
 * relayed, but the address is never learned (DNS rebinding).
 */
RTEST(denied_addresses_not_learned)
{
	const char *cg = cg_dns("meta", "--allow meta.test:8080?names=any");
	const char *cg2 = cg_dns("meta-deny", "--allow meta.test:8080?names=any "
				 "--deny " W4_A);
	char *log;

	expect_words(resolve(cg, R.rc, "--family 4", "meta.test"),
		     "OK 169.254.169.254 198.51.100.7");
	cr_assert(is_learned(cg, W4_A));
	cr_assert_not(is_learned(cg, "169.254.169.254"),
		      "the metadata address was learned");
	expect_allowed(cg, "tcp", W4_A, 8080);
	log = read_text(R.log);
	cr_assert(log && strstr(log, "not learning 169.254.169.254 for "
				"meta.test"), "daemon log: %s", log);
	free(log);

	/* a deny rule keeps an address out of the learned map too */
	expect_words(resolve(cg2, R.rc, "--family 4", "meta.test"),
		     "OK 169.254.169.254 198.51.100.7");
	cr_assert_eq(learned(status_of(cg2).policy_id, NULL, NULL, NULL), 0);
	expect_blocked(cg2, "tcp", W4_A, 8080);
}

/*
 * Rebinding to a link-local address that no deny rule names (the
 * built-in deny is 169.254.169.254 alone): only the resolver's refusal
 * of local-scope answers (dns_addr_local_scope) keeps it out.
 */
RTEST(local_scope_answer_not_learned)
{
	const char *cg = cg_dns("rebind", "--allow rebind.test:8080?names=any");
	long long deadline = kt_now_ms() + POLL_MS;
	char tmp[PATH_MAX], *log;
	const char *w;
	FILE *f;

	/* write elsewhere, then rename in: dnsmasq never reads half a file */
	snprintf(tmp, sizeof(tmp), "%.*s/rebind.hosts", PATH_MAX - 64, H.tmpdir);
	f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fprintf(f, "169.254.1.1 rebind.test\n" W4_A " rebind.test\n");
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(rename(tmp, KT_DNS_HOSTSDIR "/rebind.hosts"), 0,
		     "rename into %s: %s", KT_DNS_HOSTSDIR, strerror(errno));
	do {	/* dnsmasq itself (no moat) serves it */
		w = dns_query(NULL, "", KT_DNS4, "rebind.test", "A");
		if (has_word(w, "A=169.254.1.1") && has_word(w, "A=" W4_A))
			break;
		kt_sleep_ms(50);
	} while (kt_now_ms() < deadline);
	cr_assert(has_word(w, "A=169.254.1.1"), "dnsmasq answers '%s'", w);

	expect_words(resolve(cg, R.rc, "--family 4", "rebind.test"),
		     "OK 169.254.1.1 " W4_A);
	cr_assert(is_learned(cg, W4_A));
	cr_assert_not(is_learned(cg, "169.254.1.1"),
		      "the link-local address was learned");
	log = read_text(R.log);
	cr_assert(log && strstr(log, "not learning 169.254.1.1 for "
				"rebind.test"), "daemon log: %s", log);
	free(log);
	unlink(KT_DNS_HOSTSDIR "/rebind.hosts");
}

/* ---- fail-closed ---- */

/* The registration is per (cgroup, netns): elsewhere DNS is refused. */
RTEST(other_netns_fails_closed)
{
	struct client_opts o = { .netns = KT_NS_WORLD };
	const char *cg = cg_dns("elsewhere", "--allow allowed.test:8080?names=any");
	off_t from = file_size(KT_DNS_LOG);

	o.cgroup = cg;
	cr_assert_str_eq(dns_query_x(&o, "", KT_DNS4, 53, "allowed.test", "A"),
			 "EPERM");
	cr_assert_str_eq(dns_query_x(&o, "--tcp", KT_DNS4, 53, "allowed.test",
				     "A"), "EPERM");
	sentinel(cg);
	cr_assert_not(dns_log_has_query(from, "allowed.test"));
}

/* Without the daemon, attaching domain rules fails and changes nothing. */
RTEST(attach_needs_daemon)
{
	const char *cg = cg_make("nodaemon");
	struct status_list l;
	struct run_result r;

	cr_assert_eq(daemon_stop(R.daemon), 0);
	R.daemon = 0;
	moat(&r, "attach %s --netns " KT_NS_CLIENT " --allow allowed.test:8080?names=any",
	     cg);
	cr_assert_eq(r.status, 1, "attach without a daemon: exit %d", r.status);
	cr_assert(strstr(r.err, "daemon"), "stderr does not say why: %s",
		  r.err);
	run_free(&r);
	status_read(&l, NULL);
	cr_assert_null(status_find(&l, cg_rel(cg)));
}

/*
 * kill -9: learned addresses stay allowed until their deadline (which the
 * kernel keeps checking), others stay denied, DNS fails closed and never
 * falls back to the upstream; a restarted daemon serves the same
 * registrations again.
 */
RTEST(kill9_keeps_enforcement_restart_resumes)
{
	const char *cg = cg_dns("k9", "--allow allowed.test:8080?names=any");
	const char *cgt = cg_dns_policy("k9-ttl", "allow:\n"
						 "  - allowed.test:8080?names=any\n"
						 "dns:\n"
						 "  min_ttl: 0\n"
						 "  grace: 0\n");
	long long deadline;
	char sent[64];
	const char *w;
	off_t from;
	int rc;

	expect_words(resolve(cg, R.rc, "", "allowed.test"),
		     "OK 198.51.100.7 2001:db8:1::7");
	cr_assert_str_eq(resolve(cgt, R.rc, "--family 4 --connect 8080",
				 "allowed.test"), "OK 198.51.100.7=OK");
	cr_assert_eq(kill(R.daemon, SIGKILL), 0);
	rc = wait_bg(R.daemon, 5000);
	cr_assert_eq(rc, 128 + SIGKILL, "daemon exit %d", rc);
	R.daemon = 0;

	from = file_size(KT_DNS_LOG);
	expect_allowed(cg, "tcp", W4_A, 8080);
	expect_allowed(cg, "tcp", W6_A, 8080);
	expect_blocked(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_B, 8080);
	/* the short deadline passes with nobody to reclaim it */
	w = client_until(cgt, "tcp", W4_A, 8080, "EPERM", POLL_MS);
	cr_assert_str_eq(w, "EPERM");
	/* no resolver: DNS fails, and nothing reaches the upstream */
	cr_assert_str_eq(dns_query(cg, "--udp-connect", KT_DNS4,
				   "allowed.test", "A"), "ERR ECONNREFUSED");
	cr_assert_str_eq(dns_query(cg, "--tcp", KT_DNS4, "allowed.test", "A"),
			 "ERR ECONNREFUSED");
	cr_assert_str_eq(resolve(cg, R.rc, "", "allowed.test"),
			 "ERR EAI_AGAIN");
	/*
	 * The sentinel, with no daemon to carry it: an unenforced client
	 * asks dnsmasq itself for a fresh name. Once it is logged, whatever
	 * the cgroup's queries put on the wire before it has been logged too.
	 */
	snprintf(sent, sizeof(sent), "k9-%d.sentinel.test", (int)getpid());
	cr_assert_str_eq(dns_query(NULL, "", KT_DNS4, sent, "A"), "NXDOMAIN");
	cr_assert(dns_log_wait_query(from, sent, POLL_MS),
		  "the sentinel %s never reached dnsmasq", sent);
	cr_assert_not(dns_log_has_query(from, "allowed.test"));

	/* restart: the same registrations are served again */
	R.daemon = daemon_start(DAEMON_ARGS, R.log);
	deadline = kt_now_ms() + POLL_MS;
	do {
		w = dns_query(cg, "", KT_DNS4, "allowed.test", "A");
		if (!strcmp(w, "NOERROR A=198.51.100.7"))
			break;
		kt_sleep_ms(100);
	} while (kt_now_ms() < deadline);
	cr_assert_str_eq(w, "NOERROR A=198.51.100.7");
	cr_assert_str_eq(dns_query(cg, "--tcp", KT_DNS4, "blocked.test", "A"),
			 "REFUSED");
	cr_assert_str_eq(resolve(cgt, R.rc, "--family 4 --connect 8080",
				 "allowed.test"), "OK 198.51.100.7=OK");
	sentinel(cg);
	expect_not_upstream("blocked.test");
	expect_allowed(cg, "tcp", W4_A, 8080);
}

/*
 * Garbage sent to port 53 from inside the enforced cgroup reaches the
 * daemon (captured like any DNS), is dropped and counted; the daemon keeps
 * running and answering.
 */
RTEST(malformed_packets_survive)
{
	/* allowed.test A, as a response (QR set) */
	static const char *const udp[] = {
		"ff",
		"0000000000000000000000",
		"123481800001000000000000" "07616c6c6f776564047465737400"
			"00010001",
		/* a question cut short */
		"123401000001000000000000" "07616c6c6f776564",
		/* a compression pointer to itself */
		"123401000001000000000000" "c00c" "00010001",
		/* two questions */
		"123401000002000000000000" "07616c6c6f776564047465737400"
			"00010001" "07616c6c6f776564047465737400" "00010001",
		/* opcode STATUS */
		"123410000001000000000000" "07616c6c6f776564047465737400"
			"00010001",
	};
	const size_t n_udp = sizeof(udp) / sizeof(udp[0]);
	const char *cg = cg_dns("garbage", "--allow allowed.test:8080?names=any");
	struct dcount c0, c1;
	size_t i;

	c0 = daemon_counters();
	for (i = 0; i < n_udp; i++)
		cr_assert_str_eq(dns_raw(cg, "", KT_DNS4, 53, udp[i]),
				 "NOREPLY", "payload %s", udp[i]);
	cr_assert_str_eq(dns_raw(cg, "", KT_DNS6, 53, udp[0]), "NOREPLY");
	/* TCP: twelve bytes of junk as one message; then an empty one */
	cr_assert_str_eq(dns_raw(cg, "--tcp", KT_DNS4, 53,
				 "000cffffffffffffffffffffffff"), "EOF");
	cr_assert_str_eq(dns_raw(cg, "--tcp", KT_DNS4, 53, "0000"), "EOF");
	c1 = daemon_counters();
	expect_delta(c0, c1, malformed, n_udp + 2);
	expect_delta(c0, c1, forwarded, 0);
	cr_assert(daemon_alive(R.daemon), "the daemon died");
	/* the echo server never saw it: it was captured */
	cr_assert_not(world_log_has(W4_C, 53));

	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	cr_assert_str_eq(dns_query(cg, "--tcp", KT_DNS4, "allowed.test",
				   "AAAA"), "NOERROR AAAA=2001:db8:1::7");
	expect_allowed(cg, "tcp", W4_A, 8080);
	cr_assert(daemon_alive(R.daemon), "the daemon died");
}

/* ---- other stub resolvers ---- */

/* busybox nslookup has a resolver of its own (not glibc's). */
RTEST(busybox_nslookup)
{
	const char *cg = cg_dns("busybox", "--allow allowed.test:8080?names=any");
	struct run_result r;

	cr_assert(!access("/usr/bin/busybox", X_OK) ||
		  !access("/bin/busybox", X_OK),
		  "busybox is not installed (Debian: busybox-static)");
	/* join the cgroup, then the netns, then ask 198.51.100.53 itself */
	run(&r, "echo $$ > %s/cgroup.procs && exec nsenter --net=" KT_NS_CLIENT
	    " busybox nslookup -type=a allowed.test " KT_DNS4, cg);
	cr_assert_eq(r.status, 0, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "Address: 198.51.100.7"), "%s", r.out);
	run_free(&r);
	expect_allowed(cg, "tcp", W4_A, 8080);

	run(&r, "echo $$ > %s/cgroup.procs && exec nsenter --net=" KT_NS_CLIENT
	    " busybox nslookup -type=a blocked.test " KT_DNS4, cg);
	cr_assert_neq(r.status, 0, "%s", r.out);
	cr_assert(strstr(r.out, "REFUSED") || strstr(r.err, "REFUSED"),
		  "out: %s err: %s", r.out, r.err);
	run_free(&r);
	sentinel(cg);
	expect_not_upstream("blocked.test");
}

/* ---- upstream of last resort: the workload's resolv.conf ---- */

/*
 * A daemon without --dns-upstream and a policy without dns.upstream: the
 * nameservers of the workload's resolv.conf are asked (attach names the
 * file; run reads /etc/netns/NAME/resolv.conf as `ip netns exec` would).
 * Without any, an allowed name gets SERVFAIL and nothing leaves.
 */
RTEST(upstream_from_resolv_conf)
{
	const char *ns_name = KT_PREFIX "-client";
	char etc[PATH_MAX], rc[PATH_MAX + 16];
	const char *cg, *bare, *stub;
	struct run_result r;
	struct dcount c0, c1;

	cr_assert_eq(daemon_stop(R.daemon), 0);
	R.daemon = daemon_start("-v", R.log);

	cg = cg_make("rcfall");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --resolv-conf %s "
		"--allow allowed.test:8080?names=any", cg, R.rc);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	expect_allowed(cg, "tcp", W4_A, 8080);

	/* no upstream anywhere: SERVFAIL, and the daemon says why */
	bare = cg_make("rcnone");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --allow v6only.test:8080?names=any",
		bare);
	c0 = daemon_counters();
	cr_assert_str_eq(dns_query(bare, "", KT_DNS4, "v6only.test", "AAAA"),
			 "SERVFAIL");
	c1 = daemon_counters();
	expect_delta(c0, c1, servfail, 1);
	expect_delta(c0, c1, forwarded, 0);

	/*
	 * A loopback nameserver is the workload's own (its netns, where it can
	 * bind 127.0.0.53:53 itself): never an upstream.
	 */
	stub = cg_make("rcstub");
	moat(&r, "attach %s --netns " KT_NS_CLIENT " --resolv-conf %s "
	     "--allow v6only.test:8080?names=any", stub, R.rc_stub);
	cr_assert_eq(r.status, 0, "attach: %s", r.err);
	cr_assert(strstr(r.err, "not used as upstream"), "no note: %s", r.err);
	run_free(&r);
	cr_assert_str_eq(dns_query(stub, "", KT_DNS4, "v6only.test", "AAAA"),
			 "SERVFAIL");

	/* run --netns NAME: /etc/netns/NAME/resolv.conf */
	snprintf(etc, sizeof(etc), "/etc/netns/%s", ns_name);
	snprintf(rc, sizeof(rc), "%s/resolv.conf", etc);
	cr_assert(!mkdir("/etc/netns", 0755) || errno == EEXIST);
	cr_assert(!mkdir(etc, 0755) || errno == EEXIST);
	run(&r, "cp %s %s", R.rc, rc);
	cr_assert_eq(r.status, 0);
	run_free(&r);
	moat(&r, "run --netns %s --allow allowed.test:8080?names=any -- "
	     "\"$MOAT_PEER\" resolve --resolv-conf %s --family 4 --connect 8080 "
	     "allowed.test", ns_name, R.rc);
	unlink(rc);
	rmdir(etc);
	cr_assert_eq(r.status, 0, "run: exit %d: %s", r.status, r.err);
	cr_assert(strstr(r.out, "OK 198.51.100.7=OK"), "run printed: %s", r.out);
	run_free(&r);
	expect_not_upstream("v6only.test");
}

/* ---- the systemd unit ---- */

/* The value of KEY= in the unit text (first occurrence), or "". */
static void unit_value(const char *text, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\n%s=", key);
	out[0] = 0;
	p = strstr(text, pat);
	if (p)
		snprintf(out, len, "%.*s", (int)strcspn(p + strlen(pat), "\n"),
			 p + strlen(pat));
}

/*
 * tools/systemd/moat-bpfd.service passes `systemd-analyze verify` (with
 * the binary path pointed at this build), and its ExecStart line, run with
 * only the unit's capability bounding set and no_new_privs, loads the
 * program set, sends READY=1 to NOTIFY_SOCKET, serves a registration,
 * and sends STOPPING=1 on SIGTERM. systemd is not PID 1 here, so the unit
 * itself cannot be started.
 */
RTEST(systemd_unit_notify)
{
	char unit[PATH_MAX + 64], copy[PATH_MAX + 64], sock[PATH_MAX + 64];
	char exec[1024], caps[512], setcaps[1024], cmd[8192], msg[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct run_result r;
	const char *cg;
	char *text, *p;
	FILE *f;
	pid_t pid;
	int fd;

	cr_assert_eq(daemon_stop(R.daemon), 0);
	R.daemon = 0;
	snprintf(unit, sizeof(unit), "%s/tools/systemd/moat-bpfd.service", H.root);
	text = read_text(unit);
	cr_assert_not_null(text, "cannot read %s", unit);
	/* the unit as `make install` would place it, pointing at this build */
	snprintf(copy, sizeof(copy), "%s/moat-bpfd.service", H.tmpdir);
	f = fopen(copy, "w");
	cr_assert_not_null(f);
	for (p = text; *p; ) {
		const char *at = strstr(p, "/usr/local/sbin/moat-bpf");

		if (!at) {
			fputs(p, f);
			break;
		}
		fprintf(f, "%.*s%s", (int)(at - p), p, H.moat);
		p = (char *)at + strlen("/usr/local/sbin/moat-bpf");
	}
	cr_assert_eq(fclose(f), 0);
	run(&r, "systemd-analyze verify %s", copy);
	cr_assert_eq(r.status, 0, "systemd-analyze verify: %s%s", r.out, r.err);
	run_free(&r);
	free(text);
	text = read_text(copy);
	cr_assert(strstr(text, "\nType=notify\n"), "the unit is not Type=notify");
	unit_value(text, "ExecStart", exec, sizeof(exec));
	unit_value(text, "CapabilityBoundingSet", caps, sizeof(caps));
	free(text);
	cr_assert(exec[0] && caps[0], "ExecStart or CapabilityBoundingSet missing");
	/* "CAP_SYS_ADMIN CAP_BPF" -> "-all,+sys_admin,+bpf" for setpriv */
	snprintf(setcaps, sizeof(setcaps), "-all");
	for (p = strtok(caps, " "); p; p = strtok(NULL, " ")) {
		size_t n = strlen(setcaps);

		snprintf(setcaps + n, sizeof(setcaps) - n, ",+%s",
			 p + (strncmp(p, "CAP_", 4) ? 0 : 4));
		for (char *c = setcaps + n; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}

	/* nothing pinned: the daemon must be able to load the programs */
	moat_ok("unload");
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	snprintf(sock, sizeof(sock), "%s/notify.sock", H.tmpdir);
	cr_assert_lt(strlen(sock), sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	unlink(sock);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s",
		     strerror(errno));
	snprintf(cmd, sizeof(cmd), "NOTIFY_SOCKET=%s exec setpriv --no-new-privs "
		 "--bounding-set %s -- %s >>%s 2>&1", sock, setcaps, exec, R.log);
	pid = spawn_bg("%s", cmd);
	R.daemon = pid;	/* the teardown stops it if an assertion fails */

	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	cr_assert_eq(poll(&pfd, 1, 10000), 1, "no READY=1 within 10 s "
		     "(daemon %s; %s)", daemon_alive(pid) ? "running" : "exited", cmd);
	n = recv(fd, msg, sizeof(msg) - 1, 0);
	cr_assert(n > 0);
	msg[n] = 0;
	cr_assert(strstr(msg, "READY=1"), "first notification: '%s'", msg);

	/* with exactly those capabilities it enters the netns and answers */
	cg = cg_make("unit");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --allow allowed.test:8080?names=any", cg);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "blocked.test", "A"),
			 "REFUSED");

	kill(pid, SIGTERM);
	cr_assert_eq(poll(&pfd, 1, 10000), 1, "no STOPPING=1 after SIGTERM");
	n = recv(fd, msg, sizeof(msg) - 1, 0);
	cr_assert(n > 0);
	msg[n] = 0;
	cr_assert(strstr(msg, "STOPPING=1"), "notification after SIGTERM: '%s'", msg);
	cr_assert_eq(daemon_stop(pid), 0);
	R.daemon = 0;
	close(fd);
	unlink(sock);
}

/* ---- policy reload ---- */

/*
 * `policy reload NAME` rebuilds every cgroup enforced with NAME from the
 * file as it is now, keeping the rules added on the command line (here
 * the sentinel): the BPF side flips to the new rules, the resolver
 * serves the new domain rules. A file that does not load changes nothing.
 */
RTEST(policy_reload_by_name)
{
	char pol[PATH_MAX];
	const char *cg;
	struct run_result r;

	snprintf(pol, sizeof(pol), "%s", write_policy("ktest-reload",
		 "allow:\n  - allowed.test:8080?names=any\n  - tcp://" W4_B ":80\n"));
	cg = cg_make("reload");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s --allow '"
		SENTINEL_RULE "'", cg, pol);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "v6only.test", "AAAA"),
			 "REFUSED");
	expect_allowed(cg, "tcp", W4_B, 80);
	expect_blocked(cg, "tcp", W4_C, 443);

	write_policy("ktest-reload",
		     "allow:\n  - v6only.test:8080?names=any\n  - tcp://" W4_C ":443\n");
	moat(&r, "policy reload %s", pol);
	cr_assert_eq(r.status, 0, "policy reload: %s", r.err);
	cr_assert(strstr(r.err, "reloaded in 1 cgroup"), "%s", r.err);
	run_free(&r);
	expect_blocked(cg, "tcp", W4_B, 80);
	expect_allowed(cg, "tcp", W4_C, 443);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "REFUSED");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "v6only.test", "AAAA"),
			 "NOERROR AAAA=2001:db8:1::8");
	sentinel(cg);	/* the command-line rule survived the reload */

	/* --json: one object on stdout, failures listed in it, nothing else */
	moat(&r, "--json policy reload %s", pol);
	cr_assert_eq(r.status, 0, "policy reload --json: %s", r.err);
	cr_assert_str_eq(r.out, "{\"policy\":\"ktest-reload\",\"reloaded\":1,"
			 "\"failed\":0,\"failures\":[]}\n", "%s", r.out);
	cr_assert_str_eq(r.err, "", "%s", r.err);
	run_free(&r);

	/* a broken file: an error naming it, and nothing changes */
	write_policy("ktest-reload", "allow:\n  - tcp://" W4_B ":80\n  bogus: 1\n");
	moat(&r, "policy reload %s", pol);
	cr_assert_neq(r.status, 0, "a broken policy reloaded: %s", r.err);
	cr_assert(strstr(r.err, "ktest-reload.yaml:"), "error names no file: %s",
		  r.err);
	run_free(&r);
	expect_allowed(cg, "tcp", W4_C, 443);
	expect_blocked(cg, "tcp", W4_B, 80);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "v6only.test", "AAAA"),
			 "NOERROR AAAA=2001:db8:1::8");
}

/* ---- TCP clients ---- */

/*
 * Clients that open a TCP connection to the resolver and send nothing do
 * not hold it up: with 6 of them open (each one held the daemon for 2 s
 * when TCP clients were served inline: 12 s), a UDP query from the same
 * cgroup is still answered within the peer's 4 s wait, and TCP DNS works.
 */
RTEST(idle_tcp_clients_do_not_stall)
{
	const char *cg = cg_dns("idle", "--allow allowed.test:8080?names=any");
	char ready[PATH_MAX + 16];
	pid_t pids[6];

	for (int i = 0; i < 6; i++) {
		snprintf(ready, sizeof(ready), "%s/idle-%d", H.tmpdir, i);
		pids[i] = spawn_bg("echo $$ > %s/cgroup.procs && exec nsenter --net="
				   KT_NS_CLIENT " python3 -c 'import socket, time; "
				   "s = socket.create_connection((\"" KT_DNS4 "\", 53)); "
				   "open(\"%s\", \"w\").close(); time.sleep(10)'",
				   cg, ready);
	}
	for (int i = 0; i < 6; i++) {
		snprintf(ready, sizeof(ready), "%s/idle-%d", H.tmpdir, i);
		cr_assert(wait_file(ready, 5000), "idle client %d never connected", i);
	}
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	cr_assert_str_eq(dns_query(cg, "--tcp", KT_DNS4, "allowed.test", "AAAA"),
			 "NOERROR AAAA=2001:db8:1::7");
	for (int i = 0; i < 6; i++) {
		kill(pids[i], SIGKILL);
		wait_bg(pids[i], 2000);
	}
}

/* ---- issue 11: what workloads must not do to the resolver ---- */

/*
 * A UDP DNS relay (Docker's embedded DNS, or a slow upstream), run outside
 * every enforced cgroup: answers queries on ADDR:PORT with what dnsmasq
 * says, DELAY seconds late, and appends a line to LOG per query it got.
 */
static const char relay_py[] =
"import socket, sys, time\n"
"addr, port, delay, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]\n"
"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
"s.bind((addr, port))\n"
"open(log, 'a').write('ready\\n')\n"
"while True:\n"
"    q, peer = s.recvfrom(65535)\n"
"    open(log, 'a').write('query\\n')\n"
"    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
"    u.settimeout(3)\n"
"    u.sendto(q, ('" KT_DNS4 "', 53))\n"
"    try:\n"
"        a = u.recv(65535)\n"
"    except OSError:\n"
"        continue\n"
"    time.sleep(delay)\n"
"    s.sendto(a, peer)\n";

/* Start the relay in the client netns; returns once it listens. */
static void relay_start(const char *addr, int port, const char *delay,
			const char *log)
{
	const char *py = tmp_file("relay.py", relay_py);

	spawn_bg("exec nsenter --net=" KT_NS_CLIENT " python3 %s %s %d %s %s",
		 py, addr, port, delay, log);
	cr_assert(wait_file(log, 5000), "the relay did not start");
	for (long long end = kt_now_ms() + 5000; kt_now_ms() < end; kt_sleep_ms(20)) {
		char *t = read_text(log);
		bool up = t && strstr(t, "ready");

		free(t);
		if (up)
			return;
	}
	cr_assert_fail("the relay on %s:%d did not come up", addr, port);
}

static int count_word(const char *path, const char *word)
{
	char *t = read_text(path), *p;
	int n = 0;

	for (p = t; p && (p = strstr(p, word)); p += strlen(word))
		n++;
	free(t);
	return n;
}

/*
 * Docker's DNS rules as iptables-nft writes them into a container's netns
 * (moby libnetwork/resolver_unix.go): 127.0.0.11:53 is DNATed to
 * dockerd's socket on 127.0.0.11 (the relay here) and its replies are
 * SNATed back to port 53. And a short conntrack UDP timeout, so that the
 * 30 s of DNS silence after which the flow is forgotten last 2 s here.
 */
static void docker_nat_up(void)
{
	struct run_result r;

	run(&r, "nsenter --net=" KT_NS_CLIENT " sysctl -n net.netfilter.nf_conntrack_udp_timeout");
	cr_assert_eq(r.status, 0, "conntrack sysctl: %s", r.err);
	snprintf(R.udp_timeout, sizeof(R.udp_timeout), "%.*s",
		 (int)strcspn(r.out, "\n"), r.out);
	run_free(&r);
	R.docker_nat = true;
	run(&r, "nsenter --net=" KT_NS_CLIENT " sh -c '"
	    "sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 && nft -f -' <<'EOF'\n"
	    "table ip moat_t_docker {\n"
	    "  chain output {\n"
	    "    type nat hook output priority -100; policy accept;\n"
	    "    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:5353\n"
	    "    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:5354\n"
	    "  }\n"
	    "  chain postrouting {\n"
	    "    type nat hook postrouting priority 100; policy accept;\n"
	    "    ip saddr 127.0.0.11 udp sport 5353 snat to 127.0.0.11:53\n"
	    "    ip saddr 127.0.0.11 tcp sport 5354 snat to 127.0.0.11:53\n"
	    "  }\n"
	    "}\n"
	    "EOF\n");
	cr_assert_eq(r.status, 0, "nft: %s", r.err);
	run_free(&r);
}

static void docker_nat_down(void)
{
	struct run_result r;

	if (!R.docker_nat)
		return;
	R.docker_nat = false;
	run(&r, "nsenter --net=" KT_NS_CLIENT " sh -c 'nft delete table ip moat_t_docker; "
	    "sysctl -qw net.netfilter.nf_conntrack_udp_timeout=%s'",
	    R.udp_timeout[0] ? R.udp_timeout : "30");
	run_free(&r);
}

/*
 * The workload's side of the attack of issue 11, item 4: find the daemon's
 * socket 127.0.0.1:P -> 127.0.0.11:53 in /proc/net/udp, bind 127.0.0.11:53,
 * wait until conntrack has forgotten the daemon's DNAT flow, send from
 * there to 127.0.0.1:P (again every 0.3 s, so that the flow stays ours)
 * and answer every query that arrives with A 198.51.100.8. Prints what
 * its sends got ("SENT" or "EPERM") and how many answers it forged.
 * With RAW, it only sends 3 forged datagrams through a raw socket.
 */
static const char attacker_py[] =
"import socket, struct, sys, time, select\n"
"mode, wait, ready = sys.argv[1], float(sys.argv[2]), sys.argv[3]\n"
"port = None\n"
"for line in open('/proc/net/udp').read().splitlines()[1:]:\n"
"    f = line.split()\n"
"    if f[1].startswith('0100007F:') and f[2] == '0B00007F:0035':\n"
"        port = int(f[1].split(':')[1], 16)\n"
"if port is None:\n"
"    print('NOSOCKET'); sys.exit(0)\n"
"junk = bytes(12)\n"
"if mode == 'raw':\n"
"    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)\n"
"    udp = struct.pack('!HHHH', 53, port, 8 + len(junk), 0) + junk\n"
"    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,\n"
"                     socket.inet_aton('127.0.0.11'), socket.inet_aton('127.0.0.1'))\n"
"    sent = 0\n"
"    for i in range(3):\n"
"        try:\n"
"            r.sendto(ip + udp, ('127.0.0.1', 0)); sent += 1\n"
"        except OSError as e:\n"
"            print('RAWERR', e.errno)\n"
"    print('RAW', sent); sys.exit(0)\n"
"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
"s.bind(('127.0.0.11', 53))\n"
"time.sleep(wait)\n"
"res = 'SENT'\n"
"def poke():\n"
"    global res\n"
"    try:\n"
"        s.sendto(junk, ('127.0.0.1', port))\n"
"    except PermissionError:\n"
"        res = 'EPERM'\n"
"poke()\n"
"open(ready, 'w').close()\n"
"forged, end, last = 0, time.time() + 8, 0\n"
"while time.time() < end:\n"
"    if time.time() - last > 0.3:\n"
"        poke(); last = time.time()\n"
"    if not select.select([s], [], [], 0.1)[0]:\n"
"        continue\n"
"    q, peer = s.recvfrom(65535)\n"
"    a = q[:2] + b'\\x81\\x80\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x00' + q[12:]\n"
"    a += b'\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x01\\x2c\\x00\\x04' + bytes([198, 51, 100, 8])\n"
"    try:\n"
"        s.sendto(a, peer); forged += 1\n"
"    except PermissionError:\n"
"        res = 'EPERM'\n"
"print(res, 'forged', forged)\n";

static unsigned long long daemon_stray(void)
{
	json_object *o = daemon_call("list");
	unsigned long long n = get_u64(o, "stray_answers");

	json_object_put(o);
	return n;
}

/*
 * Issue 11, item 4, reproduced: a container (in a Docker network, with
 * Docker's DNAT/SNAT rules) makes the daemon's queries its own by sending
 * first on the daemon's upstream flow, answers an allowed name with an
 * address its policy does not allow, and connects there. Its datagrams to
 * the daemon's upstream socket are refused (EPERM at sendmsg, so conntrack
 * never sees them); the daemon's queries keep going to Docker's DNS; the
 * forged address is neither learned nor reachable. A raw socket's forged
 * datagrams (policy with raw: allow) are dropped by the egress backstop:
 * the daemon never receives them.
 */
RTEST(docker_dns_flow_hijack)
{
	char relay_log[PATH_MAX + 16], ready[PATH_MAX + 16], out[PATH_MAX + 16];
	const char *cg, *py, *w;
	unsigned long long stray;
	struct run_result r;

	snprintf(relay_log, sizeof(relay_log), "%s/relay.log", H.tmpdir);
	snprintf(ready, sizeof(ready), "%s/attacker.ready", H.tmpdir);
	snprintf(out, sizeof(out), "%s/attacker.out", H.tmpdir);
	docker_nat_up();
	relay_start("127.0.0.11", 5353, "0", relay_log);
	cg = cg_dns_policy("hijack", "allow:\n"
				     "  - allowed.test:8080?names=any\n"
				     "dns:\n"
				     "  upstream: [127.0.0.11]\n"
				     "sockets: { raw: allow }\n");
	/* the daemon's flow through Docker's DNAT: the relay answers */
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	cr_assert_eq(count_word(relay_log, "query"), 1,
		     "the query did not go through Docker's DNAT to the relay");
	expect_blocked(cg, "tcp", W4_B, 8080);

	/* the container waits 3.5 s (the flow is forgotten after 2 s) */
	py = tmp_file("attacker.py", attacker_py);
	spawn_bg("echo $$ > %s/cgroup.procs && exec nsenter --net=" KT_NS_CLIENT
		 " python3 %s udp 3.5 %s > %s 2>&1", cg, py, ready, out);
	cr_assert(wait_file(ready, 10000), "the attacker never got ready: %s",
		  read_text(out) ?: "");
	w = dns_query(cg, "", KT_DNS4, "allowed.test", "A");
	cr_assert(wait_file(out, 1000));
	for (long long end = kt_now_ms() + 12000; kt_now_ms() < end; kt_sleep_ms(100)) {
		char *t = read_text(out);
		bool done = t && strstr(t, "forged");

		free(t);
		if (done)
			break;
	}
	{
		char *t = read_text(out);

		/* what the attack is after: first, then how it was stopped */
		cr_assert_str_eq(w, "NOERROR A=198.51.100.7",
				 "the daemon took the workload's answer (%s; attacker: %s)",
				 w, t ?: "");
		cr_assert_not(is_learned(cg, W4_B), "198.51.100.8 was learned");
		expect_blocked(cg, "tcp", W4_B, 8080);
		cr_assert(t && strstr(t, "EPERM forged 0"),
			  "the workload reached the daemon's upstream socket: %s",
			  t ?: "(no output)");
		free(t);
	}
	cr_assert_eq(count_word(relay_log, "query"), 2,
		     "the daemon's query did not reach Docker's DNS");

	/* a raw socket: nothing reaches the daemon's socket (stray answers) */
	stray = daemon_stray();
	run(&r, "echo $$ > %s/cgroup.procs && exec nsenter --net=" KT_NS_CLIENT
	    " python3 %s raw 0 /dev/null", cg, py);
	cr_assert_eq(r.status, 0, "raw attacker: %s%s", r.out, r.err);
	cr_assert(strstr(r.out, "RAW 3") || strstr(r.out, "RAWERR"),
		  "raw attacker: %s", r.out);
	run_free(&r);
	kt_sleep_ms(300);
	cr_assert_eq(daemon_stray(), stray,
		     "raw datagrams from the workload reached the daemon's upstream socket");
	/*
	 * Conntrack saw them before the backstop dropped them: the flow is
	 * the workload's now, the daemon's queries go nowhere and fail
	 * closed (README: raw sockets can disturb, never answer).
	 */
	w = dns_query(cg, "", KT_DNS4, "allowed.test", "A");
	cr_assert(!strcmp(w, "SERVFAIL") || !strcmp(w, "NOERROR A=198.51.100.7"),
		  "after raw datagrams: %s", w);
	cr_assert_not(is_learned(cg, W4_B), "198.51.100.8 was learned");
}

/*
 * The gate in front of moat_daemon_socks (issue 18): every upstream
 * socket the daemon lists has its port's bit set in moat_daemon_ports; a
 * listed socket behind a clear bit is unguarded (the programs skip the
 * lookup). TCP sockets go through the same guard_sock(): the hijack tests
 * above refuse a workload's packets to either kind through the gate.
 */
RTEST(upstream_sockets_gated)
{
	const char *cg;
	int listed, ungated;

	cg = cg_dns_policy("gated", "allow:\n  - allowed.test:8080?names=any\n");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	ungated = daemon_socks_ungated(&listed);
	cr_assert_geq(listed, 1, "the daemon listed no upstream socket");
	cr_assert_eq(ungated, 0, "%d of %d listed sockets are not gated",
		     ungated, listed);
}

/*
 * One daemon at a time: a second one refuses to start, and the running
 * one keeps its control socket and its listed upstream sockets (a second
 * daemon used to take the socket and clear every listed socket, leaving
 * the first's open to the workloads). From the review of issue 18.
 */
RTEST(second_daemon_refused)
{
	const char *cg;
	struct json_object *o;
	struct run_result r;
	int listed, ungated;

	cg = cg_dns_policy("second", "allow:\n  - allowed.test:8080?names=any\n");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	run(&r, "timeout 10 \"$MOAT_BIN\" daemon -d --dns-upstream " KT_DNS4);
	cr_assert(r.status != 0 && r.status != 124,
		  "a second daemon: exit %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "another moat-bpf daemon is running"),
		  "a second daemon said: %s", r.err);
	run_free(&r);
	o = daemon_call("list");
	cr_assert_not_null(o, "the running daemon lost its control socket");
	json_object_put(o);
	ungated = daemon_socks_ungated(&listed);
	cr_assert_geq(listed, 1, "the running daemon's sockets were unlisted");
	cr_assert_eq(ungated, 0, "%d of %d listed sockets are not gated",
		     ungated, listed);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
}

/* The policy id cgroup CG runs, read from the pinned map (no lock). */
static __u32 cg_policy_now(unsigned long long cg_id)
{
	struct moat_cgroup v = {};
	int fd = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_cgroups");

	cr_assert_geq(fd, 0, "cannot open the pinned moat_cgroups");
	bpf_map_lookup_elem(fd, &cg_id, &v);
	close(fd);
	return v.policy_id;
}

/*
 * A query for NAME from CG, through the relay logging to RELAY_LOG
 * (output to OUT); once the relay has it, the daemon is stopped, so that
 * the answer waits in its socket. Returns the client's pid.
 */
static pid_t query_then_stop(const char *cg, const char *name,
			     const char *relay_log, const char *out)
{
	pid_t q;

	q = spawn_bg("echo $$ > %s/cgroup.procs && exec nsenter --net=" KT_NS_CLIENT
		     " %s dns-query " KT_DNS4 " 53 %s A > %s 2>&1",
		     cg, H.peer, name, out);
	for (long long end = kt_now_ms() + 5000;
	     !count_word(relay_log, "query") && kt_now_ms() < end; )
		kt_sleep_ms(10);
	cr_assert_eq(count_word(relay_log, "query"), 1, "the query never reached the relay");
	cr_assert_eq(kill(R.daemon, SIGSTOP), 0);
	return q;
}

/*
 * `policy reload POL` in the background, while the daemon is stopped:
 * returns once it flipped cgroup CG_ID away from OLD_PID (then it purges
 * OLD_PID and waits for the daemon), with its pid in *RELOAD.
 */
static __u32 reload_flip(const char *pol, unsigned long long cg_id,
			 __u32 old_pid, pid_t *reload)
{
	__u32 new_pid;

	*reload = spawn_bg("exec %s policy reload %s", H.moat, pol);
	for (long long end = kt_now_ms() + 5000;
	     cg_policy_now(cg_id) == old_pid && kt_now_ms() < end; )
		kt_sleep_ms(10);
	new_pid = cg_policy_now(cg_id);
	cr_assert_neq(new_pid, old_pid, "reload did not flip the cgroup");
	return new_pid;
}

/*
 * Issue 11, item 5: `policy reload` flips the cgroup to the new policy
 * id, then tells the daemon. An answer the daemon takes in between was
 * matched against the old rules; it must not be learned under the new
 * id. Made deterministic: the answer (1 s late from a relay) waits in the
 * daemon's socket while the daemon is stopped; reload flips and waits for
 * the daemon; then the daemon reads the answer first (epoll reports in
 * order of readiness), the update second.
 */
RTEST(reload_answer_in_flight_not_learned)
{
	char relay_log[PATH_MAX + 16], out[PATH_MAX + 16], pol[PATH_MAX];
	unsigned long long cg_id;
	__u32 old_pid, new_pid;
	const char *cg;
	pid_t q, reload;
	bool found = true;
	int rc;

	snprintf(relay_log, sizeof(relay_log), "%s/relay.log", H.tmpdir);
	snprintf(out, sizeof(out), "%s/query.out", H.tmpdir);
	relay_start("127.0.0.1", 5300, "1", relay_log);
	snprintf(pol, sizeof(pol), "%s", write_policy("ktest-reload-race",
		 "allow:\n  - allowed.test:8080?names=any\n"
		 "dns:\n  upstream: ['127.0.0.1:5300']\n"));
	cg = cg_make("reloadrace");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg, pol);
	cg_id = status_of(cg).id;
	old_pid = cg_policy_now(cg_id);
	expect_blocked(cg, "tcp", W4_A, 8080);

	/* a query reaches the relay; its answer comes while the daemon sleeps */
	q = query_then_stop(cg, "allowed.test", relay_log, out);
	kt_sleep_ms(1500);

	/* the new policy no longer allows allowed.test */
	write_policy("ktest-reload-race", "allow:\n  - v6only.test:8080?names=any\n"
		     "dns:\n  upstream: ['127.0.0.1:5300']\n");
	new_pid = reload_flip(pol, cg_id, old_pid, &reload);
	kt_sleep_ms(200);	/* reload is connected and waits for the daemon */
	cr_assert_eq(kill(R.daemon, SIGCONT), 0);
	rc = wait_bg(reload, 10000);
	cr_assert_eq(rc, 0, "policy reload: exit %d", rc);
	wait_bg(q, 10000);

	/* right after reload returned: nothing of the old rules in the new id */
	learned(new_pid, W4_A, &found, NULL);
	cr_assert_not(found, "198.51.100.7 (allowed.test, removed by the reload) "
		      "was learned under the new policy id %u (query: %s)", new_pid,
		      read_text(out) ?: "");
	expect_blocked(cg, "tcp", W4_A, 8080);
	/* and the new rules are served and learned */
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "v6only.test", "AAAA"),
			 "NOERROR AAAA=2001:db8:1::8");
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"), "REFUSED");
}

/*
 * A relay that holds answers: it takes N queries, has KT_DNS4 answer
 * each, says "held", waits 0.5 s (the test stops the daemon), sends the
 * N answers back to back and says "sent".
 */
static const char batch_relay_py[] =
"import socket, sys, time\n"
"port, n, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
"s.bind(('127.0.0.1', port))\n"
"open(log, 'a').write('ready\\n')\n"
"held = []\n"
"while len(held) < n:\n"
"    q, peer = s.recvfrom(65535)\n"
"    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
"    u.settimeout(3)\n"
"    u.sendto(q, ('" KT_DNS4 "', 53))\n"
"    held.append((u.recv(65535), peer))\n"
"open(log, 'a').write('held\\n')\n"
"time.sleep(0.5)\n"
"for a, peer in held:\n"
"    s.sendto(a, peer)\n"
"open(log, 'a').write('sent\\n')\n";

/*
 * Issue 18: the answers of one upstream recvmmsg are learned as a batch
 * and released after it. Three answers wait together in the daemon's
 * upstream socket (the daemon is stopped while the relay sends them);
 * the policy's max_addresses (2) lets two be learned: those two must be
 * released, each with its address in the policy's map, and the third
 * withheld (SERVFAIL), its address not learned. Whichever order they
 * come in: a failed write withholds its own answer, not the batch.
 */
RTEST(batch_answer_failure_withholds_only_its_own)
{
	static const char *const names[] = { "allowed.test", "blocked.test", "example.test" };
	static const char *const addrs[] = { "198.51.100.7", "198.51.100.8", "203.0.113.9" };
	char relay_log[PATH_MAX + 16], out[3][PATH_MAX + 16];
	int n_ok = 0, n_fail = 0;
	const char *cg, *py;
	pid_t q[3];
	__u32 pid;

	snprintf(relay_log, sizeof(relay_log), "%s/batch-relay.log", H.tmpdir);
	py = tmp_file("batch_relay.py", batch_relay_py);
	spawn_bg("exec nsenter --net=" KT_NS_CLIENT " python3 %s 5302 3 %s", py, relay_log);
	for (long long end = kt_now_ms() + 5000;
	     !count_word(relay_log, "ready") && kt_now_ms() < end; )
		kt_sleep_ms(20);
	cr_assert_eq(count_word(relay_log, "ready"), 1, "the relay did not come up");
	cg = cg_make("batchquota");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg,
		write_policy("ktest-batch-quota",
			     "allow:\n  - allowed.test:8080\n  - blocked.test:8080\n"
			     "  - example.test:8080\n"
			     "dns:\n  upstream: ['127.0.0.1:5302']\n  max_addresses: 2\n"));
	pid = status_of(cg).policy_id;

	for (int i = 0; i < 3; i++) {
		snprintf(out[i], sizeof(out[i]), "%s/query%d.out", H.tmpdir, i);
		q[i] = spawn_bg("echo $$ > %s/cgroup.procs && exec nsenter --net="
				KT_NS_CLIENT " %s dns-query " KT_DNS4 " 53 %s A > %s 2>&1",
				cg, H.peer, names[i], out[i]);
	}
	for (long long end = kt_now_ms() + 3000;
	     !count_word(relay_log, "held") && kt_now_ms() < end; )
		kt_sleep_ms(5);
	cr_assert_eq(count_word(relay_log, "held"), 1, "the relay never got 3 queries");
	/* the answers go while the daemon sleeps: one recvmmsg takes them all */
	cr_assert_eq(kill(R.daemon, SIGSTOP), 0);
	for (long long end = kt_now_ms() + 3000;
	     !count_word(relay_log, "sent") && kt_now_ms() < end; )
		kt_sleep_ms(10);
	kt_sleep_ms(50);
	cr_assert_eq(kill(R.daemon, SIGCONT), 0);
	cr_assert_eq(count_word(relay_log, "sent"), 1, "the relay did not answer");

	for (int i = 0; i < 3; i++) {
		char want[64], *w;
		bool found;

		wait_bg(q[i], 10000);
		w = read_text(out[i]);
		cr_assert_not_null(w, "%s: no output", names[i]);
		w[strcspn(w, "\n")] = 0;
		snprintf(want, sizeof(want), "NOERROR A=%s", addrs[i]);
		learned(pid, addrs[i], &found, NULL);
		if (!strcmp(w, want)) {
			n_ok++;
			cr_assert(found, "%s was released (%s) but %s is not in the map",
				  names[i], w, addrs[i]);
		} else {
			n_fail++;
			cr_assert_str_eq(w, "SERVFAIL", "%s: %s", names[i], w);
			cr_assert_not(found, "%s was withheld but %s was learned",
				      names[i], addrs[i]);
		}
		free(w);
	}
	cr_assert_eq(n_ok, 2, "%d answers released (max_addresses 2)", n_ok);
	cr_assert_eq(n_fail, 1);
}

/*
 * gdb_hold() needs ptrace on the daemon: Yama's ptrace_scope 3 forbids
 * it even to root. Then the test is n/a, and says why.
 */
static bool gdb_usable(void)
{
	char *t = read_text("/proc/sys/kernel/yama/ptrace_scope");
	bool ok = !t || atoi(t) < 3;

	free(t);
	if (!ok)
		cr_log_info("n/a: kernel.yama.ptrace_scope is 3: no process may "
			    "attach to the daemon to hold it on demand");
	return ok;
}

/*
 * gdb attaches to the (stopped) daemon, swallows that stop, runs it to
 * FUNC and holds it there until the file GO exists; "at-FUNC" in LOG says
 * it is held. Returns gdb's pid, for gdb_release().
 */
static pid_t gdb_hold(const char *func, const char *log, const char *go)
{
	char script[2 * PATH_MAX], mark[64];
	pid_t g;
	char *w;

	snprintf(mark, sizeof(mark), "at-%s", func);
	snprintf(script, sizeof(script),
		 "set pagination off\nset confirm off\n"
		 "handle SIGSTOP nostop noprint nopass\n"
		 "break %s\ncontinue\necho %s\\n\n"
		 "shell while [ ! -e '%s' ]; do sleep 0.02; done\n"
		 "delete\ndetach\nquit\n", func, mark, go);
	g = spawn_bg("exec gdb -nx -batch -p %d -x %s > %s 2>&1", (int)R.daemon,
		     tmp_file("hold.gdb", script), log);
	for (long long end = kt_now_ms() + 20000;
	     !count_word(log, mark) && kt_now_ms() < end; )
		kt_sleep_ms(20);
	w = read_text(log);
	cr_assert_eq(count_word(log, mark), 1, "the daemon never reached %s "
		     "under gdb: %s", func, w ?: "");
	free(w);
	return g;
}

/* Let the daemon held by gdb_hold() go on, and out of its stop. */
static void gdb_release(pid_t g, const char *go)
{
	int rc;

	cr_assert_eq(close(open(go, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
	rc = wait_bg(g, 10000);
	cr_assert_eq(rc, 0, "gdb: exit %d", rc);
	kill(R.daemon, SIGCONT);	/* gdb leaves it as it found it: stopped */
}

/*
 * The reload guarantee's other half (issue 11, item 5; issue 18's
 * batch): a flip that lands after the batch read the cgroup's policy id
 * and wrote the answer's address under it, before the batch ends. gdb
 * holds the daemon at learn_batch_close(), the address already in the
 * old id's map; `policy reload` flips meanwhile. The read after the
 * writes must catch it: the answer withheld (SERVFAIL), nothing of the
 * old rules under the new id. Checked against a daemon without that read
 * (learn_batch_close returning 0 at once): it released the answer.
 */
RTEST(reload_between_learn_and_release_withholds)
{
	char relay_log[PATH_MAX + 16], out[PATH_MAX + 16], pol[PATH_MAX];
	char gdb_log[PATH_MAX + 16], go[PATH_MAX + 16];
	unsigned long long cg_id;
	__u32 old_pid, new_pid;
	pid_t q, g, reload;
	const char *cg;
	bool found = false;
	char *w;
	int rc;

	if (!gdb_usable())
		return;

	snprintf(relay_log, sizeof(relay_log), "%s/relay.log", H.tmpdir);
	snprintf(out, sizeof(out), "%s/query.out", H.tmpdir);
	snprintf(gdb_log, sizeof(gdb_log), "%s/gdb.log", H.tmpdir);
	snprintf(go, sizeof(go), "%s/gdb.go", H.tmpdir);
	relay_start("127.0.0.1", 5303, "0.5", relay_log);
	snprintf(pol, sizeof(pol), "%s", write_policy("ktest-reload-mid",
		 "allow:\n  - allowed.test:8080?names=any\n"
		 "dns:\n  upstream: ['127.0.0.1:5303']\n"));
	cg = cg_make("reloadmid");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg, pol);
	cg_id = status_of(cg).id;
	old_pid = cg_policy_now(cg_id);

	/* the query reaches the relay; the daemon is stopped before the answer */
	q = query_then_stop(cg, "allowed.test", relay_log, out);

	/* gdb runs the daemon to the batch's end and holds it there */
	g = gdb_hold("learn_batch_close", gdb_log, go);
	learned(old_pid, W4_A, &found, NULL);
	cr_assert(found, "held at the batch's end, yet %s is not written under "
		  "the old id %u", W4_A, old_pid);

	/* the flip, while the batch is open: the new policy drops allowed.test */
	write_policy("ktest-reload-mid", "allow:\n  - v6only.test:8080?names=any\n"
		     "dns:\n  upstream: ['127.0.0.1:5303']\n");
	new_pid = reload_flip(pol, cg_id, old_pid, &reload);
	gdb_release(g, go);
	rc = wait_bg(reload, 10000);
	cr_assert_eq(rc, 0, "policy reload: exit %d", rc);
	wait_bg(q, 10000);

	w = read_text(out);
	cr_assert_not_null(w, "no answer");
	w[strcspn(w, "\n")] = 0;
	cr_assert_str_eq(w, "SERVFAIL", "an answer written under the old id "
			 "was released after the flip");
	free(w);
	learned(new_pid, W4_A, &found, NULL);
	cr_assert_not(found, "%s (allowed.test, removed by the reload) is "
		      "learned under the new id %u", W4_A, new_pid);
	expect_blocked(cg, "tcp", W4_A, 8080);
}

/*
 * The same guarantee when the answer fails half-way (review of issue
 * 18's batch): big.test's 61 addresses under max_addresses 2 create two
 * entries, then the quota refuses the third and the answer is withheld.
 * A writer that flipped the cgroup and purged the old id after the batch
 * read it, but before those writes (gdb holds the daemon at its first
 * learn_write() while `policy reload` does both), freed that id for the
 * next policy: the two entries must be taken back, as for an answer that
 * succeeded. The daemon used to skip its second read when no answer of
 * the batch had succeeded, leaving them under the freed id.
 */
RTEST(reload_before_failed_learn_leaves_nothing)
{
	char relay_log[PATH_MAX + 16], out[PATH_MAX + 16], pol[PATH_MAX];
	char gdb_log[PATH_MAX + 16], go[PATH_MAX + 16], addr[32];
	unsigned long long cg_id;
	__u32 old_pid;
	pid_t q, g, reload;
	int rc, left = 0;
	const char *cg;

	if (!gdb_usable())
		return;

	snprintf(relay_log, sizeof(relay_log), "%s/relay.log", H.tmpdir);
	snprintf(out, sizeof(out), "%s/query.out", H.tmpdir);
	snprintf(gdb_log, sizeof(gdb_log), "%s/gdb.log", H.tmpdir);
	snprintf(go, sizeof(go), "%s/gdb.go", H.tmpdir);
	relay_start("127.0.0.1", 5304, "0.5", relay_log);
	snprintf(pol, sizeof(pol), "%s", write_policy("ktest-reload-quota",
		 "allow:\n  - big.test:8080\n"
		 "dns:\n  upstream: ['127.0.0.1:5304']\n  max_addresses: 2\n"));
	cg = cg_make("reloadquota");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg, pol);
	cg_id = status_of(cg).id;
	old_pid = cg_policy_now(cg_id);

	q = query_then_stop(cg, "big.test", relay_log, out);
	g = gdb_hold("learn_write", gdb_log, go);

	/* flip and purge (attach's order) while the id is read, nothing written */
	write_policy("ktest-reload-quota", "allow:\n  - v6only.test:8080\n"
		     "dns:\n  upstream: ['127.0.0.1:5304']\n  max_addresses: 2\n");
	reload_flip(pol, cg_id, old_pid, &reload);
	kt_sleep_ms(300);	/* its purge of the old id, then it waits for us */
	gdb_release(g, go);
	rc = wait_bg(reload, 10000);
	cr_assert_eq(rc, 0, "policy reload: exit %d", rc);
	wait_bg(q, 10000);

	/* 198.51.100.7 and .100-.159: none may be left under the freed id */
	for (int i = 99; i < 160; i++) {
		bool found = false;

		snprintf(addr, sizeof(addr), "198.51.100.%d", i == 99 ? 7 : i);
		learned(old_pid, addr, &found, NULL);
		left += found;
	}
	cr_assert_eq(left, 0, "%d of big.test's addresses were left under the "
		     "old policy id %u after the flip (answer: %s)", left, old_pid,
		     read_text(out) ?: "");
}

/*
 * Issue 11, item 6: the control socket's peer check must judge the
 * process that connected, not whatever holds its pid now. A process in an
 * enforced cgroup connects and exits (its connection handed to the test);
 * a process outside every enforced cgroup is created with the same pid
 * (clone3 set_tid); only then does the (stopped) daemon look at the peer.
 * A live peer in an enforced cgroup is refused too; the test's own
 * process (outside) is served.
 */
static int connect_control(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", MOAT_CONTROL_SOCK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	return fd;
}

static json_object *call_on(int fd, const char *op)
{
	json_object *req = json_object_new_object(), *reply = NULL;
	int nfd = -1, err;

	json_object_object_add(req, "op", json_object_new_string(op));
	/* a refused peer may be answered and closed before it sends */
	control_send(fd, req, -1);
	json_object_put(req);
	err = control_recv(fd, &reply, &nfd);
	/*
	 * The daemon refuses without reading the request: when that request
	 * was already queued, its close resets the connection (a unix socket
	 * closed with unread data), and the reset comes before the error
	 * reply. Refused either way; only a reply without "error" is served.
	 */
	if (err == -ECONNRESET) {
		reply = json_object_new_object();
		json_object_object_add(reply, "error", json_object_new_string(
			"connection reset: refused before the request was read"));
		return reply;
	}
	cr_assert_eq(err, 0, "control_recv: %s", strerror(-err));
	cr_assert_not_null(reply, "no reply");
	if (nfd >= 0)
		close(nfd);
	return reply;
}

/* Fork a child into CG that connects to the control socket; its fd. */
static int connect_from(const char *cg, pid_t *ret_pid)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {}, procs[PATH_MAX + 16], b = 0;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	int sp[2], fd = -1;
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp), 0);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		FILE *f = fopen(procs, "w");
		int cfd;
		struct cmsghdr *c;

		if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f))
			_exit(2);
		cfd = connect_control();
		if (cfd < 0)
			_exit(3);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &cfd, sizeof(int));
		_exit(sendmsg(sp[1], &mh, 0) == 1 ? 0 : 4);
	}
	close(sp[1]);
	if (recvmsg(sp[0], &mh, MSG_CMSG_CLOEXEC) == 1 && CMSG_FIRSTHDR(&mh))
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	close(sp[0]);
	cr_assert_geq(fd, 0, "the child in %s did not connect", cg);
	*ret_pid = pid;
	return fd;
}

RTEST(control_peer_pid_reused)
{
	const char *cg = cg_dns("peer", "--allow allowed.test:8080?names=any");
	struct clone_args { __u64 flags, pidfd, child_tid, parent_tid, exit_signal,
			    stack, stack_size, tls, set_tid, set_tid_size, cgroup; } ca;
	json_object *reply, *x;
	pid_t a, b;
	int fd, st;

	/* a live peer in an enforced cgroup is refused, the test is served */
	fd = connect_from(cg, &a);
	reply = call_on(fd, "list");
	cr_assert(json_object_object_get_ex(reply, "error", &x),
		  "a peer in an enforced cgroup was served: %s",
		  json_object_to_json_string(reply));
	json_object_put(reply);
	close(fd);
	waitpid(a, &st, 0);
	reply = daemon_call("list");
	cr_assert_not(json_object_object_get_ex(reply, "error", &x),
		      "the test itself was refused: %s", json_object_to_json_string(reply));
	json_object_put(reply);

	/* the peer exits and its pid goes to a process outside: refused */
	cr_assert_eq(kill(R.daemon, SIGSTOP), 0);
	fd = connect_from(cg, &a);
	cr_assert_eq(waitpid(a, &st, 0), a);
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (__u64)(unsigned long)&a;
	ca.set_tid_size = 1;
	b = syscall(SYS_clone3, &ca, sizeof(ca));
	if (!b) {
		pause();
		_exit(0);
	}
	cr_assert_eq(b, a, "clone3 with set_tid %d: %s", a, strerror(errno));
	cr_assert_eq(kill(R.daemon, SIGCONT), 0);
	reply = call_on(fd, "list");
	kill(b, SIGKILL);
	waitpid(b, &st, 0);
	cr_assert(json_object_object_get_ex(reply, "error", &x),
		  "the daemon served a peer from an enforced cgroup after its pid "
		  "went to a process outside: %s", json_object_to_json_string(reply));
	json_object_put(reply);
	close(fd);
}

/*
 * dockerd's TCP side on 127.0.0.11:5354: one query per connection, sent
 * on to dnsmasq and answered DELAY seconds late (the daemon's TCP socket
 * to the upstream exists while it waits).
 */
static const char tcp_relay_py[] =
"import socket, sys, time\n"
"delay, log = float(sys.argv[1]), sys.argv[2]\n"
"l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
"l.bind(('127.0.0.11', 5354)); l.listen(8)\n"
"open(log, 'a').write('ready\\n')\n"
"def full(c, n):\n"
"    b = b''\n"
"    while len(b) < n:\n"
"        x = c.recv(n - len(b))\n"
"        if not x: raise OSError\n"
"        b += x\n"
"    return b\n"
"while True:\n"
"    c, _ = l.accept()\n"
"    try:\n"
"        q = full(c, int.from_bytes(full(c, 2), 'big'))\n"
"        open(log, 'a').write('query\\n')\n"
"        u = socket.create_connection(('" KT_DNS4 "', 53), timeout=3)\n"
"        u.sendall(len(q).to_bytes(2, 'big') + q)\n"
"        a = full(u, int.from_bytes(full(u, 2), 'big'))\n"
"        time.sleep(delay)\n"
"        c.sendall(len(a).to_bytes(2, 'big') + a)\n"
"    except OSError:\n"
"        pass\n"
"    c.close()\n";

/*
 * From 127.0.0.11:53, connect to the daemon's TCP socket toward
 * 127.0.0.11:53 while it exists (found in /proc/net/tcp within 3 s).
 */
static const char tcp_attacker_py[] =
"import socket, time, errno\n"
"end, port = time.time() + 3, None\n"
"while port is None and time.time() < end:\n"
"    for line in open('/proc/net/tcp').read().splitlines()[1:]:\n"
"        f = line.split()\n"
"        if f[1].startswith('0100007F:') and f[2] == '0B00007F:0035':\n"
"            port = int(f[1].split(':')[1], 16)\n"
"    time.sleep(0.01)\n"
"if port is None:\n"
"    print('NOSOCKET'); raise SystemExit\n"
"s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
"s.bind(('127.0.0.11', 53)); s.settimeout(2)\n"
"try:\n"
"    s.connect(('127.0.0.1', port)); print('CONNECTED')\n"
"except OSError as e:\n"
"    print(errno.errorcode.get(e.errno, str(e.errno)))\n";

/*
 * The sibling of docker_dns_flow_hijack for the daemon's TCP sockets to
 * an upstream (a TCP client's query, or a truncated answer's retry):
 * while one exists, a packet of the workload to it is refused at
 * connect(), so it can neither pre-empt its flow nor answer on it.
 */
RTEST(docker_dns_tcp_upstream_guarded)
{
	char log[PATH_MAX + 16], out[PATH_MAX + 16];
	const char *cg, *py;
	struct run_result r;
	pid_t q;

	snprintf(log, sizeof(log), "%s/tcp-relay.log", H.tmpdir);
	snprintf(out, sizeof(out), "%s/tcp-query.out", H.tmpdir);
	docker_nat_up();
	spawn_bg("exec nsenter --net=" KT_NS_CLIENT " python3 %s 1.5 %s",
		 tmp_file("tcp-relay.py", tcp_relay_py), log);
	for (long long end = kt_now_ms() + 5000;
	     !count_word(log, "ready") && kt_now_ms() < end; )
		kt_sleep_ms(20);
	cr_assert_eq(count_word(log, "ready"), 1, "the TCP relay did not start");
	cg = cg_dns_policy("tcphijack", "allow:\n"
					"  - allowed.test:8080?names=any\n"
					"dns:\n"
					"  upstream: [127.0.0.11]\n");
	py = tmp_file("tcp-attacker.py", tcp_attacker_py);
	q = spawn_bg("echo $$ > %s/cgroup.procs && exec nsenter --net=" KT_NS_CLIENT
		     " %s dns-query --tcp " KT_DNS4 " 53 allowed.test A > %s 2>&1",
		     cg, H.peer, out);
	run(&r, "echo $$ > %s/cgroup.procs && exec nsenter --net=" KT_NS_CLIENT
	    " python3 %s", cg, py);
	cr_assert_eq(r.status, 0, "tcp attacker: %s%s", r.out, r.err);
	cr_assert_str_eq(r.out, "EPERM\n",
			 "the workload's connect() to the daemon's TCP upstream socket");
	run_free(&r);
	wait_bg(q, 10000);
	{
		char *t = read_text(out);

		cr_assert(t && strstr(t, "NOERROR A=198.51.100.7"),
			  "the TCP query through Docker's DNS: %s", t ?: "");
		free(t);
	}
	cr_assert_eq(count_word(log, "query"), 1);
}
