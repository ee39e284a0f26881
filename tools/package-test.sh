#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/package-test.sh  (root; make package-test; CI)
#
# The Debian package as an operator meets it, on this machine's real /usr,
# /etc and bpffs:
#   1. build it (dpkg-buildpackage -us -uc -b in a scratch copy of the tree
#      under /tmp) and a second one whose changelog says another version;
#      lintian must print nothing but justified overrides;
#   2. install the first: every unit, doc, man page, example and runtime
#      snippet in the tree is there, the units name the installed binary,
#      and nothing is enforced, pinned or running;
#   3. run the demo (tools/demo.sh) against the installed binaries;
#   4. enforce a cgroup (an address rule and a domain rule) with the
#      resolver running, judge its traffic continuously, and upgrade to the
#      second package meanwhile: every blocked attempt is EPERM and leaves
#      no packet, every allowed one passes, the links run the new programs,
#      the resolver runs the new binary and still serves the cgroup
#      without registering it again;
#   5. removing is refused while the cgroup is enforced; after detaching,
#      remove and purge, and nothing of the package is left (files, pins,
#      /run/moat-bpf, /etc/moat-bpf, a resolver process).
# It refuses to start if moat-bpf is installed or anything is pinned: it
# must never run on a host that moat-bpf really protects.
#
# Environment: MOAT_PEER (the test peer, make builds it), MOAT_PKG_TREE
# (the source tree to package, default this working tree), MOAT_PKG_REUSE
# (a scratch directory kept by MOAT_PKG_KEEP=1: its packages, no build),
# MOAT_KERNEL_LOCK (a lock file held around steps 2-5, for machines where
# other tests share the kernel's state), MOAT_PKG_KEEP=1 (keep the scratch
# directory).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peer=${MOAT_PEER:-$repo/build/tests/moat-test-peer}
export MOAT_PEER=$peer
moat=/usr/sbin/moat-bpf
pins=/sys/fs/bpf/moat
prefix="moat-pkg"
ns=/run/netns/$prefix-client
world=/run/moat-test/$prefix/world.log
dnslog=/run/moat-test/$prefix/dns/dnsmasq.log
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
cg=$cg2/moat-package-test
tree=${MOAT_PKG_TREE:-$repo}
dropin=/etc/systemd/system/moat-pkgtest.service.d
scratch=
lock_pid=
loop_pid=
t0=$(date +%s)

