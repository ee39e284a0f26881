/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Table-driven criterion tests: one row per case, run by row index. */
#ifndef MOAT_TEST_TABLE_H
#define MOAT_TEST_TABLE_H

#include <stddef.h>
#include <criterion/parameterized.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Parameters 0..N-1 for a table of N rows (criterion crashes on
 * parameters that hold pointers, so rows are passed by index).
 */
#define ROW_INDICES(table)						\
	do {								\
		static size_t idx[ARRAY_SIZE(table)];			\
		size_t i;						\
		for (i = 0; i < ARRAY_SIZE(table); i++)			\
			idx[i] = i;					\
		return cr_make_param_array(size_t, idx, ARRAY_SIZE(table)); \
	} while (0)

#endif
