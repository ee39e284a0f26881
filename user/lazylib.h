/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared libraries loaded on first use, not at exec (issue 18). libldns
 * (with libssl and libcrypto) and libsystemd (with libgcrypt, liblz4,
 * libzstd, liblzma, libcap) cost ~5.5 ms of page faults and relocations
 * at every start of a moat-bpf process on this machine kind, and
 * `docker run` starts six (moat-runc for create, start and two deletes,
 * the two hooks) that, but for the hook's resolv.conf, never call either.
 * Only the daemon and the DNS code use them.
 */
#ifndef MOAT_LAZYLIB_H
#define MOAT_LAZYLIB_H

enum lazylib { LAZY_LDNS, LAZY_SYSTEMD, LAZY__N };

/*
 * SYM of library LIB, the library opened the first time. A library that
 * the package depends on and that cannot be opened ends the process with
 * one line and 127, as the dynamic loader does at exec.
 */
void *lazylib_sym(enum lazylib lib, const char *sym);

#endif
