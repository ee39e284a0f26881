// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy files: the keys of a policy and what each accepts, as tables of
 * handlers for the shared YAML walker (yamlwalk.c), whose every error
 * names file:line:column (1-based) of the node it is about.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <yaml.h>

#include "caps.h"
#include "paths.h"
#include "policy.h"
#include "yamlwalk.h"

/* the policy directory names are looked up in (paths.h) */
const char *policy_dir = MOAT_POLICY_DIR;

static struct moat_policy_spec *spec(const struct yw *w)
{
	return w->obj;
}

static int append_rule(struct moat_rule **rules, size_t *n,
		       const struct moat_rule *r)
{
	struct moat_rule *grown;

	grown = realloc(*rules, (*n + 1) * sizeof(**rules));
	if (!grown)
		return -ENOMEM;
	grown[*n] = *r;
	*rules = grown;
	(*n)++;
	return 0;
}

static int add_parsed(struct moat_policy_spec *p, int deny, const char *text,
		      const char *where, struct moat_err *err)
{
	struct moat_rule r;
	int ret;

	ret = rule_parse(text, where, &r, err);
	if (ret)
		return ret;
	ret = deny ? append_rule(&p->deny, &p->n_deny, &r) :
		     append_rule(&p->allow, &p->n_allow, &r);
	if (ret)
		policy_errf(err, "%s: out of memory", where);
	return ret;
}

static int load_rule_item(struct yw *w, const char *name,
			  yaml_node_t *item, int deny)
{
	char where[MOAT_ERR_LEN / 2];
	const char *text;
	int ret;

	/* An unquoted "[v6]:port" reads as a YAML list: say how to fix it. */
	if (item->type != YAML_SCALAR_NODE)
		return yw_at(w, item, "each %s entry must be a rule, not %s (quote rules that start with '[' or '*', e.g. '[2001:db8::1]:443')",
			  name, yw_kind(item));
	ret = yw_scalar(w, name, item, "a rule", &text);
	if (ret)
		return ret;
	snprintf(where, sizeof(where), "%.*s:%zu:%zu",
		 (int)(sizeof(where) - 32), w->path,
		 item->start_mark.line + 1, item->start_mark.column + 1);
	return add_parsed(spec(w), deny, text, where, w->err);
}

static int allow_item(struct yw *w, const char *name, yaml_node_t *item)
{
	return load_rule_item(w, name, item, 0);
}

static int deny_item(struct yw *w, const char *name, yaml_node_t *item)
{
	return load_rule_item(w, name, item, 1);
}

static int load_allow(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_items(w, name, val, 0, "a list of rules", allow_item);
}

static int load_deny(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_items(w, name, val, 0, "a list of rules", deny_item);
}

static bool port_ok(const char *s)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5 || s[strspn(s, "0123456789")])
		return false;
	v = strtoul(s, NULL, 10);
	return v >= 1 && v <= 65535;
}

int upstream_parse(const char *s, struct sockaddr_storage *ret_sa,
		   socklen_t *ret_len)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	const char *port = NULL, *end;
	char host[64];

	if (strlen(s) >= sizeof(host))
		return -EINVAL;
	if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
		ss.ss_family = AF_INET;
	} else if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
	} else if (*s == '[') {
		end = strchr(s, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(end - s - 1), s + 1);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		ss.ss_family = AF_INET6;
		port = end[1] ? end + 2 : NULL;
	} else {
		end = strchr(s, ':');
		if (!end)
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(end - s), s);
		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -EINVAL;
		ss.ss_family = AF_INET;
		port = end + 1;
	}
	if (port && !port_ok(port))
		return -EINVAL;
	/*
	 * An IPv4-mapped address is IPv4: the daemon lists its upstream
	 * socket in moat_daemon_socks by the socket's family, and the hooks
	 * see such a destination as AF_INET, so an AF_INET6 ::ffff: socket
	 * would be listed where nothing looks (review of issue 18).
	 */
	if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		struct in_addr v4;

		memcpy(&v4, &in6->sin6_addr.s6_addr[12], sizeof(v4));
		memset(&ss, 0, sizeof(ss));
		in->sin_addr = v4;
		ss.ss_family = AF_INET;
	}
	/* sin_port and sin6_port share their place */
	in->sin_port = htons(port ? strtoul(port, NULL, 10) : 53);
	if (ret_sa)
		*ret_sa = ss;
	if (ret_len)
		*ret_len = ss.ss_family == AF_INET ? sizeof(*in) : sizeof(*in6);
	return 0;
}