say() { echo "package-test: $*"; }
die() {
	echo "package-test: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run me as root (I install a package and enforce a cgroup)"
[ -x "$peer" ] || die "peer $peer not found: make build/tests/moat-test-peer, or set MOAT_PEER"
for t in dpkg-buildpackage dh lintian; do
	command -v "$t" >/dev/null || die "$t missing: tools/install-deps.sh installs it"
done
if dpkg-query -W -f='${Status}' moat-bpf 2>/dev/null | grep -qv 'not-installed'; then
	die "moat-bpf is installed (dpkg -l moat-bpf): not on a host moat-bpf protects"
fi
[ ! -e /etc/moat-bpf ] || die "/etc/moat-bpf exists (an earlier install?): remove it first"

# pkg_procs: processes running the package's binary (or its unlinked old one)
pkg_procs() {
	local d exe
	for d in /proc/[0-9]*; do
		exe=$(readlink "$d/exe" 2>/dev/null) || continue
		case $exe in "$moat"|"$moat (deleted)") echo "${d#/proc/}" ;; esac
	done
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	[ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null && wait "$loop_pid" 2>/dev/null
	if [ -x "$moat" ]; then
		"$moat" detach "$cg" >/dev/null 2>&1 || true
	fi
	rmdir "$cg" 2>/dev/null || true
	rm -rf "$dropin"
	if dpkg-query -W -f='${Status}' moat-bpf 2>/dev/null | grep -qv 'not-installed'; then
		echo "package-test: purging the package left by the failure" >&2
		dpkg -P moat-bpf >/dev/null 2>&1 || true
	fi
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1 || true
	# a resolver this test started (or postinst restarted) that outlived
	# the purge
	for p in $(pkg_procs); do kill -KILL "$p" 2>/dev/null || true; done
	[ -n "$lock_pid" ] && kill "$lock_pid" 2>/dev/null
	if [ -n "$scratch" ] && [ "${MOAT_PKG_KEEP:-0}" != 1 ]; then
		rm -rf "$scratch"
	fi
	exit "$rc"
}
trap cleanup EXIT

# --- 1. build two versions -------------------------------------------------
scratch=$(mktemp -d /tmp/moat-pkgtest.XXXXXX)
if [ -n "${MOAT_PKG_REUSE:-}" ]; then
	cp -a "$MOAT_PKG_REUSE"/. "$scratch"/
	rm -rf "$scratch/load"
else
mkdir "$scratch/v1" "$scratch/v2"
# the tree as it is (not the last commit), without anyone's build output
tar -C "$tree" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$scratch/v1" -xf -
tar -C "$scratch/v1" -cf - . | tar -C "$scratch/v2" -xf -
v1=$(dpkg-parsechangelog -l "$scratch/v1/debian/changelog" -S Version)
v2=$v1+pkgtest1
{
	printf 'moat-bpf (%s) unstable; urgency=medium\n\n' "$v2"
	printf '  * Rebuilt by tools/package-test.sh: the upgrade under load.\n\n'
	printf ' -- moat-bpf package test <root@localhost>  %s\n\n' "$(date -R)"
	cat "$scratch/v1/debian/changelog"
} >"$scratch/v2/debian/changelog"
for v in v1 v2; do
	(cd "$scratch/$v" && dpkg-buildpackage -us -uc -b >"$scratch/build-$v.log" 2>&1) ||
		{ tail -30 "$scratch/build-$v.log" >&2; die "dpkg-buildpackage ($v) failed"; }
done
fi
v1=$(dpkg-parsechangelog -l "$scratch/v1/debian/changelog" -S Version)
v2=$v1+pkgtest1
deb1=$scratch/moat-bpf_${v1}_amd64.deb
deb2=$scratch/moat-bpf_${v2}_amd64.deb
[ -f "$deb1" ] && [ -f "$deb2" ] || die "no .deb built (looked for $deb1, $deb2)"
say "built $v1 and $v2 ($(($(date +%s) - t0)) s)"

# lintian: errors, warnings, info and pedantic tags fail; overrides (O:)
# stand with their justification in debian/moat-bpf.lintian-overrides
lint=$(lintian -I --pedantic --show-overrides "$scratch/moat-bpf_${v1}_amd64.changes" 2>&1 |
	grep -v '^running with root privileges' || true)
bad=$(printf '%s\n' "$lint" | grep -E '^[EWIPX]: ' || true)
[ -z "$bad" ] || { printf '%s\n' "$bad" >&2; die "lintian"; }
say "lintian: 0 errors, 0 warnings, 0 info, 0 pedantic; $(printf '%s\n' "$lint" | grep -c '^O: ' || true) overridden (justified in debian/moat-bpf.lintian-overrides)"

# --- 2-5 on the real system, under the kernel lock if there is one ---------
# The lock is held by a flock process of its own (-o: not by the sleep under
# it), never by a descriptor of this shell that the resolver, dnsmasq or
# dpkg's maintainer scripts would inherit and keep; at most 10 minutes.
if [ -n "${MOAT_KERNEL_LOCK:-}" ]; then
	coproc LOCKER { flock -o "$MOAT_KERNEL_LOCK" sh -c 'echo $$; exec sleep 600'; }
	read -r lock_pid <&"${LOCKER[0]}" || die "could not take $MOAT_KERNEL_LOCK"
fi
# a program set some earlier test loaded enforces nothing and goes; an
# enforced cgroup means a host moat-bpf protects (or a test still running)
if [ -n "$(ls -A "$pins/links" 2>/dev/null)" ]; then
	die "cgroups are enforced here ($pins/links): not on a host moat-bpf protects"
fi
if ls /etc/systemd/system/*.d/zz-moat-bpf.conf >/dev/null 2>&1; then
	die "services are enabled with moat-bpf enable here: $(ls /etc/systemd/system/*.d/zz-moat-bpf.conf)"
fi
rm -rf "$pins"

# --- 2. install ---------------------------------------------------------------
dpkg -i "$deb1" >"$scratch/install.log" 2>&1 || { cat "$scratch/install.log" >&2; die "dpkg -i $v1"; }
[ "$(dpkg-query -W -f='${Version}' moat-bpf)" = "$v1" ] || die "installed version is not $v1"
dpkg -L moat-bpf | sort >"$scratch/files"

# what the packaged tree has and the docs name, installed where the docs say
expect=(/usr/sbin/moat-bpf /usr/sbin/moat-runc /usr/share/man/man8/moat-bpf.8.gz
	/usr/share/man/man8/moat-runc.8.gz /usr/share/doc/moat-bpf/README.md
	/usr/share/doc/moat-bpf/copyright /etc/moat-bpf/moat.yaml
	/etc/moat-bpf/policies/default.yaml)
for f in "$scratch"/v1/tools/systemd/*.service; do
	expect+=("/lib/systemd/system/${f##*/}")
