"""Uploaded images: capped in bytes and pixels, whitelisted formats, decompression bombs refused.

Only the decoders of FORMATS are tried (Image.open(formats=...)), the pixel count is checked from the
header before any pixel is decoded, Pillow's own decompression-bomb warning is turned into an error, and
a truncated file fails instead of being padded (ImageFile.LOAD_TRUNCATED_IMAGES is left False).
"""
from __future__ import annotations

import io
import warnings

from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import GanforgeError

FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 2048 * 2048  # what translation takes; upscaling takes less (the output is scale^2 larger)
MAX_UPSCALE_PIXELS = 1024 * 1024


class UploadError(GanforgeError):
    """An upload refused, with the HTTP status that says why (400 unreadable, 413 too large, 415 format)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP"


def decode_upload(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A fully decoded single-frame image from uploaded bytes, or an UploadError naming the problem."""
    if not data:
        raise UploadError("the upload is empty: send a PNG, JPEG, WebP or BMP image")
    if len(data) > max_bytes:
        raise UploadError(f"the upload has {len(data):,} bytes; the limit is {max_bytes:,}", 413)
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone in this process turned it on: a truncated file would pass
        raise UploadError("the server cannot check uploads for truncation (ImageFile.LOAD_TRUNCATED_IMAGES "
                          "is set)", 500)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=list(FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise UploadError(f"the image is a decompression bomb: {e}", 413) from None
        except UnidentifiedImageError:
            raise UploadError("the upload is not a PNG, JPEG, WebP or BMP image "
                              "(other formats are not accepted)", 415) from None
        except Exception as e:  # a corrupt header: PIL raises many types (SyntaxError, ValueError, ...)
            raise UploadError(f"cannot read the image header: {_why(e)}") from None
        try:
            w, h = img.size
            if w < 1 or h < 1:
                raise UploadError(f"the image is {w}x{h} pixels: nothing to process")
            if w * h > max_pixels:
                raise UploadError(f"the image is {w}x{h} = {_megapixels(w * h)}; the limit is "
                                  f"{_megapixels(max_pixels)} for this operation", 413)
            frames = int(getattr(img, "n_frames", 1) or 1)
            if frames > 1:
                raise UploadError(f"the image has {frames} frames; send a single-frame image")
            try:
                img.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                raise UploadError(f"the image is a decompression bomb: {e}", 413) from None
            except Exception as e:  # truncated or corrupt pixel data
                raise UploadError(f"cannot decode the image: {_why(e)}") from None
            out = img.copy()
            out.format = img.format
            return out
        finally:
            img.close()


def _why(e: Exception) -> str:
    text = (str(e).strip().splitlines() or [""])[0][:200]
    return text or type(e).__name__
