#!/usr/bin/env python3
"""Per-evaluation signal metrics of run directories, as a markdown table (docs/RESULTS.md).

    python3 scripts/signals_series.py RUN_DIR...

For each run and each validation evaluation in its metrics.jsonl: step, mIoU, the
D-uncertainty AUROC, the semi gate's precision and coverage at T_semi, and the
thresholded-CAM mIoU, where the method reports them (docs/SIGNALS.md). Standard library only.
"""
import json
import sys
from pathlib import Path


def pct(v):
    return "—" if v is None else f"{100 * v:.1f}"


def main(dirs):
    print("| run | step | mIoU | D AUROC | gate precision | gate coverage | CAM mIoU |")
    print("|---|---|---|---|---|---|---|")
    for d in dirs:
        d = Path(d)
        name = f"{d.parent.name}/{d.name}"
        for line in (d / "metrics.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            e = json.loads(line)
            if e.get("type") != "eval":
                continue
            cells = [e.get(k) for k in ("miou", "d_auroc", "gate_precision", "gate_coverage", "cam_miou")]
            print(f"| {name} | {e['step']} | " + " | ".join(pct(v) for v in cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
