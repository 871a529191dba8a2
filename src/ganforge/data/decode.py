"""Decode one image file into a [C,H,W] array, and read just its header."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image

from .convert import native_channels, to_canonical, to_channels, to_chw
from .resize import resize_image

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class DecodeError(Exception):
    """One file could not be decoded; the message says why (internal: callers skip and count it)."""


@dataclass(frozen=True)
class Header:
    """What an image file's header says: size (W, H) and PIL mode."""

    width: int
    height: int
    mode: str

    @property
    def channels(self) -> int:
        """Native channel count (1 or 3)."""
        return native_channels(self.mode)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def read_header(fp: BinaryIO) -> Header:
    """Open an image without decoding pixels; raise DecodeError if PIL cannot identify it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. DecompressionBombWarning, EXIF warnings
            with Image.open(fp) as img:
                w, h, mode = img.width, img.height, img.mode
        native_channels(mode)
    except Exception as exc:  # PIL raises many types for bad input; all mean "unreadable"
        raise DecodeError(_describe(exc)) from None
    if w < 1 or h < 1:
        raise DecodeError(f"empty image {w}x{h}")
    return Header(w, h, mode)


def decode_image(fp: BinaryIO, channels: int, size: int | None, resize: str) -> np.ndarray:
    """Fully decode, convert and resize one image: uint8 [C,H,W], or float32 0..255 for 16-bit/float."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(fp) as img:
                img.load()  # forces a full decode: truncated files fail here, not later
                canon = to_canonical(img)
        canon = to_channels(canon, channels)
        canon = resize_image(canon, size, resize)
        return to_chw(canon, channels)
    except Exception as exc:
        raise DecodeError(_describe(exc)) from None


def inspect_image(fp: BinaryIO) -> Header:
    """Fully decode and convert one image to prove it is readable; its header facts on success."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(fp) as img:
                img.load()
                header = Header(img.width, img.height, img.mode)
                to_canonical(img)
        return header
    except Exception as exc:
        raise DecodeError(_describe(exc)) from None
