"""Helpers shared by the fixture families."""
import torch


def rand(*shape, seed, scale=1.0, grad=True):
    g = torch.Generator().manual_seed(seed)
    t = (torch.randn(*shape, generator=g) * scale).float()
    return t.requires_grad_(grad)


def away_from(t, points, margin=1e-2):
    """Nudges values away from kinks (e.g. 0 for relu) so gradients are well defined."""
    with torch.no_grad():
        for p in points:
            close = (t - p).abs() < margin
            t[close] = p + margin * torch.sign(t[close] - p + 1e-12) * 2
    return t


def rand0(seed, grad=True):
    """A 0-d tensor (shape []), what PyTorch reductions and losses return."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((), generator=g).float().requires_grad_(grad)
