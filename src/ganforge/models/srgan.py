"""SRResNet and SRGAN (Ledig et al. 2017): 4x photo-realistic single-image super-resolution.

Generator (SRResNet, the paper's Figure 4, top): a 9x9 conv (k9n64s1) + PReLU head; B = 16 residual blocks,
each k3n64s1-BN-PReLU-k3n64s1-BN plus an identity skip; a k3n64s1-BN layer whose output is added to the
head's (the long skip); log2(scale) sub-pixel upsampling stages (Shi et al. 2016), each k3n256s1,
PixelShuffle(2), PReLU; a final 9x9 conv to the output channels. It is fully convolutional: any input size
works, and an h x w input comes out (h * scale) x (w * scale).

Discriminator (Figure 4, bottom): eight 3x3 convs with 64, 64, 128, 128, 256, 256, 512, 512 channels and
strides 1, 2, 1, 2, 1, 2, 1, 2, each followed by LeakyReLU(0.2) and, all but the first, by BatchNorm; then
Dense(1024), LeakyReLU(0.2), Dense(1). The paper's final sigmoid is folded into the loss (BCE with logits):
D returns one logit per image. The dense layer fixes the input size: the paper's 96x96 HR patches give
512 x 6 x 6 features; hr_size must be a multiple of 16 (four stride-2 convs).

Choices where the paper is silent:
  * PReLU has one shared slope per layer (nn.PReLU(), as in most PyTorch ports); every PReLU is its own layer.
  * Every convolution carries a bias, also those followed by BatchNorm (redundant there, but the layer
    tables of the paper and of the common ports have it, and the parameter counts below include it).
  * Initialisation: PyTorch's defaults (Kaiming-uniform conv/linear weights, BatchNorm 1/0, PReLU 0.25).
    The paper names no scheme; the SRResNet it trains first (MSE) serves as the GAN generator's init.
  * The output is linear (no tanh), as the paper's last conv. Images in this project lie in [-1, 1], so
    G's outputs may overshoot that range slightly: callers clamp before saving or measuring.

Parameters at the defaults (3 channels, 64 features, 16 blocks, 4x, 96 px HR patches):
SRResNet 1,549,462 and the discriminator 23,565,505 (18,875,392 of them in the first dense layer).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from ..registry import register_model
from .base import GANModels
from .interface import ModelIO

SCALES = (2, 4, 8)
SKIPS = ("none", "bicubic")  # "bicubic": G learns a correction to bicubic upsampling (not in the paper)
D_WIDTHS = (1, 1, 2, 2, 4, 4, 8, 8)  # multiples of `features` for the discriminator's eight convs
D_STRIDES = (1, 2, 1, 2, 1, 2, 1, 2)
D_DENSE = 1024
D_REDUCTION = 16  # 2 ** (number of stride-2 convs)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    """A k x k convolution with 'same' padding (k // 2) and a bias."""
    return nn.Conv2d(cin, cout, k, stride, k // 2)


def check_scale(scale: int) -> int:
    """Return `scale` if SRResNet can upscale by it (2, 4 or 8), else raise a GanforgeError."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SCALES:
        raise GanforgeError(f"srgan scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}")
    return scale


def check_hr_size(hr_size: int) -> int:
    """Return `hr_size` if the discriminator can take hr_size x hr_size images, else raise a GanforgeError."""
    if isinstance(hr_size, bool) or not isinstance(hr_size, int) or hr_size < D_REDUCTION or hr_size % D_REDUCTION:
        raise GanforgeError(
            f"srgan hr_size must be a positive multiple of {D_REDUCTION} (the discriminator halves it four times), "
            f"got {hr_size!r}"
        )
    return hr_size


def check_skip(skip: str, in_channels: int, out_channels: int) -> str:
    """Return `skip` if SRResNet supports it ("none", or "bicubic" with as many input as output channels)."""
    if skip not in SKIPS:
        raise GanforgeError(f"srgan skip must be one of {', '.join(SKIPS)}, got {skip!r}")
    if skip == "bicubic" and in_channels != out_channels:
        raise GanforgeError("skip=bicubic adds the upsampled input to the output: it needs in_channels == out_channels")
    return skip


class ResidualBlock(nn.Module):
    """x + (conv3x3, BN, PReLU, conv3x3, BN)(x): the paper's k3n64s1 residual block."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv(ch, ch, 3), nn.BatchNorm2d(ch), nn.PReLU(), _conv(ch, ch, 3), nn.BatchNorm2d(ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def upsample_stage(ch: int) -> nn.Sequential:
    """One 2x sub-pixel stage: conv3x3 ch -> 4 ch, PixelShuffle(2) (4 ch -> ch at twice the size), PReLU."""
    return nn.Sequential(_conv(ch, ch * 4, 3), nn.PixelShuffle(2), nn.PReLU())


class SRResNet(nn.Module):
    """SRResNet: low-resolution images [N, in, h, w] -> [N, out, h * scale, w * scale], linear output.

    Inputs and targets are in [-1, 1] in this project; the output is not squashed (the paper's last layer
    is a plain conv), so clamp it to [-1, 1] before turning it into pixels.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, scale: int = 4, num_blocks: int = 16,
                 features: int = 64, skip: str = "none"):
        super().__init__()
        check_scale(scale)
        check_skip(skip, in_channels, out_channels)
        if num_blocks < 1:
            raise GanforgeError(f"srgan num_blocks must be >= 1, got {num_blocks}")
        self.in_channels, self.out_channels, self.scale, self.num_blocks = in_channels, out_channels, scale, num_blocks
        self.head = nn.Sequential(_conv(in_channels, features, 9), nn.PReLU())
        self.blocks = nn.Sequential(*(ResidualBlock(features) for _ in range(num_blocks)))
        self.trunk_out = nn.Sequential(_conv(features, features, 3), nn.BatchNorm2d(features))
        self.upsample = nn.Sequential(*(upsample_stage(features) for _ in range(scale.bit_length() - 1)))
        self.tail = _conv(features, out_channels, 9)
        self.skip = skip
        if skip == "bicubic":  # start from bicubic upsampling plus a small correction, not from noise
            with torch.no_grad():
                self.tail.weight.mul_(0.1)
                self.tail.bias.zero_()

    def trunk(self, h: Tensor) -> Tensor:
        """The residual trunk on the head's features h: the blocks, conv-BN, and the long skip from h."""
        return h + self.trunk_out(self.blocks(h))

    def forward(self, x: Tensor) -> Tensor:
        out = self.tail(self.upsample(self.trunk(self.head(x))))
        if self.skip == "bicubic":
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out


class SRGANDiscriminator(nn.Module):
    """The SRGAN discriminator: hr_size x hr_size images [N, C, hr, hr] -> logits [N]."""

    def __init__(self, in_channels: int = 3, features: int = 64, hr_size: int = 96):
        super().__init__()
        check_hr_size(hr_size)
        self.in_channels, self.hr_size = in_channels, hr_size
        layers: list[nn.Module] = []
        ch = in_channels
        for i, (width, stride) in enumerate(zip(D_WIDTHS, D_STRIDES)):
            layers.append(_conv(ch, features * width, 3, stride))
            ch = features * width
            if i > 0:  # no BatchNorm on the input layer, as the paper (and DCGAN)
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*layers)
        side = hr_size // D_REDUCTION
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(ch * side * side, D_DENSE), nn.LeakyReLU(0.2), nn.Linear(D_DENSE, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        # Static shapes: a plain Python check that torch.export evaluates once while tracing.
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, self.hr_size, self.hr_size):
            raise GanforgeError(
                f"the SRGAN discriminator takes [N, {self.in_channels}, {self.hr_size}, {self.hr_size}] images "
                f"(hr_size={self.hr_size}), got {list(x.shape)}"
            )
        return self.classifier(self.body(x)).squeeze(1)


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GanforgeError(f"srgan {name} must be a positive integer, got {value!r}")
    return value


@register_model("srgan")
def srgan(scale: int = 4, channels: int = 3, num_blocks: int = 16, features: int = 64, d_features: int = 64,
          hr_size: int = 96, skip: str = "none") -> GANModels:
    """SRGAN networks: G an SRResNet (LR -> HR, `scale` x), D the SRGAN discriminator on hr_size x hr_size images.

    Training pairs are hr_size HR patches and their (hr_size // scale) LR versions; the paper's are 96 and 24.
    """
    for name, value in dict(channels=channels, num_blocks=num_blocks, features=features, d_features=d_features).items():
        _check_positive(name, value)
    check_scale(scale)
    check_hr_size(hr_size)
    if hr_size % scale:  # implied by the multiple of 16 for the scales allowed today
        raise GanforgeError(f"srgan hr_size must be a multiple of scale ({scale}), got {hr_size}")
    G = SRResNet(channels, channels, scale, num_blocks, features, skip)
    D = SRGANDiscriminator(channels, d_features, hr_size)
    args = dict(scale=scale, channels=channels, num_blocks=num_blocks, features=features, d_features=d_features,
                hr_size=hr_size, skip=skip)
    # image_size is the tile the generator takes (the LR patch); its output tiles are hr_size.
    io = ModelIO("upscale", image_size=hr_size // scale, in_channels=channels, out_channels=channels, scale=scale,
                 size_multiple=1)
    return GANModels(name="srgan", args=args, nets={"G": G, "D": D}, io=io)


@register_model("srresnet")
def srresnet(scale: int = 4, channels: int = 3, num_blocks: int = 16, features: int = 64,
             hr_size: int = 96, skip: str = "none") -> GANModels:
    """SRResNet alone (the paper's MSE-trained first stage): G only, no discriminator to train or save.

    hr_size is the HR training crop (a multiple of scale). Its G has the same layers and weight names as the
    `srgan` model's with the same arguments, so an SRGAN run starts from it with train.init_from=RUN.
    """
    for name, value in dict(channels=channels, num_blocks=num_blocks, features=features).items():
        _check_positive(name, value)
    check_scale(scale)
    if isinstance(hr_size, bool) or not isinstance(hr_size, int) or hr_size < scale or hr_size % scale:
        raise GanforgeError(f"srresnet hr_size must be a positive multiple of scale ({scale}), got {hr_size!r}")
    G = SRResNet(channels, channels, scale, num_blocks, features, skip)
    args = dict(scale=scale, channels=channels, num_blocks=num_blocks, features=features, hr_size=hr_size, skip=skip)
    io = ModelIO("upscale", image_size=hr_size // scale, in_channels=channels, out_channels=channels, scale=scale,
                 size_multiple=1)
    return GANModels(name="srresnet", args=args, nets={"G": G}, io=io)
