"""Sum and mean reductions (whole tensor and kept dims), incl. sizes that take the two-pass path."""
from .common import rand, rand0

SHAPES = [((2, 3, 5, 7), None), ((2, 3, 5, 7), [0, 2, 3]), ((4, 6), [1]), ((2, 4, 37, 41), [0, 2, 3]),
          ((1, 20000), None), ((1, 2, 3, 4), [1]), ((2, 21, 17, 19), [1])]


def cases():
    for i, (s, dim) in enumerate(SHAPES):
        x = rand(*s, seed=100 + i)
        params = {} if dim is None else {"dim": dim}
        if dim is None:
            fs, fm = (lambda x: x.sum()), (lambda x: x.mean())
        else:
            fs = lambda x, d=dim: x.sum(dim=d, keepdim=True)
            fm = lambda x, d=dim: x.mean(dim=d, keepdim=True)
        tol = 1e-4 if x.numel() < 10000 else 2e-3
        yield (f"sum_{i}", "sum", params, {"x": x}, fs, tol, 1e-4)
        yield (f"mean_{i}", "mean", params, {"x": x}, fm, 1e-5, 1e-4)
    # A 0-d input reduces to itself (shape []).
    x0 = rand0(seed=130)
    yield ("sum_0d", "sum", {}, {"x": x0}, lambda x: x.sum(), 1e-6, 1e-5)
    yield ("mean_0d", "mean", {}, {"x": x0}, lambda x: x.mean(), 1e-6, 1e-5)
