#!/usr/bin/env python3
"""Converts a PyTorch checkpoint (.pth / .pt state dict) to a safetensors file advseg can load.

    /usr/bin/python3 scripts/convert_pth.py IN.pth OUT.safetensors [--vgg-fc-to-conv] [--drop PREFIX ...]

- Accepts a bare state_dict or a dict holding it under 'state_dict' or 'model' (nested too, as
  training scripts save), and a pickled nn.Module.
- Strips the 'module.' prefix DataParallel adds.
- Floating tensors are written as float32; integer tensors (num_batches_tracked) as int64
  (advseg ignores num_batches_tracked).
- --vgg-fc-to-conv turns torchvision VGG16's classifier.0 / classifier.3 into the FCN-32s
  convolutions fc6 [4096, 512, 7, 7] / fc7 [4096, 4096, 1, 1] (and drops classifier.6).
- --drop PREFIX removes keys starting with PREFIX (e.g. fc. when only the trunk is wanted);
  advseg's non-strict load reports and skips unexpected keys anyway.

Needs only torch (no safetensors package): the writer is scripts/make_torch_fixtures.py's.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_fixtures import write_safetensors  # noqa: E402


def find_state_dict(obj):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return find_state_dict(obj[key])
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise SystemExit("no state dict found (expected a dict of tensors, or one under "
                     "'state_dict' / 'model')")


def convert(src, dst, vgg_fc_to_conv=False, drop=()):
    obj = torch.load(src, map_location="cpu")
    sd = find_state_dict(obj)
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):
            k = k[len("module."):]
        if any(k.startswith(p) for p in drop):
            continue
        if v.is_floating_point():
            v = v.float()
        elif v.dtype != torch.int64:
            v = v.long()
        out[k] = v.contiguous()
    if vgg_fc_to_conv:
        fc = {"classifier.0": ("fc6", (4096, 512, 7, 7)), "classifier.3": ("fc7", (4096, 4096, 1, 1))}
        for old, (new, shape) in fc.items():
            if old + ".weight" in out:
                out[new + ".weight"] = out.pop(old + ".weight").reshape(shape)
                out[new + ".bias"] = out.pop(old + ".bias")
        out.pop("classifier.6.weight", None)
        out.pop("classifier.6.bias", None)
    write_safetensors(dst, out, {"source": os.path.basename(src)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--vgg-fc-to-conv", action="store_true")
    ap.add_argument("--drop", action="append", default=[], metavar="PREFIX")
    a = ap.parse_args()
    out = convert(a.src, a.dst, a.vgg_fc_to_conv, a.drop)
    n = sum(v.numel() for k, v in out.items() if v.is_floating_point())
    print(f"wrote {a.dst}: {len(out)} tensors, {n} float values")


if __name__ == "__main__":
    main()
