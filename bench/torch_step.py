#!/usr/bin/env python3
"""PyTorch reference for `advseg bench step --method advsemi`: the same AdvSemiSeg training step
(src/train/methods/advsemi.rs), timed the same way, printing the same fields where they apply.

    python3 bench/torch_step.py [--batch 8] [--size 48] [--ndf 8] [--classes 6]
        [--set semi_start=0] [--warmup 3] [--steps 10] [--device cpu|cuda] [--threads N]
        [--seed 0] [--json]

One step, as advseg's (official BMVC code path, D frozen while G's losses backpropagate):
  1. unlabelled batch: S = softmax(up(G(x_u))); λ_semi_adv·BCE(D(S), 1) and, from semi_start,
     λ_semi·CE(up(G(x_u)), argmax) over the pixels with σ(D(S)) ≥ mask_t, averaged over those
     pixels; with skip_empty_gate the adversarial term is multiplied by (count > 0), as a
     tensor (no host sync), and the backward always runs, as in advseg;
  2. labelled batch: CE(up(G(x_l)), y, ignore 255) + λ_adv·BCE(D(S), 1) over valid pixels;
  3. D unfrozen: ½·BCE(D(softmax([S_l; S_u] detached)), 0) (labelled part masked by valid
     pixels), then ½·BCE(D(onehot y_gt), 1) over valid pixels of a third (labelled) batch;
  4. SGD step for G (momentum 0.9, wd 5e-4, head ×10, poly lr), Adam(0.9, 0.99) for D;
then all step scalars are read back in one transfer (advseg reads them back every step too).
G = `Tiny` and D = `FCDiscriminator` from scripts/make_nn_fixtures.py (parity-tested against
advseg), BatchNorm in train mode; `up` = bilinear, align_corners=True, to the input size.

GFLOP/step counts what advseg's `flops` counter counts (src/ops/conv.rs): 2·MACs of a conv's
forward GEMM, once for the forward, once more when its input gradient is computed
(input requires grad) and once more when its weight gradient is (weight requires grad), all
decided at forward time, under grad mode (every graph built here is backpropagated). Images and
one-hot GT need no gradient, so G's first conv and D on real inputs count forward + weight
grad; frozen D counts forward + input grad. advseg also builds its valid-pixel masks as a
1×1 conv (C→1, unit weights) over the one-hot labels, twice a step, forward only; those
2·N·H·W·C FLOP are added here too (torch computes the mask with a comparison) so the totals
agree. Timing: time per step = between consecutive step ends (after the scalars' read-back,
which synchronises CUDA), median over `--steps` after `--warmup` untimed steps; first step
is measured from the start of this script (the `import torch` included, as advseg includes
device creation). CPU seconds = time.process_time() (all threads of the process) per timed
step. fp32, TF32 off.

On a small, loaded CPU, libgomp's default spin-waiting makes 2+ threads erratic; compare
`--threads 1` and `OMP_WAIT_POLICY=passive` (docs/PERFORMANCE.md, "PyTorch side by side").
"""
import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_nn_fixtures import FCDiscriminator, Tiny  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

IGNORE = 255

# advseg's defaults (src/train/config.rs, src/train/methods/advsemi.rs).
DEFAULTS = {
    "lr": 2.5e-4,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "power": 0.9,
    "head_lr_mult": 10.0,
    "labeled_fraction": 0.125,
    "lambda_adv": 0.1,
    "lambda_semi": 0.1,
    "lambda_semi_adv": 0.001,
    "mask_t": 0.2,
    "semi_start": 5000,
    "semi_start_adv": 0,
    "d_remain": True,
    "d_lr": 1e-4,
    "d_beta1": 0.9,
    "d_beta2": 0.99,
    "skip_empty_gate": True,
}


def parse_sets(sets):
    cfg = dict(DEFAULTS)
    for kv in sets:
        if "=" not in kv:
            sys.exit(f"--set {kv!r}: expected KEY=VALUE")
        k, v = (s.strip() for s in kv.split("=", 1))
        if k not in cfg:
            sys.exit(f"--set {k}: not one of {', '.join(sorted(cfg))}")
        d = cfg[k]
        if isinstance(d, bool):
            cfg[k] = v.lower() in ("1", "true", "yes", "on")
        else:
            cfg[k] = type(d)(float(v)) if isinstance(d, int) else float(v)
    return cfg


