#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/hook.sh: what the OCI hook costs on a container's start path
# with many cgroups already enforced (issue 18). Run as root; tools/bench/
# run.sh calls it (HOOK_BENCH=0 skips it), or run it alone with MOAT_BIN
# and OUTPUT set.
#
# HK_N cgroups (default 1000) are enforced first (`moat-bpf attach`, one
# process each). Then HK_ROUNDS (default 50) stand-in containers, each a
# process in its own cgroup and network namespace (a veth pair with an
# address of 198.18.66.0/24, so the hook adds a self rule as for a Docker
# container; no traffic), a bundle whose config.json is shaped like
# Docker's (capabilities, a /etc/resolv.conf bind mount) and the state JSON
# runc passes on stdin:
#   start     `moat-bpf version`, timed the same way right before create:
#             the process start alone (fork, exec, loading the same binary)
#   create    `moat-bpf oci-hook create` timed as a whole process (fork and
#             exec included, as runc runs it); create - start in the same
#             round is the hook's own work, which the issue's goal is about:
#             the start is this machine's price of any process runc spawns
#   poststop  the process killed and its cgroup removed first, as runc
#             does before its poststop hooks, then `oci-hook poststop`
# Two policies take turns (HK_POLICIES, default 2). With HK_BASE_BIN=PATH
# (another build, e.g. main's) each round runs a container under each
# build, the order alternating: before and after a change in one run.
# Then one more create under strace -f -c gives the syscall counts (bpf,
# openat, execve, connect).
#
# Isolation as attach.sh: a private mount namespace with its own bpffs and
# /run/moat-bpf. Output under $OUTPUT/bench: hook.csv, hook.txt.
# Environment: HK_N (1000), HK_ROUNDS (50), HK_POLICIES (2), HK_BASE_BIN.
set -euo pipefail

: "${MOAT_BIN:?set MOAT_BIN (run through make bench)}"
: "${OUTPUT:?set OUTPUT (run through make bench)}"
HK_N=${HK_N:-1000}
HK_ROUNDS=${HK_ROUNDS:-50}
HK_POLICIES=${HK_POLICIES:-2}

[ "$(id -u)" = 0 ] || { echo "hook-bench: must run as root" >&2; exit 1; }

if [ "${MOAT_HK_PRIVATE:-}" != 1 ]; then
	mkdir -p /run/moat-bpf /sys/fs/bpf
	MOAT_HK_PRIVATE=1 exec unshare --mount --propagation private "$0" "$@"
fi
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount -t tmpfs -o mode=0700 tmpfs /run/moat-bpf

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
. "$repo/tools/bench/lib.sh"	# qstats
out=$(realpath -m "$OUTPUT")/bench
wd=$out/hook
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$cg2" ] || { echo "hook-bench: no cgroup2 mount" >&2; exit 1; }
many=moat-hookb-many	# parent of the HK_N enforced cgroups
ctrs=moat-hookb-ctr	# parent of the stand-in containers
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

log() { echo "hook-bench: $*"; }

rm -rf "$wd"
mkdir -p "$wd/policies"
cp "$MOAT_BIN" "$wd/moat-bpf"
MOAT_BIN=$wd/moat-bpf
export MOAT_POLICY_DIR=$wd/policies MOAT_CONFIG=$wd/moat.yaml

ctr_pid=""
cleanup() {
	set +e
	[ -n "$ctr_pid" ] && kill "$ctr_pid" 2>/dev/null
	"$MOAT_BIN" unload >/dev/null 2>&1
	for d in "$many" "$ctrs"; do
		[ -d "$cg2/$d" ] && find "$cg2/$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

p95() { sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.95 + 0.999); if (i < 1) i = 1; print v[i] }'; }

for p in $(seq "$HK_POLICIES"); do
	cat >"$wd/policies/hk$p.yaml" <<-EOF
		allow:
		  - tcp://198.51.100.$p:80
		  - udp://198.51.100.$p:53
		  - tcp://203.0.113.0/24:443
		deny:
		  - tcp://203.0.113.7:443
	EOF
done
echo "default_policy: hk1" >"$wd/moat.yaml"
echo "nameserver 198.51.100.53" >"$wd/resolv.conf"

