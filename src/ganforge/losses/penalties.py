"""Gradient regularizers for discriminators."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     eps: Tensor | None = None) -> Tensor:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2], one interpolation coefficient per sample: `eps`, shaped
    [N, 1, ...], or drawn uniformly from the global generator."""
    if eps is None:
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


@torch.no_grad()
def add_ortho_grad(params: list[Tensor], strength: float) -> None:
    """Add the gradient of BigGAN's off-diagonal orthogonal regularisation to each parameter's .grad.

    W is the parameter viewed as [out, -1]. The reference (ajbrock/BigGAN-PyTorch utils.ortho) adds
    2 * strength * ((W W^T) * (1 - I)) W to the gradient rather than a term to the loss: the exact gradient of
    strength/2 * ||W W^T * (1 - I)||_F^2, half that of the paper's eq. 3 as written. This does the same, so
    `strength` means what the reference's --G_ortho means. 1-D parameters (biases, gains) are skipped; leave
    the shared class embedding's table out of `params` (the reference's blacklist)."""
    for p in params:
        if p.grad is None or p.dim() < 2:
            continue
        w = p.reshape(p.shape[0], -1)
        gram = w @ w.t()
        gram.fill_diagonal_(0)
        p.grad.add_((gram @ w).view_as(p), alpha=2 * strength)
