#!/usr/bin/env python3
"""Generates optimizer fixtures in tests/fixtures/optim/ from torch.optim (SGD, Adam).

Run with Debian's PyTorch: /usr/bin/python3 scripts/make_optim_fixtures.py

Each JSON holds the optimizer config, parameter groups (lr multiplier, weight-decay override),
initial parameters, and per step: the base lr (poly schedule), the gradients given to each
parameter (null = no gradient that step) and the parameters after torch's step.
Parameter "frozen" never gets a gradient in torch; the Rust test freezes it and gives it one.
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "optim")
SHAPES = {"a": [3, 4], "b": [5], "frozen": [2, 3]}
GROUPS = [{"params": ["a"], "lr_mult": 1.0, "weight_decay": None},
          {"params": ["b", "frozen"], "lr_mult": 10.0, "weight_decay": 1e-3}]
STEPS = 5
MAX_STEPS = 8


def poly(base, step):
    return base * (1 - step / MAX_STEPS) ** 0.9


def make(name, ctor, cfg, base_lr):
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    params = {k: torch.randn(s, generator=g).float() for k, s in SHAPES.items()}
    init = {k: v.flatten().tolist() for k, v in params.items()}
    ps = {k: v.clone().requires_grad_(k != "frozen") for k, v in params.items()}
    groups = []
    for gr in GROUPS:
        d = {"params": [ps[k] for k in gr["params"]], "lr": base_lr * gr["lr_mult"]}
        if gr["weight_decay"] is not None:
            d["weight_decay"] = gr["weight_decay"]
        groups.append(d)
    opt = ctor(groups)
    steps = []
    for t in range(STEPS):
        lr = poly(base_lr, t)
        for pg, gr in zip(opt.param_groups, GROUPS):
            pg["lr"] = lr * gr["lr_mult"]
        grads = {}
        for k, p in ps.items():
            # "b" gets no gradient at step 2: skipped, and its Adam step count does not advance.
            if k == "frozen" or (k == "b" and t == 2):
                p.grad = None
                grads[k] = None
            else:
                gr = torch.randn(p.shape, generator=g).float()
                p.grad = gr.clone()
                grads[k] = gr.flatten().tolist()
        opt.step()
        steps.append({"lr": lr, "grads": grads, "after": {k: p.detach().flatten().tolist() for k, p in ps.items()}})
    doc = {"optimizer": name.split("_")[0], "config": cfg, "shapes": SHAPES, "groups": GROUPS, "init": init,
           "steps": steps, "torch": torch.__version__}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(doc, f)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    make("sgd_momentum", lambda gs: torch.optim.SGD(gs, lr=0.1, momentum=0.9, weight_decay=5e-4),
         {"momentum": 0.9, "weight_decay": 5e-4, "nesterov": False}, 0.1)
    make("sgd_nesterov", lambda gs: torch.optim.SGD(gs, lr=0.05, momentum=0.8, weight_decay=1e-2, nesterov=True),
         {"momentum": 0.8, "weight_decay": 1e-2, "nesterov": True}, 0.05)
    make("sgd_plain", lambda gs: torch.optim.SGD(gs, lr=0.1, weight_decay=1e-3),
         {"momentum": 0.0, "weight_decay": 1e-3, "nesterov": False}, 0.1)
    make("adam", lambda gs: torch.optim.Adam(gs, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-4),
         {"beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 1e-4}, 0.01)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
