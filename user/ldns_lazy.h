/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ldns, opened on first use (lazylib.h): include this instead of
 * <ldns/ldns.h>. Every ldns function moat-bpf calls is named once in
 * MOAT_LDNS_FNS and once below as a macro that calls it through a table
 * filled by dlsym, with ldns's own prototype (__typeof__). One missing
 * from the lists is an undefined reference at link time: the binary does
 * not link ldns.
 */
#ifndef MOAT_LDNS_LAZY_H
#define MOAT_LDNS_LAZY_H

#include <ldns/ldns.h>

#define MOAT_LDNS_FNS(X) \
	X(ldns_dname2canonical) \
	X(ldns_dname_clone_from) \
	X(ldns_dname_compare) \
	X(ldns_dname_label_count) \
	X(ldns_dname_new_frm_str) \
	X(ldns_pkt2wire) \
	X(ldns_pkt_ancount) \
	X(ldns_pkt_answer) \
	X(ldns_pkt_cd) \
	X(ldns_pkt_edns) \
	X(ldns_pkt_edns_do) \
	X(ldns_pkt_edns_udp_size) \
	X(ldns_pkt_free) \
	X(ldns_pkt_get_opcode) \
	X(ldns_pkt_id) \
	X(ldns_pkt_new) \
	X(ldns_pkt_nscount) \
	X(ldns_pkt_push_rr) \
	X(ldns_pkt_qdcount) \
	X(ldns_pkt_qr) \
	X(ldns_pkt_question) \
	X(ldns_pkt_rd) \
	X(ldns_pkt_set_cd) \
	X(ldns_pkt_set_edns_do) \
	X(ldns_pkt_set_edns_udp_size) \
	X(ldns_pkt_set_id) \
	X(ldns_pkt_set_opcode) \
	X(ldns_pkt_set_qr) \
	X(ldns_pkt_set_ra) \
	X(ldns_pkt_set_rcode) \
	X(ldns_pkt_set_rd) \
	X(ldns_pkt_tc) \
	X(ldns_pkt_tsig) \
	X(ldns_rdf2native_int16) \
	X(ldns_rdf2str) \
	X(ldns_rdf_clone) \
	X(ldns_rdf_data) \
	X(ldns_rdf_deep_free) \
	X(ldns_rdf_get_type) \
	X(ldns_rdf_size) \
	X(ldns_resolver_deep_free) \
	X(ldns_resolver_domain) \
	X(ldns_resolver_nameserver_count) \
	X(ldns_resolver_nameservers) \
	X(ldns_resolver_new_frm_file) \
	X(ldns_resolver_searchlist) \
	X(ldns_resolver_searchlist_count) \
	X(ldns_rr_clone) \
	X(ldns_rr_free) \
	X(ldns_rr_get_class) \
	X(ldns_rr_get_type) \
	X(ldns_rr_list_rr) \
	X(ldns_rr_list_rr_count) \
	X(ldns_rr_owner) \
	X(ldns_rr_rd_count) \
	X(ldns_rr_rdf) \
	X(ldns_rr_ttl) \
	X(ldns_wire2pkt)

struct moat_ldns {
#define MOAT_LDNS_FIELD(f) __typeof__(f) *f;
	MOAT_LDNS_FNS(MOAT_LDNS_FIELD)
#undef MOAT_LDNS_FIELD
};

/* The table, filled the first time (lazylib.c). */
const struct moat_ldns *moat_ldns(void);