static int add_upstream(struct yw *w, const char *name, yaml_node_t *n)
{
	const char *s;
	int ret;

	ret = yw_scalar(w, name, n, "an address", &s);
	if (ret)
		return ret;
	if (spec(w)->dns.n_upstream >= MOAT_MAX_UPSTREAMS)
		return yw_at(w, n, "%s lists more than %d servers", name,
			  MOAT_MAX_UPSTREAMS);
	if (upstream_parse(s, NULL, NULL))
		return yw_at(w, n, "%s '%s' is not IP, IPv4:PORT or [IPv6]:PORT",
			  name, s);
	strcpy(spec(w)->dns.upstream[spec(w)->dns.n_upstream++], s);
	return 0;
}

static int load_upstream(struct yw *w, const char *name,
			 yaml_node_t *val)
{
	spec(w)->dns.n_upstream = 0;
	return yw_items(w, name, val, 1, NULL, add_upstream);
}

/* "sys_admin" or "SYS_ADMIN" for "CAP_SYS_ADMIN": the name meant, or NULL. */
static const char *cap_meant(const char *s)
{
	char up[64];
	size_t i, n = 0;
	int cap;

	if (strncasecmp(s, "CAP_", 4))
		n = (size_t)snprintf(up, sizeof(up), "CAP_");
	for (i = 0; s[i] && n < sizeof(up) - 1; i++)
		up[n++] = (char)toupper((unsigned char)s[i]);
	up[n] = '\0';
	cap = moat_cap_from_name(up);
	return cap < 0 ? NULL : moat_cap_name(cap);
}

/*
 * Only what would be refused can be accepted: anything else in the list
 * would read as a permission that the policy does not grant.
 */
static int add_accept_cap(struct yw *w, const char *name,
			  yaml_node_t *n)
{
	char refused[128];
	const char *s, *meant;
	int ret, cap;

	ret = yw_scalar(w, name, n, "a capability name", &s);
	if (ret)
		return ret;
	cap = moat_cap_from_name(s);
	if (cap < 0) {
		meant = cap_meant(s);
		if (meant)
			return yw_at(w, n, "%s '%s' is not a capability name; did you mean '%s'?",
				  name, s, meant);
		return yw_at(w, n, "%s '%s' is not a capability", name, s);
	}
	if (cap == CAP_NET_RAW)
		return yw_at(w, n, "%s: CAP_NET_RAW is dropped, not refused; keep it with keep_net_raw: true",
			  name);
	if (!(MOAT_REFUSED_CAPS & MOAT_CAP_BIT(cap))) {
		moat_caps_format(MOAT_REFUSED_CAPS, refused, sizeof(refused));
		return yw_at(w, n, "%s: %s is never refused (only %s need accepting)",
			  name, s, refused);
	}
	spec(w)->container.accept_caps |= MOAT_CAP_BIT(cap);
	return 0;
}

static int load_accept_caps(struct yw *w, const char *name,
			    yaml_node_t *val)
{
	spec(w)->container.accept_caps = 0;
	return yw_items(w, name, val, 1, NULL, add_accept_cap);
}

/* Enumerated settings are stored as int: the tables write them so. */
_Static_assert(sizeof(enum loopback_mode) == sizeof(int) &&
	       sizeof(enum dns_refuse) == sizeof(int) &&
	       sizeof(enum socket_perm) == sizeof(int), "enum size");

