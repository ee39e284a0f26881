// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "portrange.h"

/* A closed port interval of one mask; int so that last + 1 cannot wrap. */
struct span {
	int first;
	int last;
	__u8 protos;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->protos != y->protos)
		return x->protos < y->protos ? -1 : 1;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (x->last > y->last) - (x->last < y->last);
}

/* Port order first: how the result is written. */
static int port_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	if (x->last != y->last)
		return x->last < y->last ? -1 : 1;
	return (x->protos > y->protos) - (x->protos < y->protos);
}

/* Sort; merge overlapping or touching spans of one mask. Returns count. */
static size_t merge(struct span *s, size_t n)
{
	size_t i, out = 0;

	if (!n)
		return 0;
	qsort(s, n, sizeof(*s), span_cmp);
	for (i = 1; i < n; i++) {
		if (s[i].protos == s[out].protos &&
		    s[i].first <= s[out].last + 1) {
			if (s[i].last > s[out].last)
				s[out].last = s[i].last;
		} else {
			s[++out] = s[i];
		}
	}
	return out + 1;
}

/*
 * TCP and UDP spans apart (a TCP+UDP range gives one of each), merged,
 * then identical TCP and UDP spans joined back into one TCP+UDP range.
 */
static size_t per_proto(struct span *s, size_t n_in,
			const struct moat_port_range *in)
{
	size_t i, n = 0, out = 0;

	for (i = 0; i < n_in; i++) {
		if (in[i].protos & MOAT_PROTO_TCP)
			s[n++] = (struct span){ in[i].first, in[i].last,
						MOAT_PROTO_TCP };
		if (in[i].protos & MOAT_PROTO_UDP)
			s[n++] = (struct span){ in[i].first, in[i].last,
						MOAT_PROTO_UDP };
	}
	n = merge(s, n);
	qsort(s, n, sizeof(*s), port_cmp);
	for (i = 0; i < n; i++) {
		s[out] = s[i];
		if (i + 1 < n && s[i + 1].first == s[i].first &&
		    s[i + 1].last == s[i].last) {
			s[out].protos = MOAT_PROTO_ALL;
			i++;
		}
		out++;
	}
	return out;
}

static bool inside(const struct span *in, const struct span *of)
{
	return in != of && (of->protos & in->protos) == in->protos &&
	       of->first <= in->first && of->last >= in->last &&
	       (of->protos != in->protos || span_cmp(of, in) < 0);
}

static size_t per_mask(struct span *s, size_t n_in,
		       const struct moat_port_range *in)
{
	size_t i, j, n, out = 0;

	for (i = 0; i < n_in; i++)
		s[i] = (struct span){ in[i].first, in[i].last, in[i].protos };
	n = merge(s, n_in);
	/* n is small here (a map value's ranges and an answer's): n² is fine */
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++)
			if (inside(&s[i], &s[j]))
				break;
		if (j == n)
			s[out++] = s[i];
	}
	qsort(s, out, sizeof(*s), port_cmp);
	return out;
}

size_t portrange_union(const struct moat_port_range *in, size_t n,
		       enum portrange_mode mode, struct moat_port_range *out,
		       size_t cap)
{
	struct span small[4 * MOAT_MAX_PORT_RANGES], *s = small;
	size_t i, need;

	if (!n)
		return 0;
	/* the learner's calls fit on the stack: no allocation per answer */
	if (2 * n > sizeof(small) / sizeof(small[0]))
		s = calloc(2 * n, sizeof(*s));
	if (!s)
		return (size_t)-1;
	need = mode == PORTRANGE_PER_PROTO ? per_proto(s, n, in) :
					     per_mask(s, n, in);
	for (i = 0; i < need && i < cap; i++)
		out[i] = (struct moat_port_range){
			.first = (__u16)s[i].first, .last = (__u16)s[i].last,
			.protos = s[i].protos,
		};
	if (s != small)
		free(s);
	return need;
}

int portrange_add(struct moat_addr_val *v, const struct moat_port_range *add,
		  size_t n)
{
	struct moat_port_range all[2 * MOAT_MAX_PORT_RANGES], *in = all;
	struct moat_port_range out[MOAT_MAX_PORT_RANGES];
	size_t have = v->n_ranges, need;

	if (have > MOAT_MAX_PORT_RANGES)
		have = MOAT_MAX_PORT_RANGES;
	if (have + n > sizeof(all) / sizeof(all[0])) {
		in = calloc(have + n, sizeof(*in));
		if (!in)
			return -ENOMEM;
	}
	memcpy(in, v->ranges, have * sizeof(*in));
	memcpy(in + have, add, n * sizeof(*in));
	need = portrange_union(in, have + n, PORTRANGE_PER_MASK, out,
			       MOAT_MAX_PORT_RANGES);
	if (in != all)
		free(in);
	if (need == (size_t)-1)
		return -ENOMEM;
	if (need > MOAT_MAX_PORT_RANGES)
		return -ENOSPC;
	memset(v->ranges, 0, sizeof(v->ranges));
	memcpy(v->ranges, out, need * sizeof(*out));
	v->n_ranges = (__u32)need;
	return 0;
}

int ranges_add(struct moat_addr_val *v, __u8 protos, __u16 first, __u16 last)
{
	struct moat_port_range r = {
		.first = first, .last = last, .protos = protos,
	};

	return portrange_add(v, &r, 1);
}