#ifndef MOAT_LDNS_LAZY_IMPL
#define ldns_dname2canonical (moat_ldns()->ldns_dname2canonical)
#define ldns_dname_clone_from (moat_ldns()->ldns_dname_clone_from)
#define ldns_dname_compare (moat_ldns()->ldns_dname_compare)
#define ldns_dname_label_count (moat_ldns()->ldns_dname_label_count)
#define ldns_dname_new_frm_str (moat_ldns()->ldns_dname_new_frm_str)
#define ldns_pkt2wire (moat_ldns()->ldns_pkt2wire)
#define ldns_pkt_ancount (moat_ldns()->ldns_pkt_ancount)
#define ldns_pkt_answer (moat_ldns()->ldns_pkt_answer)
#define ldns_pkt_cd (moat_ldns()->ldns_pkt_cd)
#define ldns_pkt_edns (moat_ldns()->ldns_pkt_edns)
#define ldns_pkt_edns_do (moat_ldns()->ldns_pkt_edns_do)
#define ldns_pkt_edns_udp_size (moat_ldns()->ldns_pkt_edns_udp_size)
#define ldns_pkt_free (moat_ldns()->ldns_pkt_free)
#define ldns_pkt_get_opcode (moat_ldns()->ldns_pkt_get_opcode)
#define ldns_pkt_id (moat_ldns()->ldns_pkt_id)
#define ldns_pkt_new (moat_ldns()->ldns_pkt_new)
#define ldns_pkt_nscount (moat_ldns()->ldns_pkt_nscount)
#define ldns_pkt_push_rr (moat_ldns()->ldns_pkt_push_rr)
#define ldns_pkt_qdcount (moat_ldns()->ldns_pkt_qdcount)
#define ldns_pkt_qr (moat_ldns()->ldns_pkt_qr)
#define ldns_pkt_question (moat_ldns()->ldns_pkt_question)
#define ldns_pkt_rd (moat_ldns()->ldns_pkt_rd)
#define ldns_pkt_set_cd (moat_ldns()->ldns_pkt_set_cd)
#define ldns_pkt_set_edns_do (moat_ldns()->ldns_pkt_set_edns_do)
#define ldns_pkt_set_edns_udp_size (moat_ldns()->ldns_pkt_set_edns_udp_size)
#define ldns_pkt_set_id (moat_ldns()->ldns_pkt_set_id)
#define ldns_pkt_set_opcode (moat_ldns()->ldns_pkt_set_opcode)
#define ldns_pkt_set_qr (moat_ldns()->ldns_pkt_set_qr)
#define ldns_pkt_set_ra (moat_ldns()->ldns_pkt_set_ra)
#define ldns_pkt_set_rcode (moat_ldns()->ldns_pkt_set_rcode)
#define ldns_pkt_set_rd (moat_ldns()->ldns_pkt_set_rd)
#define ldns_pkt_tc (moat_ldns()->ldns_pkt_tc)
#define ldns_pkt_tsig (moat_ldns()->ldns_pkt_tsig)
#define ldns_rdf2native_int16 (moat_ldns()->ldns_rdf2native_int16)
#define ldns_rdf2str (moat_ldns()->ldns_rdf2str)
#define ldns_rdf_clone (moat_ldns()->ldns_rdf_clone)
#define ldns_rdf_data (moat_ldns()->ldns_rdf_data)
#define ldns_rdf_deep_free (moat_ldns()->ldns_rdf_deep_free)
#define ldns_rdf_get_type (moat_ldns()->ldns_rdf_get_type)
#define ldns_rdf_size (moat_ldns()->ldns_rdf_size)
#define ldns_resolver_deep_free (moat_ldns()->ldns_resolver_deep_free)
#define ldns_resolver_domain (moat_ldns()->ldns_resolver_domain)
#define ldns_resolver_nameserver_count (moat_ldns()->ldns_resolver_nameserver_count)
#define ldns_resolver_nameservers (moat_ldns()->ldns_resolver_nameservers)
#define ldns_resolver_new_frm_file (moat_ldns()->ldns_resolver_new_frm_file)
#define ldns_resolver_searchlist (moat_ldns()->ldns_resolver_searchlist)
#define ldns_resolver_searchlist_count (moat_ldns()->ldns_resolver_searchlist_count)
#define ldns_rr_clone (moat_ldns()->ldns_rr_clone)
#define ldns_rr_free (moat_ldns()->ldns_rr_free)
#define ldns_rr_get_class (moat_ldns()->ldns_rr_get_class)
#define ldns_rr_get_type (moat_ldns()->ldns_rr_get_type)
#define ldns_rr_list_rr (moat_ldns()->ldns_rr_list_rr)
#define ldns_rr_list_rr_count (moat_ldns()->ldns_rr_list_rr_count)
#define ldns_rr_owner (moat_ldns()->ldns_rr_owner)
#define ldns_rr_rd_count (moat_ldns()->ldns_rr_rd_count)
#define ldns_rr_rdf (moat_ldns()->ldns_rr_rdf)
#define ldns_rr_ttl (moat_ldns()->ldns_rr_ttl)
#define ldns_wire2pkt (moat_ldns()->ldns_wire2pkt)
#endif

#endif
