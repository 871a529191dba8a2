"""StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture for GANs") with progressive growing.

Follows NVlabs/stylegan training/networks_stylegan.py (G_style, G_mapping, G_synthesis, D_basic):

- Mapping: pixel norm of z (concatenated with a label embedding when conditional), `mapping_layers` dense
  lrelu layers with learning-rate multiplier 0.01, w broadcast to num_ws = 2*log2(image_size) - 2 layers;
  the truncation trick pulls the first `cutoff` (8) layers towards the tracked average w (beta 0.995).
- Synthesis: a learned 4x4 constant (init ones); each layer is [nearest 2x up] 3x3 conv [FIR blur 1-2-1],
  per-channel noise, bias, lrelu, instance norm and AdaIN from its own w; a 1x1 ToRGB per resolution.
  Channels at resolution 2^r are min(fmap_base / 2^(r-1), fmap_max).
- Discriminator: FromRGB per resolution, blocks of 3x3 conv + blur + 3x3 conv + 2x box downsampling,
  then minibatch std (group 4), 3x3 conv, dense, dense to one output per class (the label's is taken).

Progressive growing: each network holds a level of detail `lod` (0 = full resolution, log2(image_size) - 2
= 4x4) both as a python float, which `forward` branches on (so torch.export traces a fixed graph), and as
a buffer saved with the weights. G always outputs image_size pixels (a lower-res image is upsampled,
nearest, as the reference) and D always takes them (box-downsampled to the current resolution). At
fractional lod = k + f the new resolution is faded in with alpha = 1 - f.

Deviations (see also the per-line comments): the reference fuses upsample+conv (>= 128 px) into one
transposed conv and conv+downsample into one strided conv (a speed trick); here they stay separate ops,
which compute the same function (the fused 4x4 kernels are the 3x3 ones summed over the 2x2 shifts). D's and the mapping's lrelu layers use the project's bias_act form lrelu(x/sqrt(fan_in) + b) *
sqrt(2) instead of lrelu(x*sqrt(2)/sqrt(fan_in) + b): the same functions (equal at init, biases zero),
but their biases learn sqrt(2) times faster. The synthesis layers match the TF code exactly. Training-time style mixing, w_avg tracking and random noise are the
recipe's to ask for (`mapping(update_w_avg=True)`, `mix_styles`, `noise_mode='random'`).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from ..nn.equalized import AdaIN, EqualConv2d, EqualLinear, MinibatchStdDev, NoiseInjection, PixelNorm, bias_act
from ..nn.upfirdn import filter2d, setup_filter
from ..registry import register_model
from .base import GANModels, named_config
from .conditioning import ClusterPrior, check_clusters
from .interface import noise_io

TRUNCATION_CUTOFF = 8  # the paper's: truncate the coarse and middle styles (4x4 to 32x32)
W_AVG_BETA = 0.995
MAPPING_LR = 0.01
BLUR_TAPS = (1, 2, 1)
MBSTD_GROUP = 4

# Named architectures. A config fills the factory arguments still at their defaults; an argument given
# with another value wins (`config=cpu-small z_dim=64`). Channels are the data's, so only ffhq1024 names
# them (3, the default): cpu-small on digits is `config=cpu-small channels=1`.
CONFIGS: dict[str, dict[str, Any]] = {
    # The paper's FFHQ network: 26,219,627 G parameters (the paper's "26.2M") and 23,087,249 D, both
    # summed from the reference's layer list in tests/models/test_stylegan.py.
    "ffhq1024": dict(image_size=1024, channels=3, z_dim=512, w_dim=512, mapping_layers=8, fmap_base=8192,
                     fmap_max=512),
    # 32 px digits on a laptop CPU: 128 channels to 16x16, 64 at 32x32, a 4-layer 128-d mapping.
    "cpu-small": dict(image_size=32, z_dim=128, w_dim=128, mapping_layers=4, fmap_base=1024,
                      fmap_max=128),
    # Half of cpu-small's widths (64 channels to 16x16, 32 at 32x32), StyleGAN2 cpu-digits' sizes: the demo.
    "cpu-digits": dict(image_size=32, z_dim=128, w_dim=128, mapping_layers=4, fmap_base=512,
                       fmap_max=64),
}


def resolution_log2(image_size: int) -> int:
    """log2(image_size) for a power of two >= 8, else a GanforgeError."""
    r = int(image_size).bit_length() - 1
    if image_size < 8 or image_size != 2**r:
        raise GanforgeError(f"StyleGAN image_size must be a power of two >= 8 (8, 16, 32, ..., 1024), got {image_size}")
    return r


def stage_channels(res_log2: int, fmap_base: int, fmap_max: int) -> int:
    """Feature maps at resolution 2^res_log2: min(fmap_base / 2^(res_log2 - 1), fmap_max), as the reference's nf."""
    return min(int(fmap_base / 2.0 ** (res_log2 - 1)), fmap_max)


