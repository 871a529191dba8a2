"""DCGAN training throughput: ganforge's loop against a plain eager loop written as in the classic
tutorials (the PyTorch DCGAN tutorial's loop and layers, Sigmoid + BCELoss, DataLoader with shuffle),
same architecture, same data, same batch size, measured in the same run.

    python benchmarks/speed_dcgan.py [--steps 60] [--batch 64] [--size 28] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import ganforge
from ganforge.data import build_dataset
from ganforge.training.loop import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402


def tutorial_nets(nz=100, ngf=64, ndf=64, nc=1):
    """The tutorial's Generator/Discriminator, written out layer by layer, for 28x28 (7x7 base)."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 2, 7, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False), nn.Sigmoid())
    return g, d


def plain_loop(images: torch.Tensor, steps: int, batch: int) -> float:
    """Images/s of the tutorial's training loop."""
    torch.manual_seed(0)
    netG, netD = tutorial_nets()
    crit = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = DataLoader(TensorDataset(images), batch_size=batch, shuffle=True, drop_last=True)
    it, done, t0 = iter(loader), 0, None
    warm = 5
    while done < steps + warm:
        try:
            (real,) = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        if done == warm:
            t0 = time.perf_counter()
        b = real.size(0)
        netD.zero_grad()
        out = netD(real).view(-1)
        errD_real = crit(out, torch.full((b,), 1.0))
        errD_real.backward()
        fake = netG(torch.randn(b, 100, 1, 1))
        out = netD(fake.detach()).view(-1)
        errD_fake = crit(out, torch.full((b,), 0.0))
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        out = netD(fake).view(-1)
        errG = crit(out, torch.full((b,), 1.0))
        errG.backward()
        optG.step()
        _ = (errD_real + errD_fake).item(), errG.item()  # the tutorial logs these
        done += 1
    return steps * batch / (time.perf_counter() - t0)


def ganforge_loop(steps: int, batch: int, runs: Path, i: int) -> float:
    """Images/s of ganforge's loop (logging, grad norms, NaN guard on; snapshots only at the end)."""
    log_every = 5
    run = ganforge.train("dcgan", name=f"speed{i}", runs_dir=str(runs), echo=lambda *a, **k: None,
                         overrides=[f"train.steps={steps + log_every}", f"train.batch_size={batch}",
                                    f"train.log_every={log_every}", "train.progress=false",
                                    "train.sample_every=100000", "train.ckpt_every=100000",
                                    # the same game as the tutorial: no EMA, no DiffAugment
                                    "train.ema=0", "recipe.diffaug="])
    recs = read_metrics(run)[1:]  # drop the warm-up window
    secs = sum(log_every * batch / r["images_per_s"] for r in recs)
    return len(recs) * log_every * batch / secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    images, _ = build_dataset("mnist", split="train").as_tensor()
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # interleaved, so background load hits both alike
            plain.append(plain_loop(images, args.steps, args.batch))
            ours.append(ganforge_loop(args.steps, args.batch, Path(tmp), i))
            print(f"repeat {i + 1}: plain {plain[-1]:.0f} img/s, ganforge {ours[-1]:.0f} img/s")
    p, o = statistics.median(plain), statistics.median(ours)
    body = (f"`python benchmarks/speed_dcgan.py --steps {args.steps} --batch {args.batch} --repeats {args.repeats}`"
            f" (DCGAN 28x28, ngf=ndf=64, built-in MNIST)\n\n"
            f"| loop | images/s (median of {args.repeats}) | all repeats |\n|---|---|---|\n"
            f"| plain eager tutorial loop | {p:.0f} | {', '.join(f'{v:.0f}' for v in plain)} |\n"
            f"| ganforge loop | {o:.0f} | {', '.join(f'{v:.0f}' for v in ours)} |\n\nratio ganforge/plain: {o / p:.2f}")
    print(body)
    if not args.no_record:
        record("DCGAN training throughput", body)


if __name__ == "__main__":
    main()