done
while read -r f; do
	case $f in
	docs/moat-bpf.8) ;;
	docs/examples/*) expect+=("/usr/share/doc/moat-bpf/examples/${f#docs/examples/}") ;;
	*) expect+=("/usr/share/doc/moat-bpf/$f") ;;
	esac
done < <(cd "$scratch/v1" && find docs -type f | sort)
expect+=(/usr/share/moat-bpf/docker/daemon.json)
if [ -d "$scratch/v1/deploy" ]; then
	while read -r f; do
		expect+=("/usr/share/moat-bpf/${f#deploy/}")
	done < <(cd "$scratch/v1" && find deploy -type f | sort)
fi
missing=0
for f in "${expect[@]}"; do
	# dh_compress may have compressed a doc
	if [ ! -e "$f" ] && [ ! -e "$f.gz" ]; then
		echo "package-test: not installed: $f" >&2
		missing=$((missing + 1))
	fi
done
[ "$missing" = 0 ] || die "$missing file(s) of the tree not installed (Makefile INST_* lists)"
grep -q '^ExecStart=/usr/sbin/moat-bpf daemon' /lib/systemd/system/moat-bpfd.service ||
	die "moat-bpfd.service does not run /usr/sbin/moat-bpf"
# moat-bpf and moat-runc named where they are; /usr/local/sbin/moat-runc-NAME
# wrappers are the administrator's and stay
grep -E '/usr/local/sbin/moat-(bpf|runc)([^-]|$)' /lib/systemd/system/moat-*.service \
	-r /usr/share/moat-bpf/docker /usr/share/moat-bpf/podman /usr/share/moat-bpf/containerd &&
	die "an installed unit or snippet still names /usr/local/sbin/moat-bpf or moat-runc"
doc=$(sed -n 's|^Documentation=file://||p' /lib/systemd/system/moat-bpfd.service)
[ -f "$doc" ] || die "the units' Documentation= ($doc) is not installed"
grep -q '"/usr/sbin/moat-runc"' /usr/share/moat-bpf/docker/daemon.json ||
	die "the Docker snippet does not name /usr/sbin/moat-runc"
if command -v systemd-analyze >/dev/null; then
	for u in /lib/systemd/system/moat-bpfd.service /lib/systemd/system/moat-parent.service; do
		systemd-analyze verify "$u" >"$scratch/verify.log" 2>&1 ||
			{ cat "$scratch/verify.log" >&2; die "systemd-analyze verify $u"; }
	done
fi
man -w moat-bpf >/dev/null 2>&1 || [ ! -x /usr/bin/man ] || die "man moat-bpf finds no page"
# installing enforces nothing
[ ! -e "$pins" ] || die "installing pinned something under $pins"
[ -z "$(pkg_procs)" ] || die "installing started a moat-bpf process: $(pkg_procs)"
ls /etc/systemd/system/*.wants/moat-* >/dev/null 2>&1 && die "installing enabled a unit"
"$moat" policy check default >/dev/null || die "the shipped default policy does not load"
say "installed $v1: ${#expect[@]} files checked, units verified, nothing enforced, pinned or running"

# --- 3. the demo, with the installed binaries ------------------------------
MOAT_BIN=$moat "$repo/tools/demo.sh" >"$scratch/demo.log" 2>&1 ||
	{ cat "$scratch/demo.log" >&2; die "the demo against $moat"; }
grep -q '^Demo passed' "$scratch/demo.log" || die "the demo did not say it passed"
say "demo passed against $moat"
"$moat" unload >/dev/null

# --- 4. upgrade while a cgroup is enforced and its traffic judged ------------
"$repo/tools/testnet.sh" up "$prefix" >/dev/null
"$repo/tools/testnet.sh" dns-up "$prefix" >/dev/null
# the resolver, started by hand as on a host without systemd (no systemd
# here): postinst must restart it on the new binary
"$moat" daemon --dns-upstream 198.51.100.53 || die "starting the resolver"
old_daemon=$(pgrep -x -f "$moat daemon --dns-upstream 198.51.100.53" | head -1)
[ -n "$old_daemon" ] || die "the resolver is not running"
mkdir -p "$cg"
# the address rule names another host than the domain rule's answer: a
# rule's exact entry is kept as it is when the same address is learned
"$moat" attach "$cg" --netns "$ns" --allow tcp://203.0.113.9:80 \
	--allow 'allowed.test:8080?names=any' >/dev/null || die "attach"
q() { "$peer" dns-query --cgroup "$cg" --netns "$ns" 198.51.100.53 53 "$1" A 2>/dev/null || true; }
c() { "$peer" client --cgroup "$cg" --netns "$ns" tcp "$1" "$2" 2>/dev/null || true; }
w=$(q allowed.test)
case $w in
NOERROR*A=198.51.100.7*) ;;
*) die "allowed.test through the resolver before the upgrade: $w" ;;
esac
w=$(c 198.51.100.7 8080)
[ "$w" = OK ] || die "the learned 198.51.100.7:8080 before the upgrade: $w"
w=$(c 203.0.113.9 80)
[ "$w" = OK ] || die "203.0.113.9:80 (address rule) before the upgrade: $w"
at_blocked() { grep -cE ' (198\.51\.100\.8:|198\.51\.100\.7:80 )' "$world" || true; }
blocked_before=$(at_blocked)
old_prog=$(bpftool -j link show pinned "$pins/links/$(stat -c %i "$cg")/moat_connect4" |
	sed -n 's/.*"prog_id":\([0-9]*\).*/\1/p')
