#!/bin/sh
# tools/timed.sh NAME CMD...: run CMD, then say how long it took.
# make test prints one line per part, which the README's timings quote.
name=$1
shift
t0=$(date +%s)
rc=0
"$@" || rc=$?
echo "make test: $name took $(($(date +%s) - t0)) s (exit $rc)"
exit "$rc"
