"""`ganforge upscale`: run a trained super-resolution generator (SRResNet/SRGAN) over image files of any size.

Each file comes out `scale` times larger in the same format (extension) and, as far as that format allows,
the same mode, under the output folder with the input's name; files found inside an input folder keep
their relative subfolders. Pixels are processed as floats from their full stored precision:

- "RGB" (and "RGBX") -> RGB. "L" and "1" -> L: the grey channel is repeated for a 3-channel model and the
  result is turned back into one channel by ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), in float.
- "RGBA", "LA" (and premultiplied "RGBa", "La"): the colour goes through the model; the alpha is upscaled
  on its own by bicubic interpolation (torch, no antialiasing, clamped to [0, 1]) and re-attached, so the
  colour never depends on the alpha.
- "P" (palette) -> RGB, or RGBA when the palette has transparency ("PA" -> RGBA): the upscaled pixels are
  no longer from a small palette, and re-quantising them would throw the detail away. Likewise an L or
  RGB PNG with a transparent colour key (tRNS) -> LA / RGBA, its key turned into an alpha channel.
- 16-bit grey ("I;16*", and "I", which PIL gives 16-bit PGMs and 32-bit TIFFs; clipped to 0..65535) ->
  "I;16", saved with 16 bits. "F" (float TIFF) -> F on the input's own scale (0..1 or 0..255).
  PIL decodes 16-bit colour PNGs to 8 bits, so only grey images keep 16 bits.
- "CMYK" -> RGB -> model -> CMYK with PIL's plain formulas (no ICC colour management): the colours are
  kept but black generation is not (K comes back 0). "YCbCr" -> RGB.
- A 1-channel model upscales each colour channel of a colour image as a grey image.
- Formats: the input's own; JPEG and WebP at quality 95; ICC profile and EXIF are carried over. GIF is
  the exception: a single-frame GIF is written as PNG, because GIF would quantise the result back to
  256 colours. Multi-frame images (animated GIF, multi-page TIFF) are refused, naming the frame count:
  an error (exit 2) when it is the only input, otherwise skipped and named in the warning line along with
  unreadable files.

Tiles are counted in input (low-resolution) pixels: 128 by default, overlapping by tile // 8 (16). The
SRResNet is fully convolutional and runs in eval mode, where BatchNorm uses its running statistics, so
every tile is normalised the same way as the whole image would be; tiles differ from the whole-image
result only near their borders (zero padding within the receptive field, about 40 input pixels for the
paper's 16 blocks), and `tools.tiling`'s raised-cosine blend hides those seams. An image that fits in one
tile goes through the generator whole (exactly gen(image)); a side shorter than the tile is reflect-padded.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import GanforgeError
from .pretrained import LoadedGenerator, load
from .tools.tiling import UPSCALE_TILE, translate_tiled
from .training.checkpoint import read_config, resolve_checkpoint
from .utils.inputs import collect_inputs
from .utils.atomic import atomic_write

DEFAULT_TILE = UPSCALE_TILE
TILE_BATCH = 4  # tiles per forward: a 128 px tile at 4x is 512 x 512 x 64 features, ~70 MB per activation
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601
OUT_MODE = {"1": "L", "L": "L", "LA": "LA", "La": "LA", "RGB": "RGB", "RGBX": "RGB", "RGBA": "RGBA",
            "RGBa": "RGBA", "PA": "RGBA", "CMYK": "CMYK", "YCbCr": "RGB", "I": "I;16", "I;16": "I;16",
            "I;16B": "I;16", "I;16L": "I;16", "I;16N": "I;16", "F": "F"}  # P, L, RGB: see output_mode
SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}
META_FORMATS = ("JPEG", "PNG", "WEBP")  # formats PIL writes icc_profile and exif into


def check_tiling(tile: int, overlap: int) -> None:
    """Raise one clear error unless tile >= 1 and 0 <= overlap < tile."""
    if tile < 1:
        raise GanforgeError(f"--tile must be >= 1 (input pixels), got {tile}")
    if not 0 <= overlap < tile:
        raise GanforgeError(f"--overlap must be >= 0 and smaller than the tile ({tile}), got {overlap}")


def frame_count(img: Image.Image) -> int:
    """Number of frames (pages) of an opened image."""
    return int(getattr(img, "n_frames", 1) or 1)


def output_mode(img: Image.Image) -> str:
    """The mode `upscale_image` returns for an image of this mode (see the module policy)."""
    if img.mode in ("P", "L", "RGB") and "transparency" in img.info:  # a palette entry or PNG colour key
        return "LA" if img.mode == "L" else "RGBA"  # its upscaled edges are no longer one exact colour
    if img.mode == "P":
        return "RGB"
    if img.mode not in OUT_MODE:
        raise GanforgeError(f"unsupported image mode {img.mode!r}")
    return OUT_MODE[img.mode]


def _planes(img: Image.Image, mode: str) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Colour [C,H,W] and alpha [H,W] as float32 in 0..1, and the full-scale value of the stored pixels."""
    if mode in ("L", "LA", "RGB", "RGBA"):
        arr = np.asarray(img.convert(mode), dtype=np.float32) / np.float32(255.0)
        full = 255.0
    elif mode == "CMYK":
        arr, full = np.asarray(img.convert("RGB"), dtype=np.float32) / np.float32(255.0), 255.0
    elif mode == "I;16":  # "I" may hold 32-bit values: clipped to 16 bits
        arr, full = np.clip(np.asarray(img, dtype=np.float32), 0.0, 65535.0) / np.float32(65535.0), 65535.0
    else:  # "F": the data policy's scale, 0..1 when nothing exceeds 1, else 0..255
        arr = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        full = 1.0 if arr.size == 0 or float(arr.max()) <= 1.0 else 255.0
        arr = np.clip(arr / np.float32(full), 0.0, 1.0)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if mode in ("LA", "RGBA"):
        return chw[:-1], chw[-1], full
    return chw, None, full


