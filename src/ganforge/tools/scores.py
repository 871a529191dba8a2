"""Score functions for `ganforge direction --score`: each maps images [N, C, H, W] in [-1, 1] to scores [N]."""
from __future__ import annotations

from torch import Tensor


def ink(images: Tensor) -> Tensor:
    """Mean brightness in [0, 1]: for light strokes on a dark ground (MNIST), how thick the strokes are."""
    return ((images.float().clamp(-1, 1) + 1) / 2).mean(dim=(1, 2, 3))


def darkness(images: Tensor) -> Tensor:
    """1 - mean brightness: for dark strokes on a light ground."""
    return 1 - ink(images)


def contrast(images: Tensor) -> Tensor:
    """Per-image standard deviation of the pixels."""
    return images.float().flatten(1).std(dim=1)


__all__ = ["ink", "darkness", "contrast"]
