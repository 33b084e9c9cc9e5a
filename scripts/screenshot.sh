#!/usr/bin/env bash
# Opens the desktop app in a virtual X display (Xvfb), trains the tiny synthetic demo for a few
# seconds and writes a PNG screenshot of the window (plots + maps).
#   scripts/screenshot.sh [OUT.png] [SECONDS] [TAB] [WxH]
# e.g. `scripts/screenshot.sh docs/app_plots.png 90 plots 1400x2000` for every plot, the
# signal-quality ones included.
# The window renders through wgpu (lavapipe when there is no GPU).
set -euo pipefail
out="${1:-target/app_screenshot.png}"
secs="${2:-40}"
tab="${3:-overview}"
size="${4:-1400x860}"
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if ! command -v Xvfb >/dev/null; then
    echo "installing xvfb" >&2
    apt-get update -qq && apt-get install -y -qq xvfb >/dev/null
fi
cargo build --bin advseg
disp=":$((90 + RANDOM % 9))"
Xvfb "$disp" -screen 0 "${size}x24" -nolisten tcp &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 1
mkdir -p "$(dirname "$out")"
# A fresh UI state and a throwaway persistence dir so the screenshot does not depend on (or
# change) the user's saved layout.
DISPLAY="$disp" XDG_DATA_HOME="$(mktemp -d)" timeout $((secs + 120)) \
    target/debug/advseg app --fresh --start --method advsemi --tab "$tab" --window-size "$size" \
    --set data=synthetic:size=48,n=32,val=4 --set iters=2000 --set batch=2 \
    --set snapshot_every=5 --set eval_every=20 --set probes=2 \
    --screenshot "$out" --after-secs "$secs"
echo "wrote $out"
