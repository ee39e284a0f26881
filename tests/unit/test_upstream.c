// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * user/policy.c upstream_parse(): the one grammar of a DNS upstream, for
 * a policy's dns.upstream and the daemon's --dns-upstream and resolv.conf
 * nameservers alike (the daemon used to have its own parser).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include "policy.h"
#include "table.h"

struct upstream_case {
	const char *desc, *in;
	int ret, family;
	const char *addr;	/* as inet_ntop writes it */
	unsigned int port;
};

static const struct upstream_case upstream_cases[] = {
	{ "IPv4", "198.51.100.53", 0, AF_INET, "198.51.100.53", 53 },
	{ "IPv4 and port", "198.51.100.53:5353", 0, AF_INET, "198.51.100.53", 5353 },
	{ "bare IPv6", "2001:db8::53", 0, AF_INET6, "2001:db8::53", 53 },
	/* the socket must be AF_INET: moat_daemon_socks lists it by family */
	{ "IPv4-mapped is IPv4", "::ffff:198.51.100.53", 0, AF_INET, "198.51.100.53", 53 },
	{ "IPv4-mapped and port", "[::ffff:198.51.100.53]:5353", 0, AF_INET, "198.51.100.53", 5353 },
	{ "IPv6 in brackets", "[2001:db8::53]", 0, AF_INET6, "2001:db8::53", 53 },
	{ "IPv6 and port", "[2001:db8::53]:5353", 0, AF_INET6, "2001:db8::53", 5353 },
	{ "highest port", "198.51.100.53:65535", 0, AF_INET, "198.51.100.53", 65535 },
	{ "a name", "dns.example", -EINVAL, 0, NULL, 0 },
	{ "port 0", "198.51.100.53:0", -EINVAL, 0, NULL, 0 },
	{ "port past 65535", "198.51.100.53:65536", -EINVAL, 0, NULL, 0 },
	{ "signed port", "198.51.100.53:+53", -EINVAL, 0, NULL, 0 },
	{ "empty port", "198.51.100.53:", -EINVAL, 0, NULL, 0 },
	{ "empty port after brackets", "[2001:db8::53]:", -EINVAL, 0, NULL, 0 },
	{ "IPv4 in brackets", "[198.51.100.53]:53", -EINVAL, 0, NULL, 0 },
	{ "bytes after brackets", "[2001:db8::53]53", -EINVAL, 0, NULL, 0 },
	{ "unclosed bracket", "[2001:db8::53", -EINVAL, 0, NULL, 0 },
	{ "empty", "", -EINVAL, 0, NULL, 0 },
	{ "too long", "198.51.100.53:0000000000000000000000000000000000000000000000000000053",
	  -EINVAL, 0, NULL, 0 },
};

ParameterizedTestParameters(upstream, parse)
{
	ROW_INDICES(upstream_cases);
}

ParameterizedTest(size_t *i, upstream, parse)
{
	const struct upstream_case *c = &upstream_cases[*i];
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char addr[INET6_ADDRSTRLEN];
	const void *a;
	unsigned int port;

	cr_assert_eq(upstream_parse(c->in, &ss, &len), c->ret, "%s: '%s'",
		     c->desc, c->in);
	cr_assert_eq(upstream_parse(c->in, NULL, NULL), c->ret, "%s: check only",
		     c->desc);
	if (c->ret)
		return;
	cr_assert_eq(ss.ss_family, c->family, "%s", c->desc);
	if (c->family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		cr_assert_eq(len, sizeof(*in), "%s", c->desc);
		a = &in->sin_addr;
		port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		cr_assert_eq(len, sizeof(*in6), "%s", c->desc);
		a = &in6->sin6_addr;
		port = ntohs(in6->sin6_port);
	}
	cr_assert_str_eq(inet_ntop(c->family, a, addr, sizeof(addr)), c->addr,
			 "%s", c->desc);
	cr_assert_eq(port, c->port, "%s", c->desc);
}
