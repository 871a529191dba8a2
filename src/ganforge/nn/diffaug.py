"""Differentiable augmentation (Zhao et al. 2020, "DiffAugment"): the same random transforms applied to
real and generated images before the discriminator, differentiable so G's gradient passes through.
With little data (the 4,500 built-in digits) it keeps D from memorising the training set."""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import GanforgeError

POLICIES = ("translation", "cutout", "color")


def check_policy(policy: str) -> list[str]:
    """The comma-separated policy as a list; unknown names are an error."""
    names = [p for p in policy.split(",") if p]
    bad = [p for p in names if p not in POLICIES]
    if bad:
        raise GanforgeError(f"unknown diffaug policy {', '.join(bad)} (known: {', '.join(POLICIES)})")
    return names


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio*size pixels in x and y, filling with zeros (mid-grey)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n,), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :] - dy[:, None]  # source row of each output row
    xs = torch.arange(w, device=x.device)[None, :] - dx[:, None]
    valid = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
    idx = ys.clamp(0, h - 1)[:, :, None] * w + xs.clamp(0, w - 1)[:, None, :]
    out = x.flatten(2).gather(2, idx.flatten(1)[:, None, :].expand(-1, x.shape[1], -1)).view_as(x)
    return out * valid[:, None].to(x.dtype)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one random square of ratio*size per image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n,), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n,), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - ch // 2)
    xs = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - cw // 2)
    inside = ((ys >= 0) & (ys < ch))[:, :, None] & ((xs >= 0) & (xs < cw))[:, None, :]
    return x * (~inside)[:, None].to(x.dtype)


def color(x: Tensor) -> Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), on [-1, 1] images."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device) + 0.5) + mean


_FUNCS = {"translation": translation, "cutout": cutout, "color": color}


def diff_augment(x: Tensor, policy: list[str]) -> Tensor:
    """Apply the policy's transforms in order (identity for an empty policy)."""
    for name in policy:
        x = _FUNCS[name](x)
    return x


