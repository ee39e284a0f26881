// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy files: YAML loaded with libyaml's document API, then walked with
 * a table of handlers per mapping. Every error names file:line:column
 * (1-based) of the node it is about, so a user can go straight to it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
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
#include "policy.h"

struct load_ctx {
	const char *path;
	yaml_document_t *doc;
	struct moat_policy_spec *p;
	struct moat_err *err;
};

/* A handler for one key; @name is its dotted name ("dns.min_ttl"). */
struct key_handler {
	const char *key;
	int (*load)(struct load_ctx *c, const char *name, yaml_node_t *val);
};

/* One accepted word of an enumerated setting. */
struct choice {
	const char *word;
	int value;
};

static int at(const struct load_ctx *c, const yaml_node_t *n,
	      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int at(const struct load_ctx *c, const yaml_node_t *n,
	      const char *fmt, ...)
{
	char what[MOAT_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	policy_errf(c->err, "%s:%zu:%zu: %s", c->path,
		    n->start_mark.line + 1, n->start_mark.column + 1, what);
	return -EINVAL;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a single value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "empty";
	}
}

static yaml_node_t *node(const struct load_ctx *c, int index)
{
	return yaml_document_get_node(c->doc, index);
}

/* The scalar's text, or an error naming what was expected instead. */
static int scalar(const struct load_ctx *c, const char *name,
		  const yaml_node_t *n, const char *expected, const char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return at(c, n, "%s must be %s, not %s", name, expected,
			  node_kind(n));
	/* libyaml allows "\0" escapes; C strings would silently cut there. */
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return at(c, n, "%s contains a NUL character", name);
	*out = (const char *)n->data.scalar.value;
	return 0;
}

static int load_choice(struct load_ctx *c, const char *name, yaml_node_t *val,
		       const struct choice *choices, int *out)
{
	char words[128] = "";
	const struct choice *ch;
	const char *s;
	int ret;

	ret = scalar(c, name, val, "a word", &s);
	if (ret)
		return ret;
	for (ch = choices; ch->word; ch++) {
		if (!strcmp(s, ch->word)) {
			*out = ch->value;
			return 0;
		}
		strncat(words, ch->word, sizeof(words) - strlen(words) - 1);
		if (ch[1].word)
			strncat(words, ch[2].word ? ", " : " or ",
				sizeof(words) - strlen(words) - 1);
	}
	return at(c, val, "%s must be %s, not '%s'", name, words, s);
}

/* Non-negative decimal that fits __u32: no sign, no hex, no exponent. */
static int load_u32(struct load_ctx *c, const char *name, yaml_node_t *val,
		    __u32 *out)
{
	unsigned long long v = 0;
	const char *s, *d;
	int ret;

	ret = scalar(c, name, val, "a number", &s);
	if (ret)
		return ret;
	for (d = s; *d && v <= 0xffffffffULL; d++) {
		if (*d < '0' || *d > '9')
			break;
		v = v * 10 + (unsigned long long)(*d - '0');
	}
	if (!*s || *d || v > 0xffffffffULL)
		return at(c, val, "%s must be a whole number from 0 to 4294967295, not '%s'",
			  name, s);
	*out = (__u32)v;
	return 0;
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

static int load_rule_item(struct load_ctx *c, const char *name,
			  yaml_node_t *item, int deny)
{
	char where[MOAT_ERR_LEN / 2];
	const char *text;
	int ret;

	/* An unquoted "[v6]:port" reads as a YAML list: say how to fix it. */
	if (item->type != YAML_SCALAR_NODE)
		return at(c, item, "each %s entry must be a rule, not %s (quote rules that start with '[' or '*', e.g. '[2001:db8::1]:443')",
			  name, node_kind(item));
	ret = scalar(c, name, item, "a rule", &text);
	if (ret)
		return ret;
	snprintf(where, sizeof(where), "%.*s:%zu:%zu",
		 (int)(sizeof(where) - 32), c->path,
		 item->start_mark.line + 1, item->start_mark.column + 1);
	return add_parsed(c->p, deny, text, where, c->err);
}

static int load_rules(struct load_ctx *c, const char *name, yaml_node_t *val,
		      int deny)
{
	yaml_node_item_t *it;
	int ret;

	if (val->type != YAML_SEQUENCE_NODE)
		return at(c, val, "%s must be a list of rules, not %s", name,
			  node_kind(val));
	for (it = val->data.sequence.items.start;
	     it < val->data.sequence.items.top; it++) {
		ret = load_rule_item(c, name, node(c, *it), deny);
		if (ret)
			return ret;
	}
	return 0;
}

static int load_allow(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	return load_rules(c, name, val, 0);
}

static int load_deny(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	return load_rules(c, name, val, 1);
}

static int load_mode(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	static const struct choice modes[] = {
		{ "enforce", MOAT_MODE_ENFORCE },
		{ "audit", MOAT_MODE_AUDIT },
		{ NULL, 0 },
	};

	return load_choice(c, name, val, modes, &c->p->mode);
}

static int load_loopback(struct load_ctx *c, const char *name,
			 yaml_node_t *val)
{
	static const struct choice words[] = {
		{ "allow", LOOPBACK_ALLOW },
		{ "deny", LOOPBACK_DENY },
		{ "default", LOOPBACK_DEFAULT },
		{ NULL, 0 },
	};
	int v, ret;

	ret = load_choice(c, name, val, words, &v);
	if (!ret)
		c->p->loopback = (enum loopback_mode)v;
	return ret;
}

static int load_keep_net_raw(struct load_ctx *c, const char *name,
			     yaml_node_t *val)
{
	static const struct choice words[] = {
		{ "true", 1 },
		{ "false", 0 },
		{ NULL, 0 },
	};

	return load_choice(c, name, val, words, &c->p->keep_net_raw);
}

static int load_socket_perm(struct load_ctx *c, const char *name,
			    yaml_node_t *val, enum socket_perm *out)
{
	static const struct choice words[] = {
		{ "allow", SOCKET_ALLOW },
		{ "deny", SOCKET_DENY },
		{ NULL, 0 },
	};
	int v, ret;

	ret = load_choice(c, name, val, words, &v);
	if (!ret)
		*out = (enum socket_perm)v;
	return ret;
}

static int load_raw(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	return load_socket_perm(c, name, val, &c->p->sockets.raw);
}

static int load_ping(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	return load_socket_perm(c, name, val, &c->p->sockets.ping);
}

static int load_other(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	return load_socket_perm(c, name, val, &c->p->sockets.other);
}

static bool port_ok(const char *s)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5 || s[strspn(s, "0123456789")])
		return false;
	v = strtoul(s, NULL, 10);
	return v >= 1 && v <= 65535;
}

