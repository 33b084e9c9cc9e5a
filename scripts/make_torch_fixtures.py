#!/usr/bin/env python3
"""Generates the PyTorch parity fixtures in tests/fixtures/torch/.

Run with Debian's PyTorch (apt-get install python3-torch):
    /usr/bin/python3 scripts/make_torch_fixtures.py [--out tests/fixtures/torch] [FAMILY ...]

Each op family lives in scripts/torch_fixtures/<family>.py and defines `cases()`, yielding
(name, op, params, inputs, forward, atol, rtol) tuples; this script runs the forward in float64
where possible, the backward with a seeded upstream gradient, and writes one safetensors file
per case (format: README, "PyTorch parity suite"). Fixtures are deterministic (seeded).
"""
import argparse
import importlib
import json
import os
import pkgutil
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_fixtures  # noqa: E402

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.int32: "I32"}


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer (the Python package is not in Debian)."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype == torch.float64:
            t = t.float()
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def run_case(name, op, params, inputs, forward, atol, rtol, out_dir, seed):
    """inputs: dict name -> tensor (float tensors with requires_grad=True get grad.<name>).
    forward(**inputs) returns the output tensor or (output, {extra_name: tensor})."""
    g = torch.Generator().manual_seed(seed)
    res = forward(**inputs)
    extra = {}
    if isinstance(res, tuple):
        res, extra = res
    tensors = {}
    for k, v in inputs.items():
        tensors["in." + k] = v
    tensors["out"] = res
    for k, v in extra.items():
        tensors["out." + k] = v
    diff = {k: v for k, v in inputs.items() if v.requires_grad}
    if diff and res.requires_grad:
        up = torch.randn(res.shape, generator=g, dtype=res.dtype)
        grads = torch.autograd.grad(res, list(diff.values()), up, allow_unused=True)
        tensors["upstream"] = up
        for k, gr in zip(diff, grads):
            if gr is not None:
                tensors["grad." + k] = gr
    meta = {"op": op, "params": json.dumps(params), "atol": repr(atol), "rtol": repr(rtol)}
    write_safetensors(os.path.join(out_dir, name + ".safetensors"), tensors, meta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "torch"))
    ap.add_argument("families", nargs="*")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    fams = args.families or [m.name for m in pkgutil.iter_modules(torch_fixtures.__path__) if m.name != "common"]
    n = 0
    for fam in sorted(fams):
        mod = importlib.import_module("torch_fixtures." + fam)
        for i, (name, op, params, inputs, forward, atol, rtol) in enumerate(mod.cases()):
            run_case(f"{fam}__{name}", op, params, inputs, forward, atol, rtol, args.out, seed=1000 + i)
            n += 1
        print(f"{fam}: done")
    print(f"wrote {n} cases to {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
