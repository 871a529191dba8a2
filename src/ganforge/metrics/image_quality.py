"""Paired image metrics for translation and super-resolution: PSNR, SSIM and L1, per image.

Conventions (documented because published numbers depend on them):
- Inputs are float tensors [N,C,H,W] in `value_range` (default [-1,1], ganforge's convention). They are
  mapped linearly to [0,1] and compared there, so the data range (peak) is 1; no 8-bit rounding.
- `y_channel=True` compares only luma, ITU-R BT.601 as in the super-resolution literature (MATLAB's
  rgb2ycbcr): Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0,1], i.e. Y in [16,235] on the
  8-bit scale; it is divided by 255 so the peak stays 1 (equivalent to PSNR with peak 255 on 8 bits).
- `crop_border` pixels are removed from every edge first (SR papers crop the scale factor).
- SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, population
  (co)variances, statistics over the valid region only (no padding), averaged over pixels and channels;
  it equals skimage's structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1).
- Every function returns one float64 value per image, shape [N]; average them for a dataset figure.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import GanforgeError

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(images01: Tensor) -> Tensor:
    """[N,3,H,W] RGB in [0,1] -> [N,1,H,W] BT.601 luma Y/255, in [16/255, 235/255]."""
    if images01.dim() != 4 or images01.shape[1] != 3:
        raise GanforgeError(f"the Y channel needs RGB images [N,3,H,W], got shape {tuple(images01.shape)}")
    w = torch.tensor(_Y_WEIGHTS, dtype=images01.dtype, device=images01.device).view(1, 3, 1, 1)
    return (16.0 + (images01 * w).sum(dim=1, keepdim=True)) / 255.0


def _prepare(
    pred: Tensor, target: Tensor, y_channel: bool, crop_border: int, value_range: tuple[float, float]
) -> tuple[Tensor, Tensor]:
    """Validate a pair and return both as float64 in [0,1] (or Y/255), borders cropped."""
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise GanforgeError("image metrics take torch tensors")
    if pred.shape != target.shape or pred.dim() != 4:
        raise GanforgeError(
            f"image metrics need two [N,C,H,W] tensors of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        raise GanforgeError(f"value_range must be (low, high) with high > low, got {value_range}")
    if crop_border < 0 or 2 * crop_border >= min(pred.shape[-2:]):
        raise GanforgeError(f"crop_border {crop_border} does not fit images of size {tuple(pred.shape[-2:])}")
    out = []
    for x in (pred, target):
        x = (x.detach().to(torch.float64) - lo) / (hi - lo)
        if y_channel:
            x = rgb_to_y(x)
        if crop_border:
            x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        out.append(x)
    return out[0], out[1]


def psnr(
    pred: Tensor,
    target: Tensor,
    y_channel: bool = False,
    crop_border: int = 0,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Tensor:
    """Peak signal-to-noise ratio in dB per image, 10 log10(1 / MSE) on the [0,1] scale (inf if equal)."""
    x, y = _prepare(pred, target, y_channel, crop_border, value_range)
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    """Normalised 1-D Gaussian of `size` taps, float64."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: Tensor, g: Tensor) -> Tensor:
    """Separable Gaussian filter per channel, valid region only."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(
    pred: Tensor,
    target: Tensor,
    y_channel: bool = False,
    crop_border: int = 0,
    value_range: tuple[float, float] = (-1.0, 1.0),
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Structural similarity per image (Wang et al. 2004), mean over pixels and channels."""
    x, y = _prepare(pred, target, y_channel, crop_border, value_range)
    if min(x.shape[-2:]) < window_size:
        raise GanforgeError(f"SSIM needs images of at least {window_size}x{window_size}, got {tuple(x.shape[-2:])}")
    g = gaussian_window(window_size, sigma).to(x.device)
    c1, c2 = (k1 * 1.0) ** 2, (k2 * 1.0) ** 2  # data range 1 on the [0,1] scale
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x**2
    var_y = _filter_valid(y * y, g) - mu_y**2
    cov = _filter_valid(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(dim=1)


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference per image, in the inputs' own units (e.g. [-1,1])."""
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor) or pred.shape != target.shape:
        raise GanforgeError("L1 needs two tensors of one shape")
    if pred.dim() < 2:
        raise GanforgeError(f"L1 needs batched tensors [N,...], got shape {tuple(pred.shape)}")
    diff = pred.detach().to(torch.float64) - target.detach().to(torch.float64)
    return diff.abs().flatten(1).mean(dim=1)



def pixel_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """PSNR (capped at 100 dB for identical images), SSIM and L1 per image of two [-1, 1] batches."""
    return {"psnr": psnr(pred, target).clamp(max=100.0), "ssim": ssim(pred, target), "l1": l1(pred, target)}