/* "ADDR", "IPv4:PORT" or "[IPv6]:PORT"; the text is kept as written. */
static bool upstream_ok(const char *s)
{
	unsigned char a[16];
	char host[64];
	const char *port;

	if (strlen(s) >= sizeof(host))
		return false;
	if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1)
		return true;
	if (*s == '[') {
		port = strchr(s, ']');
		if (!port || (port[1] && port[1] != ':'))
			return false;
		snprintf(host, sizeof(host), "%.*s", (int)(port - s - 1), s + 1);
		return inet_pton(AF_INET6, host, a) == 1 &&
		       (!port[1] || port_ok(port + 2));
	}
	port = strchr(s, ':');
	if (!port)
		return false;
	snprintf(host, sizeof(host), "%.*s", (int)(port - s), s);
	return inet_pton(AF_INET, host, a) == 1 && port_ok(port + 1);
}

static int add_upstream(struct load_ctx *c, const char *name, yaml_node_t *n)
{
	const char *s;
	int ret;

	ret = scalar(c, name, n, "an address", &s);
	if (ret)
		return ret;
	if (c->p->dns.n_upstream >= MOAT_MAX_UPSTREAMS)
		return at(c, n, "%s lists more than %d servers", name,
			  MOAT_MAX_UPSTREAMS);
	if (!upstream_ok(s))
		return at(c, n, "%s '%s' is not IP, IPv4:PORT or [IPv6]:PORT",
			  name, s);
	strcpy(c->p->dns.upstream[c->p->dns.n_upstream++], s);
	return 0;
}

static int load_upstream(struct load_ctx *c, const char *name,
			 yaml_node_t *val)
{
	yaml_node_item_t *it;
	int ret;

	c->p->dns.n_upstream = 0;
	if (val->type != YAML_SEQUENCE_NODE)
		return add_upstream(c, name, val);
	for (it = val->data.sequence.items.start;
	     it < val->data.sequence.items.top; it++) {
		ret = add_upstream(c, name, node(c, *it));
		if (ret)
			return ret;
	}
	return 0;
}

static int load_min_ttl(struct load_ctx *c, const char *name, yaml_node_t *v)
{
	return load_u32(c, name, v, &c->p->dns.min_ttl_s);
}

static int load_max_ttl(struct load_ctx *c, const char *name, yaml_node_t *v)
{
	return load_u32(c, name, v, &c->p->dns.max_ttl_s);
}

static int load_grace(struct load_ctx *c, const char *name, yaml_node_t *v)
{
	return load_u32(c, name, v, &c->p->dns.grace_s);
}

