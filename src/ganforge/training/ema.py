"""Exponential moving average of network weights (G_ema in the StyleGAN/BigGAN sense)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Shadow copies of some nets whose parameters track an exponential moving average."""

    def __init__(self, nets: dict[str, nn.Module], decay: float):
        self.decay = decay
        self.shadows: dict[str, nn.Module] = {}
        for name, net in nets.items():
            shadow = copy.deepcopy(net).eval()
            for p in shadow.parameters():
                p.requires_grad_(False)
            self.shadows[name] = shadow

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module], decay: float | None = None) -> None:
        """shadow = decay * shadow + (1 - decay) * live, for parameters; buffers are copied."""
        d = self.decay if decay is None else decay
        for name, shadow in self.shadows.items():
            live = nets[name]
            ps = [p for p in shadow.parameters() if p.is_floating_point()]
            pl = [p.detach() for p in live.parameters() if p.is_floating_point()]
            if ps:  # one fused kernel per net rather than one per tensor
                torch._foreach_lerp_(ps, pl, 1.0 - d)
            bs, bl = list(shadow.buffers()), list(live.buffers())
            if bs:
                torch._foreach_copy_(bs, bl)

    def state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        """Shadow weights by net name."""
        return {k: v.state_dict() for k, v in self.shadows.items()}

    def load_state_dicts(self, states: dict[str, dict[str, torch.Tensor]]) -> None:
        """Restore shadow weights."""
        for k, v in self.shadows.items():
            v.load_state_dict(states[k])
