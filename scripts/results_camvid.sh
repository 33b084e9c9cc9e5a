#!/usr/bin/env bash
# The CamVid part of docs/RESULTS.md: `advsemi` with 1/8 of the training images labelled vs
# `supervised` on the same 1/8 split, `tiny` network, 128×128 random crops (scale 0.5–1.5),
# evaluated on the full 360×480 val images. Sized for a software GPU; with a real GPU raise
# ITERS, the crop and the network (deeplabv2-resnet101 from COCO weights).
# Usage: scripts/results_camvid.sh [CAMVID_DIR] [OUT] [ITERS]
# Then: python3 scripts/results_table.py OUT
set -euo pipefail
camvid=${1:-../shared/datasets/camvid}
out=${2:-runs/results_camvid}
iters=${3:-600}
bin=${ADVSEG_BIN:-target/release/advseg}
[ -x "$bin" ] || { cargo build --release; bin=target/release/advseg; }
common=(--data "camvid:$camvid" --arch tiny --crop 128,128 --batch 4 --iters "$iters"
        --eval-every $((iters / 2)) --log-every 10 --quiet --seed 1 --labeled-fraction 1/8
        --set lr=0.025 --set random_scale=true --set eval_at_start=true)
run() {
  local name=$1; shift
  rm -rf "$out/$name"
  local t0=$SECONDS
  "$bin" train "${common[@]}" --out "$out/$name" "$@"
  echo "$name: $((SECONDS - t0)) s"
  printf '%s\n' "$*" > "$out/$name/args.txt"
}
mkdir -p "$out"
run supervised_1-8 --method supervised
run advsemi_1-8 --method advsemi --set semi_start=$((iters / 4))