# bundle DIR: a config.json shaped like Docker's
bundle() {
	local caps='"CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"'
	mkdir -p "$1"
	cat >"$1/config.json" <<-EOF
		{"ociVersion":"1.0.2","root":{"path":"rootfs"},
		 "process":{"args":["/bin/true"],"cwd":"/","env":["PATH=/usr/bin:/bin","HOSTNAME=x"],
		  "capabilities":{"bounding":[$caps],"effective":[$caps],"permitted":[$caps]}},
		 "mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]},
		  {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},
		  {"destination":"/etc/resolv.conf","type":"bind","source":"$wd/resolv.conf","options":["rbind","rprivate"]}]}
	EOF
}

# start_ctr NAME: a process in cgroup $ctrs/NAME and a netns of its own
start_ctr() {
	local cg=$cg2/$ctrs/$1 ready=$wd/$1.ready i
	mkdir -p "$cg"
	rm -f "$ready"
	# shellcheck disable=SC2016 # expanded by the inner shells
	setsid sh -c 'echo $$ >"$1/cgroup.procs" && exec unshare -n sh -c "ip link add v0 type veth peer name v1 && ip addr add 198.18.66.$3/24 dev v0 && ip link set v0 up && touch $2 && exec sleep 600"' \
		sh "$cg" "$ready" "$2" </dev/null >/dev/null 2>&1 &
	ctr_pid=$!
	for i in $(seq 500); do [ -e "$ready" ] && return 0; sleep 0.01; done
	echo "hook-bench: stand-in container $1 did not start" >&2
	exit 1
}

stop_ctr() {
	kill "$ctr_pid" 2>/dev/null
	wait "$ctr_pid" 2>/dev/null || true
	ctr_pid=""
	rmdir "$cg2/$ctrs/$1"
}

state() {	# state ID PID BUNDLE
	printf '{"ociVersion":"1.0.2","id":"%s","status":"creating","pid":%d,"bundle":"%s","annotations":{}}' "$1" "$2" "$3"
}

timed_hook() {	# timed_hook BIN STAGE ID PID [--policy P] -> us
	local bin=$1 stage=$2 id=$3 pid=$4 t0 t1
	shift 4
	state "$id" "$pid" "$wd/b-$id" >"$wd/state.json"
	t0=$EPOCHREALTIME
	"$bin" oci-hook "$stage" "$@" <"$wd/state.json" 2>"$wd/hook.err" ||
		{ cat "$wd/hook.err" >&2; echo "hook-bench: oci-hook $stage failed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", (b - a) * 1e6 }'
}

timed_start() {	# timed_start BIN -> us: the same spawn, a command that only prints
	local t0 t1
	t0=$EPOCHREALTIME
	"$1" version </dev/null >/dev/null 2>"$wd/hook.err" ||
		{ cat "$wd/hook.err" >&2; echo "hook-bench: version failed" >&2; exit 1; }
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", (b - a) * 1e6 }'
}

# --- HK_N enforced cgroups --------------------------------------------------
mkdir -p "$cg2/$many" "$cg2/$ctrs"
log "enforcing $HK_N cgroups"
for i in $(seq "$HK_N"); do
	mkdir -p "$cg2/$many/c$i"
	o=$("$MOAT_BIN" attach "$many/c$i" --allow "tcp://198.51.100.7:80" 2>&1) ||
		{ echo "$o" >&2; exit 1; }
done
for i in $(seq 5); do /bin/true; done

