"""Sheets of a class-conditional noise model: one row per class, a walk between two classes, a truncation sweep.

`class_sheet` and `truncation_sweep` work for every conditional noise model (cgan, conditional StyleGAN,
BigGAN); the truncation they take is BigGAN's (z entries beyond +-threshold redrawn, models/interface.py
truncated_randn), which any z ~ N(0, I) generator accepts. `class_walk` interpolates the class itself and needs
a generator with a class embedding to move through: BigGAN's `shared` table and `synthesize(z, e)`.

Seeds: column j of every row uses seed (seed + j), so a column keeps its latent from row to row (the same z
for every class in a class sheet; for a sweep, the same first draw, of which the entries within each threshold
are kept).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import GanforgeError
from .style import model_name, seed_latents

MAX_CELLS = 4096  # a sheet larger than this is a typo, not a request


def require_classes(gen, what: str) -> int:
    """The class count of a conditional noise model, else one clear error naming `what`."""
    if gen.io.kind != "noise" or gen.io.num_classes < 1:
        raise GanforgeError(f"{what} needs a class-conditional noise model; {gen.path} holds a {model_name(gen)} "
                            f"model without classes")
    return gen.io.num_classes


def _check_cells(rows: int, cols: int) -> None:
    if cols < 1:
        raise GanforgeError("a sheet needs at least one column")
    if rows * cols > MAX_CELLS:
        raise GanforgeError(f"a {rows}x{cols} sheet has more than {MAX_CELLS} images")


def _generate(gen, z: Tensor, y: Tensor) -> Tensor:
    return gen.io.generate(gen.net, z=z, y=y).clamp(-1, 1)


@torch.no_grad()
def class_sheet(gen, classes: Sequence[int] | None = None, per_class: int = 8, seed: int = 0,
                threshold: float | None = None) -> Tensor:
    """Images [len(classes) * per_class, C, H, W]: row i shows class classes[i], column j seed (seed + j)."""
    k = require_classes(gen, "a class sheet")
    classes = list(range(k)) if classes is None else [int(c) for c in classes]
    if not classes:
        raise GanforgeError("no classes given")
    gen.io.check_labels(torch.tensor(classes))
    _check_cells(len(classes), per_class)
    seeds = [seed + j for j in range(per_class)]
    z, _ = seed_latents(gen, seeds, 0, threshold)
    zs = z.repeat(len(classes), 1)
    ys = torch.tensor(classes).repeat_interleave(per_class)
    return _generate(gen, zs, ys)


@torch.no_grad()
def truncation_sweep(gen, thresholds: Sequence[float | None], n: int = 8, seed: int = 0,
                     label: int | None = None) -> Tensor:
    """Images [len(thresholds) * n, C, H, W]: row i truncated at thresholds[i] (None: no truncation), column
    j seed (seed + j); classes cycle along a row unless `label` is given."""
    if gen.io.kind != "noise":
        raise GanforgeError(f"{gen.path} holds an image-to-image model; a truncation sweep needs a noise model")
    if not thresholds:
        raise GanforgeError("no thresholds given")
    _check_cells(len(thresholds), n)
    seeds = [seed + j for j in range(n)]
    rows = []
    for t in thresholds:
        z, y = seed_latents(gen, seeds, label, t)
        rows.append(gen.io.generate(gen.net, z=z, y=y).clamp(-1, 1))
    return torch.cat(rows)


@torch.no_grad()
def class_walk(gen, a: int, b: int, seeds: Sequence[int], steps: int = 8, threshold: float | None = None) -> Tensor:
    """Images [len(seeds), steps, C, H, W]: for each seed's z, the class embedding moved linearly from class a's
    to class b's in `steps` (ends included). Needs a BigGAN-style generator (shared embedding, synthesize)."""
    require_classes(gen, "class interpolation")
    net = gen.net
    if not (hasattr(net, "shared") and hasattr(net, "synthesize")):
        raise GanforgeError(f"class interpolation needs a generator with a shared class embedding (biggan); "
                            f"{gen.path} holds a {model_name(gen)} model")
    gen.io.check_labels(torch.tensor([a, b]))
    if steps < 2:
        raise GanforgeError(f"class interpolation needs at least 2 steps, got {steps}")
    _check_cells(len(seeds), steps)
    z, _ = seed_latents(gen, seeds, a, threshold)
    dev = next(net.parameters()).device
    ea, eb = net.shared(torch.tensor([a, b], device=dev))
    t = torch.linspace(0, 1, steps, device=dev)[:, None]
    e = ((1 - t) * ea + t * eb)  # [steps, shared_dim]
    zs = z.to(dev).repeat_interleave(steps, 0)
    es = e.repeat(len(seeds), 1)
    out = torch.cat([net.synthesize(zs[i:i + 256], es[i:i + 256]).float().cpu() for i in range(0, len(zs), 256)])
    return out.clamp(-1, 1).view(len(seeds), steps, *out.shape[1:])
