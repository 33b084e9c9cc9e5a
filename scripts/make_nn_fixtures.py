#!/usr/bin/env python3
"""Generates the network-level parity fixtures in tests/fixtures/nn/ (tested by tests/nn_parity.rs).

Run with Debian's PyTorch (no torchvision needed):
    /usr/bin/python3 scripts/make_nn_fixtures.py [--out tests/fixtures/nn]

The reference modules are written out here by hand, mirroring torchvision's ResNet Bottleneck
and DeepLab-v3 ASPP and AdvSemiSeg's `Res_Deeplab` / FCDiscriminator code, so their state_dict
names are the originals'. Each case writes one safetensors file with
  param.<name>   initial parameters and buffers (float32, by state_dict name)
  input, gout    network input and the upstream gradient of the output
  output         forward output
  grad.input     d(sum(output * gout)) / d input
  grad.<name>    the same w.r.t. every parameter that gets a gradient
  after.<name>   BatchNorm running statistics after the forward (train-mode BN)
The forward/backward run in float64 from the float32-rounded values, so the stored reference
carries no float32 error of its own. Seeded: regenerating gives identical files.
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_torch_fixtures import write_safetensors  # noqa: E402


# ---- reference modules -------------------------------------------------------------------------

class FCDiscriminator(nn.Module):
    """AdvSemiSeg model/discriminator.py (the train script upsamples; done here in forward)."""

    def __init__(self, num_classes, ndf=64):
        super().__init__()
        self.conv1 = nn.Conv2d(num_classes, ndf, kernel_size=4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ndf, ndf * 2, kernel_size=4, stride=2, padding=1)
        self.conv3 = nn.Conv2d(ndf * 2, ndf * 4, kernel_size=4, stride=2, padding=1)
        self.conv4 = nn.Conv2d(ndf * 4, ndf * 8, kernel_size=4, stride=2, padding=1)
        self.classifier = nn.Conv2d(ndf * 8, 1, kernel_size=4, stride=2, padding=1)
        self.leaky_relu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x):
        size = x.shape[-2:]
        y = x
        for c in (self.conv1, self.conv2, self.conv3, self.conv4):
            y = self.leaky_relu(c(y))
        y = self.classifier(y)
        return F.interpolate(y, size=size, mode="bilinear", align_corners=True)


class Bottleneck(nn.Module):
    """torchvision Bottleneck (stride on the 3x3), or AdvSemiSeg's (stride on the first 1x1)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, stride_on_1x1=False):
        super().__init__()
        s1, s2 = (stride, 1) if stride_on_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=s2, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Stage(nn.Module):
    """One block named as the first block of layer3 (`layer3.0.*`), as inside a ResNet."""

    def __init__(self, block):
        super().__init__()
        self.layer3 = nn.Sequential(block)

    def forward(self, x):
        return self.layer3(x)


class ClassifierModule(nn.Module):
    """AdvSemiSeg Classifier_Module (DeepLab-v2 ASPP). `quirk` keeps the official early return
    inside the loop (only branches 0 and 1 summed)."""

    def __init__(self, cin, rates, num_classes, quirk):
        super().__init__()
        self.conv2d_list = nn.ModuleList(
            nn.Conv2d(cin, num_classes, 3, padding=r, dilation=r, bias=True) for r in rates)
        self.quirk = quirk

    def forward(self, x):
        out = self.conv2d_list[0](x)
        for i in range(len(self.conv2d_list) - 1):
            out = out + self.conv2d_list[i + 1](x)
            if self.quirk:
                return out
        return out


class Layer5(nn.Module):
    def __init__(self, cin, rates, classes, quirk):
        super().__init__()
        self.layer5 = ClassifierModule(cin, rates, classes, quirk)

    def forward(self, x):
        return self.layer5(x)