static int load_max_addresses(struct load_ctx *c, const char *name,
			      yaml_node_t *v)
{
	return load_u32(c, name, v, &c->p->dns.max_addresses);
}

static int load_refuse(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	static const struct choice words[] = {
		{ "refused", DNS_REFUSE_REFUSED },
		{ "nxdomain", DNS_REFUSE_NXDOMAIN },
		{ NULL, 0 },
	};
	int v, ret;

	ret = load_choice(c, name, val, words, &v);
	if (!ret)
		c->p->dns.refuse = (enum dns_refuse)v;
	return ret;
}

static int load_accept_privileged(struct load_ctx *c, const char *name,
				  yaml_node_t *val)
{
	static const struct choice words[] = {
		{ "true", 1 },
		{ "false", 0 },
		{ NULL, 0 },
	};

	return load_choice(c, name, val, words,
			   &c->p->container.accept_privileged);
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
static int add_accept_cap(struct load_ctx *c, const char *name,
			  yaml_node_t *n)
{
	char refused[128];
	const char *s, *meant;
	int ret, cap;

	ret = scalar(c, name, n, "a capability name", &s);
	if (ret)
		return ret;
	cap = moat_cap_from_name(s);
	if (cap < 0) {
		meant = cap_meant(s);
		if (meant)
			return at(c, n, "%s '%s' is not a capability name; did you mean '%s'?",
				  name, s, meant);
		return at(c, n, "%s '%s' is not a capability", name, s);
	}
	if (cap == CAP_NET_RAW)
		return at(c, n, "%s: CAP_NET_RAW is dropped, not refused; keep it with keep_net_raw: true",
			  name);
	if (!(MOAT_REFUSED_CAPS & MOAT_CAP_BIT(cap))) {
		moat_caps_format(MOAT_REFUSED_CAPS, refused, sizeof(refused));
		return at(c, n, "%s: %s is never refused (only %s need accepting)",
			  name, s, refused);
	}
	c->p->container.accept_caps |= MOAT_CAP_BIT(cap);
	return 0;
}

static int load_accept_caps(struct load_ctx *c, const char *name,
			    yaml_node_t *val)
{
	yaml_node_item_t *it;
	int ret;

	c->p->container.accept_caps = 0;
	if (val->type != YAML_SEQUENCE_NODE)
		return add_accept_cap(c, name, val);
	for (it = val->data.sequence.items.start;
	     it < val->data.sequence.items.top; it++) {
		ret = add_accept_cap(c, name, node(c, *it));
		if (ret)
			return ret;
	}
	return 0;
}

static int load_mapping(struct load_ctx *c, const char *name,
			yaml_node_t *map, const struct key_handler *keys);

static const struct key_handler dns_keys[] = {
	{ "upstream", load_upstream },
	{ "min_ttl", load_min_ttl },
	{ "max_ttl", load_max_ttl },
	{ "grace", load_grace },
	{ "refuse", load_refuse },
	{ "max_addresses", load_max_addresses },
	{ NULL, NULL },
};

static const struct key_handler socket_keys[] = {
	{ "raw", load_raw },
	{ "ping", load_ping },
	{ "other", load_other },
	{ NULL, NULL },
};

static const struct key_handler container_keys[] = {
	{ "accept_privileged", load_accept_privileged },
	{ "accept_caps", load_accept_caps },
	{ NULL, NULL },
};

static int load_dns(struct load_ctx *c, const char *name, yaml_node_t *val)
{
	int ret;

	ret = load_mapping(c, name, val, dns_keys);
	if (ret)
		return ret;
	/* Checked once the whole mapping is read: the keys come in any order. */
	if (c->p->dns.min_ttl_s > c->p->dns.max_ttl_s)
		return at(c, val, "dns.min_ttl (%u) must not exceed dns.max_ttl (%u)",
			  c->p->dns.min_ttl_s, c->p->dns.max_ttl_s);
	return 0;
}

static int load_sockets(struct load_ctx *c, const char *name,
			yaml_node_t *val)
{
	return load_mapping(c, name, val, socket_keys);
}

static int load_container(struct load_ctx *c, const char *name,
			  yaml_node_t *val)
{
	return load_mapping(c, name, val, container_keys);
}

static const struct key_handler root_keys[] = {
	{ "mode", load_mode },
	{ "allow", load_allow },
	{ "deny", load_deny },
	{ "loopback", load_loopback },
	{ "dns", load_dns },
	{ "sockets", load_sockets },
	{ "keep_net_raw", load_keep_net_raw },
	{ "container", load_container },
	{ NULL, NULL },
};

static void key_list(const struct key_handler *keys, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; keys->key && used < len; keys++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 used ? ", " : "", keys->key);
}

