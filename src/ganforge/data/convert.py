"""Explicit PIL mode conversion: any supported mode to 8-bit "L"/"RGB" or high-depth "F" (0..255 scale).

Policy (documented here once, used by every file-based source):

- "1" (bilevel): 0 -> 0, 1 -> 255.
- "L": unchanged. "RGB": unchanged.
- "LA", "La", "RGBA", "RGBa", "PA": alpha is composited onto **black** (so a fully transparent pixel
  becomes -1, the same colour as "pad" letterboxing and as MNIST-style backgrounds).
- "P" (palette): expanded through the palette to RGB, or to RGBA when the image has a
  `transparency` entry, then composited onto black like any alpha image.
- "CMYK", "YCbCr", "LAB", "HSV", "RGBX": PIL's conversion to RGB (no ICC colour management).
- "I;16", "I;16B", "I;16L", "I;16N" (16-bit): scaled 0..65535 -> 0..255 as float32, never clipped to 8 bits.
- "I" (32-bit integer, how older PIL opened 16-bit PNGs): treated as 16-bit, 0..65535 -> 0..255;
  values outside 0..65535 are clipped.
- "F" (float): read as 0..1 when the image's maximum is <= 1, else as 0..255; clipped; NaN -> 0.

Channel conversion: RGB -> 1 channel is ITU-R 601-2 luma (PIL "L": L = 0.299 R + 0.587 G + 0.114 B);
1 channel -> 3 channels repeats the channel.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import GanforgeError

COLOR_MODES = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"})
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
SUPPORTED_MODES = COLOR_MODES | GRAY_MODES

_U16_TO_U8 = np.float32(255.0 / 65535.0)


def native_channels(mode: str) -> int:
    """Number of channels (1 or 3) an image of PIL `mode` has natively; alpha does not count."""
    if mode in COLOR_MODES:
        return 3
    if mode in GRAY_MODES:
        return 1
    raise GanforgeError(f"unsupported image mode {mode!r}")


def _composite_on_black(img: Image.Image, base_mode: str) -> Image.Image:
    """Blend an image with alpha (RGBA or LA) onto a black background of `base_mode`."""
    out = Image.new(base_mode, img.size, 0)
    out.paste(img.convert(base_mode), mask=img.getchannel("A"))
    return out


def _high_depth_to_float(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float images as mode "F" on a 0..255 scale."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        scale = np.float32(255.0) if arr.size and float(arr.max()) <= 1.0 else np.float32(1.0)
        out = np.clip(arr * scale, 0.0, 255.0)
    else:
        # I;16* arrays come back as uint16 with the right byte order; "I" as int32.
        out = np.clip(arr.astype(np.float32), 0.0, 65535.0) * _U16_TO_U8
    return Image.fromarray(np.ascontiguousarray(out, dtype=np.float32))


def to_canonical(img: Image.Image) -> Image.Image:
    """Convert a decoded image to mode "L", "RGB" or "F" (0..255 scale) following the module policy."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode in HIGH_DEPTH_MODES:
        return _high_depth_to_float(img)
    if mode in ("LA", "La"):
        return _composite_on_black(img.convert("LA"), "L")
    if mode in ("RGBA", "RGBa", "PA"):
        return _composite_on_black(img.convert("RGBA"), "RGB")
    if mode == "P":
        if "transparency" in img.info:
            return _composite_on_black(img.convert("RGBA"), "RGB")
        return img.convert("RGB")
    if mode in COLOR_MODES:  # CMYK, YCbCr, LAB, HSV, RGBX
        return img.convert("RGB")
    raise GanforgeError(f"unsupported image mode {mode!r}")


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert a canonical ("L", "RGB" or "F") image to `channels` (1 or 3); "F" stays single-channel."""
    if channels == 1 and img.mode == "RGB":
        return img.convert("L")  # ITU-R 601-2 luma
    if channels == 3 and img.mode == "L":
        return img.convert("RGB")  # repeat the channel
    return img  # "F" is repeated later, in to_chw


def to_chw(img: Image.Image, channels: int) -> np.ndarray:
    """A canonical image as a [C,H,W] array: uint8 for "L"/"RGB", float32 on a 0..255 scale for "F"."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[None]
        if channels == 3:
            arr = np.repeat(arr, 3, axis=0)
    else:
        arr = arr.transpose(2, 0, 1)
    if img.mode == "F":
        return np.clip(arr, 0.0, 255.0).astype(np.float32, order="C")
    return arr.astype(np.uint8, order="C")  # always a writable copy: PIL's buffer is read-only


# Integer ITU-R 601-2 weights exactly as PIL's RGB -> L conversion uses them (16-bit fixed point).
_LUMA_R, _LUMA_G, _LUMA_B = 19595, 38470, 7471


def convert_channels_array(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert a uint8 [N,C,H,W] array (C = 1 or 3) to `channels`, matching PIL's "L" luma bit for bit."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if have == 3 and channels == 1:
        rgb = images.astype(np.uint32)
        luma = (rgb[:, 0] * _LUMA_R + rgb[:, 1] * _LUMA_G + rgb[:, 2] * _LUMA_B + 0x8000) >> 16
        return luma.astype(np.uint8)[:, None]
    raise GanforgeError(f"cannot convert {have} channels to {channels}")
