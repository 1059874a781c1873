#!/usr/bin/env bash
# Run a command with every other python process paused (SIGSTOP), resumed when it ends: for timings on a
# shared 2-core machine, e.g. scripts/quiet.sh camworld bench env ... (docs/benchmarks/env.md)
pids=$(pgrep -f "python|camworld" | grep -v "^$$\$" || true)
me=$$
others=""
for p in $pids; do [ "$p" != "$me" ] && [ "$p" != "$PPID" ] && others="$others $p"; done
[ -n "$others" ] && kill -STOP $others 2>/dev/null
trap '[ -n "$others" ] && kill -CONT $others 2>/dev/null' EXIT
"$@"