def mix_styles(ws1: Tensor, ws2: Tensor, crossover: int | Tensor) -> Tensor:
    """Per-layer latents [N, num_ws, w_dim] with layers < crossover from ws1 and the rest from ws2.

    `crossover` is an int or a per-sample tensor [N]. Layers 2i and 2i+1 drive resolution 4 * 2^i, so
    crossover 4 takes the coarse styles (4x4, 8x8) from ws1 and everything finer from ws2.
    """
    layer = torch.arange(ws1.shape[1], device=ws1.device)
    if isinstance(crossover, Tensor):
        first = layer[None, :] < crossover.to(ws1.device).reshape(-1, 1)
    else:
        first = (layer < crossover)[None, :]
    return torch.where(first[..., None], ws1, ws2)


class Progressive(nn.Module):
    """A network with a level of detail `lod`: a python float for forward and a buffer for the state_dict."""

    def __init__(self, max_lod: int) -> None:
        super().__init__()
        self.max_lod = max_lod
        self.register_buffer("lod", torch.zeros(()))
        self.current_lod = 0.0

    def set_lod(self, value: float) -> None:
        """Set the level of detail: 0 = full resolution, max_lod = 4x4, fractional = fading in."""
        value = float(value)
        if not 0.0 <= value <= self.max_lod:
            raise GanforgeError(f"lod must lie in [0, {self.max_lod}] for this network, got {value}")
        with torch.no_grad():
            self.lod.fill_(value)
        # The float32-rounded value, so the python float and a reloaded buffer agree exactly; rounded on the
        # host, as reading the buffer back would stall a GPU every step.
        self.current_lod = float(torch.tensor(value, dtype=torch.float32))

    def sync_lod(self) -> None:
        """Refresh the python lod from the buffer after an in-place copy into it (an EMA's buffer copy)."""
        self.current_lod = float(self.lod)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if prefix + "lod" in state_dict:  # a checkpoint taken mid-fade resumes mid-fade
            value = float(self.lod)
            if 0.0 <= value <= self.max_lod:
                self.current_lod = value
            else:
                error_msgs.append(f"{prefix}lod={value} is outside [0, {self.max_lod}]")

    def lod_parts(self) -> tuple[int, float]:
        """(k, f) with lod = k + f: the newest resolution is 2^(log2 size - k), faded in with alpha = 1 - f."""
        k = int(math.floor(self.current_lod))
        return k, self.current_lod - k

    def extra_repr(self) -> str:
        return f"lod={self.current_lod}"