class ASPPConv(nn.Sequential):
    def __init__(self, cin, cout, rate):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=rate, dilation=rate, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class ASPPPooling(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        size = x.shape[-2:]
        for m in self:
            x = m(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """torchvision.models.segmentation.deeplabv3.ASPP (dropout left out: it is tested off)."""

    def __init__(self, cin, rates, cout=256):
        super().__init__()
        mods = [nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                              nn.ReLU())]
        mods += [ASPPConv(cin, cout, r) for r in rates]
        mods.append(ASPPPooling(cin, cout))
        self.convs = nn.ModuleList(mods)
        self.project = nn.Sequential(nn.Conv2d(len(self.convs) * cout, cout, 1, bias=False),
                                     nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        return self.project(torch.cat([c(x) for c in self.convs], dim=1))


class DeepLabV3Head(nn.Module):
    """ASPP as torchvision's `classifier.0`, the 1x1 classifier at torchvision's `classifier.4`
    (advseg leaves out the 3x3 conv + BN + ReLU at indices 1..3)."""

    def __init__(self, cin, rates, width, classes):
        super().__init__()
        self.classifier = nn.Sequential(ASPP(cin, rates, width), nn.Identity(), nn.Identity(),
                                        nn.Identity(), nn.Conv2d(width, classes, 1))

    def forward(self, x):
        return self.classifier(x)


class Tiny(nn.Module):
    """advseg's `tiny` (src/nn/tiny.rs)."""

    def __init__(self, classes):
        super().__init__()

        def stage(cin, cout, stride, dil):
            m = nn.Module()
            m.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=dil, dilation=dil,
                               bias=False)
            m.bn = nn.BatchNorm2d(cout)
            return m

        self.stage1 = stage(3, 16, 2, 1)
        self.stage2 = stage(16, 32, 2, 1)
        self.stage3 = stage(32, 32, 1, 2)
        self.aspp = ClassifierModule(32, [1, 3], classes, quirk=False)

    def forward(self, x):
        for s in (self.stage1, self.stage2, self.stage3):
            x = F.relu(s.bn(s.conv(x)))
        return self.aspp(x)


# ---- fixture generation ------------------------------------------------------------------------

def randomise(module, gen):
    """Scaled random weights (so no layer is at its trivial init) and running statistics."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_var":
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif leaf == "running_mean":
                t.copy_(0.2 * torch.randn(t.shape, generator=gen))
            elif t.dim() == 1 and isinstance(dict(module.named_modules())[name.rsplit(".", 1)[0]],
                                            nn.BatchNorm2d):
                base = 1.0 if leaf == "weight" else 0.0
                t.copy_(base + 0.1 * torch.randn(t.shape, generator=gen))
            else:
                fan_in = t[0].numel() if t.dim() > 1 else 16
                t.copy_(torch.randn(t.shape, generator=gen) / fan_in ** 0.5)


def make_case(out_dir, name, module, in_shape, seed, atol, rtol):
    gen = torch.Generator().manual_seed(seed)
    randomise(module, gen)
    module.train()
    params = {k: v.detach().clone().float() for k, v in module.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    x = torch.randn(in_shape, generator=gen).float()
    m64 = module.double()
    x64 = x.double().requires_grad_(True)
    y = m64(x64)
    gout = torch.randn(y.shape, generator=gen).float()
    (y * gout.double()).sum().backward()
    tensors = {"input": x, "output": y.detach(), "gout": gout, "grad.input": x64.grad}
    for k, v in params.items():
        tensors["param." + k] = v
    for k, p in m64.named_parameters():
        if p.grad is not None:
            tensors["grad." + k] = p.grad
    for k, v in m64.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            tensors["after." + k] = v
    meta = {"case": name, "atol": repr(atol), "rtol": repr(rtol)}
    path = os.path.join(out_dir, name + ".safetensors")
    write_safetensors(path, tensors, meta)
    return path


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "nn"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    cases = [
        # (name, module, input shape, seed, atol, rtol)
        ("fcdisc", FCDiscriminator(3, ndf=4), (1, 3, 64, 64), 1, 1e-4, 1e-4),
        ("bottleneck_dil2", Stage(Bottleneck(8, 4, stride=1, dilation=2)), (2, 8, 9, 9), 2, 1e-4, 1e-4),
        ("bottleneck_caffe_s2", Stage(Bottleneck(8, 4, stride=2, stride_on_1x1=True)), (2, 8, 9, 9), 3,
         1e-4, 1e-4),
        ("aspp_v2_sum", Layer5(8, [6, 12, 18, 24], 3, quirk=False), (2, 8, 13, 13), 4,
         1e-4, 1e-4),
        ("aspp_v2_quirk", Layer5(8, [6, 12, 18, 24], 3, quirk=True), (2, 8, 13, 13), 5,
         1e-4, 1e-4),
        ("aspp_v3_head", DeepLabV3Head(8, [2, 3, 4], 4, 3), (2, 8, 9, 9), 6, 1e-4, 1e-4),
        ("tiny", Tiny(5), (2, 3, 17, 15), 7, 1e-4, 1e-4),
    ]
    total = 0
    for name, module, shape, seed, atol, rtol in cases:
        p = make_case(a.out, name, module, shape, seed, atol, rtol)
        total += os.path.getsize(p)
        print(f"{name}: {os.path.getsize(p)} bytes")
    print(f"total {total} bytes in {a.out}")


if __name__ == "__main__":
    main()
