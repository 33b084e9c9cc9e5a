"""Channel softmax / log_softmax, argmax over channels, losses (cross-entropy with ignore index
and pixel weights, BCE with logits and mask, multilabel soft margin) and channel concat.

References run in float64. Losses are 0-d tensors (shape []), as PyTorch returns them.
"""
import torch
import torch.nn.functional as F

from .common import rand


def labels(shape, classes, seed, ignore=None, frac=0.0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, classes, shape, generator=g)
    if ignore is not None and frac > 0:
        drop = torch.rand(shape, generator=g) < frac
        t[drop] = ignore
    return t


def uniform(*shape, seed, grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g).float().requires_grad_(grad)


def ce_ref(ii, weighted):
    def f(logits, target, pixel_weight=None):
        ce = F.cross_entropy(logits.double(), target, ignore_index=ii, reduction="none")
        if not weighted:
            return F.cross_entropy(logits.double(), target, ignore_index=ii).float()
        return ((pixel_weight.double() * ce).sum() / (target != ii).sum()).float()
    return f


def bce_ref(logits, target, mask=None):
    l = F.binary_cross_entropy_with_logits(logits.double(), target.double(), reduction="none")
    if mask is None:
        return l.mean().float()
    return ((mask.double() * l).sum() / mask.double().sum()).float()


def cases():
    for i, s in enumerate([(2, 5, 3, 4), (3, 7), (1, 1, 2, 3), (2, 3, 1, 1), (1, 4, 5, 3)]):
        x = rand(*s, seed=300 + i, scale=3)
        yield (f"softmax_{i}", "softmax", {"dim": 1}, {"x": x},
               lambda x: F.softmax(x.double(), dim=1).float(), 1e-6, 1e-4)
        x = rand(*s, seed=310 + i, scale=3)
        yield (f"log_softmax_{i}", "log_softmax", {"dim": 1}, {"x": x},
               lambda x: F.log_softmax(x.double(), dim=1).float(), 1e-5, 1e-4)
    # Large logits: the max subtraction keeps exp finite.
    x = rand(2, 4, 2, 3, seed=320, scale=60)
    yield ("log_softmax_large", "log_softmax", {"dim": 1}, {"x": x},
           lambda x: F.log_softmax(x.double(), dim=1).float(), 1e-4, 1e-4)

    # argmax with many ties (integer-valued logits): the first maximum wins, as on torch's CPU.
    x = torch.randint(0, 3, (2, 5, 3, 4), generator=torch.Generator().manual_seed(330)).float()
    yield ("argmax_channels_ties", "argmax_channels", {}, {"x": x}, lambda x: x.argmax(dim=1), 0.0, 0.0)
    x = rand(3, 6, seed=331, grad=False)
    yield ("argmax_channels_2d", "argmax_channels", {}, {"x": x}, lambda x: x.argmax(dim=1), 0.0, 0.0)

    # Cross-entropy: (logits shape, ignore_index, ignored fraction, images made fully ignored).
    ce = [((2, 5, 3, 4), 255, 0.3, []), ((3, 4, 3, 5), -100, 0.2, [1]), ((6, 5), -100, 0.3, []),
          ((1, 3, 7, 5), 255, 0.0, []), ((2, 19, 2, 3), 255, 0.5, [0]), ((4, 1, 2, 2), 255, 0.25, [])]
    for i, (s, ii, frac, dead) in enumerate(ce):
        tshape = (s[0],) + tuple(s[2:])
        t = labels(tshape, s[1], seed=400 + i, ignore=ii, frac=frac)
        for n in dead:
            t[n] = ii
        x = rand(*s, seed=410 + i, scale=2)
        params = {"ignore_index": ii, "reduction": "mean"}
        yield (f"cross_entropy_{i}", "cross_entropy", params, {"logits": x, "target": t},
               ce_ref(ii, False), 1e-5, 1e-4)
        wt = uniform(*tshape, seed=420 + i)
        with torch.no_grad():
            wt.mul_(2.0)
        yield (f"cross_entropy_w_{i}", "cross_entropy", params,
               {"logits": rand(*s, seed=430 + i, scale=2), "target": t, "pixel_weight": wt},
               ce_ref(ii, True), 1e-5, 1e-4)

    # BCE with logits, with and without masks (some all-zero rows), incl. large logits.
    bce = [((2, 3, 4, 5), 3.0, True), ((7,), 3.0, False), ((3, 4), 2.0, True), ((2, 1, 3, 3), 25.0, True),
           ((1, 2, 5, 3), 2.0, False)]
    for i, (s, scale, masked) in enumerate(bce):
        x = rand(*s, seed=500 + i, scale=scale)
        t = uniform(*s, seed=510 + i)
        inputs = {"logits": x, "target": t}
        if masked:
            m = (uniform(*s, seed=520 + i, grad=False) < 0.6).float()
            m.view(s[0], -1)[0] = 0.0
            inputs["mask"] = m
        yield (f"bce_with_logits_{i}", "bce_with_logits", {"reduction": "mean"}, inputs, bce_ref, 1e-5, 1e-4)

    for i, s in enumerate([(4, 6), (1, 20), (5, 1)]):
        x = rand(*s, seed=600 + i, scale=3)
        t = (uniform(*s, seed=610 + i, grad=False) < 0.4).float().requires_grad_(True)
        yield (f"multilabel_soft_margin_{i}", "multilabel_soft_margin", {"reduction": "mean"},
               {"logits": x, "target": t},
               lambda logits, target: F.multilabel_soft_margin_loss(logits.double(), target.double()).float(),
               1e-5, 1e-4)

    for i, (sa, sb) in enumerate([((2, 3, 4, 5), (2, 2, 4, 5)), ((3, 4), (3, 1)), ((1, 1, 3, 7), (1, 4, 3, 7))]):
        a, b = rand(*sa, seed=700 + i), rand(*sb, seed=710 + i)
        yield (f"concat_{i}", "concat", {"dim": 1}, {"a": a, "b": b}, lambda a, b: torch.cat([a, b], dim=1), 0.0, 1e-6)
