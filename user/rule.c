// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Rule text to struct moat_rule and back. The grammar is in policy.h.
 * Addresses are parsed by inet_pton only; everything else here is the
 * small amount of syntax around them (scheme, brackets, prefix, ports).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy.h"

/* Everything an error message needs: "WHERE: rule 'TEXT': what". */
struct rule_ctx {
	const char *where;
	const char *text;
	struct moat_err *err;
};

static int bad(const struct rule_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(const struct rule_ctx *c, const char *fmt, ...)
{
	char what[MOAT_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	policy_errf(c->err, "%s: rule '%s': %s", c->where, c->text, what);
	return -EINVAL;
}

/* Digits only, no sign or spaces; values past @max are reported as such. */
static int parse_num(const char *s, size_t n, unsigned long max,
		     unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return -ERANGE;
	}
	*out = v;
	return 0;
}

static int parse_port(const struct rule_ctx *c, const char *s, size_t n,
		      __u16 *out)
{
	unsigned long v;
	int ret;

	ret = parse_num(s, n, 65535, &v);
	if (ret == -ERANGE)
		return bad(c, "port %.*s is out of range (1-65535)", (int)n, s);
	if (ret)
		return bad(c, "invalid port '%.*s'", (int)n, s);
	if (v == 0)
		return bad(c, "port 0 is not allowed (leave the port out to mean every port)");
	*out = (__u16)v;
	return 0;
}

/* @s is what follows the ':' after the target; NULL means every port. */
static int parse_ports(const struct rule_ctx *c, const char *s,
		       struct moat_rule *r)
{
	const char *dash;
	int ret;

	r->port_first = 0;
	r->port_last = 65535;
	if (!s)
		return 0;
	if (!*s)
		return bad(c, "missing port after ':'");
	dash = strchr(s, '-');
	if (!dash) {
		ret = parse_port(c, s, strlen(s), &r->port_first);
		r->port_last = r->port_first;
		return ret;
	}
	ret = parse_port(c, s, (size_t)(dash - s), &r->port_first);
	if (!ret)
		ret = parse_port(c, dash + 1, strlen(dash + 1), &r->port_last);
	if (ret)
		return ret;
	if (r->port_first > r->port_last)
		return bad(c, "port range %u-%u is reversed (first must not exceed last)",
			   r->port_first, r->port_last);
	return 0;
}

/* Returns the text after "scheme://", or after nothing if there is none. */
static int parse_scheme(const struct rule_ctx *c, char *s, char **rest,
			struct moat_rule *r)
{
	char *sep = strstr(s, "://");

	r->protos = MOAT_PROTO_ALL;
	*rest = s;
	if (!sep)
		return 0;
	*sep = '\0';
	if (!strcasecmp(s, "tcp"))
		r->protos = MOAT_PROTO_TCP;
	else if (!strcasecmp(s, "udp"))
		r->protos = MOAT_PROTO_UDP;
	else
		return bad(c, "unknown scheme '%s://' (only tcp:// and udp://)", s);
	*rest = sep + 3;
	return 0;
}

/*
 * Split "TARGET[:PORTS]" in place. A bracketed IPv6 address hides its
 * colons; outside brackets only one ':' may appear, the port separator.
 */
static int split_target(const struct rule_ctx *c, char *s, char **ports)
{
	char *colon;

	*ports = NULL;
	if (*s == '[') {
		char *close = strchr(s, ']');

		if (!close)
			return bad(c, "missing ']' after the IPv6 address");
		colon = strchr(close, ':');
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			return bad(c, "more than one ':'; IPv6 addresses must be in brackets, e.g. [2001:db8::1]:443");
	}
	if (colon) {
		*colon = '\0';
		*ports = colon + 1;
	}
	return 0;
}

static bool host_bits_clear(const __u8 *addr, unsigned int len,
			    unsigned int full)
{
	unsigned int bit;

	for (bit = len; bit < full; bit++)
		if (addr[bit / 8] & (0x80 >> (bit % 8)))
			return false;
	return true;
}

static void clear_host_bits(__u8 *addr, unsigned int len, unsigned int full)
{
	unsigned int bit;

	for (bit = len; bit < full; bit++)
		addr[bit / 8] &= (__u8)~(0x80 >> (bit % 8));
}

static int parse_prefixlen(const struct rule_ctx *c, const char *s,
			   unsigned int full, __u8 *out)
{
	unsigned long v;

	if (!s) {
		*out = (__u8)full;
		return 0;
	}
	if (parse_num(s, strlen(s), full, &v))
		return bad(c, "invalid prefix length '/%s' (0-%u)", s, full);
	*out = (__u8)v;
	return 0;
}

static const __u8 v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/*
 * The programs judge an IPv4-mapped destination as its IPv4 address, so a
 * rule inside ::ffff:0:0/96 only works as the IPv4 rule it stands for.
 * Shorter IPv6 prefixes that merely contain that range (::/0 .. ::/80)
 * stay IPv6 rules and so never match mapped destinations.
 */
static void unmap_v4(struct moat_rule *r)
{
	if (r->kind != RULE_ADDR6 || r->prefixlen < 96 ||
	    memcmp(r->addr, v4mapped_prefix, sizeof(v4mapped_prefix)))
		return;
	r->kind = RULE_ADDR4;
	memmove(r->addr, r->addr + 12, 4);
	memset(r->addr + 4, 0, 12);
	r->prefixlen -= 96;
}

/* Suggest the rule the user most likely meant: host bits cleared. */
static int host_bits_error(const struct rule_ctx *c, const struct moat_rule *r,
			   unsigned int full)
{
	struct moat_rule fixed = *r;
	char buf[MOAT_RULE_TEXT_LEN];

	clear_host_bits(fixed.addr, fixed.prefixlen, full);
	rule_format(&fixed, buf, sizeof(buf));
	return bad(c, "host bits are set beyond /%u; did you mean '%s'?",
		   r->prefixlen, buf);
}

static int parse_address(const struct rule_ctx *c, char *host, char *len,
			 struct moat_rule *r)
{
	int family = r->kind == RULE_ADDR6 ? AF_INET6 : AF_INET;
	unsigned int full = family == AF_INET6 ? 128 : 32;
	int ret;

	if (inet_pton(family, host, r->addr) != 1)
		return bad(c, "invalid %s address '%s'",
			   family == AF_INET6 ? "IPv6" : "IPv4", host);
	ret = parse_prefixlen(c, len, full, &r->prefixlen);
	if (ret)
		return ret;
	if (!host_bits_clear(r->addr, r->prefixlen, full))
		return host_bits_error(c, r, full);
	unmap_v4(r);
	return 0;
}

static bool label_char_ok(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '_';
}

static int check_label(const struct rule_ctx *c, const char *l, size_t n)
{
	size_t i;

	if (n == 0)
		return bad(c, "empty label in domain name");
	if (n > 63)
		return bad(c, "domain label '%.*s' is longer than 63 characters",
			   (int)n, l);
	for (i = 0; i < n; i++)
		if (!label_char_ok(l[i]))
			return bad(c, "invalid character '%c' in domain name (letters, digits, '-' and '_' only)",
				   l[i]);
	if (l[0] == '-' || l[n - 1] == '-')
		return bad(c, "domain label '%.*s' starts or ends with '-'",
			   (int)n, l);
	return 0;
}

static int parse_domain(const struct rule_ctx *c, char *name,
			struct moat_rule *r)
{
	size_t n;
	char *p;
	int ret;

	r->kind = RULE_DOMAIN;
	if (!strncmp(name, "*.", 2)) {
		r->kind = RULE_WILDCARD;
		name += 2;
	}
	if (strchr(name, '*'))
		return bad(c, "'*' is only allowed as the whole first label, as in *.example.com");
	n = strlen(name);
	if (n && name[n - 1] == '.')
		name[--n] = '\0';
	if (n == 0)
		return bad(c, "empty domain name");
	if (n > MOAT_DOMAIN_LEN - 1)
		return bad(c, "domain name is longer than %d characters",
			   MOAT_DOMAIN_LEN - 1);
	for (p = name; ; p += n + 1) {
		n = strcspn(p, ".");
		ret = check_label(c, p, n);
		if (ret || !p[n])
			break;
	}
	if (ret)
		return ret;
	for (p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	strcpy(r->domain, name);
	return 0;
}

/* Only digits and dots can only have been meant as an IPv4 address. */
static bool looks_ipv4(const char *s)
{
	return s[strspn(s, "0123456789.")] == '\0';
}

static int parse_target(const struct rule_ctx *c, char *target,
			struct moat_rule *r)
{
	/* split_target() made sure a leading '[' has its ']'. */
	char *close = *target == '[' ? strchr(target, ']') : NULL;
	char *len = strchr(close ? close : target, '/');

	if (len)
		*len++ = '\0';
	if (close) {
		if (close[1])
			return bad(c, "unexpected '%s' after ']'", close + 1);
		*close = '\0';
		r->kind = RULE_ADDR6;
		return parse_address(c, target + 1, len, r);
	}
	if (!*target)
		return bad(c, "missing address or domain");
	if (looks_ipv4(target)) {
		r->kind = RULE_ADDR4;
		return parse_address(c, target, len, r);
	}
	if (len)
		return bad(c, "a prefix length only applies to addresses, not to domain names");
	return parse_domain(c, target, r);
}

static bool has_space_or_control(const char *s)
{
	for (; *s; s++)
		if (isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
			return true;
	return false;
}

/*
 * "RULE?names=any": a domain rule whose connections are not judged by
 * their TLS SNI / HTTP Host (SSH, SMTP, databases, h2c, a forward proxy)
 * and which allows QUIC. docs/names.md. Strips the suffix in place.
 */
static bool strip_names_any(char *s)
{
	static const char sfx[] = "?names=any";
	size_t n = strlen(s), k = sizeof(sfx) - 1;

	if (n < k || strcasecmp(s + n - k, sfx))
		return false;
	s[n - k] = '\0';
	return true;
}

int rule_parse(const char *text, const char *where, struct moat_rule *r,
	       struct moat_err *err)
{
	struct rule_ctx c = { .where = where, .text = text ? text : "",
			      .err = err };
	char buf[MOAT_RULE_TEXT_LEN];
	char *target, *ports;
	bool names_any;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!*c.text)
		return bad(&c, "empty rule");
	if (strlen(text) >= sizeof(buf)) {
		char shown[48];

		/* Quote only the start: the message must stay readable. */
		snprintf(shown, sizeof(shown), "%.40s...", text);
		c.text = shown;
		return bad(&c, "longer than %zu characters", sizeof(buf) - 1);
	}
	if (has_space_or_control(text))
		return bad(&c, "contains whitespace or control characters");
	strcpy(r->text, text);
	strcpy(buf, text);
	names_any = strip_names_any(buf);
	ret = parse_scheme(&c, buf, &target, r);
	if (!ret)
		ret = split_target(&c, target, &ports);
	if (!ret)
		ret = parse_ports(&c, ports, r);
	if (!ret)
		ret = parse_target(&c, target, r);
	if (!ret && names_any) {
		if (r->kind != RULE_DOMAIN && r->kind != RULE_WILDCARD)
			return bad(&c, "'?names=any' applies to domain rules only (an address rule is never name-checked)");
		r->protos |= MOAT_PROTO_NAMES_ANY;
	}
	return ret;
}

void rule_prefix_format(int family, const __u8 *addr, unsigned int prefixlen,
			char *buf, size_t len)
{
	unsigned int full = family == AF_INET6 ? 128 : 32;
	char a[INET6_ADDRSTRLEN];
	const char *open = family == AF_INET6 ? "[" : "";
	const char *close = family == AF_INET6 ? "]" : "";

	if (!inet_ntop(family, addr, a, sizeof(a)))
		strcpy(a, "?");
	if (prefixlen == full)
		snprintf(buf, len, "%s%s%s", open, a, close);
	else
		snprintf(buf, len, "%s%s%s/%u", open, a, close, prefixlen);
}

static const char *scheme_of(__u8 protos)
{
	switch (protos & MOAT_PROTO_ALL) {
	case MOAT_PROTO_TCP:
		return "tcp://";
	case MOAT_PROTO_UDP:
		return "udp://";
	default:
		return "";
	}
}

static void target_format(const struct moat_rule *r, char *buf, size_t len)
{
	switch (r->kind) {
	case RULE_ADDR4:
		rule_prefix_format(AF_INET, r->addr, r->prefixlen, buf, len);
		break;
	case RULE_ADDR6:
		rule_prefix_format(AF_INET6, r->addr, r->prefixlen, buf, len);
		break;
	case RULE_WILDCARD:
		snprintf(buf, len, "*.%s", r->domain);
		break;
	default:
		snprintf(buf, len, "%s", r->domain);
		break;
	}
}

void rule_format(const struct moat_rule *r, char *buf, size_t len)
{
	char target[MOAT_DOMAIN_LEN + 8];
	char ports[16] = "";

	target_format(r, target, sizeof(target));
	if (r->port_first == r->port_last)
		snprintf(ports, sizeof(ports), ":%u", r->port_first);
	else if (r->port_first != 0 || r->port_last != 65535)
		snprintf(ports, sizeof(ports), ":%u-%u", r->port_first,
			 r->port_last);
	snprintf(buf, len, "%s%s%s%s", scheme_of(r->protos), target, ports,
		 (r->protos & MOAT_PROTO_NAMES_ANY) ? "?names=any" : "");
}
