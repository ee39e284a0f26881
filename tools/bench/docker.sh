#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/docker.sh: what moat-bpf adds to `docker run --rm`. Run as
# root; tools/bench/run.sh calls it at its end (DOCKER_BENCH=0 skips it),
# or run it alone with MOAT_BIN and OUTPUT set.
#
# A private dockerd as in tests/docker/run.sh: own data root, exec root
# and socket, never /etc/docker, in the network namespace moat-dkb-client
# of tools/testnet.sh (no uplink), containers on the bench's own network
# 198.18.65.0/24 / 2001:db8:65::/64 with DOCKER-USER dropping anything but
# the test networks; the offline image moat-test:latest (tests/docker/
# image.sh, no pulls). A private mount namespace with its own bpffs and
# /run/moat-bpf: moat-runc and the attach below load and pin a program set
# of their own.
#
# Four modes, DK_N runs each (default 50), interleaved round-robin with
# the order rotating every round, each a whole
# `docker run --rm --network NET moat-test:latest /bin/true` timed by wall
# clock:
#   runc    --runtime=runc (the baseline)
#   moat    --runtime=moat (moat-runc: enforces after runc create; default policy
#           dk-bench, two address rules)
#   parent  --runtime=runc --cgroup-parent=/moat-bench-parent.slice, that
#           parent attached with `moat-bpf attach` beforehand
#   floor   (DK_FLOOR=0 leaves it out) --runtime=floor: tools/bench/rtfloor,
#           moat-runc's processes doing none of its work (a create that
#           rewrites config.json, spawns runc, waits, reads the pid file
#           and appends a byte to a mark file; exec of runc for the
#           rest; a delete that spawns runc and forks a child).
#           floor/runc is what any runtime-wrapper design costs in
#           process starts; moat/floor what moat-runc's work adds to that
#   base    (only with DK_BASE_BIN=PATH, another build of moat-bpf, e.g.
#           main's) --runtime=moatbase, the same as moat with that binary:
#           the code before and after a change, interleaved in one run
# Per mode: median, min..max; per-round ratios to the same round's runc run,
# median with its order-statistic 95% CI (as run.sh). Goal <= 1.02x with the
# interval's upper end below 1.05x (issue 18).
# moat-runc's enforcement is not separated here (tools/bench/hook.sh times
# it); the moat-runc overhead is moat - runc.
# If the DK_MAX_S budget (default 90 s per mode) runs out, the rounds stop early
# and the report says how many ran.
# Where the time goes (DK_PROFILE=N rounds, after the others): the runc,
# moat and floor modes again with each runtime call (create, start, delete, ...)
# timed by a wrapper around the runtime; per call, the median time under
# each and the difference (the enforcement runs inside create). The
# wrapper's own cost is the same on both sides.
#
# Where the time goes, by process (DK_SCHED=N rounds of runc, moat and
# floor, after the others; default 10, 0 skips): perf records the scheduler's
# exec, fork and exit events of every process, and sched-calls.py times
# Docker's network hook (inside every create), each wrapper's create
# before and after runc, its pass-through calls and the children it
# leaves. Needs perf (linux-perf); without it the section says n/a.
#
# Output under $OUTPUT/bench: docker.csv, docker.txt, docker.png (and
# docker-calls.log: every timed runtime call of DK_PROFILE).
# Environment: DK_N (50), DK_MAX_S (90 x modes), DK_KEEP=1 (keep the data root:
# the image is not rebuilt next time), DK_BASE_BIN, DK_PROFILE, DK_SCHED, DK_FLOOR
# (above), RTFLOOR (the floor runtime; default next to MOAT_BIN,
# tests/rtfloor, as make bench builds it). Needs docker.io, jq, busybox-static.
# shellcheck disable=SC2016 # sh -c programs expand later
set -euo pipefail

