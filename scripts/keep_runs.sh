#!/usr/bin/env bash
# Copies what `advseg compare` reads from every run directory under SWEEP_DIR (config.toml,
# metrics.jsonl, classes.json, split.txt, train.log) into DEST/<run>/, so a sweep's results can
# be committed and compared again after the machine that ran it is gone. Checkpoints and
# snapshots stay behind, except `last.safetensors` of a run that has not finished (with
# --unfinished-checkpoints): committing it lets the next machine resume the run with
# `advseg sweep ... --out DEST` (a `tiny` checkpoint is ~0.2 MB, with D and Adam state ~0.6 MB).
#   scripts/keep_runs.sh runs/camvid-long-cegu-correctness docs/runs/camvid-long-cegu-correctness
set -euo pipefail
usage() { echo "usage: $0 [--unfinished-checkpoints] SWEEP_DIR DEST" >&2; exit 2; }
ckpt=0
if [ "${1:-}" = "--unfinished-checkpoints" ]; then ckpt=1; shift; fi
[ $# -eq 2 ] || usage
src=$1 dest=$2
[ -d "$src" ] || { echo "$0: $src is not a directory" >&2; exit 1; }
n=0
for run in "$src"/*/; do
  run=${run%/}
  [ -f "$run/config.toml" ] || continue
  name=$(basename "$run")
  mkdir -p "$dest/$name"
  for f in config.toml metrics.jsonl classes.json split.txt train.log; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$dest/$name/$f.tmp" && mv "$dest/$name/$f.tmp" "$dest/$name/$f"; fi
  done
  # A run is finished when its metrics hold an evaluation at its last step (the sweep's test).
  if python3 - "$run" <<'PY'
import json, sys, tomllib
d = sys.argv[1]
iters = tomllib.load(open(f"{d}/config.toml", "rb")).get("iters")
try:
    lines = open(f"{d}/metrics.jsonl").read().splitlines()
except FileNotFoundError:
    sys.exit(1)
evals = [json.loads(l) for l in lines if '"eval"' in l]
sys.exit(0 if any(v.get("type") == "eval" and v.get("step") == iters for v in evals) else 1)
PY
  then
    rm -f "$dest/$name/last.safetensors"
  elif [ $ckpt = 1 ] && [ -f "$run/last.safetensors" ]; then
    cp "$run/last.safetensors" "$dest/$name/last.safetensors.tmp"
    mv "$dest/$name/last.safetensors.tmp" "$dest/$name/last.safetensors"
    echo "$name: unfinished, checkpoint kept"
  fi
  n=$((n + 1))
done
echo "kept $n runs in $dest"
