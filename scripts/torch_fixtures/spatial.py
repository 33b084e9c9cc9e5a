"""Pooling, resizing and batch normalisation (spatial ops)."""
import torch
import torch.nn.functional as F

from .common import rand


def _pool_cases():
    # (tag, shape, kernel, stride, padding, ceil_mode)
    geoms = [
        ("k3s2_8x8_ceil", (2, 3, 8, 8), (3, 3), (2, 2), (0, 0), True),     # ceil: 3 -> 4
        ("k3s2_8x8_floor", (2, 3, 8, 8), (3, 3), (2, 2), (0, 0), False),
        ("k3s2_7x9_ceil", (1, 2, 7, 9), (3, 3), (2, 2), (0, 0), True),     # 9 -> 4 vs floor 4 / 7 -> 3
        ("k3s2_6x10_ceil", (1, 2, 6, 10), (3, 3), (2, 2), (0, 0), True),   # 6 -> 3 vs floor 2
        ("stem_k3s2p1_ceil_9x11", (2, 2, 9, 11), (3, 3), (2, 2), (1, 1), True),   # DeepLab-v2 stem
        ("stem_k3s2p1_ceil_10x8", (1, 3, 10, 8), (3, 3), (2, 2), (1, 1), True),   # last-window rule
        ("k2s2_odd_5x7", (1, 2, 5, 7), (2, 2), (2, 2), (0, 0), False),
        ("k2s2_odd_5x7_ceil", (1, 2, 5, 7), (2, 2), (2, 2), (0, 0), True),
        ("k3x2_s1x2_p1x0", (2, 1, 6, 7), (3, 2), (1, 2), (1, 0), False),
        ("k3s1p1_5x5", (1, 2, 5, 5), (3, 3), (1, 1), (1, 1), False),
        ("k4s3p2_ceil_11x6", (1, 2, 11, 6), (4, 4), (3, 3), (2, 2), True),
        # Naive ceil gives 3x3; the last window would start in the right padding, so 2x2.
        ("lastwin_rule_6x5", (1, 2, 6, 5), (4, 3), (4, 3), (2, 1), True),
    ]
    for i, (tag, shape, k, s, p, ceil) in enumerate(geoms):
        # randn values are tie-free, so max-pool argmaxes (and their gradients) are unambiguous.
        x = rand(*shape, seed=300 + i)
        params = {"kernel": list(k), "stride": list(s), "padding": list(p), "ceil_mode": ceil}
        yield (f"max_pool2d_{tag}", "max_pool2d", params, {"x": x},
               lambda x, k=k, s=s, p=p, c=ceil: F.max_pool2d(x, k, s, p, ceil_mode=c), 1e-6, 1e-5)
        for cip in (True, False):
            xa = rand(*shape, seed=400 + i)
            pa = dict(params, count_include_pad=cip)
            yield (f"avg_pool2d_{tag}_cip{int(cip)}", "avg_pool2d", pa, {"x": xa},
                   lambda x, k=k, s=s, p=p, c=ceil, cip=cip: F.avg_pool2d(
                       x.double(), k, s, p, ceil_mode=c, count_include_pad=cip), 1e-5, 1e-5)
    for i, shape in enumerate([(2, 3, 5, 7), (1, 4, 1, 1), (2, 2, 13, 9)]):
        x = rand(*shape, seed=500 + i)
        yield (f"adaptive_avg_pool2d_{i}", "adaptive_avg_pool2d", {"output": [1, 1]}, {"x": x},
               lambda x: F.adaptive_avg_pool2d(x.double(), (1, 1)), 1e-5, 1e-5)
    x = rand(2, 2, 10, 7, seed=510)
    yield ("adaptive_avg_pool2d_3x4", "adaptive_avg_pool2d", {"output": [3, 4]}, {"x": x},
           lambda x: F.adaptive_avg_pool2d(x.double(), (3, 4)), 1e-5, 1e-5)


def _resize_cases():
    # (tag, shape, size)
    geoms = [
        ("up_6to41", (1, 2, 6, 6), (41, 41)),        # x8-style (41 -> 321 in the real nets)
        ("down_17to5", (1, 2, 17, 17), (5, 5)),
        ("mixed_7x9_to_12x4", (2, 1, 7, 9), (12, 4)),  # non-integer ratios, up and down
        ("to_1px", (1, 2, 5, 6), (1, 1)),
        ("from_1px", (1, 2, 1, 1), (3, 4)),
        ("up_x2_5x3", (1, 1, 5, 3), (10, 6)),
        ("odd_3x7_to_11x5", (1, 2, 3, 7), (11, 5)),
    ]
    for i, (tag, shape, size) in enumerate(geoms):
        for ac in (False, True):
            x = rand(*shape, seed=600 + i)
            yield (f"bilinear_{tag}_ac{int(ac)}", "upsample_bilinear2d", {"size": list(size), "align_corners": ac},
                   {"x": x}, lambda x, size=size, ac=ac: F.interpolate(
                       x.double(), size=size, mode="bilinear", align_corners=ac), 1e-5, 1e-4)
        x = rand(*shape, seed=700 + i)
        yield (f"nearest_{tag}", "upsample_nearest2d", {"size": list(size)}, {"x": x},
               lambda x, size=size: F.interpolate(x, size=size, mode="nearest"), 1e-6, 1e-5)


def _bn_cases():
    # (tag, shape, training, momentum, eps, affine)
    geoms = [
        ("train_2x3x5x7", (2, 3, 5, 7), True, 0.1, 1e-5, True),
        ("train_4x2x3x3_m03", (4, 2, 3, 3), True, 0.3, 1e-3, True),
        ("train_3x4x1x1", (3, 4, 1, 1), True, 0.1, 1e-5, True),   # 1x1 planes: stats over N only
        ("train_noaffine", (2, 3, 4, 4), True, 0.1, 1e-5, False),
        ("train_offset_mean", (2, 2, 6, 5), True, 0.1, 1e-5, True),
        ("eval_2x3x5x7", (2, 3, 5, 7), False, 0.1, 1e-5, True),
        ("eval_noaffine", (3, 2, 4, 3), False, 0.1, 1e-5, False),
    ]
    for i, (tag, shape, training, mom, eps, affine) in enumerate(geoms):
        c = shape[1]
        x = rand(*shape, seed=800 + i, scale=2.0)
        if "offset" in tag:
            with torch.no_grad():
                x += 30.0
        inputs = {"x": x}
        if affine:
            inputs["weight"] = rand(c, seed=820 + i)
            inputs["bias"] = rand(c, seed=840 + i)
        inputs["running_mean"] = rand(c, seed=860 + i, grad=False)
        inputs["running_var"] = (rand(c, seed=880 + i, grad=False).abs() + 0.5)

        def fwd(x, running_mean, running_var, weight=None, bias=None, training=training, mom=mom, eps=eps):
            # Clones: the fixture must store the running stats as they were before the update.
            rm, rv = running_mean.clone().double(), running_var.clone().double()
            w = None if weight is None else weight.double()
            b = None if bias is None else bias.double()
            out = F.batch_norm(x.double(), rm, rv, w, b, training=training, momentum=mom, eps=eps)
            return out, {"running_mean": rm, "running_var": rv}
        yield (f"batch_norm2d_{tag}", "batch_norm2d", {"training": training, "momentum": mom, "eps": eps},
               inputs, fwd, 1e-4, 1e-4)


def cases():
    yield from _pool_cases()
    yield from _resize_cases()
    yield from _bn_cases()