class FlopCounter:
    """advseg's `flops` counter semantics via forward hooks on every Conv2d / Linear."""

    def __init__(self):
        self.flops = 0

    def hook(self, mod, inputs, out):
        x = inputs[0]
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            macs = out.numel() * (mod.in_channels // mod.groups) * kh * kw
        else:
            macs = out.numel() * mod.in_features
        gemms = 1
        if torch.is_grad_enabled():
            gemms += int(x.requires_grad) + int(mod.weight.requires_grad)
        self.flops += 2 * macs * gemms

    def attach(self, *models):
        for m in models:
            for mod in m.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    mod.register_forward_hook(self.hook)


def masked_bce(logits, real, mask=None):
    """Σ mask·BCE / max(Σ mask, 1) (plain mean without a mask), as advseg's bce_with_logits."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mask is None:
        return F.binary_cross_entropy_with_logits(logits, target)
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per * mask).sum() / mask.sum().clamp(min=1.0)


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


class Data:
    """A fixed pool of random images/labels (n = max(4·batch, 16), as `bench step`'s synthetic
    set) split labelled / unlabelled by labeled_fraction; each draw picks `batch` random
    indices (with replacement) and moves the batch to the device."""

    def __init__(self, n, size, classes, frac, batch, dev, gen):
        self.images = torch.randn(n, 3, size, size, generator=gen)
        self.labels = torch.randint(0, classes, (n, size, size), generator=gen)
        ign = torch.rand(n, size, size, generator=gen) < 0.05
        self.labels[ign] = IGNORE
        nl = max(1, round(n * frac))
        self.subsets = {"labelled": torch.arange(nl), "unlabelled": torch.arange(nl, n)}
        self.batch, self.dev, self.gen = batch, dev, gen

    def next(self, subset):
        idx = self.subsets[subset]
        pick = idx[torch.randint(0, len(idx), (self.batch,), generator=self.gen)]
        return (self.images[pick].to(self.dev, non_blocking=True),
                self.labels[pick].to(self.dev, non_blocking=True))


class AdvSemiStep:
    def __init__(self, cfg, classes, ndf, iters, dev, counter):
        self.cfg, self.classes, self.iters = cfg, classes, iters
        self.g = Tiny(classes).to(dev).train()
        self.d = FCDiscriminator(classes, ndf=ndf).to(dev).train()
        counter.attach(self.g, self.d)
        head = [p for n, p in self.g.named_parameters() if n.startswith("aspp.")]
        base = [p for n, p in self.g.named_parameters() if not n.startswith("aspp.")]
        self.opt_g = torch.optim.SGD(
            [{"params": base, "mult": 1.0}, {"params": head, "mult": cfg["head_lr_mult"]}],
            lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg["d_lr"],
                                      betas=(cfg["d_beta1"], cfg["d_beta2"]), eps=1e-8)
        self.dev = dev

    def seg_logits(self, x):
        z = self.g(x)
        if z.shape[-2:] == x.shape[-2:]:
            return z
        return F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=True)

    def one_hot(self, labels):
        """[N, H, W] → [N, C, H, W], all zero at ignored pixels (advseg's one_hot)."""
        return (labels.unsqueeze(1) == torch.arange(self.classes, device=labels.device)
                .view(1, -1, 1, 1)).float()

    @staticmethod
    def valid(labels):
        return (labels != IGNORE).float().unsqueeze(1)

    def step(self, it, data):
        c = self.cfg
        poly = (1.0 - it / self.iters) ** c["power"]
        for grp in self.opt_g.param_groups:
            grp["lr"] = c["lr"] * grp["mult"] * poly
        for grp in self.opt_d.param_groups:
            grp["lr"] = c["d_lr"] * poly
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        self.d.requires_grad_(False)
        out = {}

        # 1. Unlabelled batch.
        remain = None
        if (c["lambda_semi"] > 0 or c["lambda_semi_adv"] > 0) and it >= c["semi_start_adv"]:
            xu, _ = data.next("unlabelled")
            pred = self.seg_logits(xu)
            remain = pred.detach()
            d_out = self.d(F.softmax(pred, dim=1))
            l_semi_adv = masked_bce(d_out, True)
            out["loss_semi_adv"] = l_semi_adv.detach()
            adv = l_semi_adv * c["lambda_semi_adv"]
            if c["lambda_semi"] > 0 and it >= c["semi_start"]:
                conf = torch.sigmoid(d_out.detach())
                mask = (conf >= c["mask_t"]).float()
                pseudo = pred.detach().argmax(dim=1)
                ce = F.cross_entropy(pred, pseudo, reduction="none")
                count = mask.sum()
                l_semi = (ce * mask[:, 0]).sum() / count.clamp(min=1.0)
                if c["skip_empty_gate"]:
                    adv = adv * (count > 0).float()
                (l_semi * c["lambda_semi"] + adv).backward()
                out["loss_semi"] = l_semi.detach()
                out["semi_ratio"] = count / mask.numel()
            else:
                adv.backward()

        # 2. Labelled batch.
        xl, yl = data.next("labelled")
        pred = self.seg_logits(xl)
        l_seg = F.cross_entropy(pred, yl, ignore_index=IGNORE)
        valid = self.valid(yl)
        d_out = self.d(F.softmax(pred, dim=1))
        l_adv = masked_bce(d_out, True, valid)
        (l_seg + l_adv * c["lambda_adv"]).backward()
        out["loss_seg"] = l_seg.detach()
        out["loss_adv"] = l_adv.detach()

        # 3. D on fakes (detached predictions) and on real one-hot ground truth.
        self.d.requires_grad_(True)
        pred = pred.detach()
        if remain is not None and c["d_remain"]:
            fake = torch.cat([pred, remain])
            fake_mask = torch.cat([valid, torch.ones_like(valid[:, :1]).expand(
                remain.shape[0], 1, *remain.shape[2:])])
        else:
            fake, fake_mask = pred, valid
        d_fake = self.d(F.softmax(fake, dim=1))
        l_d_fake = masked_bce(d_fake, False, fake_mask)
        (l_d_fake * 0.5).backward()
        _, yg = data.next("labelled")
        real = self.one_hot(yg)
        real_mask = self.valid(yg)
        d_real = self.d(real)
        l_d_real = masked_bce(d_real, True, real_mask)
        (l_d_real * 0.5).backward()

        self.opt_g.step()
        self.opt_d.step()

        with torch.no_grad():
            l_d_fake, l_d_real = l_d_fake.detach(), l_d_real.detach()
            out["loss_d"] = (l_d_fake + l_d_real) * 0.5
            out["loss_d_fake"] = l_d_fake
            out["loss_d_real"] = l_d_real
            out["d_fake_mean"] = masked_mean(torch.sigmoid(d_fake.detach()), fake_mask)
            out["d_real_mean"] = masked_mean(torch.sigmoid(d_real.detach()), real_mask)
            # One read-back of all step scalars (syncs CUDA), checked as advseg's trainer does.
            values = torch.stack([v.reshape(()) for v in out.values()]).tolist()
        for k, v in zip(out, values):
            if v != v or v in (float("inf"), float("-inf")):
                sys.exit(f"step {it + 1}: {k} = {v} is not finite")
        return dict(zip(out, values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="advsemi", choices=["advsemi"])
    ap.add_argument("--arch", default="tiny", choices=["tiny"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--ndf", type=int, default=8, help="D base width (advseg: 8 for tiny)")
    ap.add_argument("--classes", type=int, default=6,
                    help="class count (advseg's synthetic data has 6)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help=f"method/optimiser settings: {', '.join(DEFAULTS)}")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (default: all usable cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.steps < 1:
        sys.exit("no timed steps: use --steps 1 or more")
    cfg = parse_sets(a.set)

    threads = a.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available in this PyTorch")
    dev = torch.device(a.device)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    counter = FlopCounter()
    total = a.warmup + a.steps
    net = AdvSemiStep(cfg, a.classes, a.ndf, total, dev, counter)
    data = Data(max(4 * a.batch, 16), a.size, a.classes, cfg["labeled_fraction"], a.batch, dev,
                gen)
    # advseg's valid-pixel masks: a 1×1 conv C→1 over the one-hot labels, forward only, for
    # the labelled and the GT batch (src/train/methods/common.rs valid_mask).
    mask_flops = 2 * (2 * a.batch * a.size * a.size * a.classes)

    marks = []  # (perf_counter, process_time, flops) at each step end
    for it in range(total):
        net.step(it, data)
        counter.flops += mask_flops
        marks.append((time.perf_counter(), time.process_time(), counter.flops))
        if it == a.warmup - 1 and dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    w0 = max(a.warmup, 1) - 1
    ms = sorted((marks[i + 1][0] - marks[i][0]) * 1e3 for i in range(w0, total - 1))
    if not ms:
        sys.exit("no timed steps: use --steps 1 or more (with --warmup 0, step 1 is untimed)")
    steps = len(ms)
    med = ms[len(ms) // 2]
    gflop = (marks[-1][2] - marks[w0][2]) / 1e9 / steps
    cpu = (marks[-1][1] - marks[w0][1]) / steps
    if dev.type == "cuda":
        adapter = f"{torch.cuda.get_device_name(dev)} (torch {torch.__version__} cuda)"
        peak = torch.cuda.max_memory_allocated(dev) / (1 << 20)
    else:
        adapter = f"{platform.processor() or platform.machine()} (torch {torch.__version__} cpu)"
        peak = None
    r = {
        "adapter": adapter,
        "method": a.method,
        "arch": a.arch,
        "batch": a.batch,
        "size": a.size,
        "ms_per_step": med,
        "ms_min": ms[0],
        "ms_max": ms[-1],
        "first_step_s": marks[0][0] - T0,
        "gflop_per_step": gflop,
        "gflops": gflop / (med / 1e3),
        "peak_mib": peak,
        "cpu_s_per_step": cpu,
        "threads": torch.get_num_threads(),
    }
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"adapter          {r['adapter']}")
    print(f"step             {a.method} {a.arch} batch {a.batch} size {a.size}")
    print(f"ms/step          {med:.1f} median (min {ms[0]:.1f}, max {ms[-1]:.1f})")
    print(f"first step       {r['first_step_s']:.2f} s after start")
    print(f"GEMM work        {gflop:.3f} GFLOP/step, {r['gflops']:.2f} GFLOP/s")
    print(f"CPU              {cpu:.3f} s/step ({gflop / max(cpu, 1e-9):.2f} GFLOP per "
          f"CPU-second), {r['threads']} torch threads")
    if peak is not None:
        print(f"peak GPU memory  {peak:.1f} MiB")


if __name__ == "__main__":
    main()