: "${MOAT_BIN:?set MOAT_BIN (run through make bench)}"
: "${OUTPUT:?set OUTPUT (run through make bench)}"
DK_N=${DK_N:-50}
DK_FLOOR=${DK_FLOOR:-1}
DK_SCHED=${DK_SCHED:-10}
RTFLOOR=${RTFLOOR:-$(dirname "$MOAT_BIN")/tests/rtfloor}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
. "$repo/tools/bench/lib.sh"	# qstats
prefix="moat-dkb"
S=/run/moat-bench-docker
data_root=/var/lib/moat-bench-docker
docker_bin=/usr/bin/docker
dockerd_bin=/usr/sbin/dockerd
client_ns=/run/netns/$prefix-client
net="moat-bench-net"
bridge=moatbr1
subnet4=198.18.65.0/24
subnet6=2001:db8:65::/64
parent="moat-bench-parent.slice"
cg_docker="moat-bench-docker"
image="moat-test:latest"

die() { echo "docker-bench: $*" >&2; exit 1; }
log() { echo "docker-bench: $*"; }

if [ "${MOAT_DKB_PRIVATE:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root"
	if [ ! -x "$dockerd_bin" ] || [ ! -x "$docker_bin" ] || ! command -v runc >/dev/null; then
		log "docker.io not installed: skipped"
		exit 0
	fi
	command -v jq >/dev/null || die "jq not found"
	mkdir -p /run/moat-bpf /sys/fs/bpf
	MOAT_DKB_PRIVATE=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount -t tmpfs -o mode=0700 tmpfs /run/moat-bpf

out=$(realpath -m "$OUTPUT")/bench
mkdir -p "$out"
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cg2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[ -n "$cg2" ] || die "no cgroup2 mount"
dockerd_pid=
moat=$S/bin/moat-bpf

dk() {
	DOCKER_HOST=unix://$S/docker.sock DOCKER_CONFIG=$S/cli timeout 120 "$docker_bin" "$@"
}
in_client() { nsenter --net="$client_ns" "$@"; }

stop_pid() { # PID NAME: TERM, wait up to 20 s, KILL
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "$2 (pid $pid) did not stop; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? d
	set +e
	trap - EXIT INT TERM
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		dk ps -aq 2>/dev/null | xargs -r "$docker_bin" -H "unix://$S/docker.sock" rm -f >/dev/null 2>&1
		dk network rm "$net" >/dev/null 2>&1
	fi
	[ -n "$dockerd_pid" ] || dockerd_pid=$(cat "$S/dockerd.spid" 2>/dev/null)
	echo "docker-bench: stopping dockerd (pid ${dockerd_pid:-none})" >&2
	stop_pid "$dockerd_pid" dockerd
	"$moat" unload >/dev/null 2>&1	# our private program set
	for d in "$cg2/$parent" /sys/fs/cgroup/*/"$parent" "$cg2/$cg_docker" /sys/fs/cgroup/*/"$cg_docker"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1
	awk -v s="$S" -v d="$data_root" '$5 ~ "^"s"/exec" || $5 ~ "^"d {print $5}' \
		/proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	[ "${DK_KEEP:-0}" = 1 ] || rm -rf "$data_root"
	rm -rf "$S"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -------------------------------------------------------------------
[ ! -e "$S/dockerd.pid" ] || ! kill -0 "$(cat "$S/dockerd.pid")" 2>/dev/null ||
	die "a bench dockerd is already running ($S/dockerd.pid)"
rm -rf "$S"
mkdir -p "$S"/{policies,cli,bin}
cp "$MOAT_BIN" "$S/bin/moat-bpf"
ln -s moat-bpf "$S/bin/moat-runc"
base_rt=""
if [ -n "${DK_BASE_BIN:-}" ]; then
	mkdir -p "$S/base"
	cp "$DK_BASE_BIN" "$S/base/moat-bpf"
	ln -s moat-bpf "$S/base/moat-runc"
	base_rt=", \"moatbase\": {\"path\": \"$S/base/moat-runc\"}"
fi
floor_rt=""
if [ "$DK_FLOOR" != 0 ]; then
	[ -x "$RTFLOOR" ] || die "no floor runtime at $RTFLOOR (make tests builds it; DK_FLOOR=0 skips the mode)"
	cp "$RTFLOOR" "$S/bin/rtfloor"
	floor_rt=", \"floor\": {\"path\": \"$S/bin/rtfloor\"}, \"floort\": {\"path\": \"$S/bin/timed-floor\"}"
fi
# the runtime-call timers of DK_PROFILE: bash waits for the runtime and
# logs "RUNTIME SUBCOMMAND START END" (seconds)
prof_rts=(runc moat)
[ -z "$floor_rt" ] || prof_rts+=(floor)
for rt in "${prof_rts[@]}"; do
	case $rt in
	runc) real=$(command -v runc) ;;
	moat) real=$S/bin/moat-runc ;;
	floor) real=$S/bin/rtfloor ;;
	esac
	cat >"$S/bin/timed-$rt" <<-EOF
		#!/bin/bash
		sub=
		skip=
		for a in "\$@"; do
			[ -z "\$skip" ] || { skip=; continue; }
			case \$a in
			--root|--log|--log-format|--criu|--rootless) skip=1 ;;
			-*) ;;
			*) sub=\$a; break ;;
			esac
		done
		t0=\$EPOCHREALTIME
		"$real" "\$@"
		rc=\$?
		t1=\$EPOCHREALTIME
		echo "$rt \$sub \$t0 \$t1" >>"$S/calls.log"
		exit \$rc
	EOF
	chmod +x "$S/bin/timed-$rt"