class MappingNetwork(nn.Module):
    """z (and a class label) -> per-layer latents ws [N, num_ws, w_dim], with the truncation trick."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8, num_classes: int = 0,
                 lr_multiplier: float = MAPPING_LR, w_avg_beta: float = W_AVG_BETA, clusters: int = 0) -> None:
        super().__init__()
        # Self-conditioned (model.clusters): the label is a k-means cluster that, when none is given, the
        # mapping draws from z in the clusters' proportions (models/conditioning.py), as StyleGAN2's.
        self.cluster_prior = ClusterPrior(clusters) if clusters > 0 else None
        num_classes = num_classes or clusters
        self.z_dim, self.w_dim, self.num_ws, self.num_classes = z_dim, w_dim, num_ws, num_classes
        self.w_avg_beta = w_avg_beta
        # The reference's LabelConcat: one-hot labels times an N(0, 1) matrix, i.e. an embedding of z_dim.
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes > 0 else None
        self.norm = PixelNorm()
        dims = [z_dim * (2 if num_classes > 0 else 1)] + [w_dim] * num_layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_multiplier=lr_multiplier, activation="lrelu")
                                   for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, y: Tensor | None = None, psi: float = 1.0, cutoff: int | None = TRUNCATION_CUTOFF,
                update_w_avg: bool = False) -> Tensor:
        """ws [N, num_ws, w_dim]; layers < cutoff (None: all) pulled to w_avg by psi; w_avg tracked only if asked."""
        if self.embed is not None:
            if y is None and self.cluster_prior is not None:
                y = self.cluster_prior(z)
            if y is None:
                raise GanforgeError(f"this StyleGAN is class-conditional ({self.num_classes} classes): give labels")
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        w = self.net(self.norm(z))  # the reference normalizes z and the label embedding together
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if psi != 1.0:
            n = self.num_ws if cutoff is None else min(int(cutoff), self.num_ws)
            coefs = torch.tensor([psi] * n + [1.0] * (self.num_ws - n), dtype=ws.dtype, device=ws.device)
            ws = torch.lerp(self.w_avg.to(ws.dtype).expand_as(ws), ws, coefs[None, :, None])
        return ws


class StyleLayer(nn.Module):
    """One synthesis layer: [up] conv [blur], per-channel noise, bias, lrelu, instance norm and AdaIN."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, conv: bool = True,
                 up: bool = False) -> None:
        super().__init__()
        self.up = up
        self.conv = EqualConv2d(in_channels, out_channels, 3, bias=False) if conv else None
        if up:
            self.register_buffer("blur", setup_filter(list(BLUR_TAPS)))
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "const") -> Tensor:
        """x [N, in, H, W] (H/2 when up) styled by w [N, w_dim] -> [N, out, H, W]."""
        if self.up:  # nearest 2x, as the reference's upscale2d (tile)
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.conv is not None:
            # The TF code's He gain sqrt(2) lives in the conv weight, before noise and bias.
            x = self.conv(x, gain=math.sqrt(2))
        if self.up:
            x = filter2d(x, self.blur)
        x = self.noise(x, noise_mode=noise_mode)
        x = bias_act(x, self.bias, "lrelu", gain=1.0)  # instance norm follows, so no output gain
        return self.adain(x, w)  # AdaIN instance-normalizes first


