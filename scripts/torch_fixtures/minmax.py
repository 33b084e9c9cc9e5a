"""Per-plane min / max over H x W (CAM min-max normalisation)."""
from .common import rand


def _plane_max(x):
    return x.flatten(2).max(2).values[..., None, None]


def _plane_min(x):
    return x.flatten(2).min(2).values[..., None, None]


def cases():
    # randn values are tie-free, so the routed gradient is unambiguous; 700 > 256 elements per
    # plane exercises the strided per-thread scan before the tree reduction.
    shapes = [(2, 3, 5, 7), (1, 2, 20, 35), (3, 1, 1, 1)]
    for i, shape in enumerate(shapes):
        yield (f"max_spatial_{i}", "max_spatial", {}, {"x": rand(*shape, seed=900 + i)},
               _plane_max, 0.0, 0.0)
        yield (f"min_spatial_{i}", "min_spatial", {}, {"x": rand(*shape, seed=910 + i)},
               _plane_min, 0.0, 0.0)
