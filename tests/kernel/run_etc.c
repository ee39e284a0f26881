// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `run --netns NAME` gives CMD the files of /etc/netns/NAME over /etc, as
 * `ip netns exec NAME` does: resolv.conf's search and options lines reach
 * the workload, not only the daemon (issue: run read the file for the
 * upstream, while CMD saw the host's /etc/resolv.conf). The host's /etc
 * stays as it was, and without /etc/netns/NAME CMD sees the host's files.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define NS_NAME		KT_PREFIX "-client"
#define ETC_DIR		"/etc/netns/" NS_NAME

static void etc_cleanup(void)
{
	unlink(ETC_DIR "/resolv.conf");
	unlink(ETC_DIR "/hosts");
	rmdir(ETC_DIR);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	cr_assert(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

KTEST(run_etc, netns_files_reach_cmd)
{
	const char *rc = "search moat-test.example\noptions ndots:3 use-vc\n"
			 "nameserver 198.51.100.53\n";
	const char *hosts = "198.51.100.7 allowed-by-hosts.test\n";
	char *host_rc = read_text("/etc/resolv.conf"), *after;
	struct run_result r;

	cr_assert(host_rc, "cannot read the host's /etc/resolv.conf");
	cr_assert(!mkdir("/etc/netns", 0755) || errno == EEXIST);
	cr_assert(!mkdir(ETC_DIR, 0755) || errno == EEXIST);
	write_file(ETC_DIR "/resolv.conf", rc);
	write_file(ETC_DIR "/hosts", hosts);

	/* both --netns spellings */
	moat(&r, "run --netns %s --allow 198.51.100.7 -- cat /etc/resolv.conf /etc/hosts",
	     NS_NAME);
	cr_expect_eq(r.status, 0, "run: exit %d: %s", r.status, r.err);
	cr_expect(!strncmp(r.out, rc, strlen(rc)) && strstr(r.out, hosts),
		  "CMD saw:\n%s", r.out);
	run_free(&r);
	moat(&r, "run --netns /run/netns/%s --allow 198.51.100.7 -- cat /etc/resolv.conf",
	     NS_NAME);
	cr_expect_eq(r.status, 0, "run: exit %d: %s", r.status, r.err);
	cr_expect_str_eq(r.out, rc, "CMD saw:\n%s", r.out);
	run_free(&r);

	/* the host's file is untouched */
	after = read_text("/etc/resolv.conf");
	cr_expect(after && !strcmp(after, host_rc), "the host's /etc/resolv.conf changed");
	free(after);

	/* without /etc/netns/NAME: the host's own */
	etc_cleanup();
	moat(&r, "run --netns %s --allow 198.51.100.7 -- cat /etc/resolv.conf", NS_NAME);
	cr_expect_eq(r.status, 0, "run: exit %d: %s", r.status, r.err);
	cr_expect_str_eq(r.out, host_rc, "CMD saw:\n%s", r.out);
	run_free(&r);
	free(host_rc);
}
