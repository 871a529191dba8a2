"""Class conditioning shared by the MLP and DCGAN families: label inputs for G and D."""
from __future__ import annotations

import torch
from torch import Tensor, nn


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
