#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# systemd 252 as PID 1 of new pid/mount/cgroup/net/uts/ipc namespaces on
# the host's root file system, test units `moat-bpf enable`d, and what
# each unit's commands saw (README, systemd services). By hand, as root,
# under the kernel-test lock; never part of `make test`:
#   flock -o /tmp/moat-kernel.lock env MOAT_BIN=$PWD/build/moat-bpf \
#     MOAT_PEER=$PWD/build/tests/moat-test-peer tools/systemd/pid1-test.sh
# Everything it makes lives in the namespaces (tmpfs over /run,
# /etc/systemd/system, /var/log/journal) or in one cgroup it removes.
if [ "$1" = --inner ]; then
shift
# ---- PID 1 of the new namespaces: prepares, then execs systemd ----
B=$1; PEER=$2; OUT=$3
exec 2>>$OUT/inner.err
set -x
mount --make-rprivate /
mkdir -p $OUT/runmoat
mount --bind /run/moat-bpf $OUT/runmoat
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/moat-bpf /run/h8
mount --move $OUT/runmoat /run/moat-bpf
umount -R /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
: > $OUT/console
mount --bind $OUT/console /dev/console
mount -t tmpfs tmpfs /var/log/journal
mount -t tmpfs tmpfs /etc/systemd/system
U=/etc/systemd/system
C="$PEER client tcp 198.51.100.7 80"
CG='$(grep ^0:: /proc/self/cgroup)'
cat > $U/moat-pid1.target <<EOT
[Unit]
Description=moat PID1 test target
Wants=moat-ktest-oneshot.service moat-ktest-notify.service moat-ktest-forking.service moat-ktest-restart.service moat-ktest-slice.service moat-ktest-delegate.service moat-ktest-badpolicy.service moat-ktest-user.service moat-ktest-privnet.service
EOT
unit() { # NAME TYPE EXTRA...
	n=$1; t=$2; shift 2
	{ echo "[Unit]"; echo "DefaultDependencies=no"; echo "[Service]"; echo "Type=$t"
	  echo "StandardOutput=append:/run/h8/$n.out"; echo "StandardError=append:/run/h8/$n.out"
	  for l in "$@"; do echo "$l"; done; } > $U/moat-ktest-$n.service
}
unit oneshot oneshot RemainAfterExit=yes \
  "ExecStartPre=/bin/sh -c 'echo PRE $CG connect=\$($C)'" \
  "ExecStart=/bin/sh -c 'echo START connect=\$($C)'"
unit notify notify NotifyAccess=all \
  "ExecStartPre=/bin/sh -c 'echo PRE connect=\$($C)'" \
  "ExecStart=/bin/sh -c 'echo START connect=\$($C); systemd-notify --ready; sleep 30'"
unit forking forking \
  "ExecStart=/bin/sh -c '(echo FORKED connect=\$($C); sleep 30) & sleep 0.2; exit 0'"
unit restart simple Restart=always RestartSec=1 \
  "ExecStart=/bin/sh -c 'echo RUN $CG ino=\$(stat -c %%i /sys/fs/cgroup/system.slice/moat-ktest-restart.service) connect=\$($C); sleep 0.5; exit 1'"
unit slice exec Slice=moat-ktest.slice \
  "ExecStart=/bin/sh -c 'echo START $CG connect=\$($C); sleep 30'"
unit delegate simple Delegate=yes \
  "ExecStart=/bin/sh -c 'd=/sys/fs/cgroup/system.slice/moat-ktest-delegate.service; mkdir \$d/sub; echo \$\$ > \$d/sub/cgroup.procs; echo SUB $CG connect=\$($C); sleep 30'"
unit badpolicy oneshot \
  "ExecStartPre=/bin/sh -c 'echo PRE-RAN-UNPROTECTED'" \
  "ExecStart=/bin/sh -c 'echo START-RAN-UNPROTECTED'"