done

"$repo/tools/testnet.sh" up "$prefix" >/dev/null
ip -n "$prefix-world" route replace "$subnet4" via 198.18.0.1
ip -n "$prefix-world" -6 route replace "$subnet6" via 2001:db8:ff::1

cat >"$S/policies/dk-bench.yaml" <<EOF
allow:
  - tcp://198.51.100.7:80
  - udp://198.51.100.7:80
EOF
cat >"$S/moat.yaml" <<EOF
default_policy: dk-bench
env_selection:
  enabled: false
  allow: []
runc: $(command -v runc)
EOF
cat >"$S/daemon.json" <<EOF
{
	"data-root": "$data_root",
	"exec-root": "$S/exec",
	"pidfile": "$S/dockerd.pid",
	"hosts": ["unix://$S/docker.sock"],
	"exec-opts": ["native.cgroupdriver=cgroupfs"],
	"cgroup-parent": "/$cg_docker",
	"bridge": "none",
	"iptables": true,
	"userland-proxy": false,
	"live-restore": false,
	"log-level": "warn",
	"runtimes": { "moat": {"path": "$S/bin/moat-runc"}$base_rt$floor_rt,
		"runct": {"path": "$S/bin/timed-runc"}, "moatt": {"path": "$S/bin/timed-moat"} }
}
EOF

log "private dockerd (in $prefix-client)"
# RTFLOOR_*: the floor runtime's runc and its mark file (one byte per
# create); dockerd's environment reaches the runtimes, as MOAT_CONFIG does
MOAT_CONFIG=$S/moat.yaml MOAT_POLICY_DIR=$S/policies \
	RTFLOOR_RUNC=$(command -v runc) RTFLOOR_MARK=$S/floor.mark \
	setsid -f sh -c 'echo $$ >"$1/dockerd.spid"; exec nsenter --net="$2" "$3" --config-file "$1/daemon.json"' \
	sh "$S" "$client_ns" "$dockerd_bin" </dev/null >"$S/dockerd.log" 2>&1
for _ in $(seq 300); do
	[ -s "$S/dockerd.spid" ] && dockerd_pid=$(cat "$S/dockerd.spid")
	dk version >/dev/null 2>&1 && break
	[ -z "$dockerd_pid" ] || kill -0 "$dockerd_pid" 2>/dev/null ||
		{ tail -n 20 "$S/dockerd.log" >&2; die "dockerd exited"; }
	sleep 0.1
done
dk version >/dev/null 2>&1 || { tail -n 20 "$S/dockerd.log" >&2; die "dockerd did not come up"; }

dk network create --driver bridge --subnet "$subnet4" --gateway 198.18.65.1 \
	--ipv6 --subnet "$subnet6" --gateway 2001:db8:65::1 \
	-o com.docker.network.bridge.name="$bridge" "$net" >/dev/null
in_client iptables -w -I DOCKER-USER -i "$bridge" -j DROP
in_client iptables -w -I DOCKER-USER -i "$bridge" -d 203.0.113.0/24 -j RETURN
in_client iptables -w -I DOCKER-USER -i "$bridge" -d 198.51.100.0/24 -j RETURN
in_client iptables -w -I DOCKER-USER -i "$bridge" -o "$bridge" -j RETURN
in_client iptables -w -I INPUT -i "$bridge" -j DROP
in_client ip6tables -w -I FORWARD -i "$bridge" -j DROP
in_client ip6tables -w -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
in_client ip6tables -w -I FORWARD -i "$bridge" -d 2001:db8::/32 -j ACCEPT
in_client ip6tables -w -I INPUT -i "$bridge" -j DROP

