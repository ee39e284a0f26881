// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * README claims about verdicts that had no test (issue 10): an enforced
 * cgroup with no policy entry, the built-in cloud-metadata deny, the
 * backstop behind a real DNAT and `loopback: deny` inside a netns (the
 * container checks are in claims_container.c).
 *
 * The metadata tests add 169.254.169.254 and fd00:ec2::254 to the test
 * world's namespace only (and a route to each in the client namespace),
 * serve them there, and remove it all at teardown. moat-test-peer
 * refuses those addresses (they are not test networks), so a small
 * Python client, run inside the client netns only, tries them.
 *
 * Checked against mutated builds (each failed its test): BPF treating a
 * missing policy entry as an allow, no built-in deny for 169.254.169.254,
 * none for fd00:ec2::254, a backstop whose connect() memory ignores the
 * address (the DNATed SYN got through: OK), and loopback: deny ignored
 * outside the host netns.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "moat_abi.h"

#define META4			"169.254.169.254"
#define META6			"fd00:ec2::254"
#define NS_WORLD_NAME		KT_PREFIX "-world"
#define NS_CLIENT_NAME		KT_PREFIX "-client"
#define CGROUPS_PIN		"/sys/fs/bpf/moat/maps/moat_cgroups"
#define POLICIES_PIN		"/sys/fs/bpf/moat/maps/moat_policies"

static struct {
	bool meta_up;		/* the metadata addresses are in the world */
	bool nat_up;		/* the DNAT table is in the client netns */
	char meta_log[PATH_MAX];
	char pyclient[PATH_MAX];
} P;

static void sh_quiet(const char *cmd)
{
	struct run_result r;

	run(&r, "%s", cmd);
	run_free(&r);
}

static void claims_policy_setup(void)
{
	memset(&P, 0, sizeof(P));
	harness_setup();
}

static void claims_policy_teardown(void)
{
	harness_teardown();	/* stops the metadata server first */
	if (P.nat_up)
		sh_quiet("nsenter --net=" KT_NS_CLIENT
			 " nft delete table ip moat_claims 2>&1");
	if (P.meta_up) {
		sh_quiet("ip -n " NS_CLIENT_NAME " route del " META4 "/32 2>&1;"
			 " ip -n " NS_CLIENT_NAME " -6 route del " META6
			 "/128 2>&1;"
			 " ip -n " NS_WORLD_NAME " addr del " META4 "/32 dev lo"
			 " 2>&1; ip -n " NS_WORLD_NAME " addr del " META6
			 "/128 dev lo 2>&1");
	}
}

#define PTEST(name)							\
	Test(claims_policy, name, .init = claims_policy_setup,		\
	     .fini = claims_policy_teardown, .timeout = KT_TEST_TIMEOUT_S)

/* ---- an enforced cgroup with no policy entry ---- */

static unsigned long long cg_id(const char *cg)
{
	struct stat st;

	cr_assert_eq(stat(cg, &st), 0, "stat %s: %s", cg, strerror(errno));
	return (unsigned long long)st.st_ino;
}

/* "hex b0 b1 ... b7" of a little-endian __u64 (bpftool's key syntax). */
static const char *key_hex(unsigned long long v)
{
	static char buf[64];
	size_t o = 0;

	o += (size_t)snprintf(buf, sizeof(buf), "hex");
	for (int i = 0; i < 8; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %02llx",
				      (v >> (8 * i)) & 0xff);
	return buf;
}

struct lo_srv {
	char log[PATH_MAX];
	int port4, port6;
};

/* A TCP echo server on 127.0.0.1 and [::1] (ports the kernel picks). */
static void lo_serve(struct lo_srv *s, const char *netns, const char *tag)
{
	char ready[PATH_MAX + 8], *text, *p;

	snprintf(s->log, sizeof(s->log), "%.*s/lo-%s.log", PATH_MAX - 64,
		 H.tmpdir, tag);
	snprintf(ready, sizeof(ready), "%s.ready", s->log);
	spawn_bg("exec '%s' serve --log '%s' --netns %s --tcp 127.0.0.1:0 "
		 "--tcp '[::1]:0'", H.peer, s->log, netns);
	cr_assert(wait_file(ready, 5000), "loopback server never got ready");
	text = read_text(ready);
	cr_assert_not_null(text);
	p = strstr(text, "tcp 127.0.0.1:");
	s->port4 = p ? atoi(p + 14) : 0;
	p = strstr(text, "tcp [::1]:");
	s->port6 = p ? atoi(p + 10) : 0;
	free(text);
	cr_assert(s->port4 > 0 && s->port6 > 0, "no ports in %s", ready);
}

