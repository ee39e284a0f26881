/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * End-to-end test harness: real cgroups, the real CLI, real sockets in the
 * private network of tools/testnet.sh. Run as root with `build/tests/kernel
 * -j1` (make kernel-test). A machine that cannot run them (not root, no
 * cgroup2 mount, no bpffs, binaries missing) FAILS every test: never a
 * silent pass or skip.
 *
 * Network rule: the tests only ever reach loopback and the hosts of the
 * test network (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 inside the
 * namespaces testnet.sh creates).
 *
 * Environment: MOAT_BIN and MOAT_PEER (absolute paths of the CLI and of
 * moat-test-peer), MOAT_SRC (repository root; default: derived from the
 * test binary's path, else the current directory).
 */
#ifndef MOAT_KTEST_HARNESS_H
#define MOAT_KTEST_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <criterion/criterion.h>

#define KT_PREFIX		"moat-t"
#define KT_NS_CLIENT		"/run/netns/" KT_PREFIX "-client"
#define KT_NS_WORLD		"/run/netns/" KT_PREFIX "-world"
#define KT_WORLD_LOG		"/run/moat-test/" KT_PREFIX "/world.log"
#define KT_CG_DIR		"moat-test"	/* under the cgroup2 mount */
#define KT_CMD_TIMEOUT_MS	60000
#define KT_TEST_TIMEOUT_S	120

/* World hosts (tools/testnet.sh). */
#define W4_A			"198.51.100.7"
#define W4_B			"198.51.100.8"
#define W4_C			"203.0.113.9"
#define W6_A			"2001:db8:1::7"
#define W6_B			"2001:db8:1::8"

/* Every kernel test: clean state before and after. */
#define KTEST(suite, name)						\
	Test(suite, name, .init = harness_setup, .fini = harness_teardown, \
	     .timeout = KT_TEST_TIMEOUT_S)

struct harness {
	char root[PATH_MAX];		/* repository root */
	char moat[PATH_MAX];		/* the CLI */
	char peer[PATH_MAX];		/* moat-test-peer */
	char cg2[1024];		/* cgroup2 mount point */
	char tmpdir[256];		/* per-test scratch directory */
	off_t world_log_start;		/* world.log size when the test began */
};

extern struct harness H;

void harness_setup(void);
void harness_teardown(void);

/* ---- commands ---- */

struct run_result {
	int status;		/* exit code; 128 + signal; -1: not run */
	char *out;		/* stdout, NUL-terminated, never NULL */
	char *err;		/* stderr, likewise */
};

/* Run `sh -c CMD` (printf-style), capturing both streams. */
int run(struct run_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Run the CLI with ARGS appended: "$MOAT_BIN ARGS". */
int moat(struct run_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The CLI must exit 0 (asserts, printing its stderr otherwise). */
void moat_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void run_free(struct run_result *r);
/* Number of lines in S (a last line without '\n' counts). */
int count_lines(const char *s);

/* Start `sh -c CMD` in the background in its own process group. */
pid_t spawn_bg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wait for a background command; its exit code, 128+sig, or -1 on timeout. */
int wait_bg(pid_t pid, int timeout_ms);
/* Wait until PATH exists; false on timeout. */
bool wait_file(const char *path, int timeout_ms);
/* Read a whole file (malloc'd, NUL-terminated) or NULL. */
char *read_text(const char *path);
/* Write TEXT to H.tmpdir/NAME; the path (one of 8 rotating buffers). */
const char *tmp_file(const char *name, const char *text);

/* ---- cgroups ---- */

/* The cgroup2 mount point from /proc/self/mountinfo; false if none. */
bool find_cgroup2(char *buf, size_t len);
/* mkdir <cgroup2>/moat-test/REL; returns the full path (static storage). */
const char *cg_make(const char *rel);
/* Path as the CLI's status prints it: "/moat-test/REL". */
const char *cg_rel(const char *full);
/* Kill every process in <cgroup2>/moat-test/... and remove it all. */
void cg_cleanup(void);

/* ---- test network ---- */

void testnet_up(void);
void testnet_down(void);

/* ---- policies ---- */

/* Write TMPDIR/NAME.yaml with YAML in it; returns its path (static). */
const char *write_policy(const char *name, const char *yaml);

/* ---- the peer ---- */

struct client_opts {
	const char *cgroup;	/* join before creating the socket */
	const char *netns;	/* NULL: the test's own (host) netns */
	const char *move_to;	/* join after creating the socket */
	const char *family;	/* "4", "6", "mapped" or NULL */
};

/*
 * Run `moat-test-peer client` and return the word it printed ("OK",
 * "EPERM", "ERR ENAME", "TIMEOUT"), or "BAD <why>" when its exit status
 * disagrees with the word. The string lives until 8 more calls.
 */
const char *client_x(const struct client_opts *o, const char *mode,
		     const char *addr, int port);
/* Client in cgroup CG (NULL: none) inside the test network's client netns. */
const char *client(const char *cg, const char *mode, const char *addr,
		   int port);

/*
 * Assert the verdict; "blocked" also means no world.log line for it.
 * Failures name the calling test's file and line.
 */
void expect_at(const char *file, int line, bool allowed,
	       const struct client_opts *o, const char *mode,
	       const char *addr, int port);
#define expect_allowed_x(o, mode, addr, port)				\
	expect_at(__FILE__, __LINE__, true, o, mode, addr, port)
#define expect_blocked_x(o, mode, addr, port)				\
	expect_at(__FILE__, __LINE__, false, o, mode, addr, port)
/* Client in cgroup CG inside the test network's client netns. */
#define expect_allowed(cg, mode, addr, port)				\
	expect_at(__FILE__, __LINE__, true,				\
		  &(struct client_opts){ .cgroup = (cg),		\
					 .netns = KT_NS_CLIENT },	\
		  mode, addr, port)
#define expect_blocked(cg, mode, addr, port)				\
	expect_at(__FILE__, __LINE__, false,				\
		  &(struct client_opts){ .cgroup = (cg),		\
					 .netns = KT_NS_CLIENT },	\
		  mode, addr, port)

/* Current size of a log file (0 if missing). */
off_t file_size(const char *path);
/*
 * Whether LOG has "PROTO ADDR:PORT from" past byte FROM. PROTO NULL: tcp
 * or udp. ADDR is printed as the server prints it ([v6] in brackets).
 */
bool log_has(const char *log, off_t from, const char *proto,
	     const char *addr, int port);
/* world.log since the test began. */
bool world_log_has(const char *addr, int port);
bool world_log_has_proto(const char *proto, const char *addr, int port);

/* ---- DNS: the resolver's upstream and DNS clients ---- */

/* dnsmasq in the world (tools/testnet.sh dns-up; records listed there). */
#define KT_DNS4			"198.51.100.53"
#define KT_DNS6			"2001:db8:1::53"
#define KT_DNS_DIR		"/run/moat-test/" KT_PREFIX "/dns"
#define KT_DNS_LOG		KT_DNS_DIR "/dnsmasq.log"
#define KT_DNS_HOSTSDIR		KT_DNS_DIR "/hosts.d"

/* Start dnsmasq (idempotent; after testnet_up) / stop it. */
void testnet_dns_up(void);
void testnet_dns_down(void);
/* dnsmasq's log past byte FROM has a query for NAME (any type). */
bool dns_log_has_query(off_t from, const char *name);
/* ...or any line naming NAME as a whole word (query, answer, config). */
bool dns_log_mentions(off_t from, const char *name);
/* Wait until dns_log_has_query(FROM, NAME); false on timeout. */
bool dns_log_wait_query(off_t from, const char *name, int timeout_ms);

/*
 * `moat-test-peer dns-query [FLAGS] SERVER PORT NAME TYPE` in O's context
 * (FLAGS: "", "--tcp" or "--udp-connect"). Returns its line: "NOERROR
 * A=198.51.100.7", "REFUSED", "EPERM", "ERR ECONNREFUSED", "TIMEOUT"...,
 * or "BAD <why>" when its exit status disagrees. Lives until 8 more calls.
 */
const char *dns_query_x(const struct client_opts *o, const char *flags,
			const char *server, int port, const char *name,
			const char *type);
/* dns_query_x in cgroup CG (NULL: none) inside the client netns. */
const char *dns_query(const char *cg, const char *flags, const char *server,
		      const char *name, const char *type);
/* `moat-test-peer dns-raw [FLAGS] SERVER PORT HEX`: REPLY n, NOREPLY, EOF. */
const char *dns_raw(const char *cg, const char *flags, const char *server,
		    int port, const char *hex);
/*
 * getaddrinfo(NAME) through `moat-test-peer resolve` with RESOLV_CONF
 * over /etc/resolv.conf (FLAGS: "--family 4", "--connect 8080", ...):
 * "OK 198.51.100.7 2001:db8:1::7", "ERR EAI_AGAIN", ... Lives as above.
 */
const char *resolve_x(const struct client_opts *o, const char *resolv_conf,
		      const char *flags, const char *name);
const char *resolve(const char *cg, const char *resolv_conf,
		    const char *flags, const char *name);
/* Whether WORD is one of the space-separated words of LINE. */
bool has_word(const char *line, const char *word);

/* ---- the resolver daemon ---- */

/*
 * Start `moat-bpf daemon -d ARGS` in the background with its stdout and
 * stderr appended to LOG, and wait until it serves its control socket.
 * Returns its pid (a background command: teardown kills it if still up).
 */
pid_t daemon_start(const char *args, const char *log);
/* SIGTERM, and its exit status (128+N for a signal, -1: did not stop). */
int daemon_stop(pid_t pid);
/* Whether the daemon PID is still running (not exited, not a zombie). */
bool daemon_alive(pid_t pid);
/*
 * Fail the test with the daemon's LOG unless PID (<= 0: none started) is
 * still running. In .fini a failed assertion is only logged: call it from
 * the test.
 */
void daemon_expect_alive(pid_t pid, const char *log);
/* Whether ADDR (IPv4 or IPv6) is a learned entry (a deadline) of PID's. */
bool learned_in_pins(unsigned int policy_id, const char *addr);
/*
 * The daemon's listed upstream sockets (pinned moat_daemon_socks) whose
 * local port the gate (moat_daemon_ports) leaves clear: the programs would
 * never look them up. *LISTED: how many are listed.
 */
int daemon_socks_ungated(int *listed);
/*
 * .init of a suite around one resolver daemon: harness_setup, the test
 * network's DNS, no registrations left over, then the daemon started
 * with ARGS, its log in LOG (H.tmpdir/daemon.log). Returns its pid.
 */
pid_t daemon_setup(const char *args, char log[PATH_MAX]);
/* {"op": OP} to the daemon's control socket; its reply (json_object_put). */
struct json_object *daemon_call(const char *op);
/* Remove every persisted registration (/run/moat-bpf/{reg,netns}). */
void daemon_forget_registrations(void);

/*
 * In a forked child of the test: join cgroup CG and network namespace
 * NETNS (either NULL: stay). 0 or -errno; it never asserts (criterion's
 * assertions belong to the test's own process).
 */
int kt_enter(const char *cg, const char *netns);

/* Milliseconds on CLOCK_MONOTONIC; sleep that long. */
long long kt_now_ms(void);
void kt_sleep_ms(int ms);

/* ---- status --json ---- */

#define KT_MAX_STATUS_CGROUPS	64

struct cg_status {
	unsigned long long id;
	char path[PATH_MAX];
	char policy[64];
	unsigned long long policy_id;
	char mode[16];
	int linked;		/* 1, 0, or -1 when absent */
	unsigned long long allowed;
	unsigned long long denied;
	unsigned long long audited;
};

struct status_list {
	long long layout;
	size_t n;
	struct cg_status cg[KT_MAX_STATUS_CGROUPS];
};

/* Parse the status JSON; 0 or -EINVAL (why in ERR). */
int status_parse(const char *json, struct status_list *l, char *err,
		 size_t err_len);
/* Run `status --json`, assert it succeeds and parses. Returns the raw text
 * (malloc'd) if RAW is non-NULL. */
void status_read(struct status_list *l, char **raw);
/* The entry for a cgroup ("/moat-test/x"), or NULL. */
const struct cg_status *status_find(const struct status_list *l,
				    const char *rel);
/* status_read + status_find, asserting the entry is there. */
struct cg_status status_of(const char *full_cg);

#endif /* MOAT_KTEST_HARNESS_H */