unit user simple User=nobody NoNewPrivileges=yes CapabilityBoundingSet= PrivateTmp=yes ProtectSystem=strict \
  "ExecStart=/bin/sh -c 'echo START uid=\$(id -u) connect=\$($C); sleep 30'"
unit privnet oneshot PrivateNetwork=yes \
  "ExecCondition=+/bin/sh -c 'echo COND-PLUS netns=\$(readlink /proc/self/ns/net)'" \
  "ExecStart=/bin/sh -c 'echo START netns=\$(readlink /proc/self/ns/net) connect=\$($C)'"
for n in oneshot notify forking restart slice delegate user privnet; do
	$B enable moat-ktest-$n.service --allow tcp://203.0.113.9:443 >> $OUT/enable.out 2>&1 || echo "enable $n failed" >> $OUT/enable.out
done
$B enable moat-ktest-badpolicy.service --policy $OUT/missing.yaml >> $OUT/enable.out 2>&1 || echo "enable refused a missing policy" >> $OUT/enable.out
# the policy file goes away after enable: unit-start must fail the unit
printf "allow:\n  - tcp://203.0.113.9:443\n" > $OUT/gone.yaml
$B enable moat-ktest-badpolicy.service --policy $OUT/gone.yaml >> $OUT/enable.out 2>&1 || echo "enable badpolicy failed" >> $OUT/enable.out
rm -f $OUT/gone.yaml
mkdir -p $OUT/dropins
for n in oneshot restart badpolicy; do cp $U/moat-ktest-$n.service.d/zz-moat-bpf.conf $OUT/dropins/$n.conf; done
set +x
exec env container=moat-test /lib/systemd/systemd --system --unit=moat-pid1.target --log-level=info
fi
# ---- outside ----
B=${MOAT_BIN:?MOAT_BIN: the moat-bpf to test}; PEER=${MOAT_PEER:?MOAT_PEER: moat-test-peer}
OUT=$(mktemp -d /tmp/moat-pid1.XXXXXX)
CG=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)/moat-pid1-test
SELF=$(readlink -f "$0")
echo "output in $OUT"
date
rm -f $OUT/enable.out $OUT/inner.err; mkdir -p $CG /run/moat-bpf
sh -c "echo \$\$ > $CG/cgroup.procs; exec unshare --pid --fork --mount --cgroup --net --uts --ipc --mount-proc sh $SELF --inner $B $PEER $OUT" > $OUT/systemd.log 2>&1 &
UP=$!
sleep 9
SD=
for p in $(find $CG -name cgroup.procs -exec cat {} \;); do
  case "$(readlink /proc/$p/exe)" in */lib/systemd/systemd) SD=$p;; esac
done
echo "systemd pid (host view): $SD"
if [ -n "$SD" ]; then
  cat /proc/$SD/cmdline | tr '\0' ' '; echo
  echo "--- status (host's moat-bpf):"; $B status | grep -i "ktest\|CGROUP"
  for f in /proc/$SD/root/run/h8/*; do echo "== $(basename $f)"; cat $f; done
  echo "--- systemctl in the namespace:"
  nsenter -t $SD -m -p systemctl --no-pager list-units 'moat-ktest*' --all 2>&1 | head -20
  nsenter -t $SD -m -p systemctl --no-pager status moat-ktest-badpolicy.service 2>&1 | head -20
fi
find $CG -type d | head -30
kill -9 $UP 2>/dev/null; [ -n "$SD" ] && kill -9 $SD
sleep 1
find $CG -depth -type d -exec rmdir {} \; 2>&1 | head -3
rmdir $OUT/runmoat 2>/dev/null
echo "--- enable.out"; cat $OUT/enable.out; echo "--- inner.err"; tail -30 $OUT/inner.err; echo "--- console"; head -100 $OUT/console; echo "--- unshare log"; cat $OUT/systemd.log
date