/*
 * README, matching 1: "An enforced cgroup with no policy found denies
 * everything (fail-closed)." The cgroup keeps its programs; its entry in
 * moat_cgroups is deleted (no registered ancestor either), then pointed
 * at a policy slot that is free. Every kind of traffic the policy allowed
 * before, and loopback in its own netns (allowed by default), is EPERM,
 * and nothing reaches the servers; restoring the entry restores it.
 */
PTEST(no_policy_entry_denies_everything)
{
	const char *cg = cg_make("nopol");
	unsigned long long id = cg_id(cg);
	struct run_result r;
	struct lo_srv s;
	char val[64];
	off_t before;

	lo_serve(&s, KT_NS_CLIENT, "nopol");
	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow udp://" W4_A
		":8080 --allow 'tcp://[" W6_A "]:80'", cg);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_allowed(cg, "udp", W4_A, 8080);
	expect_allowed(cg, "tcp", W6_A, 80);
	expect_allowed(cg, "tcp", "127.0.0.1", s.port4);

	/* the entry's value, to put back (policy id, flags) */
	run(&r, "bpftool -j map lookup pinned /sys/fs/bpf/moat/maps/moat_cgroups "
	    "key %s | jq -r '.value | join(\" \")'", key_hex(id));
	cr_assert_eq(r.status, 0, "lookup: %s%s", r.out, r.err);
	snprintf(val, sizeof(val), "%.*s", (int)strcspn(r.out, "\n"), r.out);
	run_free(&r);

	before = file_size(s.log);
	for (int round = 0; round < 2; round++) {
		if (round == 0)
			run(&r, "bpftool map delete pinned /sys/fs/bpf/moat/maps/"
			    "moat_cgroups key %s", key_hex(id));
		else	/* policy id 4095: a slot no attach here filled */
			run(&r, "bpftool map update pinned /sys/fs/bpf/moat/maps/"
			    "moat_cgroups key %s value hex ff 0f 00 00 00 00 00 00",
			    key_hex(id));
		cr_assert_eq(r.status, 0, "round %d: %s%s", round, r.out, r.err);
		run_free(&r);
		expect_blocked(cg, "tcp", W4_A, 80);
		expect_blocked(cg, "udp", W4_A, 8080);
		expect_blocked(cg, "udp-connect", W4_A, 8080);
		expect_blocked(cg, "tcp", W6_A, 80);
		expect_blocked(cg, "tcp", "127.0.0.1", s.port4);
		expect_blocked(cg, "tcp", "::1", s.port6);
	}
	cr_assert_not(log_has(s.log, before, NULL, "127.0.0.1", s.port4),
		      "EPERM, yet the loopback server saw a connection");
	cr_assert_not(log_has(s.log, before, NULL, "::1", s.port6),
		      "EPERM, yet the loopback server saw a connection");
	run(&r, "bpftool map update pinned /sys/fs/bpf/moat/maps/moat_cgroups "
	    "key %s value hex %s", key_hex(id), val);
	cr_assert_eq(r.status, 0, "restore: %s%s", r.out, r.err);
	run_free(&r);
	expect_allowed(cg, "tcp", W4_A, 80);
}

/* The entry of cgroup ID in moat_cgroups, or (SET) put V there. */
static void cg_entry(unsigned long long id, struct moat_cgroup *v, bool set)
{
	int fd = bpf_obj_get(CGROUPS_PIN), err;

	cr_assert_geq(fd, 0, "cannot open %s: %s", CGROUPS_PIN, strerror(errno));
	err = set ? bpf_map_update_elem(fd, &id, v, BPF_EXIST) :
		    bpf_map_lookup_elem(fd, &id, v);
	cr_assert_eq(err, 0, "moat_cgroups %s: %s", set ? "update" : "lookup",
		     strerror(errno));
	close(fd);
}

/*
 * Issue 18: the policy's mode and flags ride in the cgroup's entry, so
 * that the hooks read one structure where they read two. attach writes
 * them with the id; the hooks judge by them (an entry saying audit lets
 * what the policy denies through, counted); an entry without them (mode
 * 0, as a writer before the copy left it) sends the hooks to the policy
 * slot, which decides as before.
 */
