// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Writes the seed packets of tests/fuzz/corpus-dns/, built with ldns from
 * text records: queries, and answers to the harness' fixed question
 * (id 0x1234, example.com IN A). Run by `make fuzz-corpus`; the output is
 * committed, so a change here shows up as changed seed files.
 *
 * Usage: gen_corpus DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ldns/ldns.h>

#define SEED_ID		0x1234

struct seed {
	const char *file;
	const char *qname;
	ldns_rr_type qtype;
	bool response;
	bool tc;
	bool edns;
	const char *an[8];
	const char *ns[2];
	const char *ar[2];
};

static const struct seed seeds[] = {
	{ .file = "query-a", .qname = "example.com", .qtype = LDNS_RR_TYPE_A },
	{ .file = "query-aaaa-edns", .qname = "WWW.Example.com.",
	  .qtype = LDNS_RR_TYPE_AAAA, .edns = true },
	{ .file = "query-https", .qname = "api.example.com",
	  .qtype = LDNS_RR_TYPE_HTTPS, .edns = true },
	{ .file = "answer-a", .qname = "example.com", .qtype = LDNS_RR_TYPE_A,
	  .response = true,
	  .an = { "example.com. 300 IN A 198.51.100.1",
		  "example.com. 300 IN A 198.51.100.2" } },
	{ .file = "answer-cname-chain", .qname = "example.com",
	  .qtype = LDNS_RR_TYPE_A, .response = true, .edns = true,
	  .an = { "example.com. 600 IN CNAME a.example.net.",
		  "a.example.net. 120 IN CNAME b.example.org.",
		  "evil.example. 300 IN A 203.0.113.66",
		  "b.example.org. 300 IN A 198.51.100.2",
		  "b.example.org. 300 IN AAAA 2001:db8::2" },
	  .ns = { "example.org. 300 IN NS ns.example.org." },
	  .ar = { "ns.example.org. 300 IN A 203.0.113.53" } },
	{ .file = "answer-cname-loop", .qname = "example.com",
	  .qtype = LDNS_RR_TYPE_A, .response = true,
	  .an = { "example.com. 300 IN CNAME a.example.",
		  "a.example. 300 IN CNAME example.com.",
		  "a.example. 300 IN A 198.51.100.5" } },
	{ .file = "answer-https-hints", .qname = "example.com",
	  .qtype = LDNS_RR_TYPE_A, .response = true,
	  .an = { "example.com. 300 IN HTTPS 1 . alpn=h2,h3 "
		  "ipv4hint=198.51.100.9,198.51.100.10 ipv6hint=2001:db8::9",
		  "example.com. 300 IN SVCB 0 svc.example.net." } },
	{ .file = "answer-aaaa-tc", .qname = "example.com",
	  .qtype = LDNS_RR_TYPE_A, .response = true, .tc = true,
	  .an = { "example.com. 300 IN AAAA 2001:db8::1" } },
	{ .file = "answer-nxdomain", .qname = "example.com",
	  .qtype = LDNS_RR_TYPE_A, .response = true,
	  .ns = { "com. 900 IN SOA a.example. b.example. 1 2 3 4 5" } },
};

static int push_all(ldns_pkt *p, ldns_pkt_section sec,
		    const char *const *texts, size_t max)
{
	ldns_rr *rr;
	size_t i;

	for (i = 0; i < max && texts[i]; i++) {
		if (ldns_rr_new_frm_str(&rr, texts[i], 0, NULL, NULL) !=
		    LDNS_STATUS_OK) {
			fprintf(stderr, "gen_corpus: bad record '%s'\n",
				texts[i]);
			return -EINVAL;
		}
		if (!ldns_pkt_push_rr(p, sec, rr)) {
			ldns_rr_free(rr);
			return -ENOMEM;
		}
	}
	return 0;
}

static int write_seed(const char *dir, const struct seed *s)
{
	char path[4096];
	uint8_t *wire = NULL;
	ldns_rdf *name;
	ldns_pkt *p;
	size_t len;
	FILE *f;
	int err = -EINVAL;

	name = ldns_dname_new_frm_str(s->qname);
	if (!name)
		return -EINVAL;
	p = ldns_pkt_query_new(name, s->qtype, LDNS_RR_CLASS_IN, LDNS_RD);
	if (!p)
		return -ENOMEM;
	ldns_pkt_set_id(p, SEED_ID);
	ldns_pkt_set_qr(p, s->response);
	ldns_pkt_set_ra(p, s->response);
	ldns_pkt_set_tc(p, s->tc);
	if (s->edns) {
		ldns_pkt_set_edns_udp_size(p, 1232);
		ldns_pkt_set_edns_do(p, true);
	}
	if (push_all(p, LDNS_SECTION_ANSWER, s->an, 8) ||
	    push_all(p, LDNS_SECTION_AUTHORITY, s->ns, 2) ||
	    push_all(p, LDNS_SECTION_ADDITIONAL, s->ar, 2))
		goto out;
	if (ldns_pkt2wire(&wire, p, &len) != LDNS_STATUS_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/%s", dir, s->file);
	f = fopen(path, "wb");
	if (!f) {
		err = -errno;
		perror(path);
		goto out;
	}
	err = fwrite(wire, 1, len, f) == len ? 0 : -EIO;
	if (fclose(f) && !err)
		err = -EIO;
out:
	free(wire);
	ldns_pkt_free(p);
	return err;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		if (write_seed(argv[1], &seeds[i])) {
			fprintf(stderr, "gen_corpus: %s failed\n",
				seeds[i].file);
			return 1;
		}
	}
	return 0;
}