static const struct yw_choice modes[] = {
	{ "enforce", MOAT_MODE_ENFORCE },
	{ "audit", MOAT_MODE_AUDIT },
	{ NULL, 0 },
};

static const struct yw_choice loopback_words[] = {
	{ "allow", LOOPBACK_ALLOW },
	{ "deny", LOOPBACK_DENY },
	{ "default", LOOPBACK_DEFAULT },
	{ NULL, 0 },
};

static const struct yw_choice socket_words[] = {
	{ "allow", SOCKET_ALLOW },
	{ "deny", SOCKET_DENY },
	{ NULL, 0 },
};

static const struct yw_choice refuse_words[] = {
	{ "refused", DNS_REFUSE_REFUSED },
	{ "nxdomain", DNS_REFUSE_NXDOMAIN },
	{ NULL, 0 },
};

#define SPEC struct moat_policy_spec

static const struct yw_key dns_keys[] = {
	YW_LOAD("upstream", load_upstream),
	YW_U32("min_ttl", SPEC, dns.min_ttl_s),
	YW_U32("max_ttl", SPEC, dns.max_ttl_s),
	YW_U32("grace", SPEC, dns.grace_s),
	YW_CHOICE("refuse", SPEC, dns.refuse, refuse_words),
	YW_U32("max_addresses", SPEC, dns.max_addresses),
	YW_END,
};

static const struct yw_key socket_keys[] = {
	YW_CHOICE("raw", SPEC, sockets.raw, socket_words),
	YW_CHOICE("ping", SPEC, sockets.ping, socket_words),
	YW_CHOICE("other", SPEC, sockets.other, socket_words),
	YW_END,
};

static const struct yw_key container_keys[] = {
	YW_BOOL("accept_privileged", SPEC, container.accept_privileged),
	YW_LOAD("accept_caps", load_accept_caps),
	YW_END,
};

static int load_dns(struct yw *w, const char *name, yaml_node_t *val)
{
	int ret;

	ret = yw_mapping(w, name, val, dns_keys);
	if (ret)
		return ret;
	/* Checked once the whole mapping is read: the keys come in any order. */
	if (spec(w)->dns.min_ttl_s > spec(w)->dns.max_ttl_s)
		return yw_at(w, val, "dns.min_ttl (%u) must not exceed dns.max_ttl (%u)",
			     spec(w)->dns.min_ttl_s, spec(w)->dns.max_ttl_s);
	return 0;
}

static const struct yw_key root_keys[] = {
	YW_CHOICE("mode", SPEC, mode, modes),
	YW_LOAD("allow", load_allow),
	YW_LOAD("deny", load_deny),
	YW_CHOICE("loopback", SPEC, loopback, loopback_words),
	YW_LOAD("dns", load_dns),
	YW_MAPPING("sockets", socket_keys),
	YW_BOOL("keep_net_raw", SPEC, keep_net_raw),
	YW_MAPPING("container", container_keys),
	YW_END,
};

#undef SPEC

static int load_root(struct yw *w, yaml_node_t *root)
{
	if (!root) {
		policy_errf(w->err, "%s:1:1: empty policy file (expected a mapping with mode, allow, deny, ...)",
			    w->path);
		return -EINVAL;
	}
	return yw_mapping(w, NULL, root, root_keys);
}

static bool name_ok(const char *name)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

	return *name && strlen(name) < MOAT_POLICY_NAME_LEN &&
	       !name[strspn(name, ok)];
}

static int name_error(struct moat_err *err, const char *where,
		      const char *name)
{
	policy_errf(err, "%s: policy name '%s' must be 1-%d characters of A-Z a-z 0-9 _ . -",
		    where, name, MOAT_POLICY_NAME_LEN - 1);
	return -EINVAL;
}

/* The policy's name is the file's, less directory and ".yaml". */
static int name_from_path(struct moat_policy_spec *p, const char *path,
			  struct moat_err *err)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = strlen(base);
	char name[4096];

	if (n > 5 && !strcmp(base + n - 5, ".yaml"))
		n -= 5;
	snprintf(name, sizeof(name), "%.*s", (int)n, base);
	if (!name_ok(name))
		return name_error(err, path, name);
	strcpy(p->name, name);
	return 0;
}