PTEST(cgroup_entry_carries_policy_mode)
{
	const char *cg = cg_make("copy");
	unsigned long long id = cg_id(cg);
	struct moat_cgroup e, m;
	struct moat_policy p;
	int fd;

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	cg_entry(id, &e, false);
	fd = bpf_obj_get(POLICIES_PIN);
	cr_assert_geq(fd, 0, "cannot open %s: %s", POLICIES_PIN, strerror(errno));
	cr_assert_eq(bpf_map_lookup_elem(fd, &e.policy_id, &p), 0, "policy %u: %s",
		     e.policy_id, strerror(errno));
	close(fd);
	cr_assert_eq(p.mode, MOAT_MODE_ENFORCE);
	cr_assert_eq(e.mode, p.mode, "entry mode %u, policy %u", e.mode, p.mode);
	cr_assert_eq(e.policy_flags, p.flags, "entry flags %#x, policy %#x",
		     e.policy_flags, p.flags);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_B, 80);

	m = e;
	m.mode = MOAT_MODE_AUDIT;
	cg_entry(id, &m, true);
	expect_allowed(cg, "tcp", W4_B, 80);	/* judged by the copy */

	m.mode = 0;
	m.policy_flags = 0;
	cg_entry(id, &m, true);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_B, 80);	/* by the policy slot */
	cg_entry(id, &e, true);
	expect_blocked(cg, "tcp", W4_B, 80);
}

/* ---- the built-in metadata deny ---- */

static void meta_world_up(void)
{
	struct run_result r;
	char ready[PATH_MAX + 8];
	FILE *f;

	P.meta_up = true;
	run(&r, "ip -n " NS_WORLD_NAME " addr add " META4 "/32 dev lo && "
	    "ip -n " NS_WORLD_NAME " addr add " META6 "/128 dev lo nodad && "
	    "ip -n " NS_CLIENT_NAME " route add " META4 "/32 via 198.18.0.2 "
	    "dev veth0 && ip -n " NS_CLIENT_NAME " -6 route add " META6
	    "/128 via 2001:db8:ff::2 dev veth0");
	cr_assert_eq(r.status, 0, "adding the metadata addresses: %s%s", r.out,
		     r.err);
	run_free(&r);
	snprintf(P.meta_log, sizeof(P.meta_log), "%.*s/meta.log",
		 PATH_MAX - 64, H.tmpdir);
	snprintf(ready, sizeof(ready), "%s.ready", P.meta_log);
	spawn_bg("exec '%s' serve --log '%s' --netns " KT_NS_WORLD
		 " --tcp " META4 ":80 --udp " META4 ":80 --tcp '[" META6
		 "]:80' --udp '[" META6 "]:80'", H.peer, P.meta_log);
	cr_assert(wait_file(ready, 5000), "the metadata server never got ready");

	/* prints OK, EPERM, TIMEOUT or ERR <name>, like moat-test-peer */
	snprintf(P.pyclient, sizeof(P.pyclient), "%.*s/client.py",
		 PATH_MAX - 64, H.tmpdir);
	f = fopen(P.pyclient, "w");
	cr_assert_not_null(f);
	fputs("import errno, socket, sys\n"
	      "proto, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
	      "assert addr in ('" META4 "', '" META6 "')\n"
	      "fam = socket.AF_INET6 if ':' in addr else socket.AF_INET\n"
	      "s = socket.socket(fam, socket.SOCK_STREAM if proto == 'tcp' "
	      "else socket.SOCK_DGRAM)\n"
	      "s.settimeout(2)\n"
	      "try:\n"
	      "    if proto == 'tcp':\n"
	      "        s.connect((addr, port)); s.sendall(b'ping\\n')\n"
	      "    else:\n"
	      "        s.sendto(b'ping\\n', (addr, port))\n"
	      "    s.recv(64)\n"
	      "    print('OK')\n"
	      "except PermissionError:\n"
	      "    print('EPERM')\n"
	      "except socket.timeout:\n"
	      "    print('TIMEOUT')\n"
	      "except OSError as e:\n"
	      "    print('ERR', errno.errorcode.get(e.errno, e.errno))\n", f);
	cr_assert_eq(fclose(f), 0);
}

