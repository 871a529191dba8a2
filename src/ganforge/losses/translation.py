"""Losses of the image-to-image games, defined as the Pix2Pix/CycleGAN reference code defines them
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py GANLoss and the two models' backward passes).

They differ from `losses.adversarial` on purpose: the reference's LSGAN is a plain MSE against 1 or 0
(no 0.5 factor), and its discriminator objective is halved by the caller, 0.5 * (real + fake), "which
slows down the rate at which D learns relative to G" (Isola et al. 2017, sec. 3.3).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import GanforgeError

# name -> one-line description
TRANSLATION_GAN_LOSSES = {
    "vanilla": "BCE with logits against 1 (real) / 0 (fake), the Pix2Pix default",
    "lsgan": "least squares: MSE against 1 (real) / 0 (fake), the CycleGAN default",
}


def check_translation_loss(kind: str) -> str:
    """Return `kind` if it names a translation GAN loss, else raise a GanforgeError."""
    if kind not in TRANSLATION_GAN_LOSSES:
        raise GanforgeError(f"unknown loss {kind!r} (known: {', '.join(TRANSLATION_GAN_LOSSES)})")
    return kind


def gan_loss(pred: Tensor, target_is_real: bool, kind: str) -> Tensor:
    """The reference GANLoss: mean BCE-with-logits ("vanilla") or MSE ("lsgan") of D's outputs vs 1 or 0."""
    check_translation_loss(kind)
    target = pred.new_full((), 1.0 if target_is_real else 0.0).expand_as(pred)
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(pred, target)
    return F.mse_loss(pred, target)


def halved_d_loss(pred_real: Tensor, pred_fake: Tensor, kind: str) -> Tensor:
    """The discriminator objective of both papers: 0.5 * (loss(D(real), 1) + loss(D(fake), 0))."""
    return 0.5 * (gan_loss(pred_real, True, kind) + gan_loss(pred_fake, False, kind))


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (the reference's nn.L1Loss)."""
    return (pred - target).abs().mean()


def cycle_loss(reconstructed: Tensor, real: Tensor, weight: float) -> Tensor:
    """CycleGAN's cycle-consistency term: weight * ||G_BA(G_AB(a)) - a||_1 (weight = lambda_A or lambda_B)."""
    return weight * l1_loss(reconstructed, real)


def identity_loss(same: Tensor, real: Tensor, weight: float, identity_weight: float) -> Tensor:
    """CycleGAN's identity term: weight * identity_weight * ||G(x) - x||_1 for x already in G's target domain."""
    return weight * identity_weight * l1_loss(same, real)