log "image (offline, tests/docker/image.sh)"
DOCKER_HOST=unix://$S/docker.sock DOCKER_CONFIG=$S/cli DOCKER=$docker_bin \
	OUTPUT=$(realpath -m "$OUTPUT") bash "$repo/tests/docker/image.sh" >&2 || die "tests/docker/image.sh failed"

# the enforced parent
mkdir -p "$cg2/$parent"
MOAT_POLICY_DIR=$S/policies "$moat" attach "/$parent" --policy dk-bench >/dev/null

declare -A opts=(
	[runc]="--runtime=runc"
	[moat]="--runtime=moat"
	[parent]="--runtime=runc --cgroup-parent=/$parent"
	[base]="--runtime=moatbase"
	[floor]="--runtime=floor"
)
modes=(runc moat parent)
[ -z "$base_rt" ] || modes+=(base)
[ -z "$floor_rt" ] || modes+=(floor)
nm=${#modes[@]}
DK_MAX_S=${DK_MAX_S:-$((90 * nm))}

# run_one MODE: one timed `docker run --rm ... /bin/true`, us
run_one() {
	local t0 t1
	t0=$EPOCHREALTIME
	# shellcheck disable=SC2086 # opts are words
	dk run --rm --network "$net" ${opts[$1]} "$image" /bin/true >/dev/null 2>"$S/run.err" ||
		{ cat "$S/run.err" >&2; die "docker run ($1) failed"; }
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", (b - a) * 1e6 }'
}

# the floor create's post-runc steps so far (bytes in its mark file)
floor_hooks() { stat -c %s "$S/floor.mark" 2>/dev/null || echo 0; }

# sanity: the moat, parent and base modes really enforce (a blocked
# connect is refused: 203.0.113.9 is in no rule; EPERM comes before any
# packet); a floor container runs and its post-runc step ran once
for m in "${modes[@]:1}"; do
	if [ "$m" = floor ]; then
		h=$(floor_hooks)
		dk run --rm --network "$net" "${opts[floor]}" "$image" /bin/true ||
			die "floor mode: docker run /bin/true failed"
		[ "$(floor_hooks)" = $((h + 1)) ] ||
			die "floor mode: its create's post-runc step did not run once ($h -> $(floor_hooks) marks)"
		continue
	fi
	# shellcheck disable=SC2086
	o=$(dk run --rm --network "$net" ${opts[$m]} "$image" moat-client tcp 203.0.113.9 80 2>&1) || true
	[ "$o" = EPERM ] || die "$m mode does not enforce: moat-client printed '$o'"
done

# warm-up: one of each, untimed
for m in "${modes[@]}"; do run_one "$m" >/dev/null; done

csv=$out/docker.csv
echo "round,mode,us" >"$csv"
log "$DK_N rounds of ${modes[*]} (rotating order), budget $DK_MAX_S s"
t_runs=$(date +%s)
rounds=0
for r in $(seq "$DK_N"); do
	k=$(((r - 1) % nm))
	for j in $(seq 0 $((nm - 1))); do
		m=${modes[$(((k + j) % nm))]}
		echo "$r,$m,$(run_one "$m")" >>"$csv"
	done
	rounds=$r
	if [ $(($(date +%s) - t_runs)) -ge "$DK_MAX_S" ] && [ "$r" -lt "$DK_N" ]; then
		log "budget of $DK_MAX_S s spent after $r rounds: stopping early"
		break
	fi
done
runs_s=$(($(date +%s) - t_runs))
# every timed floor run ran its create's post-runc step: sanity + warm-up + rounds
floor_runs=$((rounds + 2))
[ -z "$floor_rt" ] || [ "$(floor_hooks)" = "$floor_runs" ] ||
	die "floor mode: $(floor_hooks) post-runc steps for $floor_runs containers"

# where the time goes: each runtime call timed, runc vs moat
profile() {
	local r j m rt np=${#prof_rts[@]}
	[ "${DK_PROFILE:-0}" -gt 0 ] || return 0
	: >"$S/calls.log"
	for r in $(seq "$DK_PROFILE"); do
		for j in $(seq 0 $((np - 1))); do
			m=${prof_rts[$(((r + j) % np))]}t
			dk run --rm --network "$net" --runtime="$m" "$image" /bin/true >/dev/null 2>"$S/run.err" ||
				{ cat "$S/run.err" >&2; die "docker run ($m) failed"; }
		done
	done
	cp "$S/calls.log" "$out/docker-calls.log"
	echo
	echo "where the time goes: $DK_PROFILE runs each, every runtime call timed by a wrapper (median ms per call; calls per run)"
	for rt in "${prof_rts[@]}"; do
		awk -v rt="$rt" '$1 == rt { print $2, ($4 - $3) * 1000 }' "$S/calls.log" | sort -k1,1 -k2,2g |
			awk -v rt="$rt" -v n="$DK_PROFILE" '
			{ v[$1, ++c[$1]] = $2; tot[$1] += $2 }
			END { for (k in c) { m = c[k] % 2 ? v[k, (c[k] + 1) / 2] : (v[k, c[k] / 2] + v[k, c[k] / 2 + 1]) / 2
				printf "%s %s %.2f %.2f\n", rt, k, m, c[k] / n } }'
	done | sort -k2,2 -k1,1 | awk -v fl="${floor_rt:+1}" '
		{ med[$1, $2] = $3; per[$1, $2] = $4; subs[$2] = 1 }
		END { printf "  %-10s %10s %10s %10s %12s", "call", "runc ms", "moat ms", "moat-runc", "calls/run"
			if (fl) printf " %10s %10s %10s", "floor ms", "floor-runc", "moat-floor"
			printf "\n"
			for (s in subs) {
				printf "  %-10s %10.2f %10.2f %+10.2f %6.1f/%-5.1f", s, med["runc", s], med["moat", s],
					med["moat", s] - med["runc", s], per["runc", s], per["moat", s]
				if (fl) printf " %10.2f %+10.2f %+10.2f", med["floor", s],
					med["floor", s] - med["runc", s], med["moat", s] - med["floor", s]
				printf "\n" } }'
}

# where the time goes, by process: the scheduler's exec/fork/exit events
# of DK_SCHED rounds of runc, moat and floor (tools/bench/sched-calls.py)
sched() {
	local r j m pp ms=(runc moat) n
	[ "${DK_SCHED:-0}" -gt 0 ] || return 0
	echo
	echo "where the time goes, by process: $DK_SCHED rounds, exec/fork/exit events of every process (perf sched tracepoints; median ms)"
	if ! command -v perf >/dev/null; then
		echo "  n/a: perf is not installed (linux-perf)"
		return 0
	fi
	[ -z "$floor_rt" ] || ms+=(floor)
	n=${#ms[@]}
	perf record -q -a -e sched:sched_process_exec,sched:sched_process_exit,sched:sched_process_fork \
		-o "$S/sched.data" 2>"$S/perf.err" &
	pp=$!
	sleep 1
	for r in $(seq "$DK_SCHED"); do
		for j in $(seq 0 $((n - 1))); do
			m=${ms[$(((r + j) % n))]}
			run_one "$m" >/dev/null
		done
	done
	kill -INT "$pp"
	wait "$pp" || true
	if [ ! -s "$S/sched.data" ]; then
		echo "  n/a: perf record wrote nothing: $(head -n 1 "$S/perf.err")"
		return 0
	fi
	perf script -i "$S/sched.data" -F comm,pid,time,event,trace 2>/dev/null |
		python3 "$repo/tools/bench/sched-calls.py" "$S/bin/moat-runc" "$S/bin/rtfloor"
}

# --- report ------------------------------------------------------------------
report() {
	local m med mn mx rm lo hi rmn rmx lvl
	echo "moat-bpf docker bench: \`docker run --rm --network NET $image /bin/true\` wall time"
	echo "$rounds rounds (of DK_N=$DK_N) x $nm modes, order rotating per round, $runs_s s; private dockerd $(dk version -f '{{.Server.Version}}' 2>/dev/null), runc $(runc --version | awk 'NR==1{print $3}')"
	echo "kernel $(uname -r), $(nproc) CPUs, load average at start $load_start"
	echo "ratio = median of per-round mode/runc (same round), order-statistic 95% CI; goal <= 1.02x, CI upper end < 1.05x (issue 18)"
	echo
	for m in "${modes[@]}"; do
		read -r med _ _ mn mx _ < <(awk -F, -v m="$m" '$2 == m { print $3 }' "$csv" | qstats)
		if [ "$m" = runc ]; then
			printf "%-7s median %7.1f ms  range %6.1f..%6.1f ms\n" "$m" \
				"$(awk -v x="$med" 'BEGIN{print x/1000}')" "$(awk -v x="$mn" 'BEGIN{print x/1000}')" "$(awk -v x="$mx" 'BEGIN{print x/1000}')"
			continue
		fi
		read -r rm lo hi rmn rmx lvl < <(awk -F, -v m="$m" '
			$2 == "runc" { b[$1] = $3 } $2 == m { a[$1] = $3 }
			END { for (r in a) if (r in b) print a[r] / b[r] }' "$csv" | qstats)
		printf "%-7s median %7.1f ms  range %6.1f..%6.1f ms  ratio %.3f CI%.0f [%.3f, %.3f]  range %.3f..%.3f  %s\n" "$m" \
			"$(awk -v x="$med" 'BEGIN{print x/1000}')" "$(awk -v x="$mn" 'BEGIN{print x/1000}')" "$(awk -v x="$mx" 'BEGIN{print x/1000}')" \
			"$rm" "$(awk -v l="$lvl" 'BEGIN{print l*100}')" "$lo" "$hi" "$rmn" "$rmx" \
			"$(awk -v x="$rm" -v h="$hi" -v m="$m" 'BEGIN{print m == "floor" ? "no goal: the floor" : x <= 1.02 && h < 1.05 ? "goal 1.02 ok" : "goal 1.02 OVER"}')"
	done
	[ -z "$floor_rt" ] || pair moat floor "what moat-runc's work adds to the floor's processes; the floor's post-runc step ran in all $floor_runs floor runs"
	[ -z "$base_rt" ] || pair moat base "this build vs DK_BASE_BIN"
}
# pair A B WHAT: A/B, per round
pair() {
	local rm lo hi rmn rmx lvl
	read -r rm lo hi rmn rmx lvl < <(awk -F, -v x="$1" -v y="$2" '
		$2 == y { b[$1] = $3 } $2 == x { a[$1] = $3 }
		END { for (r in a) if (r in b) print a[r] / b[r] }' "$csv" | qstats)
	printf "%s/%s (same round): %.3f CI%.0f [%.3f, %.3f]  range %.3f..%.3f  (%s)\n" "$1" "$2" \
		"$rm" "$(awk -v l="$lvl" 'BEGIN{print l*100}')" "$lo" "$hi" "$rmn" "$rmx" "$3"
}
{ report; profile; sched; } | tee "$out/docker.txt"

if command -v gnuplot >/dev/null; then
	for m in "${modes[@]}"; do
		awk -F, -v m="$m" '$2 == m { print $1, $3 / 1000 }' "$csv" >"$S/$m.dat"
	done
	base_plot=""
	[ -z "$base_rt" ] || base_plot=", \"$S/base.dat\" using 1:2 with linespoints title \"--runtime=moatbase (DK_BASE_BIN)\""
	[ -z "$floor_rt" ] || base_plot+=", \"$S/floor.dat\" using 1:2 with linespoints title \"--runtime=floor (rtfloor: processes only)\""
	gnuplot <<-EOF
		set terminal png size 900,600
		set output "$out/docker.png"
		set xlabel "round"
		set ylabel "docker run --rm /bin/true (ms)"
		set key top left
		plot "$S/runc.dat" using 1:2 with linespoints title "runc", \
			"$S/moat.dat" using 1:2 with linespoints title "--runtime=moat", \
			"$S/parent.dat" using 1:2 with linespoints title "enforced parent"$base_plot
	EOF
	log "plot $out/docker.png"
fi
log "results in $csv, $out/docker.txt; total $(($(date +%s) - t_start)) s"