/* The Python client in cgroup CG (NULL: none) inside the client netns. */
static const char *meta_client(const char *cg, const char *proto,
			       const char *addr)
{
	static char words[4][64];
	static int next;
	char *w = words[next++ % 4];
	struct run_result r;

	run(&r, "%s%s%sexec nsenter --net=" KT_NS_CLIENT " python3 %s %s %s 80",
	    cg ? "echo $$ > " : "", cg ? cg : "", cg ? "/cgroup.procs && " : "",
	    P.pyclient, proto, addr);
	snprintf(w, 64, "%.*s", (int)strcspn(r.out, "\n"), r.out);
	if (!w[0])
		snprintf(w, 64, "BAD exit %d: %.40s", r.status, r.err);
	run_free(&r);
	return w;
}

static void expect_meta(const char *cg, const char *proto, const char *addr,
			const char *want, int line)
{
	off_t before = file_size(P.meta_log);
	const char *w = meta_client(cg, proto, addr);

	cr_assert_str_eq(w, want, "line %d: %s to %s port 80 from %s: %s, "
			 "want %s", line, proto, addr, cg ? cg_rel(cg) : "no cgroup",
			 w, want);
	cr_assert(log_has(P.meta_log, before, proto, addr, 80) ==
		  !strcmp(want, "OK"), "line %d: %s to %s: %s, yet the "
		  "metadata server %s it", line, proto, addr, w,
		  strcmp(want, "OK") ? "logged" : "did not log");
}
#define META_OK(cg, proto, addr)	expect_meta(cg, proto, addr, "OK", __LINE__)
#define META_DENIED(cg, proto, addr)	expect_meta(cg, proto, addr, "EPERM", __LINE__)

/*
 * README, matching 4: "A built-in deny covers cloud metadata
 * (169.254.169.254, fd00:ec2::254); only an allow rule naming that exact
 * address overrides it." The world serves both addresses (reachable
 * unenforced: the control). `--allow 0.0.0.0/0 --allow ::/0`, and the
 * prefixes around them, leave them denied while other hosts work; an
 * allow naming the exact address (with a port) opens just that.
 */
PTEST(metadata_builtin_deny)
{
	const char *all = cg_make("meta-all");
	const char *near = cg_make("meta-near");
	const char *exact = cg_make("meta-exact");

	meta_world_up();
	META_OK(NULL, "tcp", META4);
	META_OK(NULL, "tcp", META6);
	META_OK(NULL, "udp", META4);

	moat_ok("attach %s --allow 0.0.0.0/0 --allow '[::]/0'", all);
	expect_allowed(all, "tcp", W4_A, 80);
	expect_allowed(all, "tcp", W6_A, 80);
	META_DENIED(all, "tcp", META4);
	META_DENIED(all, "udp", META4);
	META_DENIED(all, "tcp", META6);
	META_DENIED(all, "udp", META6);

	moat_ok("attach %s --allow 169.254.0.0/16 --allow 169.254.169.254/31 "
		"--allow '[fd00:ec2::]/64' --allow '[fd00:ec2::254]/127'", near);
	META_DENIED(near, "tcp", META4);
	META_DENIED(near, "tcp", META6);

	moat_ok("attach %s --allow tcp://" META4 ":80 --allow 'tcp://[" META6
		"]:80'", exact);
	META_OK(exact, "tcp", META4);
	META_OK(exact, "tcp", META6);
	/* what the rules do not name stays denied */
	META_DENIED(exact, "udp", META4);
	META_DENIED(exact, "udp", META6);
	expect_blocked(exact, "tcp", W4_A, 80);
}

/* ---- the backstop behind a real DNAT ---- */

/*
 * README, backstop: "A destination rewritten after `connect()` (DNAT in
 * the workload's netns, ...) is judged at the address the packet really
 * goes to: allow the backends." An nftables DNAT in the client netns
 * sends 198.51.100.7:80 (tcp) and :8080 (udp) to 198.51.100.8. With only
 * .7 allowed, connect() and sendto() to .7 pass the socket hooks, but
 * the packets to .8 are dropped at egress: TCP times out, the datagram
 * fails with EPERM, and .8 logs nothing. With the backend .8 allowed too
 * the same calls reach .8.
 */
