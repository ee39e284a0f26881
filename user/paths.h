/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every path moat-bpf owns, named here and nowhere else: the pinned BPF
 * state in bpffs, the run-time state under /run, the configuration.
 * Paths that belong to other programs (systemd's, ip-netns's, glibc's)
 * stay next to the code that reads them.
 */
#ifndef MOAT_PATHS_H
#define MOAT_PATHS_H

/* bpffs: one program set and one set of maps per host (state.c). */
#define MOAT_BPFFS		"/sys/fs/bpf"
#define MOAT_PIN_ROOT		MOAT_BPFFS "/moat"
#define MOAT_PIN_MAPS		MOAT_PIN_ROOT "/maps"
#define MOAT_PIN_PROGS		MOAT_PIN_ROOT "/progs"
/* links per cgroup: MOAT_PIN_LINKS/<cgroup id>/<program> (links.c) */
#define MOAT_PIN_LINKS		MOAT_PIN_ROOT "/links"
/* the layout version a different moat-bpf refuses to touch */
#define MOAT_PIN_LAYOUT		MOAT_PIN_MAPS "/moat_layout"

/* /run: state of the writers and of the resolver daemon */
#define MOAT_RUN_DIR		"/run/moat-bpf"
/* every writer holds this exclusive lock (state_lock) */
#define MOAT_LOCK_PATH		MOAT_RUN_DIR "/lock"
/* the resolver daemon's control socket (control.h) */
#define MOAT_CONTROL_SOCK	MOAT_RUN_DIR "/control.sock"
/* held by the running resolver daemon (flock): one at a time */
#define MOAT_DAEMON_LOCK	MOAT_RUN_DIR "/daemon.lock"
/* registrations the daemon re-adopts when it starts: <cgroup id>.json */
#define MOAT_REG_DIR		MOAT_RUN_DIR "/reg"
/* the netns of each registration, bind-mounted: <cgroup id> */
#define MOAT_NETNS_DIR		MOAT_RUN_DIR "/netns"
/* attach records: <cgroup id>.json (record.h) */
#define MOAT_RECORD_DIR		MOAT_RUN_DIR "/attached"
/* OCI hook state per container (oci.c) */
#define MOAT_OCI_DIR		MOAT_RUN_DIR "/oci"
/* containers moat-runc created and has not enforced yet (oci_runc.c) */
#define MOAT_OCI_PENDING_DIR	MOAT_RUN_DIR "/oci-creating"
/* one JSON object per line, written by the daemon (events.h) */
#define MOAT_EVENT_LOG		MOAT_RUN_DIR "/events.log"
/* the cached answer of the BPF-LSM probe (probe.c) */
#define MOAT_PROBE_CACHE	MOAT_RUN_DIR "/probe-lsm"
/* when removed cgroups were last reclaimed (writer's reclaim_due) */
#define MOAT_RECLAIM_STAMP	MOAT_RUN_DIR "/reclaimed"

/* configuration */
#define MOAT_CONFIG_PATH	"/etc/moat-bpf/moat.yaml"
#define MOAT_POLICY_DIR		"/etc/moat-bpf/policies"
/* the one in use: --policy-dir or $MOAT_POLICY_DIR may name another */
extern const char *policy_dir;

#endif
