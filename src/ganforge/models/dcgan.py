"""DCGAN (Radford et al. 2016) for any 4*2^k or 7*2^k size, optionally class-conditional.

At image_size=64, channels=3, z_dim=100, ngf=ndf=64 it is exactly the reference DCGAN of the paper and
the PyTorch tutorial (3,576,704 + 2,765,568 parameters). The discriminator returns a logit: the tutorial's
final Sigmoid is folded into the loss (BCE with logits), which computes the same function stably.
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from ..errors import GanforgeError
from ..registry import register_model
from .base import GANModels
from ..nn.blocks import init_gan_weights
from .conditioning import D_CONDITIONING, ClusterPrior, ProjectionHead, check_clusters, conv_with_label_planes, join_label
from .interface import noise_io

D_NORMS = ("batch", "layer", "instance", "none")
MAX_MULT = 8  # channel multiplier cap; 64 px reaches it exactly, as in the reference


def size_plan(image_size: int) -> tuple[int, int]:
    """(base resolution, number of 2x stages) for an image size such as 28, 32, 64, 128."""
    for base in (4, 7):
        if image_size >= 2 * base and image_size % base == 0:
            k = math.log2(image_size // base)
            if k == int(k):
                return base, int(k)
    raise GanforgeError(
        f"DCGAN image_size must be 4*2^k or 7*2^k (e.g. 28, 32, 56, 64, 128, 256), got {image_size}"
    )


def _mult(i: int) -> int:
    return min(2**i, MAX_MULT)


def _d_norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "layer":  # over C, H, W per sample: WGAN-GP's advice for a critic (no batch coupling)
        return nn.GroupNorm(1, ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    return nn.Identity()


class DCGANGenerator(nn.Module):
    """z (and a class label) -> image in [-1, 1] through strided transposed convolutions.

    With clusters=K (self-conditioned) the label embedding is of K clusters, and when no label is given the
    cluster is drawn from z by `cluster_prior`.
    """

    def __init__(self, image_size=64, channels=3, z_dim=100, ngf=64, num_classes=0, embed_dim=50, clusters=0):
        super().__init__()
        base, k = size_plan(image_size)
        self.z_dim, self.num_classes, self.image_size, self.channels = z_dim, num_classes, image_size, channels
        self.cluster_prior = ClusterPrior(clusters) if clusters > 0 else None
        num_classes = num_classes or clusters
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        in_dim = z_dim + (embed_dim if num_classes > 0 else 0)
        ch = ngf * _mult(k - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, ch, base, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for i in range(k - 2, -1, -1):
            nxt = ngf * _mult(i)
            layers += [nn.ConvTranspose2d(ch, nxt, 4, 2, 1, bias=False), nn.BatchNorm2d(nxt), nn.ReLU(True)]
            ch = nxt
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None and self.cluster_prior is not None:
            y = self.cluster_prior(z)
        z = join_label(z, y, self.embed)
        return self.main(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """image (and a class label) -> one logit per sample through strided convolutions."""

    def __init__(self, image_size=64, channels=3, ndf=64, num_classes=0, norm="batch", conditioning="concat",
                 spectral: bool = False):
        super().__init__()
        if norm not in D_NORMS:
            raise GanforgeError(f"unknown discriminator norm {norm!r} (known: {', '.join(D_NORMS)})")
        if conditioning not in D_CONDITIONING:
            raise GanforgeError(f"unknown conditioning {conditioning!r} (known: {', '.join(D_CONDITIONING)})")
        base, k = size_plan(image_size)
        self.num_classes = num_classes
        self.concat = num_classes > 0 and conditioning == "concat"
        in_ch = channels + (num_classes if self.concat else 0)
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, k):
            nxt = ndf * _mult(i)
            layers += [nn.Conv2d(ch, nxt, 4, 2, 1, bias=False), _d_norm(norm, nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        self.features = nn.Sequential(*layers)
        if num_classes > 0 and conditioning == "projection":
            self.out = None
            self.head = ProjectionHead(ch, num_classes)
        else:
            self.out = nn.Conv2d(ch, 1, base, 1, 0, bias=False)
            self.head = None
        init_gan_weights(self)
        if spectral:  # Miyato et al. 2018: every weight divided by its largest singular value (power iteration)
            for m in list(self.modules()):
                if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                    nn.utils.parametrizations.spectral_norm(m)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if self.concat:  # the first conv sees the image and K one-hot label planes
            h = self.features[1:](conv_with_label_planes(self.features[0], x, y, self.num_classes))
        else:
            h = self.features(x)
        if self.head is not None:
            return self.head(h.sum((2, 3)), y)
        return self.out(h).flatten()


def build_dcgan(name, image_size, channels, z_dim, ngf, ndf, num_classes, embed_dim, d_norm, d_conditioning,
                d_spectral=False, clusters=0) -> GANModels:
    """The DCGAN pair with its arguments recorded."""
    check_clusters(clusters, num_classes)
    args = dict(image_size=image_size, channels=channels, z_dim=z_dim, ngf=ngf, ndf=ndf, num_classes=num_classes,
                embed_dim=embed_dim, d_norm=d_norm, d_conditioning=d_conditioning, d_spectral=d_spectral,
                clusters=clusters)
    g = DCGANGenerator(image_size, channels, z_dim, ngf, num_classes, embed_dim, clusters)
    d = DCGANDiscriminator(image_size, channels, ndf, num_classes or clusters, d_norm, d_conditioning, d_spectral)
    return GANModels(name=name, args=args, nets={"G": g, "D": d},
                     io=noise_io(image_size, channels, z_dim, num_classes))


@register_model("dcgan")
def dcgan(image_size: int = 64, channels: int = 3, z_dim: int = 100, ngf: int = 64, ndf: int = 64,
          num_classes: int = 0, embed_dim: int = 50, d_norm: str = "batch", d_conditioning: str = "concat",
          d_spectral: bool = False, clusters: int = 0) -> GANModels:
    """DCGAN; the defaults are the reference 64x64 RGB network. d_spectral: spectral norm on D's layers.

    clusters=K: self-conditioned (Liu et al. 2020): G and D are conditioned on K k-means clusters of the
    training images, G draws its cluster from z, and the model samples like an unconditional one.
    """
    return build_dcgan("dcgan", image_size, channels, z_dim, ngf, ndf, num_classes, embed_dim, d_norm, d_conditioning,
                       d_spectral, clusters)