PTEST(backstop_judges_real_dnat)
{
	const char *cg = cg_make("dnat");
	struct run_result r;
	const char *w;

	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow udp://" W4_A
		":8080", cg);
	expect_allowed(cg, "tcp", W4_A, 80);	/* before the DNAT */

	P.nat_up = true;
	run(&r, "nsenter --net=" KT_NS_CLIENT " nft -f - <<'EOF'\n"
	    "table ip moat_claims {\n"
	    " chain out {\n"
	    "  type nat hook output priority -100;\n"
	    "  ip daddr " W4_A " tcp dport 80 dnat to " W4_B ":80\n"
	    "  ip daddr " W4_A " udp dport 8080 dnat to " W4_B ":8080\n"
	    " }\n"
	    "}\n"
	    "EOF\n");
	cr_assert_eq(r.status, 0, "nft: %s%s", r.out, r.err);
	run_free(&r);
	/* unenforced, the DNAT works: .7 is answered by .8 */
	w = client(NULL, "tcp", W4_A, 80);
	cr_assert_str_eq(w, "OK");
	cr_assert(world_log_has_proto("tcp", W4_B, 80), "the DNAT did not "
		  "send the unenforced connection to " W4_B);

	H.world_log_start = file_size(KT_WORLD_LOG);
	w = client(cg, "tcp", W4_A, 80);
	cr_assert_str_eq(w, "TIMEOUT", "tcp to " W4_A ":80 DNATed to " W4_B
			 ": %s", w);
	w = client(cg, "udp", W4_A, 8080);
	cr_assert_str_eq(w, "EPERM", "udp to " W4_A ":8080 DNATed to " W4_B
			 ": %s", w);
	/* connect() to .7 is allowed; the datagram to .8 fails at send */
	w = client(cg, "udp-connect", W4_A, 8080);
	cr_assert_str_eq(w, "ERR EPERM", "connected udp DNATed to " W4_B ": %s",
			 w);
	/* the sentinel: a datagram allowed after the attempts */
	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow udp://" W4_A
		":8080 --allow udp://" W4_C ":8080", cg);
	expect_allowed(cg, "udp", W4_C, 8080);
	cr_assert_not(world_log_has(W4_B, 80), "a DNATed SYN reached " W4_B);
	cr_assert_not(world_log_has(W4_B, 8080), "a DNATed datagram reached "
		      W4_B);

	/* allow the backend: the same calls now get there */
	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow udp://" W4_A
		":8080 --allow tcp://" W4_B ":80 --allow udp://" W4_B ":8080",
		cg);
	cr_assert_str_eq(client(cg, "tcp", W4_A, 80), "OK");
	cr_assert_str_eq(client(cg, "udp", W4_A, 8080), "OK");
	cr_assert(world_log_has_proto("tcp", W4_B, 80));
	cr_assert(world_log_has_proto("udp", W4_B, 8080));
}

/* ---- loopback: deny inside a netns ---- */

/*
 * README, matching 3: loopback is allowed by default in a netns that is
 * not the host's; "`loopback: deny` leaves it to the rules everywhere".
 * In the client netns, with loopback: deny, 127.0.0.1 and ::1 are EPERM
 * and the loopback server sees nothing; a rule naming 127.0.0.1:PORT
 * opens exactly that (IPv4) port.
 */
PTEST(loopback_deny_in_netns)
{
	const char *cg = cg_make("lo-deny");
	struct lo_srv s;
	char yaml[512];
	off_t before;

	lo_serve(&s, KT_NS_CLIENT, "deny");
	/* the default in this netns: allowed (the control) */
	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	expect_allowed(cg, "tcp", "127.0.0.1", s.port4);

	moat_ok("attach %s --policy %s", cg,
		write_policy("lo-deny", "loopback: deny\n"
					"allow:\n"
					"  - tcp://" W4_A ":80\n"));
	before = file_size(s.log);
	expect_blocked(cg, "tcp", "127.0.0.1", s.port4);
	expect_blocked(cg, "tcp", "::1", s.port6);
	expect_blocked(cg, "udp", "127.0.0.1", s.port4);
	expect_allowed(cg, "tcp", W4_A, 80);
	cr_assert_not(log_has(s.log, before, NULL, "127.0.0.1", s.port4));
	cr_assert_not(log_has(s.log, before, NULL, "::1", s.port6));

	snprintf(yaml, sizeof(yaml), "loopback: deny\nallow:\n"
		 "  - tcp://127.0.0.1:%d\n", s.port4);
	moat_ok("attach %s --policy %s", cg, write_policy("lo-deny-rule", yaml));
	before = file_size(s.log);
	expect_allowed(cg, "tcp", "127.0.0.1", s.port4);
	cr_assert(log_has(s.log, before, "tcp", "127.0.0.1", s.port4));
	expect_blocked(cg, "tcp", "::1", s.port6);
	expect_blocked(cg, "tcp", W4_A, 80);
}