class SynthesisNetwork(Progressive):
    """Per-layer latents ws [N, num_ws, w_dim] -> images [N, C, image_size, image_size] at the current lod."""

    def __init__(self, image_size: int, channels: int, w_dim: int, fmap_base: int, fmap_max: int) -> None:
        r_max = resolution_log2(image_size)
        super().__init__(max_lod=r_max - 2)
        self.image_size, self.channels, self.w_dim = image_size, channels, w_dim
        self.res_log2 = r_max
        self.num_ws = 2 * r_max - 2
        nf = [stage_channels(r, fmap_base, fmap_max) for r in range(2, r_max + 1)]
        if min(nf) < 1:
            raise GanforgeError(f"fmap_base={fmap_base} leaves no channels at {image_size} px: raise fmap_base")
        self.const = nn.Parameter(torch.ones(1, nf[0], 4, 4))
        self.blocks = nn.ModuleList()
        self.torgb = nn.ModuleList()
        for i, ch in enumerate(nf):  # block i works at 4 * 2^i pixels
            res = 4 * 2**i
            first = StyleLayer(nf[0], ch, w_dim, res, conv=False) if i == 0 else \
                StyleLayer(nf[i - 1], ch, w_dim, res, up=True)
            self.blocks.append(nn.ModuleList([first, StyleLayer(ch, ch, w_dim, res)]))
            self.torgb.append(EqualConv2d(ch, channels, 1))

    def forward(self, ws: Tensor, noise_mode: str = "const") -> Tensor:
        """Images [N, C, image_size, image_size], not clamped; noise_mode 'random' | 'const' | 'none'."""
        k, f = self.lod_parts()
        top = self.max_lod - k  # index of the newest block in use
        x = self.const.to(ws.dtype).repeat(ws.shape[0], 1, 1, 1)
        prev = x
        for i in range(top + 1):
            prev = x
            for j, layer in enumerate(self.blocks[i]):
                x = layer(x, ws[:, 2 * i + j], noise_mode=noise_mode)
        img = self.torgb[top](x)
        if f > 0:  # fading block `top` in over the upsampled image of the block before it
            low = F.interpolate(self.torgb[top - 1](prev), scale_factor=2, mode="nearest")
            img = torch.lerp(img, low, f)
        if k > 0:  # always full size: the reference's nearest upscale of a low-resolution output
            img = F.interpolate(img, scale_factor=2**k, mode="nearest")
        return img


class StyleGANGenerator(nn.Module):
    """z (and a class label) -> image [N, C, image_size, image_size] through mapping and synthesis."""

    def __init__(self, image_size: int = 32, channels: int = 3, z_dim: int = 512, w_dim: int = 512,
                 mapping_layers: int = 8, fmap_base: int = 8192, fmap_max: int = 512, num_classes: int = 0,
                 clusters: int = 0) -> None:
        super().__init__()
        self.image_size, self.channels, self.z_dim, self.w_dim = image_size, channels, z_dim, w_dim
        self.num_classes = num_classes
        self.synthesis = SynthesisNetwork(image_size, channels, w_dim, fmap_base, fmap_max)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers, num_classes, clusters=clusters)

    @property
    def cluster_prior(self) -> nn.Module | None:
        """A self-conditioned G's cluster prior (it lives in the mapping, which draws the cluster from z)."""
        return self.mapping.cluster_prior

    @property
    def current_lod(self) -> float:
        """The synthesis network's level of detail."""
        return self.synthesis.current_lod

    def set_lod(self, value: float) -> None:
        """Set the level of detail (0 = full resolution)."""
        self.synthesis.set_lod(value)

    def sync_lod(self) -> None:
        """Refresh the python lod from the buffer (after an in-place buffer copy)."""
        self.synthesis.sync_lod()

    mix = staticmethod(mix_styles)

    def forward(self, z: Tensor, y: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
                noise_mode: str = "const") -> Tensor:
        """Images [N, C, image_size, image_size] (not clamped); cutoff None = the paper's 8 truncated layers."""
        ws = self.mapping(z, y, psi=psi, cutoff=TRUNCATION_CUTOFF if cutoff is None else cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)


