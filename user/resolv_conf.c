// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * resolv.conf files, read with ldns: the nameservers and search domains a
 * registration falls back to (see dns.h). Only files the runtime or the
 * administrator wrote are read here; a child of an enforced parent's own
 * resolv.conf is never a source of upstreams (issue 15).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include "ldns_lazy.h"

#include "dns.h"

/*
 * A nameserver the workload could stand in for (the daemon asks from
 * inside the workload's netns, where a root workload can bind
 * 127.0.0.53:53). Docker's embedded DNS (127.0.0.11) is the exception
 * callers may allow: Docker redirects port 53 there to a port of its own.
 */
static bool workload_ns(int family, const uint8_t *a, bool docker_dns)
{
	if (docker_dns && family == AF_INET &&
	    a[0] == 127 && a[1] == 0 && a[2] == 0 && a[3] == 11)
		return false;
	return dns_addr_local_scope(family, a);
}

/*
 * A regular file of sane size (never a FIFO, a device, a symlink), read
 * by ldns, which knows resolv.conf's syntax: nameserver, search, options.
 */
static int resolv_read(const char *path, ldns_resolver **res)
{
	struct stat st;

	*res = NULL;
	if (lstat(path, &st) || !S_ISREG(st.st_mode) || st.st_size > 65536)
		return -EBADMSG;
	if (ldns_resolver_new_frm_file(res, path) != LDNS_STATUS_OK)
		return -EBADMSG;
	return 0;
}

int dns_resolv_search(const char *path, char (*out)[DNS_NAME_STR_LEN],
		      size_t max, size_t *n)
{
	ldns_resolver *res;
	ldns_rdf **list;
	size_t count;

	*n = 0;
	if (resolv_read(path, &res))
		return -EBADMSG;
	list = ldns_resolver_searchlist(res);
	count = ldns_resolver_searchlist_count(res);
	if (!count && ldns_resolver_domain(res)) {
		list = (ldns_rdf *[]){ ldns_resolver_domain(res) };
		count = 1;
	}
	for (size_t i = 0; i < count && *n < max; i++) {
		char *s = ldns_rdf2str(list[i]);
		size_t len = s ? strlen(s) : 0;

		if (len && s[len - 1] == '.')
			s[--len] = 0;
		if (len && len < DNS_NAME_STR_LEN) {
			for (size_t j = 0; j < len; j++)
				s[j] = tolower((unsigned char)s[j]);
			snprintf(out[(*n)++], DNS_NAME_STR_LEN, "%s", s);
		}
		free(s);
	}
	ldns_resolver_deep_free(res);
	return 0;
}

int dns_resolv_conf(const char *path, bool docker_dns,
		    char (*out)[DNS_ADDR_STR_LEN], size_t max, size_t *n,
		    size_t *skipped)
{
	ldns_resolver *res;
	ldns_rdf **ns;

	*n = *skipped = 0;
	if (resolv_read(path, &res))
		return -EBADMSG;
	ns = ldns_resolver_nameservers(res);
	for (size_t i = 0; i < ldns_resolver_nameserver_count(res) && *n < max; i++) {
		int family = ldns_rdf_get_type(ns[i]) == LDNS_RDF_TYPE_A ? AF_INET :
			     ldns_rdf_get_type(ns[i]) == LDNS_RDF_TYPE_AAAA ? AF_INET6 : 0;
		char a[INET6_ADDRSTRLEN];

		if (!family || ldns_rdf_size(ns[i]) != (family == AF_INET ? 4u : 16u))
			continue;
		if (workload_ns(family, ldns_rdf_data(ns[i]), docker_dns)) {
			(*skipped)++;
			continue;
		}
		inet_ntop(family, ldns_rdf_data(ns[i]), a, sizeof(a));
		snprintf(out[(*n)++], DNS_ADDR_STR_LEN,
			 family == AF_INET ? "%s" : "[%s]:53", a);
	}
	ldns_resolver_deep_free(res);
	return 0;
}
