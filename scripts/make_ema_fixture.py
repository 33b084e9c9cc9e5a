#!/usr/bin/env python3
"""Generates tests/fixtures/optim/ema.json: torch.optim.swa_utils.AveragedModel as the weight
average (`ema_decay`) reference, buffers averaged too (use_buffers=True), with advseg's
warm-up decay min(decay, (1 + t) / (10 + t)) after step t.

Run with Debian's PyTorch: /usr/bin/python3 scripts/make_ema_fixture.py

The JSON holds the decay, the tensors' names and shapes, their initial values (the average
starts there: AveragedModel's first update copies) and per step t = 1..STEPS the live values
given and the average torch holds after folding them in.
"""
import json
import os

import torch
from torch.optim.swa_utils import AveragedModel

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "optim")
DECAY = 0.3
STEPS = 6


def decay_at(step):
    return min(DECAY, (1.0 + step) / (10.0 + step))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(3, 4))
        self.bias = torch.nn.Parameter(torch.zeros(5))
        self.register_buffer("running_var", torch.zeros(2, 3))


def main():
    g = torch.Generator().manual_seed(7)
    net = Net()
    names = ["weight", "bias", "running_var"]
    live = dict(net.named_parameters())
    live.update(dict(net.named_buffers()))

    def draw():
        with torch.no_grad():
            for k in names:
                live[k].copy_(torch.randn(live[k].shape, generator=g) * 2.0)

    draw()
    init = {k: live[k].detach().flatten().tolist() for k in names}
    ema = AveragedModel(
        net,
        avg_fn=lambda a, p, n: a.lerp(p, 1.0 - decay_at(int(n))),
        use_buffers=True,
    )
    ema.update_parameters(net)  # n_averaged 0: copies the initial values
    avg = dict(ema.module.named_parameters())
    avg.update(dict(ema.module.named_buffers()))
    steps = []
    for t in range(1, STEPS + 1):
        draw()
        ema.update_parameters(net)  # n_averaged == t: decay_at(t)
        steps.append({
            "step": t,
            "decay": decay_at(t),
            "live": {k: live[k].detach().flatten().tolist() for k in names},
            "average": {k: avg[k].detach().flatten().tolist() for k in names},
        })
    doc = {"decay": DECAY, "names": names,
           "shapes": {k: list(live[k].shape) for k in names}, "init": init, "steps": steps,
           "torch": torch.__version__}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "ema.json"), "w") as f:
        json.dump(doc, f)
    print("wrote", os.path.join(OUT, "ema.json"))


if __name__ == "__main__":
    main()
