"""Tiled inference: run an image-to-image function on overlapping tiles and blend them without seams.

Tiles of `tile` x `tile` pixels are spread evenly so that neighbours overlap by at least `overlap`
pixels; the first and last tile of each axis sit flush with the image edges. Each tile's output is
weighted by a separable window that, along every side facing a neighbour, is 0 for the first
`margin` pixels (default overlap // 4), rises as a raised cosine across the next overlap - 2*margin
pixels and is 1 beyond; sides on the image border weigh 1 throughout. Where two tiles overlap by
exactly `overlap` the two windows sum to 1 (cos^2 + sin^2); elsewhere the accumulated weights are
divided out, so any overlap is normalised exactly.

Consequence: if `fn` is local with a receptive-field radius <= margin pixels (in input pixels), every
output pixel comes only from tiles that saw its whole neighbourhood, and the result equals
fn(image) up to float rounding; only padding (images smaller than a tile are reflect-padded at the
bottom/right) can change pixels near that padding. For deep generators whose receptive field exceeds
the margin, the raised-cosine ramps hide the tile boundaries. Pass `fn` in eval mode: tiles are
batched, so train-mode BatchNorm would mix statistics across tiles.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..errors import GanforgeError

# Super-resolution tiles, in input (low-resolution) pixels, overlapping by an eighth: what `ganforge upscale`
# and the SR recipes' held-out evaluation use, so that evaluation measures what users get.
UPSCALE_TILE = 128
UPSCALE_OVERLAP = UPSCALE_TILE // 8


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering [0, length) with at least `overlap` pixels between neighbours."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    # Even spacing; rounding keeps every stride <= tile - overlap since (length - tile) / (n - 1) is.
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def ramp(size: int, overlap: int, margin: int, rise: bool, fall: bool) -> Tensor:
    """1-D window of `size`: zero for `margin`, raised-cosine ramp, then one, on each side asked."""
    w = torch.ones(size, dtype=torch.float64)
    width = overlap - 2 * margin
    d = torch.arange(size, dtype=torch.float64)
    if width > 0:
        # Pixel centres: t runs (0.5 .. width-0.5) / width, so facing ramps are mirror images.
        up = torch.sin(0.5 * math.pi * ((d - margin + 0.5) / width).clamp(0.0, 1.0)) ** 2
    else:
        up = (d >= margin).to(torch.float64)
    if rise:
        w = w * up
    if fall:
        w = w * up.flip(0)
    return w


def _reflect_index(n: int, size: int) -> Tensor:
    """Indices 0..size-1 mapped into [0, n) by mirror reflection (any size, even size > 2n)."""
    i = torch.arange(size)
    if n == 1:
        return torch.zeros(size, dtype=torch.long)
    period = 2 * (n - 1)
    i = i % period
    return torch.where(i < n, i, period - i)


def reflect_pad_to(image: Tensor, height: int, width: int) -> Tensor:
    """Pad `image` [N,C,H,W] at the bottom/right by mirror reflection to at least height x width."""
    _, _, h, w = image.shape
    if h < height:
        image = image.index_select(2, _reflect_index(h, height).to(image.device))
    if w < width:
        image = image.index_select(3, _reflect_index(w, width).to(image.device))
    return image


@torch.no_grad()
def translate_tiled(
    fn: Callable[[Tensor], Tensor],
    image: Tensor,
    tile: int,
    overlap: int,
    *,
    scale: int = 1,
    margin: int | None = None,
    batch_size: int = 8,
) -> Tensor:
    """fn applied to `image` [1,C,H,W] tile by tile, blended seamlessly: [1,C',H*scale,W*scale]."""
    if image.ndim != 4 or image.shape[0] != 1:
        raise GanforgeError(f"translate_tiled takes one image [1,C,H,W], got shape {tuple(image.shape)}")
    if tile < 1 or not 0 <= overlap < tile:
        raise GanforgeError(f"need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    margin = overlap // 4 if margin is None else margin
    if not 0 <= 2 * margin <= overlap:
        raise GanforgeError(f"margin must be between 0 and overlap/2, got {margin} for overlap {overlap}")
    if scale < 1 or batch_size < 1:
        raise GanforgeError(f"scale and batch_size must be >= 1, got {scale} and {batch_size}")
    _, _, h, w = image.shape
    padded = reflect_pad_to(image, tile, tile)
    ph, pw = padded.shape[-2:]
    ys, xs = tile_starts(ph, tile, overlap), tile_starts(pw, tile, overlap)
    s, t_out = scale, tile * scale
    boxes = [(y, x) for y in ys for x in xs]
    out = acc = None
    ramps: dict[tuple[bool, bool], Tensor] = {}
    for b0 in range(0, len(boxes), batch_size):
        chunk = boxes[b0:b0 + batch_size]
        pred = fn(torch.cat([padded[:, :, y:y + tile, x:x + tile] for y, x in chunk]))
        if pred.ndim != 4 or pred.shape[0] != len(chunk) or pred.shape[-2:] != (t_out, t_out):
            raise GanforgeError(
                f"fn must map [B,C,{tile},{tile}] tiles to [B,C',{t_out},{t_out}] (scale={scale}), "
                f"got {tuple(pred.shape)}"
            )
        if out is None:
            dtype = torch.promote_types(pred.dtype, torch.float32)
            out = torch.zeros(1, pred.shape[1], ph * s, pw * s, dtype=dtype, device=pred.device)
            acc = torch.zeros(1, 1, ph * s, pw * s, dtype=dtype, device=pred.device)
            for rise in (False, True):  # 1-D windows at output resolution, by which sides face a neighbour
                for fall in (False, True):
                    ramps[rise, fall] = ramp(t_out, overlap * s, margin * s, rise, fall).to(pred.device, dtype)
        for k, (y, x) in enumerate(chunk):
            win = ramps[y > 0, y + tile < ph][:, None] * ramps[x > 0, x + tile < pw][None, :]
            out[:, :, y * s:(y + tile) * s, x * s:(x + tile) * s] += pred[k].to(out.dtype) * win
            acc[:, :, y * s:(y + tile) * s, x * s:(x + tile) * s] += win
    return (out / acc)[:, :, : h * s, : w * s].to(pred.dtype)
