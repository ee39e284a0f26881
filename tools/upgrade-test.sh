#!/usr/bin/env bash
# Upgrade without a gap: traffic from an enforced cgroup is judged
# continuously while the pinned set is upgraded to a build with another
# layout version and back. Every attempt to the blocked host must fail
# with EPERM and leave no trace at the host; the allowed host must keep
# answering. Two kinds of attempts run side by side: whole TCP exchanges
# (moat-test-peer, a few milliseconds each: end to end, with the world's
# log), and a prober that connect()s two UDP sockets in turn, a
# microsecond or two each (connect() runs the same decision and sends
# nothing), fast enough to see a switch that leaves the hooks without a
# policy or without programs for a few microseconds. Run as root; env
# MOAT_BIN, MOAT_PEER, OUTPUT (build dir); a C compiler (CC, default cc).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
: "${MOAT_BIN:?}" "${MOAT_PEER:?}" "${OUTPUT:?}"
prefix=moat-upg
alt=$OUTPUT/upgrade-alt
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
cg=$cg2/moat-upgrade-test
log=/run/moat-test/$prefix/world.log
out=$(mktemp -d)

cleanup() {
	[ -n "${loop_pid:-}" ] && kill "$loop_pid" 2>/dev/null || true
	[ -n "${probe_pid:-}" ] && kill "$probe_pid" 2>/dev/null || true
	"$MOAT_BIN" detach "$cg" >/dev/null 2>&1 || true
	rmdir "$cg" 2>/dev/null || true
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1 || true
	rm -rf "$out"
}
trap cleanup EXIT

# a second build whose pinned layout differs (version 99)
make -s -C "$repo" OUTPUT="$alt" MOAT_DEFS=-DMOAT_LAYOUT_VERSION=99 "$alt/moat-bpf" >/dev/null

"$repo/tools/testnet.sh" up "$prefix" >/dev/null
mkdir -p "$cg"
# unload refuses another layout's set: move it to this build first
"$MOAT_BIN" unload >/dev/null 2>&1 || { "$MOAT_BIN" upgrade >/dev/null && "$MOAT_BIN" unload >/dev/null; }
"$MOAT_BIN" attach "$cg" --allow tcp://198.51.100.7:80 --allow udp://198.51.100.7:80 >/dev/null
before=$(grep -c ' 198.51.100.8:' "$log" || true)

# the fast prober: UDP connect() to the allowed and the blocked host in
# turn until SIGTERM; prints probes, blocked ones allowed, allowed ones
# denied, and other errors
cat >"$out/prober.c" <<'EOF'
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(void)
{
	struct sockaddr_in to[2] = { { .sin_family = AF_INET, .sin_port = htons(80) },
				     { .sin_family = AF_INET, .sin_port = htons(80) } };
	long n = 0, leaked = 0, denied = 0, other = 0;
	int fd[2], h;

	inet_pton(AF_INET, "198.51.100.7", &to[0].sin_addr);	/* allowed */
	inet_pton(AF_INET, "198.51.100.8", &to[1].sin_addr);	/* blocked */
	fd[0] = socket(AF_INET, SOCK_DGRAM, 0);
	fd[1] = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd[0] < 0 || fd[1] < 0)
		return perror("socket"), 1;
	signal(SIGTERM, on_term);
	printf("ready\n");
	fflush(stdout);
	for (; !stop; n++) {
		h = n & 1;
		if (!connect(fd[h], (struct sockaddr *)&to[h], sizeof(to[h])))
			leaked += h;
		else if (errno == EPERM)
			denied += !h;
		else
			other++;
	}
	printf("%ld %ld %ld %ld\n", n, leaked, denied, other);
	return 0;
}
EOF
"${CC:-cc}" -O2 -o "$out/prober" "$out/prober.c"

# judged continuously: blocked and allowed attempts, alternating
(
	while :; do
		"$MOAT_PEER" client --cgroup "$cg" --netns "/run/netns/$prefix-client" \
			tcp 198.51.100.8 80 >>"$out/blocked" || true
		"$MOAT_PEER" client --cgroup "$cg" --netns "/run/netns/$prefix-client" \
			tcp 198.51.100.7 80 >>"$out/allowed" || true
	done
) &
loop_pid=$!
sh -c 'echo $$ >"$1/cgroup.procs" && exec nsenter --net="$2" "$3"' sh "$cg" \
	"/run/netns/$prefix-client" "$out/prober" >"$out/probes" 2>&1 &
probe_pid=$!
sleep 1
grep -q '^ready$' "$out/probes" || { cat "$out/probes" >&2; echo "upgrade-test: the prober did not start" >&2; exit 1; }
"$alt/moat-bpf" upgrade
"$alt/moat-bpf" status --json | grep -q '"pinned_layout":99' ||
	{ echo "upgrade-test: the alt build does not report layout 99" >&2; exit 1; }
sleep 1
"$MOAT_BIN" upgrade
sleep 1
kill "$loop_pid"
wait "$loop_pid" 2>/dev/null || true
loop_pid=
kill "$probe_pid"
wait "$probe_pid" || true
probe_pid=
read -r pn p_leaked p_denied p_other < <(tail -n 1 "$out/probes")

nb=$(wc -l <"$out/blocked"); na=$(wc -l <"$out/allowed")
bad_b=$(grep -vc '^EPERM$' "$out/blocked" || true)
bad_a=$(grep -vc '^OK$' "$out/allowed" || true)
after=$(grep -c ' 198.51.100.8:' "$log" || true)
echo "upgrade-test: blocked host: $nb attempts, $bad_b not EPERM; allowed host: $na attempts, $bad_a not OK; packets at the blocked host: $((after - before))"
echo "upgrade-test: prober: $pn connects, blocked host allowed $p_leaked times, allowed host denied $p_denied times, other errors $p_other"
[ "$nb" -gt 10 ] && [ "$na" -gt 10 ] && [ "$bad_b" -eq 0 ] && [ "$bad_a" -eq 0 ] &&
	[ "$after" -eq "$before" ] && [ "${pn:-0}" -gt 100000 ] && [ "$p_leaked" -eq 0 ] &&
	[ "$p_denied" -eq 0 ] && [ "$p_other" -eq 0 ] || { echo "upgrade-test: FAIL" >&2; exit 1; }
"$MOAT_BIN" status --json | grep -q "\"pinned_layout\":$(sed -n 's/^#define MOAT_LAYOUT_VERSION[[:space:]]*\([0-9]*\).*/\1/p' "$repo/include/moat_consts.h")" ||
	{ echo "upgrade-test: not back on this build's layout" >&2; exit 1; }
echo "upgrade-test: PASS"
