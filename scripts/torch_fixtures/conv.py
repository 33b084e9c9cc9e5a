"""conv2d (stride / padding / dilation per dim, optional bias) and linear, forward and all grads.

The forward runs in float64 so the reference is exact to f32 rounding; the GPU accumulates in
f32 over K = Ci·KH·KW (forward), Co·KH·KW (input grad) or N·OH·OW (weight grad) terms.
"""
import torch.nn.functional as F

from .common import rand

# name, x shape, weight shape, stride, padding, dilation, bias
CONVS = [
    ("3x3_odd", (2, 3, 7, 9), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), True),
    ("1x1", (1, 5, 7, 9), (6, 5, 1, 1), (1, 1), (0, 0), (1, 1), True),
    ("4x4_s2", (2, 3, 9, 8), (5, 3, 4, 4), (2, 2), (1, 1), (1, 1), True),
    ("7x7_s2", (1, 2, 11, 10), (3, 2, 7, 7), (2, 2), (3, 3), (1, 1), True),
    ("d2", (2, 3, 13, 11), (4, 3, 3, 3), (1, 1), (2, 2), (2, 2), True),
    ("d6", (2, 3, 13, 11), (4, 3, 3, 3), (1, 1), (6, 6), (6, 6), True),
    ("d12", (2, 3, 13, 11), (4, 3, 3, 3), (1, 1), (12, 12), (12, 12), True),
    ("d24", (2, 3, 13, 11), (4, 3, 3, 3), (1, 1), (24, 24), (24, 24), True),
    ("nobias", (1, 4, 6, 7), (3, 4, 3, 3), (1, 1), (1, 1), (1, 1), False),
    ("rect", (2, 3, 9, 10), (5, 3, 3, 2), (2, 1), (1, 2), (1, 2), True),
    ("s2_d2_asym", (1, 2, 12, 11), (3, 2, 3, 3), (2, 2), (2, 1), (2, 2), True),
    # K = 37·9 = 333 > one split-K chunk (256); Co = 33 is no multiple of any tile height.
    ("deepk", (1, 37, 5, 6), (33, 37, 3, 3), (1, 1), (1, 1), (1, 1), True),
    # N·OH·OW = 800: the weight gradient's reduction is split over several workgroups.
    ("longred", (2, 3, 20, 20), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), True),
    # Several output tiles in both directions (M = 70 > 64, N = 2·12·12 = 288 > 64).
    ("tiles", (2, 8, 12, 12), (70, 8, 3, 3), (1, 1), (1, 1), (1, 1), False),
]

LINEARS = [
    ("small", (5, 7), (3, 7), True),
    ("deepk", (3, 260), (33, 260), True),
    ("nobias", (4, 10), (6, 10), False),
    ("wide", (70, 20), (40, 20), True),
]


def cases():
    for i, (name, xs, ws, s, p, d, has_b) in enumerate(CONVS):
        x = rand(*xs, seed=300 + i)
        w = rand(*ws, seed=400 + i, scale=0.5)
        inputs = {"x": x, "weight": w}
        if has_b:
            inputs["bias"] = rand(ws[0], seed=500 + i)

        def fwd(x, weight, bias=None, s=s, p=p, d=d):
            b = None if bias is None else bias.double()
            return F.conv2d(x.double(), weight.double(), b, stride=s, padding=p, dilation=d)

        params = {"stride": list(s), "padding": list(p), "dilation": list(d)}
        yield (f"conv2d_{name}", "conv2d", params, inputs, fwd, 2e-4, 2e-4)
    for i, (name, xs, ws, has_b) in enumerate(LINEARS):
        inputs = {"x": rand(*xs, seed=600 + i), "weight": rand(*ws, seed=700 + i, scale=0.5)}
        if has_b:
            inputs["bias"] = rand(ws[0], seed=800 + i)

        def fwd(x, weight, bias=None):
            return F.linear(x.double(), weight.double(), None if bias is None else bias.double())

        yield (f"linear_{name}", "linear", {}, inputs, fwd, 2e-4, 2e-4)
