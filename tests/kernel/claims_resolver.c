// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * README claims about the resolver daemon and the denial log that had no
 * test (issue 10): addresses that are never learned, upstream failover
 * and SERVFAIL, and the `log` and `events` commands (audit mode
 * included). The pinned layout version across `upgrade`: claims_upgrade.c.
 *
 * As in resolver.c: dnsmasq in the world is the upstream, the daemon gets
 * --dns-upstream 198.51.100.53 (never this machine's resolver), clients
 * run in the client netns. Names of these tests live in a hosts file of
 * their own in dnsmasq's hosts.d (reread on change), removed at teardown.
 *
 * Checked against mutated builds (each failed its test): a daemon that
 * learns every address, one that learns the host's own (fd00::2 here),
 * one that ignores ICMP errors from an upstream (the failover took the
 * 2 s timeout), one that answers SERVFAIL at the first timeout instead of
 * asking the next upstream, BPF without audit events, and BPF without
 * deny events (the `log` line of the refused connect never came).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <json-c/json.h>

#include "harness.h"
#include "moat_abi.h"

#define DAEMON_ARGS		"-v --dns-upstream " KT_DNS4
#define CLAIMS_HOSTS		KT_DNS_HOSTSDIR "/claims.hosts"
#define EVENT_LOG		"/run/moat-bpf/events.log"
#define POLL_MS			5000

static struct {
	pid_t daemon;
	char log[PATH_MAX];
	bool drop_up;		/* nft table in the world netns */
} C;

static void quiet(const char *fmt, const char *arg)
{
	struct run_result r;

	run(&r, fmt, arg);
	run_free(&r);
}

static void claims_resolver_setup(void)
{
	memset(&C, 0, sizeof(C));
	C.daemon = daemon_setup(DAEMON_ARGS, C.log);
}

static void claims_resolver_teardown(void)
{
	if (C.daemon > 0)
		daemon_stop(C.daemon);
	unlink(CLAIMS_HOSTS);
	if (C.drop_up)
		quiet("nsenter --net=%s nft delete table ip moat_claims_dns",
		      KT_NS_WORLD);
	daemon_forget_registrations();
	harness_teardown();
}

#define RCTEST(name)							\
	Test(claims_resolver, name, .init = claims_resolver_setup,	\
	     .fini = claims_resolver_teardown, .timeout = KT_TEST_TIMEOUT_S)

/* A non-loopback, non-link-local address of this host (the daemon's). */
static void host_address(char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;
	char v4[INET6_ADDRSTRLEN] = "";

	buf[0] = 0;
	cr_assert_eq(getifaddrs(&ifa), 0);
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET6) {
			struct in6_addr *a =
				&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;

			if (!buf[0] && !IN6_IS_ADDR_LOOPBACK(a) &&
			    !IN6_IS_ADDR_LINKLOCAL(a))
				inet_ntop(AF_INET6, a, buf, len);
		} else if (i->ifa_addr->sa_family == AF_INET) {
			struct in_addr *a =
				&((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			__u8 *b = (__u8 *)a;

			if (!v4[0] && b[0] != 127 && !(b[0] == 169 && b[1] == 254))
				inet_ntop(AF_INET, a, v4, sizeof(v4));
		}
	}
	freeifaddrs(ifa);
	if (!buf[0])
		snprintf(buf, len, "%s", v4);
	cr_assert(buf[0], "this host has no address but loopback and "
		  "link-local: the host-address case cannot be built");
}

/* Poll dnsmasq directly (no moat) until NAME TYPE is answered with WANT. */
static void upstream_wait(const char *name, const char *type,
			  const char *want)
{
	long long deadline = kt_now_ms() + POLL_MS;
	const char *w;

	do {
		w = dns_query(NULL, "", KT_DNS4, name, type);
		if (!strncmp(w, "NOERROR ", 8) && strstr(w, want))
			return;
		kt_sleep_ms(50);
	} while (kt_now_ms() < deadline);
	cr_assert_fail("dnsmasq answers '%s' for %s %s, want '%s'", w, name,
		       type, want);
}

/*
 * README: "Addresses the policy denies, loopback, link-local and the
 * host's own are never learned (DNS rebinding)." dnsmasq answers names
 * under claims.test with 127.0.0.1, ::1, 169.254.7.7, fe80::7, an address
 * of this host (the daemon's own netns), each next to 198.51.100.7 or
 * 2001:db8:1::7. The answers are relayed whole; only the world address
 * is learned, the daemon says why for the others, and 198.51.100.7:8080,
 * EPERM before the lookup, connects after it.
 */
RCTEST(local_addresses_never_learned)
{
	char own[INET6_ADDRSTRLEN], hosts[512], want[128];
	const char *own_type, *cg, *w;
	static const struct { const char *name, *type, *bad, *good; } rows[] = {
		{ "lo.claims.test", "A", "127.0.0.1", W4_A },
		{ "lo6.claims.test", "AAAA", "::1", W6_A },
		{ "ll.claims.test", "A", "169.254.7.7", W4_A },
		{ "ll6.claims.test", "AAAA", "fe80::7", W6_A },
	};
	__u32 pid;
	char *log;

	host_address(own, sizeof(own));
	own_type = strchr(own, ':') ? "AAAA" : "A";
	snprintf(hosts, sizeof(hosts),
		 "127.0.0.1 lo.claims.test\n" W4_A " lo.claims.test\n"
		 "::1 lo6.claims.test\n" W6_A " lo6.claims.test\n"
		 "169.254.7.7 ll.claims.test\n" W4_A " ll.claims.test\n"
		 "fe80::7 ll6.claims.test\n" W6_A " ll6.claims.test\n"
		 "%s own.claims.test\n%s own.claims.test\n", own,
		 strchr(own, ':') ? W6_A : W4_A);
	{
		char tmp[PATH_MAX];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%.*s/claims.hosts", PATH_MAX - 64,
			 H.tmpdir);
		f = fopen(tmp, "w");
		cr_assert_not_null(f);
		fputs(hosts, f);
		cr_assert_eq(fclose(f), 0);
		cr_assert_eq(rename(tmp, CLAIMS_HOSTS), 0, "%s", strerror(errno));
	}
	/* dnsmasq rereads hosts.d on change: wait until it serves the file */
	upstream_wait("own.claims.test", own_type, own);

	cg = cg_make("nolearn");
	moat_ok("attach %s --netns " KT_NS_CLIENT " --allow '*.claims.test:8080?names=any'",
		cg);
	pid = status_of(cg).policy_id;
	expect_blocked(cg, "tcp", W4_A, 8080);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		w = dns_query(cg, "", KT_DNS4, rows[i].name, rows[i].type);
		cr_assert(!strncmp(w, "NOERROR ", 8) &&
			  strstr(w, rows[i].bad) && strstr(w, rows[i].good),
			  "%s %s: the answer was not relayed whole: '%s'",
			  rows[i].name, rows[i].type, w);
		cr_assert_not(learned_in_pins(pid, rows[i].bad),
			      "%s was learned for %s", rows[i].bad, rows[i].name);
		cr_assert(learned_in_pins(pid, rows[i].good),
			  "%s was not learned for %s", rows[i].good,
			  rows[i].name);
	}
	w = dns_query(cg, "", KT_DNS4, "own.claims.test", own_type);
	cr_assert(strstr(w, own), "own.claims.test: '%s'", w);
	cr_assert_not(learned_in_pins(pid, own),
		      "the host's own address %s was learned", own);
	expect_allowed(cg, "tcp", W4_A, 8080);
	expect_allowed(cg, "tcp", W6_A, 8080);

	log = read_text(C.log);
	cr_assert_not_null(log);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(want, sizeof(want), "not learning %s for %s",
			 rows[i].bad, rows[i].name);
		cr_assert(strstr(log, want), "the daemon's log lacks '%s'", want);
	}
	snprintf(want, sizeof(want), "not learning %s for own.claims.test", own);
	cr_assert(strstr(log, want), "the daemon's log lacks '%s'", want);
	free(log);
	daemon_expect_alive(C.daemon, C.log);
}

