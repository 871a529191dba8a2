"""StyleGAN2 (Karras et al. 2020): a mapping network, a 'skip' synthesis network and a residual discriminator.

Parameter and buffer names and shapes mirror NVlabs/stylegan2-ada-pytorch (training/networks.py), so a
reference `G.state_dict()` / `D.state_dict()` loads into these networks with `strict=True` and gives the
same images and logits (noise_mode='const'). That is why the layers here are spelled out rather than
built from `nn.equalized.SynthesisLayer` / `ToRGB`, whose parameters are nested differently (`conv.affine`)
and whose noise strength has shape [1] where the reference's is a scalar; the maths is the shared
`modulated_conv2d`, `EqualLinear`, `EqualConv2d`, `bias_act` and FIR resampling of `ganforge.nn`.

Differences from the reference, all in the interface, none in the function computed:
- labels are int64 class indices (one-hot vectors [N, K] are accepted too), converted internally;
- the mapping network updates `w_avg` only when asked (`update_w_avg=True`), never as a side effect;
- `Generator.forward` defaults to noise_mode='const', so inference is deterministic and exportable;
- `Discriminator.forward` returns logits of shape [N] (the reference's [N, 1]);
- no fp16 blocks (num_fp16_res): mixed precision is the training loop's AMP.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from ..nn.equalized import NOISE_MODES, EqualConv2d, EqualLinear, MinibatchStdDev, bias_act, modulated_conv2d
from ..nn.upfirdn import setup_filter, upsample2d
from ..registry import register_model
from .base import GANModels
from .conditioning import ClusterPrior, check_clusters
from .interface import noise_io

RESAMPLE = (1, 3, 3, 1)  # the paper's binomial low-pass for every up/downsampling
D_ARCHITECTURES = ("resnet", "orig")

# Named configurations. The first three follow the papers' code: config-f of the StyleGAN2 paper (the
# official 1024 px networks; the TF originals had no activation clamp), and stylegan2-ada's train.py
# 'paper256' and 'cifar' (fmaps 0.5 and 1 -> channel_base 16384 and 32768, conv_clamp 256, its
# minibatch-std group sizes, and for cifar a 2-layer mapping and D without residual skips).
# The cpu-* ones are ours: 32 px networks that train on a laptop CPU (~1.7M, ~0.39M and ~0.33M G parameters;
# cpu-digits halves the 32 px layers' width, where most of the compute is, and runs about twice as fast).
CONFIGS: dict[str, dict[str, Any]] = {
    "f1024": dict(image_size=1024, z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512,
                  mbstd_group=4, conv_clamp=None, d_architecture="resnet"),
    "paper256": dict(image_size=256, z_dim=512, w_dim=512, mapping_layers=8, channel_base=16384, channel_max=512,
                     mbstd_group=8, conv_clamp=256.0, d_architecture="resnet"),
    "cifar": dict(image_size=32, z_dim=512, w_dim=512, mapping_layers=2, channel_base=32768, channel_max=512,
                  mbstd_group=32, conv_clamp=256.0, d_architecture="orig"),
    "cpu-small": dict(image_size=32, z_dim=256, w_dim=256, mapping_layers=4, channel_base=4096, channel_max=128,
                      mbstd_group=4, conv_clamp=None, d_architecture="resnet"),
    "cpu-tiny": dict(image_size=32, z_dim=128, w_dim=128, mapping_layers=2, channel_base=2048, channel_max=64,
                     mbstd_group=4, conv_clamp=None, d_architecture="resnet"),
    "cpu-digits": dict(image_size=32, z_dim=128, w_dim=128, mapping_layers=2, channel_base=1024, channel_max=64,
                       mbstd_group=4, conv_clamp=None, d_architecture="resnet"),
}
# Without a config: a 32 px network at stylegan2-ada's widths for resolutions below 512 (fmaps 0.5).
DEFAULTS: dict[str, Any] = dict(image_size=32, z_dim=512, w_dim=512, mapping_layers=8, channel_base=16384,
                                channel_max=512, mbstd_group=4, conv_clamp=None, d_architecture="resnet")
D_MAPPING_LAYERS = 8  # the reference's D label mapping depth, for every config


def check_noise_mode(noise_mode: str) -> str:
    """Return `noise_mode` if it is 'random', 'const' or 'none', else raise a GanforgeError."""
    if noise_mode not in NOISE_MODES:
        raise GanforgeError(f"unknown noise_mode {noise_mode!r} (known: {', '.join(NOISE_MODES)})")
    return noise_mode


def label_vectors(y: Tensor | None, num_classes: int) -> Tensor:
    """Class labels [N] (int) as one-hot float vectors [N, K]; [N, K] vectors pass through as float."""
    if y is None:
        raise GanforgeError(f"this network is class-conditional ({num_classes} classes): give labels")
    if y.ndim == 2:
        if y.shape[1] != num_classes:
            raise GanforgeError(f"label vectors must have shape [N, {num_classes}], got {list(y.shape)}")
        return y.float()
    # A comparison rather than F.one_hot: no data-dependent range check, so the graph exports.
    return (y.reshape(-1, 1) == torch.arange(num_classes, device=y.device)).float()


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Each row scaled to unit mean square (the reference's input normalisation of z and the label embedding)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def style_mix(ws_a: Tensor, ws_b: Tensor, cutoff: int) -> Tensor:
    """Per-layer latents [N, num_ws, w_dim] taken from ws_a for layers < cutoff and from ws_b from cutoff on."""
    if ws_a.shape != ws_b.shape or ws_a.ndim != 3:
        raise GanforgeError(f"style mixing needs two [N, num_ws, w_dim] batches, got {list(ws_a.shape)} "
                            f"and {list(ws_b.shape)}")
    if not 0 <= cutoff <= ws_a.shape[1]:
        raise GanforgeError(f"style-mixing cutoff must lie in 0..{ws_a.shape[1]}, got {cutoff}")
    return torch.cat([ws_a[:, :cutoff], ws_b[:, cutoff:]], dim=1)


class MappingNetwork(nn.Module):
    """z (and a class label) -> w: 2nd-moment normalisation, then an MLP learning at lr_multiplier times the rate."""

    def __init__(self, z_dim: int, num_classes: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995, clusters: int = 0) -> None:
        super().__init__()
        # Self-conditioned (model.clusters): the label is a k-means cluster that, when none is given, the
        # mapping draws from z in the clusters' proportions (models/conditioning.py).
        self.cluster_prior = ClusterPrior(clusters) if clusters > 0 else None
        num_classes = num_classes or clusters
        self.z_dim, self.num_classes, self.w_dim, self.num_ws = z_dim, num_classes, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if num_classes > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if num_classes > 0:
            # A linear embedding of the one-hot label, normalised like z and concatenated with it.
            self.embed = EqualLinear(num_classes, embed_features)
        for i in range(num_layers):
            setattr(self, f"fc{i}", EqualLinear(features[i], features[i + 1], activation="lrelu",
                                                lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            # The running mean of w: the centre that truncation pulls towards.
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor | None, y: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
                update_w_avg: bool = False) -> Tensor:
        """w [N, w_dim], or [N, num_ws, w_dim] when broadcasting; psi < 1 pulls layers < cutoff towards w_avg."""
        if y is None and self.cluster_prior is not None and z is not None:
            y = self.cluster_prior(z)
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise GanforgeError(f"latents must have shape [N, {self.z_dim}], got "
                                    f"{None if z is None else list(z.shape)}")
            x = normalize_2nd_moment(z.float())
        if self.num_classes > 0:
            e = normalize_2nd_moment(self.embed(label_vectors(y, self.num_classes)))
            x = torch.cat([x, e], dim=1) if x is not None else e
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            if self.w_avg_beta is None or self.num_ws is None:
                raise GanforgeError("this mapping network keeps no w_avg")
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1:
            if self.w_avg_beta is None or self.num_ws is None:
                raise GanforgeError("truncation needs a mapping network that keeps w_avg")
            if cutoff is None:
                x = self.w_avg.to(x.dtype).lerp(x, psi)
            else:  # out of place, so the graph stays differentiable and exportable
                x = torch.cat([self.w_avg.to(x.dtype).lerp(x[:, :cutoff], psi), x[:, cutoff:]], dim=1)
        return x


class SynthesisLayer(nn.Module):
    """Modulated, demodulated 3x3 conv (optionally upsampling 2x), per-pixel noise, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(RESAMPLE)))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1: a plain conv
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        # One fixed noise image for noise_mode='const' (deterministic samples); one strength for all channels.
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1.0) -> Tensor:
        """x [N, in, res/up, res/up] styled by w [N, w_dim] -> [N, out, res, res]."""
        styles = self.affine(w)
        noise = None
        if check_noise_mode(noise_mode) == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        # No weight gain: demodulation rescales each output channel to unit norm anyway.
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=1,
                             resample_filter=self.resample_filter, fused_modconv=fused_modconv,
                             flip_weight=self.up == 1)  # as the reference, so ported kernels line up
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, "lrelu", gain=math.sqrt(2) * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation (colour is not normalised away)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)  # equalized lr, applied to the styles as the reference

    def forward(self, x: Tensor, w: Tensor, fused_modconv: bool = True) -> Tensor:
        """x [N, in, H, W] and w [N, w_dim] -> [N, out, H, W]."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [const | conv0 (up 2x)], conv1, and a ToRGB added to the image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter(list(RESAMPLE)))
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str = "random",
                fused_modconv: bool = True) -> tuple[Tensor, Tensor]:
        """Features and image of the previous block, ws [N, num_conv + 1, w_dim] -> this block's."""
        w = ws.unbind(dim=1)
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, w[0], noise_mode, fused_modconv)
        else:
            x = self.conv0(x, w[0], noise_mode, fused_modconv)
            x = self.conv1(x, w[1], noise_mode, fused_modconv)
        y = self.torgb(x, w[-1], fused_modconv)
        # Skip architecture: the image so far, FIR-upsampled, plus this resolution's contribution.
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """Per-layer latents ws [N, num_ws, w_dim] -> image, through blocks from 4x4 up to image_size."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        ch = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        self.num_ws = 0
        for r in self.block_resolutions:
            block = SynthesisBlock(ch[r // 2] if r > 4 else 0, ch[r], w_dim, r, img_channels, conv_clamp)
            setattr(self, f"b{r}", block)
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last ToRGB; every other ToRGB shares its w with the next block's conv0

    def forward(self, ws: Tensor, noise_mode: str = "random", fused_modconv: bool | None = None) -> Tensor:
        """ws [N, num_ws, w_dim] -> image [N, C, H, W]; fused_modconv defaults to 'not training', as the reference."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise GanforgeError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if fused_modconv is None:
            fused_modconv = not self.training  # grouped conv for inference, shared conv when training
        ws = ws.float()
        x = img = None
        i = 0
        for r in self.block_resolutions:
            block = getattr(self, f"b{r}")
            x, img = block(x, img, ws.narrow(1, i, block.num_conv + 1), noise_mode, fused_modconv)
            i += block.num_conv
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: z (and class label) -> mapping -> ws -> synthesis -> image (not clamped)."""

    def __init__(self, z_dim: int = 512, num_classes: int = 0, w_dim: int = 512, img_resolution: int = 1024,
                 img_channels: int = 3, mapping_layers: int = 8, channel_base: int = 32768, channel_max: int = 512,
                 conv_clamp: float | None = None, clusters: int = 0) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.w_dim = z_dim, num_classes, w_dim
        self.image_size, self.channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max, conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, num_classes, w_dim, self.num_ws, num_layers=mapping_layers,
                                      clusters=clusters)

    @property
    def cluster_prior(self) -> nn.Module | None:
        """A self-conditioned G's cluster prior (it lives in the mapping, which draws the cluster from z)."""
        return self.mapping.cluster_prior

    def forward(self, z: Tensor, y: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
                noise_mode: str = "const") -> Tensor:
        """Images [N, C, H, W] for latents z [N, z_dim] and labels y [N] (int64; None if unconditional)."""
        return self.synthesis(self.mapping(z, y, psi=psi, cutoff=cutoff), noise_mode=noise_mode)


