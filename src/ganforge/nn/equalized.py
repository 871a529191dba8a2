"""StyleGAN / StyleGAN2 layers: equalized learning rate, modulated convolution, AdaIN, noise, minibatch std.

Numbers follow the papers' reference code (NVlabs/stylegan for v1's AdaIN and per-channel noise,
NVlabs/stylegan2-ada-pytorch training/networks.py for the rest), written in plain PyTorch:

- Equalized learning rate: parameters are stored as N(0, 1) / lr_multiplier and scaled at run time by
  lr_multiplier / sqrt(fan_in) (weights) or lr_multiplier (biases), so Adam's per-parameter step is
  the same for every layer whatever its fan-in, and the mapping network learns 100x slower (0.01).
- Activations carry the reference's gains: 'lrelu' is leaky ReLU (slope 0.2) times sqrt(2).
- Weights are applied as cross-correlation (F.conv2d) unless `flip_weight=False`; the reference's
  upsampling layers use flip_weight=False (a speed choice), and so do ours, so ported kernels match.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GanforgeError
from .upfirdn import Padding, conv2d_resample, setup_filter

# name -> (negative slope, default output gain), as the reference's bias_act table.
ACTIVATIONS = {"linear": (None, 1.0), "relu": (0.0, math.sqrt(2)), "lrelu": (0.2, math.sqrt(2))}
NOISE_MODES = ("random", "const", "none")


def check_activation(name: str) -> str:
    """Return `name` if it names a supported activation, else raise a GanforgeError."""
    if name not in ACTIVATIONS:
        raise GanforgeError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")
    return name


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    dim: int = 1,
) -> torch.Tensor:
    """Add a bias along `dim`, apply `act`, scale by its gain (default: the activation's) and clamp."""
    slope, default_gain = ACTIVATIONS[check_activation(act)]
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if slope is not None:
        x = F.leaky_relu(x, slope) if slope > 0 else F.relu(x)
    gain = default_gain if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None:  # keeps fp16 activations finite (the reference's conv_clamp)
        x = x.clamp(-clamp, clamp)
    return x


class EqualLinear(nn.Module):
    """A fully connected layer with equalized learning rate, a learning-rate multiplier and a fused activation."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        activation: str = "linear",
    ) -> None:
        super().__init__()
        self.activation = check_activation(activation)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        # Stored / lr_multiplier so bias_init is the *effective* initial bias whatever the multiplier.
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_multiplier)) if bias else None
        self.lr_multiplier = lr_multiplier
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, in] -> act(x W^T * gain + b * bias_gain) [N, out]."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) * self.bias_gain if self.bias is not None else None
        return bias_act(F.linear(x, w), b, self.activation, dim=x.ndim - 1)

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"in={in_f}, out={out_f}, activation={self.activation}, lr_multiplier={self.lr_multiplier}"


class EqualConv2d(nn.Module):
    """A 2-D convolution with equalized learning rate, optional FIR up/downsampling, activation and clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation = check_activation(activation)
        self.up, self.down, self.conv_clamp = up, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """x [N, in, H, W] -> [N, out, H*up/down, W*up/down]; `gain` scales the output (and the clamp)."""
        w = self.weight.to(x.dtype) * self.weight_gain
        x = conv2d_resample(
            x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding, flip_weight=self.up == 1
        )
        act_gain = ACTIVATIONS[self.activation][1] * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, gain=act_gain, clamp=clamp)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    fused_modconv: bool = True,
    flip_weight: bool = True,
) -> torch.Tensor:
    """StyleGAN2's convolution with per-sample input scales `styles` [N, in] and optional weight demodulation."""
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    if x.ndim != 4 or x.shape[1] != in_c or styles.shape != (n, in_c):
        raise GanforgeError(
            f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles "
            f"{tuple(styles.shape)} do not fit together (need x [N, {in_c}, H, W], styles [N, {in_c}])"
        )
    if x.dtype == torch.float16 and demodulate:
        # Demodulation cancels any per-sample scale, so rescale to <= 1 first to keep fp16 finite.
        weight = weight * (1 / math.sqrt(in_c * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # 1/||w_o|| per sample and output channel: unit-variance inputs give unit-variance outputs. The norm of
        # the modulated weight w[n,o,i,:,:] = weight[o,i] * styles[n,i] is sum_i styles[n,i]^2 * ||weight[o,i]||^2:
        # one [N, in] x [in, out] product, never the [N, out, in, kh, kw] tensor (same value, far less work).
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, out]

    if not fused_modconv:
        # Same maths, no per-sample weights: scale the activations before and after a shared conv.
        x = x * styles.to(x.dtype).reshape(n, in_c, 1, 1)
        x = conv2d_resample(
            x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight
        )
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, out_c, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_c, 1, 1)  # [N, out, in, kh, kw]
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, out_c, 1, 1, 1)
    # One grouped conv with the batch folded into channels: group i sees sample i and its own weights.
    x = x.reshape(1, n * in_c, *x.shape[2:])
    w = w.reshape(n * out_c, in_c, kh, kw).to(x.dtype)
    x = conv2d_resample(x, w, resample_filter, up=up, down=down, padding=padding, groups=n, flip_weight=flip_weight)
    x = x.reshape(n, out_c, *x.shape[2:])
    return x + noise.to(x.dtype) if noise is not None else x


