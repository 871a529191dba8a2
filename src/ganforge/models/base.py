"""The container every model factory returns: named networks plus the arguments that built them."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..errors import GanforgeError
from .interface import ModelIO


@dataclass
class GANModels:
    """The networks of one GAN family, e.g. {"G": ..., "D": ...}, and the factory arguments that rebuild them."""

    name: str
    args: dict[str, Any]
    nets: dict[str, nn.Module] = field(default_factory=dict)
    io: ModelIO | None = None  # what the model takes and gives at inference time (see models.interface)

    def __post_init__(self):
        if self.io is None:
            raise ValueError(f"model {self.name!r} declares no inference interface (io)")
        for key in self.io.nets.values():
            if key not in self.nets:
                raise ValueError(f"model {self.name!r}: io names net {key!r}, which it does not have")

    @property
    def generator_key(self) -> str:
        """The net `ganforge sample/translate` uses by default."""
        return self.io.generator_key

    @property
    def task(self) -> str:
        """noise (z[, y] -> image), translate (image -> image) or upscale."""
        return self.io.kind

    def __getitem__(self, key: str) -> nn.Module:
        return self.nets[key]

    def to(self, device: torch.device | str) -> "GANModels":
        for net in self.nets.values():
            net.to(device)
        return self


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)




def named_config(family: str, configs: dict[str, dict[str, Any]], factory: Callable[..., Any], config: str,
                 given: dict[str, Any]) -> dict[str, Any]:
    """The factory arguments `given`, with named config `config` filling those left at the factory's defaults."""
    if not config:
        return dict(given)
    if config not in configs:
        raise GanforgeError(f"unknown {family} config {config!r} (known: {', '.join(sorted(configs))})")
    defaults = {k: p.default for k, p in inspect.signature(factory).parameters.items()}
    out = dict(given)
    for key, value in configs[config].items():
        if given[key] == defaults[key]:
            out[key] = value
    return out
