"""FIR resampling of image batches: upsample, pad, filter, downsample (StyleGAN2's `upfirdn2d`).

The semantics follow NVlabs/stylegan2-ada-pytorch (torch_utils/ops/upfirdn2d.py and conv2d_resample.py)
so shapes, paddings and numbers line up with it, but everything here is built from ordinary
differentiable torch ops (reshape, pad, grouped conv2d), so autograd yields first and second
derivatives (R1 and path-length regularisation need the second) on any device, without custom kernels.

Conventions, as in the reference and `scipy.signal.upfirdn`:
- `up`: insert up-1 zeros after every pixel; `padding` is then applied to the upsampled image, as an
  int, (x, y) or (x0, x1, y0, y1); a negative value crops.
- The filter is applied as a true convolution (the kernel is flipped before the cross-correlation that
  conv2d computes) unless `flip_filter` is set; the output only covers positions where the whole
  filter footprint lies inside the padded image.
- A 1-D filter is separable (applied along x then y); a 2-D one is applied as is.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import GanforgeError

Padding = int | Sequence[int]
Scale = int | Sequence[int]
FilterLike = torch.Tensor | Sequence[float] | Sequence[Sequence[float]] | float | None


def setup_filter(
    f: FilterLike,
    normalize: bool = True,
    flip: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A float32 FIR filter for `upfirdn2d` from taps like [1, 3, 3, 1]: 2-D outer product unless separable."""
    t = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32)
    if t.numel() == 0 or t.ndim > 2:
        raise GanforgeError(f"a FIR filter needs 1 to 2 dimensions and at least one tap, got shape {tuple(t.shape)}")
    t = t.reshape(1) if t.ndim == 0 else t
    if separable is None:
        # The reference's rule: long 1-D filters stay separable (two cheap passes), short ones become 2-D.
        separable = t.ndim == 1 and t.numel() >= 8
    if t.ndim == 1 and not separable:
        t = torch.outer(t, t)
    if separable and t.ndim != 1:
        raise GanforgeError("a separable FIR filter must be given as 1-D taps")
    if normalize:
        t = t / t.sum()  # unit DC gain: a constant image keeps its value
    if flip:
        t = t.flip(list(range(t.ndim)))
    # A separable filter is applied twice (x and y), so each pass carries sqrt(gain).
    t = t * (gain ** (t.ndim / 2))
    return t.to(device) if device is not None else t


def _pair(v: Scale, what: str) -> tuple[int, int]:
    """(x, y) from an int or a pair; both at least 1."""
    sx, sy = (v, v) if isinstance(v, int) else tuple(v)
    if not (isinstance(sx, int) and isinstance(sy, int) and sx >= 1 and sy >= 1):
        raise GanforgeError(f"{what} must be a positive int or (x, y) pair, got {v!r}")
    return sx, sy


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from an int, an (x, y) pair or a 4-tuple.

    0-d integer tensors count as ints: under torch.jit.trace, sizes read from tensors come back as such, and
    the paddings here are made of kernel and filter sizes only, so nothing that varies is baked in."""
    def as_int(v):
        return int(v) if isinstance(v, torch.Tensor) and v.dim() == 0 and not v.is_floating_point() else v

    p = [as_int(padding)] * 4 if isinstance(as_int(padding), int) else [as_int(v) for v in padding]
    if len(p) == 2:
        p = [p[0], p[0], p[1], p[1]]
    if len(p) != 4 or not all(isinstance(v, int) for v in p):
        raise GanforgeError(f"padding must be an int, (x, y) or (x0, x1, y0, y1), got {padding!r}")
    return p[0], p[1], p[2], p[3]


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter from `setup_filter`; (1, 1) for None."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scale = 1,
    down: Scale = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad or crop, FIR-filter and downsample a batch of NCHW images."""
    if x.ndim != 4:
        raise GanforgeError(f"upfirdn2d expects NCHW input, got shape {tuple(x.shape)}")
    upx, upy = _pair(up, "up")
    downx, downy = _pair(down, "down")
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape

    # Zero insertion: each pixel gets up-1 zeros after it, in a view where padding a unit axis does it.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # Zero-pad where positive, crop where negative (F.pad does both in constant mode).
    x = F.pad(x, [px0, px1, py0, py1])
    if f is None:  # identity filter: only the gain and the decimation remain
        x = x * gain if gain != 1 else x
        return x[:, :, ::downy, ::downx]

    # conv2d cross-correlates; flipping the taps makes it the convolution the convention asks for.
    f = f.to(device=x.device, dtype=x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    # The same filter on every channel: a depthwise (groups=C) convolution. Downsampling is the
    # conv's stride, which equals filtering everywhere then keeping every down-th pixel, minus the waste.
    if f.ndim == 2:
        weight = f[None, None].expand(c, 1, *f.shape)
        return F.conv2d(x, weight, stride=(downy, downx), groups=c)
    x = F.conv2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, downx), groups=c)
    return F.conv2d(x, f.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(downy, 1), groups=c)


def filter2d(
    x: torch.Tensor, f: torch.Tensor | None, padding: Padding = 0, flip_filter: bool = False, gain: float = 1.0
) -> torch.Tensor:
    """FIR-filter a batch of images, padded so the output has the input's size (plus `padding`)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scale = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample a batch of images by `up` with FIR filter `f`: output exactly up*H x up*W (plus `padding`)."""
    upx, upy = _pair(up, "up")
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    # Padding totals f-1 per axis so the valid output is up*H long, split to keep the result centred.
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    # Zero insertion leaves 1/(upx*upy) of the energy; the gain restores a constant image's level.
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: Scale = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Downsample a batch of images by `down` with FIR filter `f`: output H/down x W/down (plus `padding`)."""
    downx, downy = _pair(down, "down")
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """2-D convolution with FIR up/downsampling; `padding` refers to the upsampled image, as in the reference."""
    if up < 1 or down < 1:
        raise GanforgeError(f"up and down must be at least 1, got up={up}, down={down}")
    out_c, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    # Fold the resampling's own padding (as in upsample2d / downsample2d) into the user's.
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    # flip_weight=True means cross-correlation, like F.conv2d; False means a true convolution.
    w_conv = w if flip_weight else w.flip([2, 3])

    if down > 1 and up == 1:
        if kh == 1 and kw == 1:
            # A 1x1 conv commutes with the per-channel filter: shrink first, then mix channels on fewer pixels.
            x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
            return F.conv2d(x, w_conv, groups=groups)
        # Low-pass first, then the strided conv does the decimation.
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return F.conv2d(x, w_conv, stride=down, groups=groups)

    if up > 1:
        # A stride-`up` transposed conv is zero insertion, padding (k-1, k-up), then a true convolution
        # with w; the rest of the padding (negative = crop) and the low-pass follow in upfirdn2d.
        w_t = w.flip([2, 3]) if flip_weight else w
        if groups == 1:
            w_t = w_t.transpose(0, 1)
        else:  # per group, swap in/out: [g*out/g, in/g, k, k] -> [g*in/g, out/g, k, k]
            w_t = w_t.reshape(groups, out_c // groups, in_per_group, kh, kw).transpose(1, 2)
            w_t = w_t.reshape(groups * in_per_group, out_c // groups, kh, kw)
        x = F.conv_transpose2d(x, w_t, stride=up, groups=groups)
        pad = [px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)]
        x = upfirdn2d(x, f, padding=pad, gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return F.conv2d(x, w_conv, padding=(py0, px0), groups=groups)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])
    return F.conv2d(x, w_conv, groups=groups)
