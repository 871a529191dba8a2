"""The fully connected GAN of the classic examples (Keras-GAN / PyTorch-GAN `gan.py`), optionally conditional.

G: z -> 256 -> 512 -> 1024 -> pixels (LeakyReLU 0.2, BatchNorm, tanh).
D: pixels -> 512 -> 256 -> 1 logit (LeakyReLU 0.2).
The conditional form concatenates a label embedding to z in G and to the flattened image in D (the
`cgan` model with arch=mlp, in models/cgan.py).
"""
from __future__ import annotations


from torch import Tensor, nn

from ..registry import register_model
from .base import GANModels
from ..nn.blocks import init_gan_weights
from .conditioning import ClusterPrior, ProjectionHead, check_clusters, join_label
from .interface import noise_io


class MLPGenerator(nn.Module):
    """z (and a class label) -> image in [-1, 1] through fully connected layers."""

    def __init__(self, image_size=28, channels=1, z_dim=100, hidden=(256, 512, 1024), num_classes=0, embed_dim=50,
                 clusters=0):
        super().__init__()
        self.z_dim, self.num_classes, self.image_size, self.channels = z_dim, num_classes, image_size, channels
        self.cluster_prior = ClusterPrior(clusters) if clusters > 0 else None  # self-conditioned: see dcgan
        num_classes = num_classes or clusters
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        dims = [z_dim + (embed_dim if num_classes > 0 else 0), *hidden]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i > 0:  # as in the classic examples, no normalisation right after the input layer
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(0.2, True))
        layers += [nn.Linear(dims[-1], channels * image_size * image_size), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None and self.cluster_prior is not None:
            y = self.cluster_prior(z)
        z = join_label(z, y, self.embed)
        return self.main(z).view(-1, self.channels, self.image_size, self.image_size)


class MLPDiscriminator(nn.Module):
    """image (and a class label) -> one logit per sample through fully connected layers."""

    def __init__(self, image_size=28, channels=1, hidden=(512, 256), num_classes=0, embed_dim=50, conditioning="concat"):
        super().__init__()
        self.num_classes = num_classes
        self.concat = num_classes > 0 and conditioning == "concat"
        self.embed = nn.Embedding(num_classes, embed_dim) if self.concat else None
        dims = [channels * image_size * image_size + (embed_dim if self.concat else 0), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.head = ProjectionHead(dims[-1], num_classes if conditioning == "projection" else 0)
        init_gan_weights(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = join_label(x.flatten(1), y, self.embed)
        return self.head(self.features(h), y)


@register_model("gan")
def gan(image_size: int = 28, channels: int = 1, z_dim: int = 100, num_classes: int = 0, embed_dim: int = 50,
        d_conditioning: str = "concat", clusters: int = 0) -> GANModels:
    """The classic MLP GAN (28x28 grayscale by default); clusters=K self-conditions it as DCGAN's option does."""
    check_clusters(clusters, num_classes)
    args = dict(image_size=image_size, channels=channels, z_dim=z_dim, num_classes=num_classes,
                embed_dim=embed_dim, d_conditioning=d_conditioning, clusters=clusters)
    g = MLPGenerator(image_size, channels, z_dim, num_classes=num_classes, embed_dim=embed_dim, clusters=clusters)
    d = MLPDiscriminator(image_size, channels, num_classes=num_classes or clusters, embed_dim=embed_dim,
                         conditioning=d_conditioning)
    return GANModels(name="gan", args=args, nets={"G": g, "D": d},
                     io=noise_io(image_size, channels, z_dim, num_classes))
