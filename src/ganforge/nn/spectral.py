"""Spectral normalisation as BigGAN's reference code does it (Miyato et al. 2018; ajbrock/BigGAN-PyTorch).

One power iteration per forward; the estimate u0 and the last singular value sv0 are buffers (in the state
dict, not parameters), updated in training only, so eval-mode outputs are deterministic. The weight is
divided by the estimated largest singular value of its [out, -1] matrix.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SN_EPS = 1e-6  # the reference's ImageNet launch scripts (--SN_eps 1e-6)


class _SN:
    """Spectral normalisation by power iteration (mixin for a module with `weight`): buffers u0 and sv0."""

    def _init_sn(self, num_outputs: int, num_itrs: int, eps: float) -> None:
        self.num_itrs, self.eps = num_itrs, eps
        # torch.randn follows the default device, so the buffers are meta tensors under `torch.device("meta")`.
        self.register_buffer("u0", torch.randn(1, num_outputs))
        self.register_buffer("sv0", torch.ones(1))

    def sn_weight(self) -> Tensor:
        """The weight divided by its estimated largest singular value (u and sv updated in training only)."""
        w = self.weight.reshape(self.weight.size(0), -1)  # a copy when the weight is channels_last
        u = self.u0
        # Without autograd (sampling, export) no block is needed; torch.export turns each into a subgraph,
        # which made exporting BigGAN-deep (hundreds of SN layers) slow.
        quiet = torch.no_grad if torch.is_grad_enabled() else contextlib.nullcontext
        for _ in range(self.num_itrs):
            with quiet():
                v = F.normalize(u @ w, eps=self.eps)
                u = F.normalize(v @ w.t(), eps=self.eps)
        sv = ((v @ w.t()) @ u.t()).squeeze()
        if self.training:
            with torch.no_grad():
                self.u0.copy_(u)
                self.sv0.copy_(sv.detach().reshape(1))
        return self.weight / sv


class SNConv2d(nn.Conv2d, _SN):
    """A Conv2d whose weight is spectrally normalised."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, padding: int = 1, bias: bool = True,
                 num_itrs: int = 1, eps: float = SN_EPS):
        nn.Conv2d.__init__(self, cin, cout, kernel_size, padding=padding, bias=bias)
        self._init_sn(cout, num_itrs, eps)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, _SN):
    """A Linear layer whose weight is spectrally normalised."""

    def __init__(self, cin: int, cout: int, bias: bool = True, num_itrs: int = 1, eps: float = SN_EPS):
        nn.Linear.__init__(self, cin, cout, bias=bias)
        self._init_sn(cout, num_itrs, eps)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.sn_weight(), self.bias)


class SNEmbedding(nn.Embedding, _SN):
    """An Embedding whose [num_classes, dim] table is spectrally normalised."""

    def __init__(self, num: int, dim: int, num_itrs: int = 1, eps: float = SN_EPS):
        nn.Embedding.__init__(self, num, dim)
        self._init_sn(num, num_itrs, eps)

    def forward(self, y: Tensor) -> Tensor:
        return F.embedding(y, self.sn_weight())