def _run(gen: LoadedGenerator, colour: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """The generator on one [1,C,H,W] image in [-1, 1], whole when it fits in a tile, else tiled."""
    if max(colour.shape[-2:]) <= tile:  # no padding, no blending: exactly gen(image)
        return gen(colour)
    return translate_tiled(gen, colour, tile, overlap, scale=gen.io.scale, batch_size=TILE_BATCH)


def _upscale_colour(gen: LoadedGenerator, colour: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Colour planes [C,H,W] in 0..1 through the model, matched to its channels: [C,H*s,W*s] in 0..1."""
    x = torch.from_numpy(colour)[None] * 2.0 - 1.0
    c, model_c = x.shape[1], gen.io.in_channels
    with torch.no_grad():
        if c == model_c:
            y = _run(gen, x, tile, overlap)
        elif c == 1 and model_c == 3:  # the caller takes the luma of the clamped RGB result
            y = _run(gen, x.repeat(1, 3, 1, 1), tile, overlap)
        elif c == 3 and model_c == 1:  # each colour channel as its own grey image
            y = torch.cat([_run(gen, x[:, i:i + 1], tile, overlap) for i in range(3)], 1)
        else:
            raise GanforgeError(f"cannot feed a {c}-channel image to a {model_c}-channel model")
    return ((y[0].float().clamp(-1.0, 1.0) + 1.0) / 2.0).numpy()


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """An alpha plane [H,W] in 0..1 upscaled by bicubic interpolation (no antialiasing), clamped to 0..1."""
    a = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))[None, None]
    h, w = alpha.shape
    out = F.interpolate(a, size=(h * scale, w * scale), mode="bicubic", align_corners=False, antialias=False)
    return out[0, 0].clamp(0.0, 1.0).numpy()


def upscale_image(gen: LoadedGenerator, image: Image.Image, tile: int = DEFAULT_TILE,
                  overlap: int = DEFAULT_TILE // 8) -> Image.Image:
    """`image` upscaled by the model's scale, in the mode the module policy gives (its own where possible)."""
    if gen.task != "upscale":
        raise GanforgeError(f"this {gen.config['model']['name']} model does not upscale images")
    check_tiling(tile, overlap)
    if frame_count(image) > 1:
        raise GanforgeError(f"image has {frame_count(image)} frames; only single-frame images are upscaled")
    mode = output_mode(image)
    colour, alpha, full = _planes(image, mode)
    s = gen.io.scale
    out = _upscale_colour(gen, colour, tile, overlap)
    if mode in ("L", "LA", "I;16", "F") and out.shape[0] == 3:  # grey fed as RGB: back to one channel
        out = sum(w * out[i] for i, w in enumerate(LUMA))[None]
    if alpha is not None:
        out = np.concatenate([out, upscale_alpha(alpha, s)[None]])
    hwc = out.transpose(1, 2, 0)
    hwc = hwc[:, :, 0] if hwc.shape[2] == 1 else hwc
    if mode == "F":
        return Image.fromarray(np.ascontiguousarray(hwc * np.float32(full), dtype=np.float32))
    dtype = np.uint16 if full > 255 else np.uint8
    pixels = Image.fromarray(np.ascontiguousarray(np.rint(hwc * full), dtype=dtype))
    return pixels.convert("CMYK") if mode == "CMYK" else pixels


def check_upscaler(ckpt: Path) -> None:
    """Raise one clear error unless the checkpoint holds a super-resolution model."""
    conf = read_config(ckpt)
    if conf.get("task") != "upscale":
        use = "ganforge translate" if conf.get("task") == "translate" else "ganforge sample"
        raise GanforgeError(f"{ckpt} holds a {conf['model']['name']} model, which does not upscale images "
                            f"(use `{use}`)")


def load_upscaler(ckpt: str | Path, device: str = "cpu", ema: bool = True) -> LoadedGenerator:
    """The generator of a super-resolution run or checkpoint; one clear error for any other model."""
    path = resolve_checkpoint(ckpt)
    check_upscaler(path)
    return load(path, ema=ema, device=device)


def read_image(path: Path) -> tuple[Image.Image | None, int]:
    """A fully decoded single-frame image and 1, or None and the frame count of a multi-frame file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's decompression-bomb and truncation chatter
        with Image.open(path) as img:
            frames = frame_count(img)
            if frames > 1:
                return None, frames
            img.load()  # a truncated file fails here
            return img.copy(), 1  # keeps mode, palette and info; the file is closed on leaving


def output_name(path: Path) -> Path:
    """The output file name for an input file: the same, except that GIF becomes PNG."""
    return path.with_suffix(".png") if path.suffix.lower() == ".gif" else path


def save_like(image: Image.Image, source: Image.Image, path: Path) -> Path:
    """Write `image` atomically in the format of `path`'s extension, with `source`'s ICC profile and EXIF."""
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options: dict[str, Any] = dict(SAVE_OPTIONS.get(fmt, {}))
    if fmt in META_FORMATS:
        options.update({k: source.info[k] for k in ("icc_profile", "exif") if source.info.get(k)})
    return atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **options))


def upscale_paths(ckpt: str | Path, inputs: list[str], out: str | Path, tile: int = DEFAULT_TILE,
                  overlap: int | None = None, device: str = "cpu", ema: bool = True) -> tuple[list[Path], int]:
    """Upscale image files/folders with a super-resolution model into `out`; the files written and the scale."""
    overlap = tile // 8 if overlap is None else overlap
    check_tiling(tile, overlap)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out {out} exists and is not a folder")
    path = resolve_checkpoint(ckpt)
    check_upscaler(path)  # before reading any image: the model is the first question
    files = collect_inputs(inputs, out, output_name, "upscale")
    gen = load(path, ema=ema, device=device)  # checked above
    written: list[Path] = []
    skipped: list[str] = []
    for src, rel in files:
        try:
            img, frames = read_image(src)
        except Exception as e:  # PIL signals bad files with many types (OSError, SyntaxError, ValueError...)
            skipped.append(f"{src} (unreadable: {type(e).__name__})")
            continue
        if img is None:
            if len(files) == 1:
                raise GanforgeError(f"{src} has {frames} frames (an animation or multi-page file); only "
                                    f"single-frame images are upscaled, e.g. its frames exported one by one")
            skipped.append(f"{src} ({frames} frames)")
            continue
        try:
            output_mode(img)
        except GanforgeError as e:
            skipped.append(f"{src} ({e})")
            continue
        written.append(save_like(upscale_image(gen, img, tile, overlap), img, out / rel))
    if skipped:
        print(f"ganforge: warning: skipped {len(skipped)} image(s): {', '.join(skipped)}", file=sys.stderr)
    return written, gen.io.scale
