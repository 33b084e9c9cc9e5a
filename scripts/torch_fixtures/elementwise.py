"""Activations and broadcast binary ops."""
import torch
import torch.nn.functional as F

from .common import rand, rand0, away_from

SHAPES = [(2, 3, 5, 7), (1, 1, 1, 9), (3, 4)]


def cases():
    for i, s in enumerate(SHAPES):
        x = away_from(rand(*s, seed=10 + i), [0.0])
        yield (f"relu_{i}", "relu", {}, {"x": x}, lambda x: F.relu(x), 1e-6, 1e-5)
        yield (f"sigmoid_{i}", "sigmoid", {}, {"x": rand(*s, seed=20 + i, scale=4)}, torch.sigmoid, 1e-6, 1e-5)
        yield (f"tanh_{i}", "tanh", {}, {"x": rand(*s, seed=30 + i, scale=3)}, torch.tanh, 1e-6, 1e-5)
        for slope in (0.2, 0.01):
            xl = away_from(rand(*s, seed=40 + i), [0.0])
            yield (f"leaky_relu_{i}_{slope}", "leaky_relu", {"negative_slope": slope}, {"x": xl},
                   lambda x, slope=slope: F.leaky_relu(x, slope), 1e-6, 1e-5)
    pairs = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (1, 3, 1, 1)), ((2, 1, 4, 5), (2, 3, 1, 5)),
             ((4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (1,))]
    for i, (sa, sb) in enumerate(pairs):
        a, b = rand(*sa, seed=50 + i), rand(*sb, seed=60 + i)
        yield (f"add_{i}", "add", {}, {"a": a, "b": b}, lambda a, b: a + b, 1e-5, 1e-5)
        yield (f"mul_{i}", "mul", {}, {"a": a, "b": b}, lambda a, b: a * b, 1e-5, 1e-5)
        yield (f"sub_{i}", "sub", {}, {"a": a, "b": b}, lambda a, b: a - b, 1e-5, 1e-5)
        bd = away_from(rand(*sb, seed=70 + i), [0.0], margin=0.3)
        yield (f"div_{i}", "div", {}, {"a": a, "b": bd}, lambda a, b: a / b, 1e-5, 1e-4)
    # 0-d operands (shape [], PyTorch scalars) broadcast against any shape.
    a, b = rand(2, 3, 4, 5, seed=80), rand0(seed=81)
    yield ("mul_0d", "mul", {}, {"a": a, "b": b}, lambda a, b: a * b, 1e-5, 1e-5)
    yield ("add_0d_0d", "add", {}, {"a": rand0(seed=82), "b": rand0(seed=83)}, lambda a, b: a + b, 1e-6, 1e-5)
