"""BatchNorm with per-sample gain and bias from a conditioning vector (BigGAN's ccbn), the plain one, and
standing statistics.

Both keep running statistics with `momentum` (0.1) while training. `standing_stats` replaces them by the
average over many batches of generated samples (BigGAN's "standing statistics", the reference's
accumulate_standing_stats): each forward in its block updates them with momentum 1/k at its k-th batch,
which is the cumulative mean of the k batch statistics.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .spectral import SNLinear

BN_EPS = 1e-5


class CCBN(nn.Module):
    """BatchNorm without affine, then per-sample gain 1 + gain(c) and bias bias(c) from a conditioning vector c."""

    def __init__(self, channels: int, cond_dim: int, eps: float = BN_EPS):
        super().__init__()
        self.gain = SNLinear(cond_dim, channels, bias=False)
        self.bias = SNLinear(cond_dim, channels, bias=False)
        self.eps = eps
        self.momentum = 0.1
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gain = (1 + self.gain(c)).view(c.size(0), -1, 1, 1)
        bias = self.bias(c).view(c.size(0), -1, 1, 1)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, self.momentum, self.eps)
        return out * gain + bias


class BN(nn.Module):
    """Plain BatchNorm with learnable gain/bias (the reference's `bn`, named as there); ignores a condition."""

    def __init__(self, channels: int, eps: float = BN_EPS):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.momentum = 0.1
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias, self.training,
                            self.momentum, self.eps)


@torch.no_grad()
def standing_stats(net: nn.Module, forward: Callable[[int], None], batches: int) -> None:
    """Set every BN/CCBN's stored statistics of `net` to the mean over `batches` calls of forward(k), which
    runs the net on batch k; the net is left in eval mode (the mode that reads them)."""
    layers = [m for m in net.modules() if isinstance(m, (CCBN, BN))]
    net.train()
    try:
        for k in range(batches):
            for m in layers:
                m.momentum = 1.0 / (k + 1)
            forward(k)
    finally:
        for m in layers:
            m.momentum = 0.1
        net.eval()
