#!/usr/bin/env python3
"""Markdown tables of the runs made by scripts/results.sh (standard library only)."""
import json
import sys
from pathlib import Path


def load(d):
    evals, rates = [], []
    for line in (d / "metrics.jsonl").read_text().splitlines():
        v = json.loads(line)
        if v["type"] == "eval":
            evals.append(v)
        elif v["type"] == "step" and v.get("it_per_s"):
            rates.append(v["it_per_s"])
    return evals, rates


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/results")
    runs = sorted(p for p in out.iterdir() if (p / "metrics.jsonl").is_file())
    classes = None
    rows = []
    for d in runs:
        evals, rates = load(d)
        first, last = evals[0], evals[-1]
        best = max(evals[1:] or evals, key=lambda e: e["miou"])
        classes = classes or list(last["iou"].keys())
        ms = 1000.0 * sum(1.0 / r for r in rates) / max(len(rates), 1)
        rows.append((d.name, first, best, last, ms))
    print("| run | mIoU init | mIoU best (step) | mIoU end | ms/iter |")
    print("|---|---|---|---|---|")
    for name, first, best, last, ms in rows:
        print(f"| {name} | {first['miou']:.3f} | {best['miou']:.3f} ({best['step']}) "
              f"| {last['miou']:.3f} | {ms:.0f} |")
    print()
    print("| run | " + " | ".join(classes) + " |")
    print("|---|" + "---|" * len(classes))
    for name, _, _, last, _ in rows:
        cells = ["–" if last["iou"].get(c) is None else f"{last['iou'][c]:.3f}" for c in classes]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
