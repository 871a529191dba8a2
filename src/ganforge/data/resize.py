"""Resize policies that turn any image into a square `size` x `size` one.

- "resize-crop" (default): scale so the shorter side is `size`, then take the centred square.
  Done in one resampling step with PIL's `box` argument, so no intermediate rounding.
- "resize": stretch to `size` x `size` (aspect ratio not kept).
- "pad": scale so the longer side is `size`, then letterbox on black (-1 after normalisation).
- "none": the image must already be `size` x `size`; anything else is an error.

Resampling: LANCZOS when shrinking (sharp, and PIL widens the kernel with the scale factor so it is
properly antialiased), BICUBIC when enlarging (no Lanczos ringing on upscaled edges).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import GanforgeError
from .convert import to_channels, to_chw

RESIZE_POLICIES = ("resize-crop", "resize", "pad", "none")


def check_policy(resize: str) -> None:
    """Raise GanforgeError unless `resize` is a known policy."""
    if resize not in RESIZE_POLICIES:
        raise GanforgeError(f"unknown resize policy {resize!r} (choose from {', '.join(RESIZE_POLICIES)})")


def _filter(src: tuple[float, float], dst: tuple[int, int]) -> Image.Resampling:
    """LANCZOS when either side shrinks, BICUBIC otherwise."""
    if dst[0] < src[0] or dst[1] < src[1]:
        return Image.Resampling.LANCZOS
    return Image.Resampling.BICUBIC


def resize_image(img: Image.Image, size: int | None, resize: str) -> Image.Image:
    """Apply resize policy `resize` to make `img` `size` x `size`; `size` None keeps it as it is."""
    w, h = img.size
    if size is None or (w, h) == (size, size):
        return img
    if resize == "none":
        raise GanforgeError(f"image is {w}x{h}, not {size}x{size}, and resize='none'")
    if resize == "resize":
        return img.resize((size, size), _filter((w, h), (size, size)))
    if resize == "resize-crop":
        side = min(w, h)
        left, top = (w - side) / 2.0, (h - side) / 2.0
        box = (left, top, left + side, top + side)
        return img.resize((size, size), _filter((side, side), (size, size)), box=box)
    if resize == "pad":
        scale = size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        inner = img.resize((nw, nh), _filter((w, h), (nw, nh)))
        canvas = Image.new(img.mode, (size, size), 0)
        canvas.paste(inner, ((size - nw) // 2, (size - nh) // 2))
        return canvas
    check_policy(resize)
    raise AssertionError("unreachable")


def prepare_array(images: np.ndarray, channels: int, size: int | None, resize: str) -> np.ndarray:
    """Resize a uint8 [N,C,H,W] array image by image with the same PIL policy as files use."""
    n, c, h, w = images.shape
    if size is None or (h, w) == (size, size):
        return images
    if resize == "none":
        raise GanforgeError(f"images are {w}x{h}, not {size}x{size}, and resize='none'")
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        hwc = images[i, 0] if c == 1 else images[i].transpose(1, 2, 0)
        img = resize_image(Image.fromarray(np.ascontiguousarray(hwc)), size, resize)
        out[i] = to_chw(to_channels(img, c), c)
    return out
