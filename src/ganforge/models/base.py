"""The container every model factory returns: named networks plus the arguments that built them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class GANModels:
    """The networks of one GAN family, e.g. {"G": ..., "D": ...}, and the factory arguments that rebuild them."""

    name: str
    args: dict[str, Any]
    nets: dict[str, nn.Module] = field(default_factory=dict)
    # Which net `ganforge sample/translate` uses, and what kind of input it takes.
    generator_key: str = "G"
    task: str = "noise"  # "noise" (z[, y] -> image), "translate" (image -> image), "upscale"

    def __getitem__(self, key: str) -> nn.Module:
        return self.nets[key]

    def to(self, device: torch.device | str) -> "GANModels":
        for net in self.nets.values():
            net.to(device)
        return self


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def make_latents(generator: nn.Module, n: int, seed: int, labels: torch.Tensor | int | None = None):
    """Seeded z ~ N(0, I) for a noise generator, and labels cycling 0..K-1 unless given (K = num_classes)."""
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, generator.z_dim, generator=g)
    k = getattr(generator, "num_classes", 0)
    if k <= 0:
        return z, None
    if labels is None:
        y = torch.arange(n) % k
    elif isinstance(labels, int):
        y = torch.full((n,), labels, dtype=torch.long)
    else:
        y = labels.long()
    return z, y
