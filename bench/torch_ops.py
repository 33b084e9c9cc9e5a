#!/usr/bin/env python3
"""PyTorch reference timings for `advseg bench ops`: the same shapes, rows and output format.

fp32 without TF32 (the advseg kernels are plain fp32), CUDA if available else CPU.
    python3 bench/torch_ops.py [--json] [--quick] [--batch N] [--reps R] [--filter TEXT]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

# name, ci, co, hw, k, stride, pad, dil  (mirrors CONVS in src/cli/bench/rows.rs)
CONVS = [
    ("res101 3x3 256ch 41x41 d2", 256, 256, 41, 3, 1, 2, 2),
    ("res101 3x3 512ch 41x41 d4", 512, 512, 41, 3, 1, 4, 4),
    ("res101 3x3 64ch 81x81", 64, 64, 81, 3, 1, 1, 1),
    ("aspp 3x3 2048->21 41x41 d6", 2048, 21, 41, 3, 1, 6, 6),
    ("aspp 3x3 2048->21 41x41 d24", 2048, 21, 41, 3, 1, 24, 24),
    ("disc 4x4/2 21->64 321->161", 21, 64, 321, 4, 2, 1, 1),
    ("disc 4x4/2 64->128 161->81", 64, 128, 161, 4, 2, 1, 1),
    ("disc 4x4/2 128->256 81->41", 128, 256, 81, 4, 2, 1, 1),
    ("disc 4x4/2 256->512 41->21", 256, 512, 41, 4, 2, 1, 1),
]
QUICK_CONVS = [
    ("quick 3x3 8->16 17x17 d2", 8, 16, 17, 3, 1, 2, 2),
    ("quick 4x4/2 3->8 33->17", 3, 8, 33, 4, 2, 1, 1),
]


class Ctx:
    def __init__(self, dev, reps, filt):
        self.dev, self.reps, self.filt = dev, reps, filt

    def sync(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def wanted(self, op, shape):
        return self.filt is None or self.filt in op or self.filt in shape

    def time(self, op, shape, flops, f):
        """Same protocol as the Rust bench: warm-up, one timed call to size the loop, then the
        median of `reps` samples of back-to-back calls bracketed by a device sync."""
        f()
        self.sync()
        t = time.perf_counter()
        f()
        self.sync()
        once = time.perf_counter() - t
        iters = max(1, min(100, int(-(-0.02 // max(once, 1e-6)))))
        samples = []
        for _ in range(max(1, self.reps)):
            t = time.perf_counter()
            for _ in range(iters):
                f()
            self.sync()
            samples.append((time.perf_counter() - t) * 1e3 / iters)
        samples.sort()
        ms = samples[len(samples) // 2]
        return {"op": op, "shape": shape, "ms": ms, "flops": flops,
                "gflops": None if flops is None else flops / (ms * 1e6), "iters": iters,
                "samples": len(samples)}


def conv_rows(cx, op, shape, x, w, b, stride, pad, dil, rows):
    with torch.no_grad():
        y = F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dil)
    dy = torch.full_like(y, 0.01)
    flops = 2.0 * y.shape[0] * y.shape[2] * y.shape[3] * w.numel()
    grad = torch.nn.grad
    if cx.wanted(op + " fwd", shape):
        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, b, stride=stride, padding=pad, dilation=dil)
        rows.append(cx.time(op + " fwd", shape, flops, fwd))
    if cx.wanted(op + " dgrad", shape):
        rows.append(cx.time(op + " dgrad", shape, flops, lambda: grad.conv2d_input(
            x.shape, w, dy, stride=stride, padding=pad, dilation=dil)))
    if cx.wanted(op + " wgrad", shape):
        rows.append(cx.time(op + " wgrad", shape, flops, lambda: grad.conv2d_weight(
            x, w.shape, dy, stride=stride, padding=pad, dilation=dil)))


def linear_rows(cx, n, inp, out, rows):
    shape = f"{n}x{inp} -> {out}"
    dev = cx.dev
    x = torch.full((n, inp), 0.01, device=dev)
    w = torch.full((out, inp), 0.01, device=dev)
    b = torch.full((out,), 0.01, device=dev)
    dy = torch.full((n, out), 0.01, device=dev)
    flops = 2.0 * n * inp * out
    if cx.wanted("linear fwd", shape):
        rows.append(cx.time("linear fwd", shape, flops, lambda: F.linear(x, w, b)))
    if cx.wanted("linear dgrad", shape):
        rows.append(cx.time("linear dgrad", shape, flops, lambda: dy @ w))
    if cx.wanted("linear wgrad", shape):
        rows.append(cx.time("linear wgrad", shape, flops, lambda: dy.t() @ x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--filter")
    a = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cx = Ctx(dev, min(a.reps, 3) if a.quick else a.reps, a.filter)
    rows = []
    for name, ci, co, hw, k, s, p, d in (QUICK_CONVS if a.quick else CONVS):
        shape = f"{name} n{a.batch}"
        x = torch.full((a.batch, ci, hw, hw), 0.01, device=dev)
        w = torch.full((co, ci, k, k), 0.01, device=dev)
        b = torch.full((co,), 0.01, device=dev)
        conv_rows(cx, "conv2d", shape, x, w, b, s, p, d, rows)
    if a.quick:
        linear_rows(cx, 64, 64, 64, rows)
    else:
        linear_rows(cx, 4096, 4096, 4096, rows)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    report = {"device": name, "backend": f"torch {torch.__version__}", "batch": a.batch,
              "quick": a.quick, "rows": rows}
    if a.json:
        print(json.dumps(report, indent=2))
        return
    print(f"device: {name} (torch {torch.__version__}), batch {a.batch}")
    print(f"{'op':<14} {'shape':<36} {'ms':>10} {'GFLOP/s':>10} {'iters':>6}")
    for r in rows:
        g = "-" if r["gflops"] is None else f"{r['gflops']:.1f}"
        print(f"{r['op']:<14} {r['shape']:<36} {r['ms']:>10.3f} {g:>10} {r['iters']:>6}")


if __name__ == "__main__":
    main()