/* ---- upstream failover and SERVFAIL ---- */

/*
 * README: "timeouts and ICMP errors move a query to the next upstream,
 * then SERVFAIL." Upstreams are dnsmasq's own address on other ports: in
 * the world netns an nftables rule drops UDP to port 5300 (no answer, no
 * ICMP: a timeout, 2 s in the daemon), and nothing listens on port 5301
 * (ICMP port unreachable at once). A policy listing [dropped, dnsmasq]
 * gets its answer after the timeout; [unreachable, dnsmasq] at once;
 * either alone gets SERVFAIL, and the log says why.
 */
RCTEST(upstream_failover_and_servfail)
{
	static const struct {
		const char *tag, *upstreams, *want, *why;
		int min_ms, max_ms;
	} rows[] = {
		{ "fo-timeout", "[\"" KT_DNS4 ":5300\", \"" KT_DNS4 "\"]",
		  "NOERROR A=198.51.100.7", NULL, 1800, 3900 },
		{ "fo-icmp", "[\"" KT_DNS4 ":5301\", \"" KT_DNS4 "\"]",
		  "NOERROR A=198.51.100.7", NULL, 0, 1000 },
		{ "sf-timeout", "[\"" KT_DNS4 ":5300\"]", "SERVFAIL",
		  "no upstream answered", 1800, 3900 },
		{ "sf-icmp", "[\"" KT_DNS4 ":5301\"]", "SERVFAIL",
		  "Connection refused", 0, 1000 },
	};
	struct run_result r;

	C.drop_up = true;
	run(&r, "nsenter --net=" KT_NS_WORLD " nft -f - <<'EOF'\n"
	    "table ip moat_claims_dns {\n"
	    " chain in {\n"
	    "  type filter hook input priority 0;\n"
	    "  ip daddr " KT_DNS4 " udp dport 5300 counter drop\n"
	    " }\n"
	    "}\n"
	    "EOF\n");
	cr_assert_eq(r.status, 0, "nft: %s%s", r.out, r.err);
	run_free(&r);
	/* the fixture: 5300 is silent, 5301 refuses (no moat involved) */
	cr_assert_str_eq(dns_query_x(&(struct client_opts){ .netns = KT_NS_CLIENT },
				     "", KT_DNS4, 5300, "allowed.test", "A"),
			 "TIMEOUT");
	cr_assert_str_eq(dns_query_x(&(struct client_opts){ .netns = KT_NS_CLIENT },
				     "--udp-connect", KT_DNS4, 5301,
				     "allowed.test", "A"), "ERR ECONNREFUSED");

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char yaml[256], name[64];
		const char *cg, *w;
		long long t0, ms;
		off_t from = file_size(KT_DNS_LOG);

		snprintf(name, sizeof(name), "%s-%d", rows[i].tag, (int)getpid());
		snprintf(yaml, sizeof(yaml), "allow:\n  - allowed.test:8080?names=any\n"
			 "dns:\n  upstream: %s\n", rows[i].upstreams);
		cg = cg_make(name);
		moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg,
			write_policy(name, yaml));
		t0 = kt_now_ms();
		w = dns_query(cg, "", KT_DNS4, "allowed.test", "A");
		ms = kt_now_ms() - t0;
		cr_assert_str_eq(w, rows[i].want, "%s: got '%s' after %lld ms",
				 rows[i].tag, w, ms);
		cr_assert(ms >= rows[i].min_ms && ms <= rows[i].max_ms,
			  "%s: answered after %lld ms, want %d-%d", rows[i].tag,
			  ms, rows[i].min_ms, rows[i].max_ms);
		cr_assert(dns_log_has_query(from, "allowed.test") == !rows[i].why,
			  "%s: dnsmasq %s the query", rows[i].tag,
			  rows[i].why ? "got" : "never got");
		if (rows[i].why) {
			char want[256];
			long long deadline = kt_now_ms() + POLL_MS;

			snprintf(want, sizeof(want), "ERROR cg=%s dns allowed.test: "
				 "%s (policy %s)", cg_rel(cg), rows[i].why, name);
			for (;;) {
				moat(&r, "log --cgroup %s", cg);
				if (strstr(r.out, want) || kt_now_ms() > deadline)
					break;
				run_free(&r);
				kt_sleep_ms(100);
			}
			cr_assert(strstr(r.out, want), "%s: log lacks '%s': %s",
				  rows[i].tag, want, r.out);
			run_free(&r);
		}
	}
	daemon_expect_alive(C.daemon, C.log);
}

