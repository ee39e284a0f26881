#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/sched-calls.py: where a `docker run`'s time goes, by process,
# from the scheduler's exec, fork and exit events (tools/bench/docker.sh,
# DK_SCHED). Reads `perf script -F comm,pid,time,event,trace` on stdin.
#
#   sched-calls.py MOAT_RUNC RTFLOOR
#
# MOAT_RUNC and RTFLOOR: the exec'd paths of the two runtime wrappers.
# Per wrapper, over its create calls (a wrapper process that lived over
# 200 ms: only create waits for Docker's network setup): the time from
# its exec to runc's start, and from runc's exit to its own (its work
# after runc: moat-runc's enforcement), the processes runc starts under
# it that are not runc's own (hooks) and how long they live; over its
# other calls, the time from its exec to runc's exec (a pass-through);
# the children it leaves running (delete's undo). Docker's own prestart
# hook, libnetwork-setkey (dockerd's binary under /proc/PID/exe), runs
# inside every create of every mode.
import re
import statistics
import sys
from collections import defaultdict


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def main():
    moat_runc, rtfloor = sys.argv[1], sys.argv[2]
    execs = defaultdict(list)   # pid -> [(t, filename)]
    exits = {}                  # pid -> t (the whole process)
    kids = defaultdict(list)    # pid -> [(t, child pid)]
    pat = re.compile(r'\s*(.+?)\s+(\d+)\s+([\d.]+): sched:(\w+): (.*)')
    for line in sys.stdin:
        m = pat.match(line)
        if not m:
            continue
        _, pid, t, ev, rest = m.groups()
        pid, t = int(pid), float(t)
        if ev == 'sched_process_exec':
            execs[pid].append((t, re.search(r'filename=(\S+)', rest).group(1)))
        elif ev == 'sched_process_exit' and 'group_dead=true' in rest:
            exits[pid] = t
        elif ev == 'sched_process_fork':
            c = int(re.search(r'child_pid=(\d+)', rest).group(1))
            kids[pid].append((t, c))

    def below(pid):
        out = [pid]
        for _, c in kids.get(pid, []):
            out += below(c)
        return out

    def is_runc(f):
        return f.endswith('/runc')

    setkey = [(exits[p] - x[0][0]) * 1e3 for p, x in execs.items()
              if p in exits and re.fullmatch(r'/proc/\d+/exe', x[0][1])]
    setkey = [d for d in setkey if d > 50]  # not runc init's re-execs
    if setkey:
        print('  Docker\'s prestart hook libnetwork-setkey, in every create: '
              'n=%d median %.0f ms, p10 %.0f, p90 %.0f, min %.0f, max %.0f'
              % (len(setkey), statistics.median(setkey), pct(setkey, .1),
                 pct(setkey, .9), min(setkey), max(setkey)))
    wrapped = {c for p, x in execs.items() if x[0][1] in (moat_runc, rtfloor)
               for _, c in kids.get(p, [])}
    plain = [(exits[p] - x[0][0]) * 1e3 for p, x in execs.items()
             if is_runc(x[0][1]) and p not in wrapped and p in exits
             and exits[p] - x[0][0] >= 0.2]
    if plain:
        print('  runc  create (n=%d): median %.1f ms (runc alone)'
              % (len(plain), statistics.median(plain)))
    rows = {}
    for name, path in (('moat', moat_runc), ('floor', rtfloor)):
        before, after, total, hooks, hook_ms, passthru, bg = [], [], [], [], [], [], []
        creates = 0
        for pid, xs in execs.items():
            if xs[0][1] != path or pid not in exits:
                continue
            t0 = xs[0][0]
            if len(xs) == 2 and is_runc(xs[1][1]):
                if exits[pid] - t0 < 0.2:
                    passthru.append((xs[1][0] - t0) * 1e3)
                continue
            spawned = [c for _, c in kids.get(pid, []) if c in execs]
            runc = [c for c in spawned if is_runc(execs[c][0][1]) and c in exits]
            for _, c in kids.get(pid, []):
                if c not in execs and c in exits and exits[c] > exits[pid]:
                    bg.append((exits[c] - exits[pid]) * 1e3)
            if not runc or exits[pid] - t0 < 0.2:
                continue
            creates += 1
            r = runc[0]
            before.append((execs[r][0][0] - t0) * 1e3)
            after.append((exits[pid] - exits[r]) * 1e3)
            total.append((exits[pid] - t0) * 1e3)
            n = 0
            for p in below(r):
                for t, f in execs.get(p, []):
                    if f in (moat_runc, rtfloor) or f.endswith('/moat-bpf'):
                        n += 1
                        if p in exits:
                            hook_ms.append((exits[p] - t) * 1e3)
            hooks.append(n)
        rows[name] = (before, after, passthru)
        if not creates:
            print('  %-5s no create seen' % name)
            continue
        print('  %-5s create (n=%d): median %.1f ms; before runc %.2f ms, after runc\'s exit %.2f ms; '
              'hook processes per create %.1f%s'
              % (name, creates, statistics.median(total), statistics.median(before),
                 statistics.median(after), statistics.mean(hooks),
                 ', each %.2f ms' % statistics.median(hook_ms) if hook_ms else ''))
        if passthru:
            print('  %-5s pass-through calls (n=%d): exec to runc\'s exec %.2f ms'
                  % (name, len(passthru), statistics.median(passthru)))
        if bg:
            print('  %-5s children left running (n=%d): %.2f ms past their parent'
                  % (name, len(bg), statistics.median(bg)))
    if all(rows.get(k) and rows[k][0] for k in ('moat', 'floor')):
        (mb, ma, mp), (fb, fa, fp) = rows['moat'], rows['floor']
        print('  moat - floor: create %+.2f ms before runc, %+.2f ms after; pass-through %+.2f ms a call'
              % (statistics.median(mb) - statistics.median(fb),
                 statistics.median(ma) - statistics.median(fa),
                 (statistics.median(mp) - statistics.median(fp)) if mp and fp else float('nan')))


if __name__ == '__main__':
    main()