class DBlock(nn.Module):
    """D's block at one resolution: 3x3 conv, blur, 3x3 conv, 2x box downsampling, bias and lrelu."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation="lrelu")
        self.register_buffer("blur", setup_filter(list(BLUR_TAPS)))
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        """[N, in, H, W] -> [N, out, H/2, W/2]."""
        x = self.conv1(filter2d(self.conv0(x), self.blur))
        return bias_act(F.avg_pool2d(x, 2), self.bias, "lrelu")  # bias and act after the downscale, as the reference


class StyleGANDiscriminator(Progressive):
    """image [N, C, image_size, image_size] (and a class label) -> one logit per sample at the current lod."""

    def __init__(self, image_size: int = 32, channels: int = 3, fmap_base: int = 8192, fmap_max: int = 512,
                 num_classes: int = 0, mbstd_group: int = MBSTD_GROUP) -> None:
        r_max = resolution_log2(image_size)
        super().__init__(max_lod=r_max - 2)
        self.image_size, self.channels, self.num_classes = image_size, channels, num_classes
        nf = [stage_channels(r, fmap_base, fmap_max) for r in range(1, r_max + 1)]  # nf[i]: the reference's nf(i)
        if min(nf) < 1:
            raise GanforgeError(f"fmap_base={fmap_base} leaves no channels at {image_size} px: raise fmap_base")
        # Index i <-> resolution 4 * 2^i, as in the generator.
        self.fromrgb = nn.ModuleList([EqualConv2d(channels, nf[i + 1], 1, activation="lrelu")
                                      for i in range(r_max - 1)])
        # blocks[0] (4x4) is the epilogue below; the placeholder keeps the indices aligned.
        self.blocks = nn.ModuleList([nn.Identity()] + [DBlock(nf[i + 1], nf[i]) for i in range(1, r_max - 1)])
        self.mbstd = MinibatchStdDev(mbstd_group, 1)
        self.conv = EqualConv2d(nf[1] + 1, nf[1], 3, activation="lrelu")
        self.fc = EqualLinear(nf[1] * 16, nf[0], activation="lrelu")
        self.out = EqualLinear(nf[0], max(num_classes, 1))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits [N]; with classes, the output of each sample's label (the reference's LabelSwitch)."""
        if self.num_classes > 0 and y is None:
            raise GanforgeError(f"this StyleGAN D is class-conditional ({self.num_classes} classes): give labels")
        k, f = self.lod_parts()
        top = self.max_lod - k
        img = F.avg_pool2d(x, 2**k) if k > 0 else x  # the reference's box downscale to the current resolution
        h = self.fromrgb[top](img)
        for i in range(top, 0, -1):
            h = self.blocks[i](h)
            if i == top and f > 0:  # fading the new block in over FromRGB of the half-size image
                h = torch.lerp(h, self.fromrgb[i - 1](F.avg_pool2d(img, 2)), f)
        h = self.conv(self.mbstd(h))
        out = self.out(self.fc(h.flatten(1)))
        if self.num_classes > 0:
            return out.gather(1, y.reshape(-1, 1).long()).squeeze(1)
        return out.squeeze(1)


@register_model("stylegan")
def stylegan(image_size: int = 32, channels: int = 3, z_dim: int = 512, w_dim: int = 512, mapping_layers: int = 8,
             fmap_base: int = 8192, fmap_max: int = 512, num_classes: int = 0, config: str = "",
             mbstd_group: int = MBSTD_GROUP, clusters: int = 0) -> GANModels:
    """StyleGAN v1 with progressive growing; config: 'ffhq1024' (the paper's) or 'cpu-small' (32 px digits).

    mbstd_group: D's minibatch-stddev group size (the paper's 4). clusters=K: self-conditioned on K k-means
    clusters of the training images (as StyleGAN2's option), sampled like an unconditional model."""
    check_clusters(clusters, num_classes)
    if mbstd_group < 1:
        raise GanforgeError(f"mbstd_group must be >= 1, got {mbstd_group}")
    given = dict(image_size=image_size, channels=channels, z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                 fmap_base=fmap_base, fmap_max=fmap_max, num_classes=num_classes)
    a = named_config("StyleGAN", CONFIGS, stylegan, config, given)
    resolution_log2(a["image_size"])  # one clear error before any layer is built
    g = StyleGANGenerator(**a, clusters=clusters)
    d = StyleGANDiscriminator(a["image_size"], a["channels"], a["fmap_base"], a["fmap_max"],
                              a["num_classes"] or clusters, mbstd_group)
    io = noise_io(a["image_size"], a["channels"], a["z_dim"], a["num_classes"], truncation=True, mixing=True,
                  num_ws=g.num_ws, w_dim=a["w_dim"], progressive=True)
    return GANModels(name="stylegan", args={**a, "config": config, "mbstd_group": mbstd_group, "clusters": clusters},
                     nets={"G": g, "D": d}, io=io)


stylegan.configs = CONFIGS  # read by `ganforge models --params`, which lists every named config's counts
