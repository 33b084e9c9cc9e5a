#!/bin/bash
# Burn and advseg side by side on burn-bench's shapes: each case as a pair, Burn then advseg,
# with the load average and /usr/bin/time per run (docs/PERFORMANCE.md, "Against Burn").
#   BURN=/tmp/burn-bench/target/release/burn-bench ADVSEG=./target/debug/advseg bench/burn_pairs.sh
# BURN defaults to the build described in ../shared/tools/burn-bench/README.md (a copy in /tmp).
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
B=${BURN:-/tmp/burn-bench/target/release/burn-bench}
A=${ADVSEG:-./target/debug/advseg}
for c in ${CASES:-conv1 conv2 conv3 conv4 conv5 conv6 matmul fcd}; do
  echo "== $c $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -f "burn wall %e user %U sys %S" "$B" --only "$c" --budget 1 --min-reps 1 --max-reps 2 2>&1 | tail -8
  echo "-- advseg $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  # "conv2" alone would also match every "conv2d" row.
  f=$c; case $c in conv*) f="$c ";; esac
  /usr/bin/time -f "advseg wall %e user %U sys %S" "$A" bench ops --suite burn --filter "$f" --reps 1 2>&1 | tail -8
done
echo "== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
