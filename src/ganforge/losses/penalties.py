"""Gradient regularizers for discriminators."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2], one interpolation coefficient per sample."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return (norms - 1).pow(2).mean()


def r1_penalty(d_out_real: Tensor, real: Tensor) -> Tensor:
    """R1 penalty E[||grad_x D(x)||^2] on real samples (real must require grad)."""
    (grad,) = torch.autograd.grad(d_out_real.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor) -> Tensor:
    """StyleGAN2's per-sample path lengths ||J_w^T y||_2, with y = noise / sqrt(H*W) and the per-layer
    squared norms averaged over the num_ws layers (ws must require grad; the graph is kept for backward)."""
    y = noise / (images.shape[2] * images.shape[3]) ** 0.5
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.square().sum(2).mean(1).sqrt()
