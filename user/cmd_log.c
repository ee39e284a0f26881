// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * events and log: the denial log. The BPF programs write deny (and audit)
 * records into the moat_events ring buffer; the resolver daemon is their
 * single consumer: it adds the cgroup path, policy and the name an address
 * was learned from, merges its own DNS events, and appends one JSON object
 * per line to MOAT_EVENT_LOG. `moat-bpf log` reads that file; `moat-bpf
 * events` reads the ring directly where no daemon runs, and follows the
 * daemon's log where one does: a ring buffer has one consumer position, so
 * a second reader would take records away from the daemon's log.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include "cgroup.h"
#include "cmd_args.h"
#include "control.h"
#include "events.h"
#include "log.h"
#include "main.h"
#include "state.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int on_event(void *ctx, void *data, size_t len)
{
	json_object *o;

	if (len < sizeof(struct moat_event) ||
	    (((const struct moat_event *)data)->hook == MOAT_HOOK_SK_MSG &&
	     len < sizeof(struct moat_name_event)))
		return 0;
	o = event_to_json(data);
	if (json_output)
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	else
		event_print(stdout, o);
	json_object_put(o);
	fflush(stdout);
	return 0;
}

/* UDP connects that sent nothing, left out of `log` (without --all) */
static unsigned long n_hidden;

static void log_line(char *line, const char *cg, bool all);

/* Print F's lines (those of CG, or all), then follow it if FOLLOW. */
static void log_read(FILE *f, const char *cg, bool all, bool follow)
{
	char *line = NULL;
	size_t cap = 0;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop) {
		ssize_t n = getline(&line, &cap, f);

		if (n > 0) {
			log_line(line, cg, all);
			fflush(stdout);
			continue;
		}
		if (!follow)
			break;
		clearerr(f);
		poll(NULL, 0, 200);
	}
	free(line);
}

/* Does a daemon answer on the control socket (and so consume the ring)? */
static bool daemon_alive(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = MOAT_CONTROL_SOCK };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	alive = !connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return alive;
}

int do_events(int argc, char **argv)
{
	struct ring_buffer *rb = NULL;
	struct moat_state st;
	int err;

	err = cmd_operands(&argc, &argv);
	if (err < 0)
		return err;
	if (err) {
		fprintf(stderr, "Usage: moat-bpf events\n"
			"  follow deny events: the kernel's ring, or the daemon's log\n"
			"  where the daemon consumes the ring\n");
		return 0;
	}
	if (argc) {
		p_err("usage: moat-bpf events");
		return -EINVAL;
	}
	state_init(&st);
	err = state_open(&st, false);
	if (err) {
		if (err == -ENOENT)
			p_err("nothing is loaded: no events to follow");
		goto out;
	}
	if (daemon_alive()) {
		FILE *f = fopen(MOAT_EVENT_LOG, "re");

		if (!f) {
			err = -errno;
			p_errno(err, "%s (the daemon consumes the ring and writes it)",
				MOAT_EVENT_LOG);
			goto out;
		}
		fseek(f, 0, SEEK_END);
		fprintf(stderr, "moat-bpf: the daemon consumes the kernel's ring: "
			"following its log, %s\n", MOAT_EVENT_LOG);
		log_read(f, NULL, true, true);
		fclose(f);
		goto out;
	}
	rb = ring_buffer__new(st.map[M_EVENTS], on_event, NULL, NULL);
	if (!rb) {
		err = -errno;
		p_errno(err, "opening the event ring buffer");
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop) {
		err = ring_buffer__poll(rb, 200);
		if (err == -EINTR)
			break;
		if (err < 0) {
			p_errno(err, "reading events");
			goto out;
		}
	}
	err = 0;
out:
	ring_buffer__free(rb);
	state_close(&st);
	return err;
}

/* Does the record belong to CG (a path below the mount, or an id)? */
static bool log_match(json_object *o, const char *cg)
{
	const char *path = event_jstr(o, "cgroup"), *id = event_jstr(o, "cgroup_id");
	size_t n = strlen(cg);

	if (id && !strcmp(id, cg))
		return true;
	return path && !strncmp(path, cg, n) && (!path[n] || path[n] == '/');
}

static void log_line(char *line, const char *cg, bool all)
{
	json_object *o = json_tokener_parse(line);

	if (!o)
		return;
	if ((!cg || log_match(o, cg)) && !all && !json_output &&
	    event_nothing_sent(o)) {
		n_hidden++;
	} else if (!cg || log_match(o, cg)) {
		if (json_output)
			puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		else
			event_print(stdout, o);
	}
	json_object_put(o);
}

int do_log(int argc, char **argv)
{
	char rel[PATH_MAX], abs[PATH_MAX];
	const char *cg = NULL;
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "json", no_argument, NULL, 'j' },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		HELP_OPTION,
		{ 0 }
	};
	bool follow = false, all = false;
	int opt;
	FILE *f;

	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "fjh", opts)) >= 0) {
		switch (opt) {
		case 'f': follow = true; break;
		case OPT_ALL: all = true; break;
		case 'j': json_output = true; break;
		case OPT_CGROUP:
			/* a path is matched as written below the mount, an id as is */
			free((char *)cg);
			cg = strdup(!cgroup_resolve(optarg, abs, rel) ? rel : optarg);
			break;
		case 'h':
			fprintf(stderr, "Usage: moat-bpf log [-f|--follow] [--json] [--all] "
				"[--cgroup CGROUP|ID]\n"
				"  the denial log the daemon writes (%s)\n", MOAT_EVENT_LOG);
			free((char *)cg);
			return 0;
		default:
			free((char *)cg);
			return cmd_bad_option(argv);
		}
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc) {
		p_err("usage: moat-bpf log [-f] [--json] [--all] [--cgroup CGROUP|ID]");
		free((char *)cg);
		return -EINVAL;
	}
	f = fopen(MOAT_EVENT_LOG, "re");
	if (!f) {
		p_errno(-errno, "%s (is 'moat-bpf daemon' running? it writes the log; "
			"'moat-bpf events' reads the kernel's ring directly)", MOAT_EVENT_LOG);
		return -errno;
	}
	log_read(f, cg, all, follow);
	fclose(f);
	if (n_hidden && !json_output)
		printf("(%lu refused UDP connect()s that sent nothing not shown: "
		       "getaddrinfo sorting its answers, RFC 6724; --all shows them)\n",
		       n_hidden);
	return 0;
}