static FILE *open_policy(const char *path, struct moat_err *err, int *ret)
{
	struct stat st;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		*ret = -errno;
		policy_errf(err, "%s: %s", path, errno == ENOENT ?
			    "no such policy file" : strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		*ret = -EINVAL;
		policy_errf(err, "%s: not a regular file", path);
		fclose(f);
		return NULL;
	}
	return f;
}

void policy_init(struct moat_policy_spec *p)
{
	memset(p, 0, sizeof(*p));
	strcpy(p->name, "cli");
	p->source = "command line";
	p->mode = MOAT_MODE_ENFORCE;
	p->loopback = LOOPBACK_DEFAULT;
	p->dns.min_ttl_s = 30;
	p->dns.max_ttl_s = 86400;
	p->dns.grace_s = 60;
	p->dns.refuse = DNS_REFUSE_REFUSED;
	p->dns.max_addresses = 4096;
	p->sockets.raw = SOCKET_DENY;
	p->sockets.ping = SOCKET_DENY;
	p->sockets.other = SOCKET_DENY;
}

void policy_free(struct moat_policy_spec *p)
{
	free(p->source_buf);
	p->source_buf = NULL;
	p->source = "command line";
	free(p->allow);
	free(p->deny);
	p->allow = NULL;
	p->deny = NULL;
	p->n_allow = 0;
	p->n_deny = 0;
}

int policy_add_rule(struct moat_policy_spec *p, int deny, const char *text,
		    struct moat_err *err)
{
	return add_parsed(p, deny, text, deny ? "--deny" : "--allow", err);
}

/*
 * Settings in the file override p's; its rules are appended to any already
 * there, so --allow/--deny given before or after a file both count.
 */
int policy_load_file(struct moat_policy_spec *p, const char *path,
		     struct moat_err *err)
{
	FILE *f;
	int ret;

	if (strlen(path) >= PATH_MAX) {
		policy_errf(err, "%.64s...: path too long", path);
		return -ENAMETOOLONG;
	}
	ret = name_from_path(p, path, err);
	if (ret)
		return ret;
	f = open_policy(path, err, &ret);
	if (!f)
		return ret;
	free(p->source_buf);
	p->source = p->source_buf = strdup(path);
	if (!p->source_buf) {
		p->source = "command line";
		fclose(f);
		policy_errf(err, "%s: out of memory", path);
		return -ENOMEM;
	}
	ret = yw_load(path, f, p, err, load_root);
	fclose(f);
	p->n_allow_file = p->n_allow;
	p->n_deny_file = p->n_deny;
	return ret;
}

static bool is_path(const char *s)
{
	size_t n = strlen(s);

	return strchr(s, '/') || (n >= 5 && !strcmp(s + n - 5, ".yaml"));
}

int policy_load(struct moat_policy_spec *p, const char *name_or_path,
		const char *policy_dir, struct moat_err *err)
{
	char path[4096];
	int n;

	if (is_path(name_or_path))
		return policy_load_file(p, name_or_path, err);
	if (!name_ok(name_or_path))
		return name_error(err, "--policy", name_or_path);
	n = snprintf(path, sizeof(path), "%s/%s.yaml", policy_dir,
		     name_or_path);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		policy_errf(err, "%.64s...: policy directory path too long",
			    policy_dir);
		return -ENAMETOOLONG;
	}
	return policy_load_file(p, path, err);
}

size_t policy_domain_rules(const struct moat_policy_spec *p)
{
	size_t i, n = 0;

	for (i = 0; i < p->n_allow; i++)
		n += p->allow[i].kind == RULE_DOMAIN ||
		     p->allow[i].kind == RULE_WILDCARD;
	for (i = 0; i < p->n_deny; i++)
		n += p->deny[i].kind == RULE_DOMAIN ||
		     p->deny[i].kind == RULE_WILDCARD;
	return n;
}