/* A repeated key would silently override the first: refuse it. */
static int check_duplicate(struct load_ctx *c, yaml_node_pair_t *first,
			   yaml_node_pair_t *pair, const char *key)
{
	yaml_node_t *prev;

	for (; first < pair; first++) {
		prev = node(c, first->key);
		if (prev->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)prev->data.scalar.value, key))
			return at(c, node(c, pair->key),
				  "duplicate key '%s' (first given on line %zu)",
				  key, prev->start_mark.line + 1);
	}
	return 0;
}

static int load_pair(struct load_ctx *c, const char *name,
		     yaml_node_pair_t *first, yaml_node_pair_t *pair,
		     const struct key_handler *keys)
{
	yaml_node_t *k = node(c, pair->key);
	const struct key_handler *h;
	char full[128], known[160];
	const char *key;
	int ret;

	ret = scalar(c, "a key", k, "a word", &key);
	if (!ret)
		ret = check_duplicate(c, first, pair, key);
	if (ret)
		return ret;
	for (h = keys; h->key; h++)
		if (!strcmp(h->key, key))
			break;
	if (!h->key) {
		key_list(keys, known, sizeof(known));
		return at(c, k, "unknown key '%s'%s%s (known: %s)", key,
			  name ? " in " : "", name ? name : "", known);
	}
	snprintf(full, sizeof(full), "%s%s%s", name ? name : "",
		 name ? "." : "", key);
	return h->load(c, full, node(c, pair->value));
}

/* @name is NULL for the top level, else the mapping's dotted name. */
static int load_mapping(struct load_ctx *c, const char *name,
			yaml_node_t *map, const struct key_handler *keys)
{
	yaml_node_pair_t *pair, *first;
	int ret;

	if (map->type != YAML_MAPPING_NODE)
		return at(c, map, "%s must be a mapping of settings, not %s",
			  name ? name : "the top level", node_kind(map));
	first = map->data.mapping.pairs.start;
	for (pair = first; pair < map->data.mapping.pairs.top; pair++) {
		ret = load_pair(c, name, first, pair, keys);
		if (ret)
			return ret;
	}
	return 0;
}

static int syntax_error(const char *path, yaml_parser_t *parser,
			struct moat_err *err)
{
	/*
	 * Unquoted "*.example.com" reads as an alias and "[v6]:443" as a
	 * flow list followed by junk: the usual causes inside rule lists.
	 */
	const char *ctx = parser->context ? parser->context : "";
	const char *hint = strstr(ctx, "alias") || strstr(ctx, "collection") ?
		"; quote rules that start with '*' or '['" : "";

	policy_errf(err, "%s:%zu:%zu: YAML syntax error: %s%s%s%s", path,
		    parser->problem_mark.line + 1,
		    parser->problem_mark.column + 1,
		    parser->problem ? parser->problem : "unknown",
		    parser->context ? " " : "",
		    parser->context ? parser->context : "", hint);
	return -EINVAL;
}

static int load_root(struct load_ctx *c, yaml_parser_t *parser)
{
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	yaml_document_t next;
	int ret;

	if (!root) {
		policy_errf(c->err, "%s:1:1: empty policy file (expected a mapping with mode, allow, deny, ...)",
			    c->path);
		return -EINVAL;
	}
	ret = load_mapping(c, NULL, root, root_keys);
	if (ret)
		return ret;
	/* A second "---" document would be ignored: refuse it instead. */
	if (!yaml_parser_load(parser, &next))
		return syntax_error(c->path, parser, c->err);
	root = yaml_document_get_root_node(&next);
	if (root)
		ret = at(c, root, "only one YAML document is allowed per policy file");
	yaml_document_delete(&next);
	return ret;
}

static int load_stream(struct moat_policy_spec *p, const char *path, FILE *f,
		       struct moat_err *err)
{
	struct load_ctx c = { .path = path, .p = p, .err = err };
	yaml_parser_t parser;
	yaml_document_t doc;
	int ret;

	if (!yaml_parser_initialize(&parser)) {
		policy_errf(err, "%s: out of memory", path);
		return -ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = syntax_error(path, &parser, err);
	} else {
		c.doc = &doc;
		ret = load_root(&c, &parser);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return ret;
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
	strcpy(p->source, "command line");
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

	if (strlen(path) >= sizeof(p->source)) {
		policy_errf(err, "%.64s...: path too long", path);
		return -ENAMETOOLONG;
	}
	ret = name_from_path(p, path, err);
	if (ret)
		return ret;
	f = open_policy(path, err, &ret);
	if (!f)
		return ret;
	strcpy(p->source, path);
	ret = load_stream(p, path, f, err);
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
