"""BatchNorm with per-sample gain and bias from a conditioning vector (BigGAN's ccbn), and the plain one."""
from __future__ import annotations

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
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        gain = (1 + self.gain(c)).view(c.size(0), -1, 1, 1)
        bias = self.bias(c).view(c.size(0), -1, 1, 1)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, self.eps)
        return out * gain + bias


class BN(nn.Module):
    """Plain BatchNorm with learnable gain/bias (the reference's `bn`, named as there); ignores a condition."""

    def __init__(self, channels: int, eps: float = BN_EPS):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias, self.training, 0.1,
                            self.eps)
