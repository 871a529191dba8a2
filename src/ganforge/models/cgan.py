"""The conditional GAN (Mirza & Osindero 2014) on class labels, as a DCGAN or an MLP.

A label embedding is joined to z in G; D sees the label as one-hot planes beside the image (DCGAN), the
embedding beside the flattened image (MLP), or through a projection head (Miyato & Koyama 2018).
"""
from __future__ import annotations

from ..errors import GanforgeError
from ..registry import register_model
from .base import GANModels
from .dcgan import build_dcgan
from .mlp import gan


@register_model("cgan")
def cgan(arch: str = "dcgan", image_size: int = 28, channels: int = 1, z_dim: int = 100, num_classes: int = 10,
         embed_dim: int = 50, ngf: int = 64, ndf: int = 64, d_norm: str = "batch",
         d_conditioning: str = "concat", d_spectral: bool = False) -> GANModels:
    """Class-conditional GAN: label embedding joined to z in G and to the image in D (or a projection D)."""
    if num_classes < 2:
        raise GanforgeError("cgan needs num_classes >= 2")
    if arch == "dcgan":
        m = build_dcgan("cgan", image_size, channels, z_dim, ngf, ndf, num_classes, embed_dim, d_norm, d_conditioning,
                        d_spectral)
    elif arch == "mlp":
        m = gan(image_size, channels, z_dim, num_classes, embed_dim, d_conditioning)
        m.name = "cgan"
    else:
        raise GanforgeError(f"unknown cgan arch {arch!r} (known: dcgan, mlp)")
    m.args.pop("clusters")  # the labels are the classes'
    m.args = {"arch": arch, **m.args, **({} if arch == "dcgan" else {"ngf": ngf, "ndf": ndf, "d_norm": d_norm})}
    return m
