"""Latent walks through seeds: spherical interpolation (slerp) in Z, linear (lerp) in W.

Z ~ N(0, I) concentrates on a sphere, so straight lines between two z's pass through improbable,
short latents; slerp follows the great circle instead. W is what the mapping network learnt to make
(roughly) linear, so there the walk is a straight line between the seeds' ws (after truncation).

Frames: each segment seed_k -> seed_k+1 has `frames` frames at t = 0, 1/frames, ..., (frames-1)/frames,
so every seed appears exactly once; a non-looping walk ends with one more frame, the last seed's,
and `loop` adds the segment back to the first seed instead. K seeds give (K-1) * frames + 1 frames,
or K * frames with loop.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import GanforgeError
from .style import is_style, mapping, require_style, seed_latents, synthesize

SPACES = ("z", "w")


def lerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """a + t (b - a)."""
    return a + (b - a) * t


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation along the last dim: t=0 gives a, t=1 gives b (lerp where a, b are parallel)."""
    a64, b64 = a.double(), b.double()
    cos = (a64 / a64.norm(dim=-1, keepdim=True) * (b64 / b64.norm(dim=-1, keepdim=True))).sum(-1, keepdim=True)
    theta = torch.acos(cos.clamp(-1.0, 1.0))
    s = torch.sin(theta)
    parallel = s < 1e-7
    safe = torch.where(parallel, torch.ones_like(s), s)
    wa = torch.where(parallel, torch.full_like(s, 1.0 - t), torch.sin((1.0 - t) * theta) / safe)
    wb = torch.where(parallel, torch.full_like(s, float(t)), torch.sin(t * theta) / safe)
    return (wa * a64 + wb * b64).to(a.dtype)


def walk(points: Tensor, frames: int, loop: bool = False, space: str = "z") -> Tensor:
    """[K, ...] key points -> [F, ...] walk through them in order (see the module doc for F)."""
    if frames < 2:
        raise GanforgeError(f"frames per segment must be >= 2, got {frames}")
    if points.shape[0] < 2:
        raise GanforgeError(f"a walk needs at least 2 seeds, got {points.shape[0]}")
    step = slerp if space == "z" else lerp
    keys = torch.cat([points, points[:1]]) if loop else points
    out = [step(keys[k], keys[k + 1], i / frames) for k in range(keys.shape[0] - 1) for i in range(frames)]
    if not loop:
        out.append(keys[-1])
    return torch.stack(out)


@torch.no_grad()
def interpolate(gen, seeds: Sequence[int], space: str = "z", frames: int = 30, loop: bool = False,
                psi: float = 1.0, class_label: int | None = None) -> Tensor:
    """Frames [F, C, H, W] of a walk through the seeds' latents: slerp in Z (any noise model), lerp in W."""
    if space not in SPACES:
        raise GanforgeError(f"unknown latent space {space!r} (choose from {', '.join(SPACES)})")
    if len(seeds) < 2:
        raise GanforgeError(f"a walk needs at least 2 seeds, got {len(seeds)}")
    if frames < 2:
        raise GanforgeError(f"frames per segment must be >= 2, got {frames}")
    if space == "w":
        require_style(gen, "interpolation in W (--space w)")
    elif psi != 1.0:
        require_style(gen, "truncation (--trunc)")
    if gen.io.kind != "noise":
        raise GanforgeError(f"{gen.path} holds an image-to-image model; interpolation needs a noise model")
    label = 0 if gen.io.num_classes and class_label is None else class_label  # one class along the whole walk
    z, y = seed_latents(gen, seeds, label)
    if space == "z":
        zs = walk(z, frames, loop, "z")
        ys = None if y is None else y[:1].expand(zs.shape[0])
        if is_style(gen):
            return synthesize(gen, mapping(gen, zs, ys, psi=psi))
        return gen.io.generate(gen.net, z=zs, y=ys)
    ws = walk(mapping(gen, z, y, psi=psi), frames, loop, "w")
    return synthesize(gen, ws)
