/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Rules, policies and their compilation into map entries.
 *
 * Rule grammar (flags and files alike):
 *   [tcp://|udp://]TARGET[:PORT[-PORT]]
 *   TARGET = IPv4 | IPv4/len | [IPv6] | [IPv6]/len | domain | *.domain
 * No protocol = tcp and udp; no port = every port (0-65535).
 */
#ifndef MOAT_POLICY_H
#define MOAT_POLICY_H

#include <stddef.h>
#include <sys/socket.h>
#include <linux/types.h>
#include "err.h"
#include "moat_abi.h"

#define MOAT_RULE_TEXT_LEN	300
#define MOAT_DOMAIN_LEN		254
#define MOAT_MAX_UPSTREAMS	4

enum rule_kind {
	RULE_ADDR4 = 1,		/* addr[0..3], prefixlen 0..32 */
	RULE_ADDR6,		/* addr[0..15], prefixlen 0..128 */
	RULE_DOMAIN,		/* domain: exact name */
	RULE_WILDCARD,		/* domain: any name strictly below it */
};

struct moat_rule {
	enum rule_kind kind;
	__u8 protos;		/* MOAT_PROTO_* (never 0) */
	__u8 prefixlen;
	__u16 port_first;	/* host order, inclusive */
	__u16 port_last;
	__u8 addr[16];		/* network order; IPv4 in addr[0..3] */
	char domain[MOAT_DOMAIN_LEN];	/* lower case, no trailing dot, no "*." */
	char text[MOAT_RULE_TEXT_LEN];	/* as written, for messages */
};

enum loopback_mode { LOOPBACK_DEFAULT = 0, LOOPBACK_ALLOW, LOOPBACK_DENY };
enum dns_refuse { DNS_REFUSE_REFUSED = 0, DNS_REFUSE_NXDOMAIN };
enum socket_perm { SOCKET_DENY = 0, SOCKET_ALLOW };

/*
 * What a container may hold although it voids moat-bpf's guarantees
 * (moat-runc and the OCI hook refuse it otherwise): the policy's
 * "container:" mapping. accept_privileged implies every accept_caps.
 */
struct moat_container_opts {
	int accept_privileged;		/* --privileged, --cap-add ALL */
	__u64 accept_caps;		/* MOAT_CAP_BIT(n); MOAT_REFUSED_CAPS only */
};

struct moat_policy_spec {
	char name[MOAT_POLICY_NAME_LEN];	/* basename without .yaml, or "cli" */
	/*
	 * File path, or "command line"; points into source_buf when owned.
	 * Not an array: the resolver keeps a spec per registration, and a
	 * PATH_MAX array was most of each one's memory (issue 18).
	 */
	const char *source;
	char *source_buf;
	int mode;				/* MOAT_MODE_ENFORCE / _AUDIT */
	enum loopback_mode loopback;
	struct moat_rule *allow;
	size_t n_allow;
	struct moat_rule *deny;
	size_t n_deny;
	/* how many came from the file; the rest were added (CLI, self rules) */
	size_t n_allow_file;
	size_t n_deny_file;
	struct {
		char upstream[MOAT_MAX_UPSTREAMS][64];	/* "ADDR" or "ADDR:PORT" / "[v6]:PORT" */
		size_t n_upstream;
		__u32 min_ttl_s;			/* default 30 */
		__u32 max_ttl_s;			/* default 86400 */
		__u32 grace_s;				/* default 60 */
		enum dns_refuse refuse;
		__u32 max_addresses;			/* default 4096 */
	} dns;
	struct {
		enum socket_perm raw;
		enum socket_perm ping;
		enum socket_perm other;	/* not TCP, MPTCP, UDP: UDP-Lite, SCTP... */
	} sockets;
	int keep_net_raw;
	struct moat_container_opts container;
};

/* Parse one rule. Returns 0 or -EINVAL with err set to "WHERE: what". */
int rule_parse(const char *text, const char *where, struct moat_rule *r,
	       struct moat_err *err);
/* Format a rule canonically ("tcp://198.51.100.0/24:443"). */
void rule_format(const struct moat_rule *r, char *buf, size_t len);
/*
 * Format an address prefix as rules write it: "198.51.100.0/24",
 * "[2001:db8::]/32"; the length is left out at full length.
 */
void rule_prefix_format(int family, const __u8 *addr, unsigned int prefixlen,
			char *buf, size_t len);

/*
 * The one grammar of a DNS upstream (a policy's dns.upstream, the
 * daemon's --dns-upstream, a workload's resolv.conf nameserver): "ADDR",
 * "IPv4:PORT" or "[IPv6]:PORT", port 53 when none; -EINVAL otherwise.
 * RET_SA and RET_LEN (may be NULL: a check only) get its address.
 */
int upstream_parse(const char *s, struct sockaddr_storage *ret_sa,
		   socklen_t *ret_len);
void policy_init(struct moat_policy_spec *p);	/* defaults, empty rule lists */
void policy_free(struct moat_policy_spec *p);
/* Append a rule given on the command line (--allow/--deny). */
int policy_add_rule(struct moat_policy_spec *p, int deny, const char *text,
		    struct moat_err *err);
/* Load a YAML file; every error names file:line:column. */
int policy_load_file(struct moat_policy_spec *p, const char *path,
		     struct moat_err *err);
/*
 * --policy NAME|PATH: a value containing '/' or ending in .yaml is a path,
 * anything else is DIR/NAME.yaml. Returns 0 or a negative errno.
 */
int policy_load(struct moat_policy_spec *p, const char *name_or_path,
		const char *policy_dir, struct moat_err *err);
/* Number of domain/wildcard rules (not enforced until the resolver lands). */
size_t policy_domain_rules(const struct moat_policy_spec *p);

/*
 * Compiled map contents for one policy id. Allow rules with a full-length
 * prefix go to the exact hashes, others to the allow tries; deny rules and
 * the built-in default denies go to the deny tries. Each entry's ranges are
 * the union of every rule of its kind whose prefix contains the entry's
 * prefix, so the single entry a longest-prefix or exact lookup returns is
 * the complete answer. Built-in denies are dropped for an address that an
 * allow rule names exactly (/32, /128).
 */
struct compiled_entry {
	int family;		/* AF_INET or AF_INET6 */
	__u8 prefixlen;		/* of the address alone: 0..32 / 0..128 */
	__u8 addr[16];		/* network order */
	struct moat_addr_val val;
};

/* A name the sk_msg check allows (user/names.c); key.policy_id 0 here. */
struct compiled_name {
	struct moat_name_key key;
	struct moat_addr_val ranges;	/* n_ranges and ranges[] only */
	struct moat_name_val val;	/* name; ranges copied in at write */
};

struct moat_compiled {
	struct compiled_entry *exact;	/* allow, full length */
	size_t n_exact;
	struct compiled_entry *allow;	/* allow, shorter prefixes */
	size_t n_allow;
	struct compiled_entry *deny;	/* explicit and default denies */
	size_t n_deny;
	struct compiled_name *names;	/* domain rules' names (docs/names.md) */
	size_t n_names;
	__u32 flags;			/* MOAT_POL_* */
	__u32 mode;
};

/*
 * Returns 0, -E2BIG when an entry would need more than MOAT_MAX_PORT_RANGES
 * ranges (err names the address), or -ENOMEM. On error c is left empty.
 */
int policy_compile(const struct moat_policy_spec *p, struct moat_compiled *c,
		   struct moat_err *err);
void compiled_free(struct moat_compiled *c);

/* The built-in default deny set (cloud metadata), as rule texts. */
extern const char *const moat_default_denies[];

#endif /* MOAT_POLICY_H */