[ -n "$old_prog" ] || die "no pinned connect4 link for the cgroup"

out=$scratch/load
mkdir "$out"
(
	while :; do
		c 198.51.100.8 80 >>"$out/blocked"	# no rule
		c 198.51.100.8 8080 >>"$out/blocked"	# blocked.test's address, never learned
		c 198.51.100.7 80 >>"$out/blocked"	# learned, but not for this port
		c 203.0.113.9 80 >>"$out/allowed"	# address rule
		c 198.51.100.7 8080 >>"$out/allowed"	# learned from allowed.test
		q blocked.test | cut -d' ' -f1 >>"$out/dns-blocked"
		q allowed.test | cut -d' ' -f1 >>"$out/dns-allowed"
	done
) &
loop_pid=$!
sleep 2
dpkg -i "$deb2" >"$scratch/upgrade.log" 2>&1 || { cat "$scratch/upgrade.log" >&2; die "dpkg -i $v2 (the upgrade)"; }
sleep 3
kill "$loop_pid"
wait "$loop_pid" 2>/dev/null || true
loop_pid=

[ "$(dpkg-query -W -f='${Version}' moat-bpf)" = "$v2" ] || die "the upgrade did not install $v2"
grep -q 'upgraded layout' "$scratch/upgrade.log" ||
	{ cat "$scratch/upgrade.log" >&2; die "postinst did not run moat-bpf upgrade"; }
new_prog=$(bpftool -j link show pinned "$pins/links/$(stat -c %i "$cg")/moat_connect4" |
	sed -n 's/.*"prog_id":\([0-9]*\).*/\1/p')
[ -n "$new_prog" ] && [ "$new_prog" != "$old_prog" ] ||
	die "the cgroup's connect4 link still runs program $old_prog"
new_daemon=$(pgrep -x -f "$moat daemon --dns-upstream 198.51.100.53" | head -1)
[ -n "$new_daemon" ] && [ "$new_daemon" != "$old_daemon" ] ||
	die "the resolver was not restarted (pid $old_daemon, now '${new_daemon:-none}')"
[ "$(readlink "/proc/$new_daemon/exe")" = "$moat" ] || die "the resolver does not run the new binary"
# the registration survived the restart: the cgroup is served without a new attach
ok=
for _ in $(seq 50); do
	case $(q allowed.test) in NOERROR*A=198.51.100.7*) ok=1; break ;; esac
	sleep 0.1
done
[ -n "$ok" ] || die "allowed.test is not resolved after the upgrade: the registration was lost"

