"""Blocks shared by the model families: norm factory, conv bias rule, GAN weight init.

They follow the reference code of Isola et al. / Zhu et al. (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py): BatchNorm is affine, InstanceNorm is not (and keeps no running statistics), a
convolution carries a bias only where it is followed by InstanceNorm, and weights are drawn from
N(0, 0.02) with BatchNorm scales from N(1, 0.02).
"""
from __future__ import annotations

from torch import nn

from ..errors import GanforgeError

NORMS = ("batch", "instance", "none")


def check_norm(kind: str) -> str:
    """Return `kind` if it names a supported normalization, else raise a GanforgeError."""
    if kind not in NORMS:
        raise GanforgeError(f"unknown norm {kind!r} (known: {', '.join(NORMS)})")
    return kind


def norm_layer(kind: str, channels: int) -> nn.Module:
    """A 2-D normalization layer of `kind` ("batch", "instance" or "none") over `channels`."""
    check_norm(kind)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def conv_bias(kind: str) -> bool:
    """Whether a convolution followed by norm `kind` gets a bias (the reference: only for InstanceNorm)."""
    # BatchNorm's shift makes a bias redundant. The reference also drops it for norm="none", a quirk
    # kept so parameter counts and checkpoints line up with it.
    return check_norm(kind) == "instance"


def init_gan_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    """The DCGAN/pix2pix initialisation: conv/linear weights N(0, std), affine norm scales N(1, std),
    biases 0, label embeddings N(0, 1)."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)):
            if m.weight is not None:  # InstanceNorm without affine has none
                nn.init.normal_(m.weight, 1.0, std)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)

    # Post-order traversal, as the reference's net.apply(init_func).
    net.apply(init)
    return net