# --- the rounds ------------------------------------------------------------------
# one stand-in container per build and round, the builds' order alternating
csv=$out/hook.csv
echo "round,build,stage,policy,us" >"$csv"
builds=(new)
[ -z "${HK_BASE_BIN:-}" ] || { cp "$HK_BASE_BIN" "$wd/moat-bpf-base"; builds+=(base); }
bin_of() { if [ "$1" = base ]; then echo "$wd/moat-bpf-base"; else echo "$MOAT_BIN"; fi; }
log "$HK_ROUNDS rounds of ${builds[*]}, $HK_POLICIES policies taking turns"
n_ctr=0
for r in $(seq "$HK_ROUNDS"); do
	p=hk$(((r - 1) % HK_POLICIES + 1))
	order=("${builds[@]}")
	[ $((r % 2)) = 1 ] || mapfile -t order < <(printf '%s\n' "${builds[@]}" | tac)
	for b in "${order[@]}"; do
		id=hk$r-$b
		n_ctr=$((n_ctr + 1))
		bundle "$wd/b-$id"
		start_ctr "$id" "$((n_ctr % 250 + 2))"
		us=$(timed_start "$(bin_of "$b")")
		echo "$r,$b,start,$p,$us" >>"$csv"
		us=$(timed_hook "$(bin_of "$b")" create "$id" "$ctr_pid" --policy "$p")
		echo "$r,$b,create,$p,$us" >>"$csv"
		pid=$ctr_pid
		stop_ctr "$id"
		us=$(timed_hook "$(bin_of "$b")" poststop "$id" "$pid")
		echo "$r,$b,poststop,$p,$us" >>"$csv"
		rm -rf "$wd/b-$id"
	done
done

# work = create - start, per round and build (appended to the CSV)
awk -F, 'NR > 1 && $3 == "start" { st[$1 "," $2] = $5 }
	NR > 1 && $3 == "create" { cr[$1 "," $2] = $5; pol[$1 "," $2] = $4 }
	END { for (k in cr) if (k in st) print k ",work," pol[k] "," cr[k] - st[k] }' \
	"$csv" | sort -t, -k1,1n >"$wd/work.csv"
cat "$wd/work.csv" >>"$csv"

# --- syscall counts of one more create ---------------------------------------
id=hk-strace
bundle "$wd/b-$id"
start_ctr "$id" 251
state "$id" "$ctr_pid" "$wd/b-$id" >"$wd/state.json"
strace -f -c -o "$wd/strace.txt" -e trace=bpf,openat,execve,connect,read,write \
	"$MOAT_BIN" oci-hook create --policy hk1 <"$wd/state.json" >/dev/null 2>&1 || true
pid=$ctr_pid
stop_ctr "$id"
state "$id" "$pid" "$wd/b-$id" >"$wd/state.json"
"$MOAT_BIN" oci-hook poststop <"$wd/state.json" >/dev/null 2>&1 || true

# --- report ------------------------------------------------------------------------
col() { awk -F, -v b="$1" -v s="$2" '$2 == b && $3 == s { print $5 }' "$csv"; }
ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1000 }'; }
report() {
	local b s m mn mx p n
	echo "moat-bpf OCI hook bench: whole \`moat-bpf oci-hook\` processes (fork+exec included)"
	echo "$HK_N cgroups enforced, $HK_ROUNDS rounds, $HK_POLICIES policies taking turns${HK_BASE_BIN:+; base = $HK_BASE_BIN, interleaved}"
	echo "kernel $(uname -r), $(nproc) CPUs, load average at start $load_start"
	echo
	for s in start create work poststop; do
		for b in "${builds[@]}"; do
			n=$(col "$b" "$s" | wc -l)
			read -r m _ _ mn mx _ < <(col "$b" "$s" | qstats)
			p=$(col "$b" "$s" | p95)
			printf "%-9s %-5s n=%3d  median %6s ms  p95 %6s ms  min %6s  max %6s ms\n" "$s" "$b" \
				"$n" "$(ms "$m")" "$(ms "$p")" "$(ms "$mn")" "$(ms "$mx")"
		done
	done
	echo
	echo "start = \`moat-bpf version\` spawned the same way right before each create (the"
	echo "process start alone); work = create - start of the same round: the hook's own work"
	echo "(policy load and compile, map writes, links, registration). Goal (issue 18): the"
	echo "hook's work in single milliseconds at p95 with $HK_N cgroups enforced."
	echo
	echo "syscalls of one create at $HK_N enforced (strace -f -c):"
	awk '$NF ~ /^(bpf|openat|execve|connect|read|write)$/ { printf "  %-8s %6d calls\n", $NF, $4 }' "$wd/strace.txt"
}
report | tee "$out/hook.txt"
log "results in $csv, $out/hook.txt; total $(($(date +%s) - t_start)) s"
