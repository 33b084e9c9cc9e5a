#!/usr/bin/env python3
"""Fixture for the confidence histograms and the AUROC of D's uncertainty
(src/metrics/signals.rs, shaders/signals.wgsl), computed independently here:
bins with float32 arithmetic as the shader does, the AUROC by comparing every
(wrong, right) pair of quantised confidences (Mann-Whitney, ties 1/2, no
histogram), the gate at T by direct float32 comparison.

The pixels come from an integer hash that tests/it/signals.rs reproduces, so the
fixture holds only the expected results. Run: python3 scripts/make_signals_fixture.py
"""
import json
import numpy as np
import torch

N, BINS, CLASSES, IGNORE = 3000, 1000, 4, 255
T = np.float32(0.2)


def h(i, salt):
    """32-bit integer hash (the Rust test has the same)."""
    x = (i * 2654435761 + salt * 40503 + 12345) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 2246822519) & 0xFFFFFFFF
    x ^= x >> 13
    return x


def pixels():
    conf, pred, gt = [], [], []
    for i in range(N):
        c = np.float32(h(i, 1) % 65536) / np.float32(65536.0)
        if i % 97 == 0:
            c = T  # exactly on the gate
        if i % 89 == 0:
            c = np.float32(1.0)
        g = h(i, 2) % (CLASSES + 1)
        g = IGNORE if g == CLASSES else g
        # Right more often when confident: a detector better than chance.
        right = (h(i, 3) % 65536) < int(65536 * (0.2 + 0.7 * float(c)))
        p = g if right and g != IGNORE else (h(i, 4) % CLASSES)
        conf.append(c)
        pred.append(p)
        gt.append(g)
    return np.array(conf, np.float32), np.array(pred), np.array(gt)


def main():
    conf, pred, gt = pixels()
    valid = gt != IGNORE
    right = valid & (pred == gt)
    wrong = valid & (pred != gt)
    b = np.minimum((np.minimum(conf, np.float32(1.0)) * np.float32(BINS)).astype(np.int64), BINS - 1)
    hist_right = np.bincount(b[right], minlength=BINS)
    hist_wrong = np.bincount(b[wrong], minlength=BINS)
    q = torch.tensor(b)
    qr, qw = q[torch.tensor(right)], q[torch.tensor(wrong)]
    # Uncertainty 1 - conf detects wrong pixels: a pair counts when the wrong one is less
    # confident, half when they share a bin.
    pairs = (qw[:, None] < qr[None, :]).double() + 0.5 * (qw[:, None] == qr[None, :]).double()
    auroc_binned = pairs.mean().item()
    cr, cw = torch.tensor(conf[right]), torch.tensor(conf[wrong])
    raw = (cw[:, None] < cr[None, :]).double() + 0.5 * (cw[:, None] == cr[None, :]).double()
    gated = valid & (conf >= T)
    out = {
        "n": N, "bins": BINS, "classes": CLASSES, "ignore": IGNORE, "t": float(T),
        "hist_right": hist_right.tolist(), "hist_wrong": hist_wrong.tolist(),
        "gated": int(gated.sum()), "gated_right": int((gated & right).sum()),
        "auroc_binned": auroc_binned, "auroc_raw": raw.mean().item(),
    }
    with open("tests/fixtures/signals/conf_hist.json", "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print({k: v for k, v in out.items() if not k.startswith("hist")})


if __name__ == "__main__":
    main()
