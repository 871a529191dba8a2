"""Class conditioning shared by the MLP and DCGAN families: label inputs for G and D."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import GanforgeError

D_CONDITIONING = ("concat", "projection")


def join_label(z: Tensor, y: Tensor | None, embed: nn.Module | None) -> Tensor:
    """z (or a flattened image) with the label embedding appended, when the model is conditional."""
    return z if embed is None else torch.cat([z, embed(y)], 1)


class ProjectionHead(nn.Module):
    """Projection discriminator output (Miyato & Koyama 2018): linear(h) + <embed(y), h>."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes > 0 else None

    def forward(self, h: Tensor, y: Tensor | None) -> Tensor:
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(1)
        return out


def one_hot_maps(y: Tensor, num_classes: int, height: int, width: int) -> Tensor:
    """Labels as num_classes constant one-hot planes, for concatenation with an image."""
    oh = torch.nn.functional.one_hot(y, num_classes).to(torch.float32)
    return oh[:, :, None, None].expand(-1, -1, height, width)


class ClusterPrior(nn.Module):
    """A self-conditioned G's choice of cluster, made from its own latent: cluster k with probability prior[k].

    The first latent coordinate, z0 ~ N(0, 1), becomes u = Phi(z0) ~ U(0, 1), and the cluster is where u falls
    in the cumulative prior. The generator thus stays a plain z -> image function (sampling, evaluation and
    export need no labels) while its clusters keep the training set's proportions. `prior` is a buffer: set
    from the cluster sizes when training starts, saved with the weights.
    """

    def __init__(self, num_clusters: int):
        super().__init__()
        self.register_buffer("prior", torch.full((num_clusters,), 1.0 / num_clusters))

    def set_sizes(self, counts: Tensor) -> None:
        """The prior from the number of training images in each cluster."""
        counts = torch.as_tensor(counts, dtype=torch.float32)
        self.prior.copy_(counts / counts.sum())

    def forward(self, z: Tensor) -> Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0] / 2**0.5))
        edges = torch.cumsum(self.prior, 0)[:-1].to(u.dtype)
        return (u[:, None] >= edges[None]).sum(1)


def check_clusters(clusters: int, num_classes: int) -> None:
    """One clear error for a self-conditioned model that cannot be built."""
    if clusters < 0 or clusters == 1:
        raise GanforgeError(f"model.clusters must be 0 (off) or at least 2, got {clusters}")
    if clusters > 0 and num_classes > 0:
        raise GanforgeError("model.clusters (self-conditioning on k-means clusters) replaces class labels: "
                            "set num_classes=0 or clusters=0")


def conv_with_label_planes(conv: nn.Conv2d, x: Tensor, y: Tensor, num_classes: int) -> Tensor:
    """conv(cat([x, one_hot_maps(y)])) without building the K one-hot planes of every image.

    A constant plane convolves to one map per class (constant inside, shaped by the zero padding at the
    borders), so the K label channels cost one small convolution per batch instead of K input channels per
    image: with 80 clusters that is most of a DCGAN discriminator's first layer.
    """
    c = x.shape[1]
    w = conv.weight
    h = torch.nn.functional.conv2d(x, w[:, :c], conv.bias, conv.stride, conv.padding, conv.dilation)
    ones = torch.ones(1, 1, x.shape[2], x.shape[3], dtype=x.dtype, device=x.device)
    wk = w[:, c:].transpose(0, 1).reshape(num_classes * w.shape[0], 1, *w.shape[2:])
    maps = torch.nn.functional.conv2d(ones, wk, None, conv.stride, conv.padding, conv.dilation)
    return h + maps.reshape(num_classes, w.shape[0], *h.shape[2:])[y]