/* ---- the denial log: `log` and `events` ---- */

/* Poll `moat-bpf ARGS` until its stdout has WANT; that stdout (malloc'd). */
static char *moat_until(const char *args, const char *want)
{
	long long deadline = kt_now_ms() + POLL_MS;
	struct run_result r;
	char *out;

	for (;;) {
		moat(&r, "%s", args);
		if ((r.status == 0 && strstr(r.out, want)) ||
		    kt_now_ms() > deadline)
			break;
		run_free(&r);
		kt_sleep_ms(100);
	}
	cr_assert(strstr(r.out, want), "moat-bpf %s (exit %d): no '%s' in:\n"
		  "%s%s", args, r.status, want, r.out, r.err);
	out = r.out;
	r.out = NULL;
	run_free(&r);
	return out;
}

/*
 * README, Denial log: a record for every deny and every would-deny in
 * audit mode; the daemon adds the cgroup path and policy and merges its
 * DNS events into /run/moat-bpf/events.log; `moat-bpf log [--json]
 * [--cgroup CGROUP]` prints it as
 *   TIME DENY  COMM[PID] cg=PATH tcp ADDR:PORT: REASON (policy NAME)
 *   TIME DENY  cg=PATH dns NAME: no rule allows it (policy NAME)
 * and `moat-bpf events` reads the kernel's ring directly when no daemon
 * runs.
 */
