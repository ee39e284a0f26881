/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MOAT_PROBE_H
#define MOAT_PROBE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Does a BPF-LSM program load and attach on this host? Probed once by
 * loading and attaching a real program (helper and LSM lists lie under
 * lockdown), cached in MOAT_PROBE_CACHE. WHY says what happened.
 */
bool moat_lsm_usable(char *why, size_t len);

#endif
