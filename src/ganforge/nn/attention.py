"""Non-local self-attention (Zhang et al. 2019, SAGAN), as BigGAN's reference code: theta/phi/g/o 1x1 SN convs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from .spectral import SNConv2d


class Attention(nn.Module):
    """Non-local self-attention (SAGAN): x + gamma * o(g . softmax(theta^T phi)); phi and g max-pooled 2x."""

    def __init__(self, ch: int):
        super().__init__()
        if ch < 8:
            raise GanforgeError(f"biggan attention needs at least 8 channels, got {ch}")
        self.ch = ch
        self.theta = SNConv2d(ch, ch // 8, 1, padding=0, bias=False)
        self.phi = SNConv2d(ch, ch // 8, 1, padding=0, bias=False)
        self.g = SNConv2d(ch, ch // 2, 1, padding=0, bias=False)
        self.o = SNConv2d(ch // 2, ch, 1, padding=0, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))  # starts as the identity

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        n, _, h, w = x.shape
        theta = self.theta(x).reshape(n, self.ch // 8, h * w)
        phi = F.max_pool2d(self.phi(x), 2).reshape(n, self.ch // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), 2).reshape(n, self.ch // 2, h * w // 4)
        beta = F.softmax(theta.transpose(1, 2) @ phi, -1)  # [n, hw, hw/4]
        o = self.o((g @ beta.transpose(1, 2)).reshape(n, self.ch // 2, h, w))
        return self.gamma * o + x