class ModulatedConv2d(nn.Module):
    """A style affine (bias init 1) plus a modulated convolution, demodulated or (as in ToRGB) not."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 3,
        demodulate: bool = True,
        up: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.demodulate, self.up = demodulate, up
        self.padding = kernel_size // 2
        # Styles start at 1 so the untrained layer is an ordinary convolution.
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        """x [N, in, H, W] modulated by latents w [N, w_dim] -> [N, out, H*up, W*up]."""
        styles = self.affine(w)
        if not self.demodulate:
            # Demodulation would cancel the equalized-lr gain; without it the gain must be applied.
            styles = styles * self.weight_gain
        return modulated_conv2d(
            x, self.weight, styles, up=self.up, padding=self.padding, resample_filter=self.resample_filter,
            demodulate=self.demodulate, fused_modconv=fused_modconv, flip_weight=self.up == 1,
        )


class NoiseInjection(nn.Module):
    """Adds N(0, 1) noise images scaled by a learned strength per channel (one shared if channels=1), zero init."""

    def __init__(self, channels: int = 1, resolution: int | None = None) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))
        if resolution is not None:
            # A fixed noise image, for 'const' mode: deterministic, reproducible samples.
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
        else:
            self.noise_const = None

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None, noise_mode: str = "random") -> torch.Tensor:
        """x plus strength * noise; `noise` [N or 1, 1, H, W] if given, else drawn ('random') or fixed ('const')."""
        if noise_mode not in NOISE_MODES:
            raise GanforgeError(f"unknown noise_mode {noise_mode!r} (known: {', '.join(NOISE_MODES)})")
        if noise_mode == "none":
            return x
        if noise is None and noise_mode == "const":
            if self.noise_const is None:
                raise GanforgeError("noise_mode='const' needs a NoiseInjection built with a resolution")
            noise = self.noise_const
        if noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + noise.to(x.dtype) * self.strength.to(x.dtype).reshape(1, -1, 1, 1)


class SynthesisLayer(nn.Module):
    """StyleGAN2's generator layer: modulated conv (optionally upsampling), noise, bias and activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.activation = check_activation(activation)
        self.resolution, self.conv_clamp = resolution, conv_clamp
        self.conv = ModulatedConv2d(
            in_channels, out_channels, w_dim, kernel_size, up=up, resample_filter=resample_filter
        )
        # StyleGAN2 shares one noise strength across channels (v1 had one per channel).
        self.noise = NoiseInjection(1, resolution) if use_noise else None
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = True,
        gain: float = 1.0,
    ) -> torch.Tensor:
        """x [N, in, res/up, res/up] and latents w [N, w_dim] -> [N, out, res, res]."""
        x = self.conv(x, w, fused_modconv=fused_modconv)
        if self.noise is not None:
            x = self.noise(x, noise_mode=noise_mode)
        act_gain = ACTIVATIONS[self.activation][1] * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.activation, gain=act_gain, clamp=clamp)


class ToRGB(nn.Module):
    """StyleGAN2's output layer: a modulated 1x1 conv without demodulation, plus bias."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.conv = ModulatedConv2d(in_channels, out_channels, w_dim, kernel_size, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        """x [N, in, H, W] and latents w [N, w_dim] -> an image [N, out, H, W] (not squashed)."""
        return bias_act(self.conv(x, w, fused_modconv=fused_modconv), self.bias, clamp=self.conv_clamp)


class AdaIN(nn.Module):
    """StyleGAN (v1) adaptive instance norm: instance-normalize, then x * (1 + y_s) + y_b from the latent."""

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        # v1's style dense layer: gain 1, bias init 0, so the initial modulation is near identity.
        self.affine = EqualLinear(w_dim, 2 * channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W] restyled by latents w [N, w_dim]."""
        x = x - x.mean(dim=[2, 3], keepdim=True)
        x = x * (x.square().mean(dim=[2, 3], keepdim=True) + self.eps).rsqrt()
        style = self.affine(w).to(x.dtype).reshape(x.shape[0], 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]


class MinibatchStdDev(nn.Module):
    """Appends the mean std over groups of `group_size` samples as `num_channels` extra feature maps."""

    def __init__(self, group_size: int | None = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W] -> [N, C + num_channels, H, W]; N must be a multiple of the group size."""
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        if n % g or c % f:
            raise GanforgeError(
                f"minibatch std: batch {n} must be a multiple of the group size {g} "
                f"and channels {c} of num_channels {f}"
            )
        # As the reference: sample i belongs to group i mod (n/g), so each group spans the batch.
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n/g, f]: mean std over channels and pixels
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class PixelNorm(nn.Module):
    """Scales each feature vector (along `dim`) to unit mean square, as StyleGAN's mapping input."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x / sqrt(mean(x^2 along dim) + eps)."""
        return x * (x.square().mean(dim=self.dim, keepdim=True) + self.eps).rsqrt()
