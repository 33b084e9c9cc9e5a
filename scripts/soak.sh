#!/usr/bin/env bash
# Soak: trains for SECS seconds and prints the process RSS every STEP seconds, to show memory
# stays flat over a long run. Usage: scripts/soak.sh [SECS=240] [STEP=20] [BIN=target/debug/advseg]
set -euo pipefail
secs=${1:-240}; step=${2:-20}; bin=${3:-target/debug/advseg}
out=$(mktemp -d)
XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} "$bin" train --method advsemi --data synthetic:size=48 \
  --iters 1000000 --batch 8 --ndf 8 --labeled-fraction 1/8 --set lr=0.025 --set semi_start=20 \
  --eval-every 200 --set checkpoint_every=200 --out "$out" --quiet >"$out/log.txt" 2>&1 &
pid=$!
echo "t_s rss_kib step"
for ((t = 0; t <= secs; t += step)); do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || echo gone)
  last=$(grep -o '^step *[0-9]*' "$out/log.txt" 2>/dev/null | tail -1 | tr -s ' ' | cut -d' ' -f2 || true)
  echo "$t $rss ${last:-0}"
  sleep "$step"
done
kill -INT "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
rm -rf "$out"
