#!/usr/bin/env bash
# Reproduces docs/RESULTS.md: every method vs `supervised` at the same budget on synthetic data
# (tiny networks, so it runs on a software GPU). Usage: scripts/results.sh [OUT] [ITERS]
# ONLY="rrm eader" runs a subset. Then: python3 scripts/results_table.py OUT > table.md
# ADVSEG_BIN=target/debug/advseg uses an existing build.
set -euo pipefail
out=${1:-runs/results}
iters=${2:-400}
bin=${ADVSEG_BIN:-target/release/advseg}
[ -x "$bin" ] || { cargo build --release; bin=target/release/advseg; }
data="synthetic:size=32,n=400,val=64"
common=(--data "$data" --iters "$iters" --eval-every $((iters / 4)) --log-every 10 --quiet
        --set eval_at_start=true --seed 1)
run() {
  local name=$1; shift
  # ONLY="a b" runs just those.
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  rm -rf "$out/$name"
  local t0=$SECONDS
  "$bin" train "${common[@]}" --out "$out/$name" "$@"
  echo "$name: $((SECONDS - t0)) s"
  printf '%s\n' "$*" > "$out/$name/args.txt"
}
mkdir -p "$out"
# Full labels.
run supervised      --method supervised --arch tiny --batch 8 --labeled-fraction 1 --set lr=0.025
run advsemi_full    --method advsemi --arch tiny --batch 8 --labeled-fraction 1 --ndf 8 --set lr=0.025
run gan-cegu        --method gan-cegu --arch tiny --batch 8 --labeled-fraction 1 --ndf 8 --set lr=0.025 --set d_lr=0.001
# CEGU's default weights 1 + u average ~2 once D wins, doubling G's effective lr; the
# normalised form (u / mean u) keeps it.
run gan-cegu_normalized --method gan-cegu --arch tiny --batch 8 --labeled-fraction 1 --ndf 8 --set lr=0.025 --set d_lr=0.001 --set weight=normalized
run ssgan           --method ssgan --arch tiny --batch 8 --labeled-fraction 1 --ndf 8 --set lr=0.025
# 1/8 of the images labelled (same split file for both: same seed).
run supervised_1-8  --method supervised --arch tiny --batch 8 --labeled-fraction 1/8 --set lr=0.025
run advsemi_1-8     --method advsemi --arch tiny --batch 8 --labeled-fraction 1/8 --ndf 8 --set lr=0.025 --set semi_start=$((iters / 4))
# Image-level labels only.
run eader           --method eader --arch tiny-cls --batch 8 --set adversary=tiny-cls --set lr=0.05 --set loc_steps=8 --set adv_steps=2
# RRM: the classifier alone for the first 3/4 (recipe A's first phase, so the CAMs mean
# something from scratch), then joint training with reliable labels (CRF at 5 iterations).
run rrm             --method rrm --arch rrm-tiny --batch 8 --set lr=0.05 --set cls_only_steps=$((iters * 3 / 4)) --set crf_iters=5
