"""Class conditioning shared by the MLP and DCGAN families: label inputs for G and D."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import GanforgeError

D_CONDITIONING = ("concat", "projection")


def check_labels(y: Tensor | None, num_classes: int) -> None:
    """Raise a clear error when labels are missing or out of range for a conditional model."""
    if num_classes <= 0:
        return
    if y is None:
        raise GanforgeError(f"this model is class-conditional ({num_classes} classes): give labels")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise GanforgeError(f"labels must lie in 0..{num_classes - 1}")


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv/linear weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)):
            if getattr(m, "weight", None) is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)


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