class DiscriminatorBlock(nn.Module):
    """One resolution of D: [fromrgb], conv0, conv1 (down 2x), plus a 1x1 downsampling skip (resnet)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 architecture: str = "resnet", conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels, self.architecture = in_channels, architecture
        # Unused by 'resnet' and 'orig' (it downsamples the image in the reference's 'skip' D); kept for its key.
        self.register_buffer("resample_filter", setup_filter(list(RESAMPLE)))
        if in_channels == 0:
            self.fromrgb = EqualConv2d(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = EqualConv2d(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = EqualConv2d(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        """Features (None for the first block, which reads img) -> features at half the resolution."""
        if self.in_channels == 0:
            x = self.fromrgb(img)
        if self.architecture == "resnet":
            # Both branches scaled by sqrt(1/2) so their sum keeps the input's variance.
            y = self.skip(x, gain=math.sqrt(0.5))
            return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return self.conv1(self.conv0(x))


class DiscriminatorEpilogue(nn.Module):
    """D's 4x4 head: minibatch std, conv, fc, out; with a class, the projection of out onto the label's cmap."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int = 4, mbstd_group: int = 4,
                 mbstd_channels: int = 1, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdDev(mbstd_group, mbstd_channels)
        self.conv = EqualConv2d(in_channels + mbstd_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = EqualLinear(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = EqualLinear(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, cmap: Tensor | None = None) -> Tensor:
        """Features [N, C, 4, 4] (and cmap [N, cmap_dim]) -> logits [N]."""
        x = self.out(self.fc(self.conv(self.mbstd(x)).flatten(1)))
        if self.cmap_dim > 0:
            return (x * cmap).sum(dim=1) / math.sqrt(self.cmap_dim)
        return x.squeeze(1)


class Discriminator(nn.Module):
    """StyleGAN2 discriminator (resnet or orig): image (and class label) -> one logit per sample."""

    def __init__(self, num_classes: int = 0, img_resolution: int = 1024, img_channels: int = 3,
                 architecture: str = "resnet", channel_base: int = 32768, channel_max: int = 512,
                 conv_clamp: float | None = None, mbstd_group: int = 4, cmap_dim: int | None = None,
                 mapping_layers: int = 8) -> None:
        super().__init__()
        if architecture not in D_ARCHITECTURES:
            raise GanforgeError(f"unknown discriminator architecture {architecture!r} "
                                f"(known: {', '.join(D_ARCHITECTURES)})")
        if img_resolution < 8:  # the epilogue reads 4x4 features, never the image (as the reference)
            raise GanforgeError(f"the StyleGAN2 discriminator needs image_size >= 8, got {img_resolution}")
        self.num_classes, self.image_size, self.channels = num_classes, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(int(math.log2(img_resolution)), 2, -1)]
        ch = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        cmap_dim = (ch[4] if cmap_dim is None else cmap_dim) if num_classes > 0 else 0
        for r in self.block_resolutions:
            block = DiscriminatorBlock(ch[r] if r < img_resolution else 0, ch[r], ch[r // 2], img_channels,
                                       architecture, conv_clamp)
            setattr(self, f"b{r}", block)
        if num_classes > 0:
            # The label's projection vector: the reference's mapping net, by default its 8 layers whatever G's;
            # mapping_layers=0 leaves the normalised embedding alone, a plain projection D (Miyato & Koyama 2018)
            # whose class vectors learn at the full rate instead of through 8 layers at lr x 0.01.
            self.mapping = MappingNetwork(0, num_classes, cmap_dim, num_ws=None, num_layers=mapping_layers,
                                          w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim, 4, mbstd_group, conv_clamp=conv_clamp)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits [N] for images x [N, C, H, W] and labels y [N] (int64; None if unconditional)."""
        h = None
        for r in self.block_resolutions:
            h = getattr(self, f"b{r}")(h, x)
        cmap = self.mapping(None, y) if self.num_classes > 0 else None
        return self.b4(h, cmap)


def resolve_config(config: str = "", **given: Any) -> dict[str, Any]:
    """The network settings of a named config (or the defaults), with every non-None value in `given` on top."""
    if config and config not in CONFIGS:
        raise GanforgeError(f"unknown stylegan2 config {config!r} (known: {', '.join(CONFIGS)})")
    out = dict(CONFIGS[config] if config else DEFAULTS)
    out.update({k: v for k, v in given.items() if v is not None})
    size = out["image_size"]
    if size < 8 or size & (size - 1):
        raise GanforgeError(f"StyleGAN2 image_size must be a power of two >= 8, got {size}")
    if out["channel_base"] < size:  # the top resolution would get channel_base // size = 0 channels
        raise GanforgeError(f"channel_base must be >= image_size ({size}), got {out['channel_base']}")
    if out["d_architecture"] not in D_ARCHITECTURES:
        raise GanforgeError(f"unknown d_architecture {out['d_architecture']!r} (known: {', '.join(D_ARCHITECTURES)})")
    if out["conv_clamp"] is not None and out["conv_clamp"] <= 0:
        out["conv_clamp"] = None  # 0 switches a config's clamp off (None means: the config's value)
    for key in ("z_dim", "w_dim", "mapping_layers", "channel_max", "mbstd_group"):
        if out[key] < 1:
            raise GanforgeError(f"{key} must be >= 1, got {out[key]}")
    out.setdefault("d_mapping_layers", D_MAPPING_LAYERS)
    if out["d_mapping_layers"] < 0:
        raise GanforgeError(f"d_mapping_layers must be >= 0, got {out['d_mapping_layers']}")
    return out


@register_model("stylegan2")
def stylegan2(image_size: int | None = None, channels: int = 3, z_dim: int | None = None, w_dim: int | None = None,
              mapping_layers: int | None = None, channel_base: int | None = None, channel_max: int | None = None,
              num_classes: int = 0, mbstd_group: int | None = None, conv_clamp: float | None = None,
              d_architecture: str | None = None, config: str = "", clusters: int = 0,
              d_mapping_layers: int | None = None) -> GANModels:
    """StyleGAN2 G and D; `config` names a preset (f1024, paper256, cifar, cpu-small, cpu-tiny, cpu-digits), None = its value.

    Without a config: 32 px, z/w 512, 8 mapping layers, channel_base 16384, channel_max 512, mbstd group 4,
    no activation clamp, resnet D. conv_clamp=0 turns a config's clamp off. clusters=K: self-conditioned on
    K k-means clusters of the training images (as DCGAN's option), sampled like an unconditional model.
    d_mapping_layers: depth of a conditional D's label mapping (the reference's 8; 0 = a plain projection D).
    """
    check_clusters(clusters, num_classes)
    cfg = resolve_config(config, image_size=image_size, z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                         channel_base=channel_base, channel_max=channel_max, mbstd_group=mbstd_group,
                         conv_clamp=conv_clamp, d_architecture=d_architecture, d_mapping_layers=d_mapping_layers)
    args = dict(cfg, channels=channels, num_classes=num_classes, config=config, clusters=clusters)
    g = Generator(cfg["z_dim"], num_classes, cfg["w_dim"], cfg["image_size"], channels, cfg["mapping_layers"],
                  cfg["channel_base"], cfg["channel_max"], cfg["conv_clamp"], clusters)
    d = Discriminator(num_classes or clusters, cfg["image_size"], channels, cfg["d_architecture"], cfg["channel_base"],
                      cfg["channel_max"], cfg["conv_clamp"], cfg["mbstd_group"], mapping_layers=cfg["d_mapping_layers"])
    io = noise_io(cfg["image_size"], channels, cfg["z_dim"], num_classes, truncation=True, mixing=True,
                  num_ws=g.num_ws, w_dim=cfg["w_dim"])
    return GANModels(name="stylegan2", args=args, nets={"G": g, "D": d}, io=io)


stylegan2.configs = CONFIGS  # read by `ganforge models --params`, which lists every named config's counts
