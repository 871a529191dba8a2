"""Adversarial objectives on raw discriminator outputs (logits / critic values).

Every function takes the discriminator's raw outputs; sigmoids live inside softplus for
numerical stability, so the BCE losses are the exact log D(x) objectives of the papers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import GanforgeError

# name -> one-line description (listed by `ganforge models`).
ADVERSARIAL_LOSSES = {
    "ns": "non-saturating BCE (Goodfellow et al. 2014, G maximises log D(G(z)))",
    "minimax": "original minimax (G minimises log(1 - D(G(z))))",
    "lsgan": "least squares (Mao et al. 2017, a=0, b=c=1)",
    "hinge": "hinge (Lim & Ye 2017; Miyato et al. 2018)",
    "wasserstein": "Wasserstein critic (Arjovsky et al. 2017)",
}


def _check(kind: str) -> None:
    if kind not in ADVERSARIAL_LOSSES:
        raise GanforgeError(f"unknown loss {kind!r} (known: {', '.join(ADVERSARIAL_LOSSES)})")


def d_loss(real: Tensor, fake: Tensor, kind: str, real_label: float = 1.0) -> Tensor:
    """Discriminator loss on outputs for real and generated samples.

    real_label < 1 is one-sided label smoothing (Salimans et al. 2016) for the BCE losses.
    """
    _check(kind)
    if kind in ("ns", "minimax"):
        # -t log sigmoid(r) - (1 - t) log(1 - sigmoid(r)) - log(1 - sigmoid(f))
        real_term = real_label * F.softplus(-real) + (1 - real_label) * F.softplus(real)
        return real_term.mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()  # wasserstein


def g_loss(fake: Tensor, kind: str) -> Tensor:
    """Generator loss on the discriminator's outputs for generated samples."""
    _check(kind)
    if kind == "ns":
        return F.softplus(-fake).mean()  # -log sigmoid(f)
    if kind == "minimax":
        return -F.softplus(fake).mean()  # log(1 - sigmoid(f))
    if kind == "lsgan":
        return 0.5 * (fake - 1).pow(2).mean()
    return -fake.mean()  # hinge and wasserstein


def bce_with_target(logits: Tensor, target_is_real: bool) -> Tensor:
    """Plain BCE of logits against an all-real or all-fake target."""
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)
