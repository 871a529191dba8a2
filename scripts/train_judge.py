"""Train the MNIST judge on the built-in training split and ship its weights.

    python scripts/train_judge.py [--epochs 20] [--seed 0]

Prints the held-out accuracy (built-in test split: the last 50 digits of each class, never trained on),
writes src/ganforge/assets/mnist_judge.safetensors and pins its SHA-256 in ganforge/models/judge.py. The
scoring temperature belongs to the old weights then: run scripts/calibrate_judge.py next (scores refuse
to run until it has).
"""
from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.data import build_dataset
from ganforge.models.judge import MNISTJudge, file_sha256
from ganforge.models.judge import non_digits as negatives

ROOT = Path(__file__).resolve().parents[1]


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Small random affine jitter (rotation +-12 deg, scale 0.9-1.1, shift +-2 px), as digits vary."""
    n = x.shape[0]
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(12)
    sc = 0.9 + torch.rand(n, generator=g) * 0.2
    sh = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, sh[:, 0]], 1), torch.stack([sin, cos, sh[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "src/ganforge/assets/mnist_judge.safetensors"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    xtr, ytr = build_dataset("mnist", split="train").as_tensor()
    xte, yte = build_dataset("mnist", split="test").as_tensor()
    print(f"train {len(xtr)} digits, held-out {len(xte)}")
    net = MNISTJudge()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    steps = args.epochs * math.ceil(len(xtr) / 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 128):
            idx = perm[i:i + 128]
            neg = negatives(xtr, 32, g)
            # Augment both alike: otherwise "crisp, un-resampled" would itself mark a negative.
            xb = augment(torch.cat([xtr[idx], neg]), g)
            yb = torch.cat([ytr[idx], torch.full((len(neg),), MNISTJudge.reject_class)])
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            probs = net(xte).softmax(1)
            acc = (probs.argmax(1) == yte).float().mean().item()
            conf = (probs[:, :10].max(1).values >= 0.9).float().mean().item()
            noise_ok = (net(torch.rand(500, 1, 28, 28, generator=g) * 2 - 1).argmax(1) == 10).float().mean().item()
        print(f"epoch {epoch + 1:2d}  loss {loss.item():.4f}  held-out accuracy {acc:.4f}  confident {conf:.3f}  "
              f"noise rejected {noise_ok:.3f}  ({time.time() - t0:.0f}s)")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, args.out)
    digest = file_sha256(args.out)
    judge_py = ROOT / "src/ganforge/models/judge.py"
    text = re.sub(r'WEIGHTS_SHA256 = "[^"]*"', f'WEIGHTS_SHA256 = "{digest}"', judge_py.read_text())
    judge_py.write_text(text)
    print(f"held-out accuracy {acc:.4f} on {len(xte)} digits, {conf:.1%} of them confident (p >= 0.9), "
          f"{noise_ok:.1%} of uniform noise rejected; wrote {args.out} (sha256 {digest})")
    print("confidence above is untempered (T = 1); now fit the scoring temperature: python scripts/calibrate_judge.py")


if __name__ == "__main__":
    main()