nb=$(wc -l <"$out/blocked"); na=$(wc -l <"$out/allowed")
bad_b=$(grep -vc '^EPERM$' "$out/blocked" || true)
bad_a=$(grep -vc '^OK$' "$out/allowed" || true)
blocked_pkts=$(($(at_blocked) - blocked_before))
ndb=$(wc -l <"$out/dns-blocked"); nda=$(wc -l <"$out/dns-allowed")
leak_dns=$(grep -c '^NOERROR' "$out/dns-blocked" || true)
upstream_blocked=$(grep -c 'query\[A\] blocked.test' "$dnslog" || true)
gap_dns=$(grep -vc '^NOERROR' "$out/dns-allowed" || true)
say "under load: blocked $nb attempts, $bad_b not EPERM, $blocked_pkts packets at the blocked host; allowed $na attempts, $bad_a not OK"
say "under load: blocked name $ndb queries, $leak_dns answered, $upstream_blocked at the upstream; allowed name $nda queries, $gap_dns unanswered while the resolver restarted (fail-closed)"
[ "$nb" -ge 10 ] && [ "$na" -ge 10 ] || die "too few attempts under load"
[ "$bad_b" = 0 ] && [ "$blocked_pkts" = 0 ] && [ "$leak_dns" = 0 ] && [ "$upstream_blocked" = 0 ] ||
	die "something was allowed that should not have been"
[ "$bad_a" = 0 ] || die "something was refused that should have passed"
say "upgraded $v1 -> $v2 under load: connect4 program $old_prog -> $new_prog, resolver pid $old_daemon -> $new_daemon, registration kept"

# --- 5. remove and purge ---------------------------------------------------------
if dpkg -r moat-bpf >"$scratch/remove1.log" 2>&1; then
	die "dpkg -r succeeded while $cg was enforced"
fi
grep -q 'refusing to remove' "$scratch/remove1.log" || { cat "$scratch/remove1.log" >&2; die "no refusal message"; }
grep -q 'moat-bpf unload' "$scratch/remove1.log" || die "the refusal does not say how to unload"
[ "$(dpkg-query -W -f='${db:Status-Status}' moat-bpf)" = installed ] ||
	die "the refused removal left the package $(dpkg-query -W -f='${Status}' moat-bpf)"
w=$(c 198.51.100.8 80)
[ "$w" = EPERM ] || die "198.51.100.8:80 after the refused removal: $w"
say "dpkg -r refused while $cg was enforced, and said how to unload"

"$moat" detach "$cg" >/dev/null
rmdir "$cg"
# a service enabled with `moat-bpf enable` (its drop-in, as enable writes
# it: systemd is not running here) also holds the removal back
mkdir "$dropin"
printf '[Service]\nExecCondition=+%s unit-start --unit %%n\n' "$moat" >"$dropin/zz-moat-bpf.conf"
if dpkg -r moat-bpf >"$scratch/remove2.log" 2>&1; then
	die "dpkg -r succeeded while moat-pkgtest.service was enabled"
fi
grep -q "moat-bpf disable moat-pkgtest.service" "$scratch/remove2.log" ||
	{ cat "$scratch/remove2.log" >&2; die "the refusal does not name the enabled service"; }
rm -rf "$dropin"
say "dpkg -r refused while a service was enabled with moat-bpf enable, and named it"
dpkg -r moat-bpf >"$scratch/remove3.log" 2>&1 || { cat "$scratch/remove3.log" >&2; die "dpkg -r"; }
[ -d /etc/moat-bpf ] || die "removing (not purging) deleted the configuration"
dpkg -P moat-bpf >"$scratch/purge.log" 2>&1 || { cat "$scratch/purge.log" >&2; die "dpkg -P"; }

left=()
dpkg-query -W moat-bpf >/dev/null 2>&1 && left+=("the dpkg database entry")
while read -r f; do
	# directories: the package's own are checked below, others are shared
	[ -d "$f" ] && continue
	if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done <"$scratch/files"
for f in /etc/moat-bpf /run/moat-bpf "$pins" /usr/share/doc/moat-bpf /usr/share/moat-bpf \
	/var/lib/systemd/deb-systemd-helper-enabled/moat-bpfd.service.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/moat-parent.service.dsh-also; do
	[ -e "$f" ] && left+=("$f")
done
[ -z "$(pkg_procs)" ] || left+=("a process of the package's binary: $(pkg_procs)")
grep -q ' /run/moat-bpf/' /proc/self/mountinfo && left+=("mounts under /run/moat-bpf")
[ "${#left[@]}" = 0 ] || { printf 'package-test: left behind: %s\n' "${left[@]}" >&2; die "the purge left something"; }
say "removed and purged: nothing of the package is left (files, pins, /run/moat-bpf, /etc/moat-bpf, processes)"
say "PASS ($(($(date +%s) - t0)) s)"