RCTEST(log_and_events_commands)
{
	char name[64], aname[64], oname[64], want[512], idtext[PATH_MAX + 32];
	const char *cg, *acg, *ocg;
	char *out, evfile[PATH_MAX];
	json_object *o = NULL;
	struct run_result r;
	pid_t ev;

	snprintf(name, sizeof(name), "log-%d", (int)getpid());
	snprintf(aname, sizeof(aname), "audit-%d", (int)getpid());
	snprintf(oname, sizeof(oname), "other-%d", (int)getpid());
	cg = cg_make(name);
	acg = cg_make(aname);
	ocg = cg_make(oname);
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg,
		write_policy(name, "allow:\n  - tcp://" W4_A ":80\n"
				   "  - allowed.test:8080?names=any\n"));
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", acg,
		write_policy(aname, "mode: audit\nallow:\n  - tcp://" W4_A
				    ":80\n"));
	moat_ok("attach %s --netns " KT_NS_CLIENT " --allow tcp://" W4_A ":80",
		ocg);

	expect_blocked(cg, "tcp", W4_B, 80);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "blocked.test", "A"),
			 "REFUSED");
	expect_allowed(acg, "tcp", W4_B, 443);	/* audit: let through */
	expect_blocked(ocg, "tcp", W4_C, 80);

	/* the text form, per cgroup */
	snprintf(want, sizeof(want), "] cg=%s tcp " W4_B ":80: not in policy "
		 "(policy %s)\n", cg_rel(cg), name);
	snprintf(idtext, sizeof(idtext), "log --cgroup %s", cg);
	out = moat_until(idtext, want);
	cr_assert(strstr(out, " DENY  moat-test-peer["), "%s", out);
	snprintf(want, sizeof(want), " DENY  cg=%s dns blocked.test: no rule "
		 "allows it (policy %s)\n", cg_rel(cg), name);
	cr_assert(strstr(out, want), "no '%s' in: %s", want, out);
	cr_assert_null(strstr(out, W4_C), "another cgroup's record: %s", out);
	cr_assert_null(strstr(out, "AUDIT"), "another cgroup's record: %s", out);
	free(out);

	/* audit mode: a would-deny is logged as AUDIT */
	snprintf(want, sizeof(want), " AUDIT moat-test-peer[");
	snprintf(idtext, sizeof(idtext), "log --cgroup %s", acg);
	out = moat_until(idtext, want);
	snprintf(want, sizeof(want), "] cg=%s tcp " W4_B ":443: not in policy "
		 "(policy %s)\n", cg_rel(acg), aname);
	cr_assert(strstr(out, want), "no '%s' in: %s", want, out);
	cr_assert_null(strstr(out, "DENY"), "%s", out);
	free(out);

	/* --json: the record's fields */
	moat(&r, "log --json --cgroup %s", cg);
	cr_assert_eq(r.status, 0, "%s", r.err);
	for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
		json_object *x = json_tokener_parse(line), *v;

		cr_assert_not_null(x, "not JSON: %s", line);
		if (json_object_object_get_ex(x, "addr", &v) &&
		    !strcmp(json_object_get_string(v), W4_B)) {
			o = x;
			break;
		}
		json_object_put(x);
	}
	run_free(&r);
	cr_assert_not_null(o, "log --json has no record for " W4_B);
#define FIELD(k) (json_object_get_string(json_object_object_get(o, k)) ?: "")
	cr_assert_str_eq(FIELD("kind"), "connect");
	cr_assert_str_eq(FIELD("verdict"), "deny");
	cr_assert_str_eq(FIELD("reason"), "not in policy");
	cr_assert_str_eq(FIELD("proto"), "tcp");
	cr_assert_str_eq(FIELD("port"), "80");
	cr_assert_str_eq(FIELD("comm"), "moat-test-peer");
	cr_assert_str_eq(FIELD("cgroup"), cg_rel(cg));
	cr_assert_str_eq(FIELD("policy"), name);
#undef FIELD
	json_object_put(o);

	/* no daemon: `events` reads the ring itself */
	cr_assert_eq(daemon_stop(C.daemon), 0);
	C.daemon = 0;
	snprintf(evfile, sizeof(evfile), "%.*s/events.out", PATH_MAX - 64,
		 H.tmpdir);
	ev = spawn_bg("exec \"$MOAT_BIN\" events > %s 2>&1", evfile);
	kt_sleep_ms(500);
	expect_blocked(cg, "tcp", W4_B, 8080);
	snprintf(want, sizeof(want), "] cg=#%llu tcp " W4_B ":8080: not in "
		 "policy\n", status_of(cg).id);
	for (long long deadline = kt_now_ms() + POLL_MS;;) {
		out = read_text(evfile);
		if ((out && strstr(out, want)) || kt_now_ms() > deadline)
			break;
		free(out);
		kt_sleep_ms(100);
	}
	cr_assert(out && strstr(out, want) && strstr(out, " DENY  moat-test-peer["),
		  "events printed no '%s': %s", want, out ? out : "(nothing)");
	free(out);
	kill(ev, SIGTERM);
	cr_assert_eq(wait_bg(ev, 5000), 0, "events did not stop on SIGTERM");
}
