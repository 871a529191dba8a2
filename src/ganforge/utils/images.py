"""Image grids and conversions between [-1, 1] tensors, uint8 arrays and files (no torchvision)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .atomic import atomic_write


def make_grid(images: Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """Tile [N,C,H,W] images in [-1, 1] into one [C,H',W'] image, `nrow` images per row."""
    if images.dim() != 4:
        raise ValueError("make_grid expects [N, C, H, W]")
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value,
                      dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid


def to_uint8(image: Tensor) -> np.ndarray:
    """[C,H,W] tensor in [-1, 1] -> HxW or HxWxC uint8 array (rounded, clamped)."""
    arr = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = arr.permute(1, 2, 0).numpy()
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def from_uint8(arr: np.ndarray) -> Tensor:
    """HxW or HxWxC uint8 array -> [C,H,W] float tensor in [-1, 1]."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # e.g. np.asarray of a PIL image: torch warns about read-only memory
        arr = arr.copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 127.5 - 1


def save_image(image: Tensor, path: str | Path) -> Path:
    """Save a [C,H,W] tensor in [-1, 1] as PNG/JPEG atomically."""
    path = Path(path)
    pil = Image.fromarray(to_uint8(image))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
    return atomic_write(path, lambda tmp: pil.save(tmp, format=fmt))


def save_grid(images: Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Save [N,C,H,W] images in [-1, 1] as one grid image."""
    return save_image(make_grid(images, nrow=nrow), path)
