"""Pix2Pix (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator on (source, target) pairs.

The networks follow the authors' reference code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py) layer for layer, so parameter counts match it: unet_256 (3 -> 3, ngf=64, batch
norm) has 54,414,275 parameters and the 70x70 PatchGAN on 6 input channels 2,768,705.

U-Net: encoder C64-C128-C256-C512-C512-C512-C512-C512 (4x4 stride-2 convs, LeakyReLU 0.2, no norm on
the first and the innermost), a mirrored decoder of ReLU + 4x4 stride-2 transposed convs whose outputs
are concatenated with the encoder features of the same size, Tanh at the end. Dropout 0.5 sits, as in
the reference, in the decoder blocks of the intermediate 512-channel levels: the three blocks after the
innermost for unet_256, two for unet_128 (num_downs - 5 in general). The discriminator returns logits
(the reference default, use_sigmoid=False); it sees concat(source, target) along channels.
"""
from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from ..nn.blocks import check_norm, conv_bias, init_gan_weights, norm_layer
from ..registry import register_model
from .base import GANModels
from .interface import ModelIO

NET_D = ("basic", "n_layers", "pixel")
MAX_MULT = 8  # channel multiplier cap of the reference (ngf * 8 = 512)


class UnetSkipBlock(nn.Module):
    """One U-Net level: down(x) -> inner levels -> up, concatenated with x (except at the outermost)."""

    def __init__(
        self,
        outer_ch: int,
        inner_ch: int,
        in_ch: int | None = None,
        sub: nn.Module | None = None,
        norm: str = "batch",
        outermost: bool = False,
        innermost: bool = False,
        dropout: bool = False,
    ):
        super().__init__()
        bias = conv_bias(norm)
        in_ch = outer_ch if in_ch is None else in_ch
        self.outermost, self.innermost, self.dropout = outermost, innermost, dropout
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        down.append(nn.Conv2d(in_ch, inner_ch, 4, 2, 1, bias=bias))
        if not (outermost or innermost):
            down.append(norm_layer(norm, inner_ch))
        up_in = inner_ch if innermost else inner_ch * 2  # inner levels return concat(skip, up)
        up: list[nn.Module] = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer_ch, 4, 2, 1, bias=bias or outermost)]
        up.append(nn.Tanh() if outermost else norm_layer(norm, outer_ch))
        if dropout:
            up.append(nn.Dropout(0.5))
        self.down = nn.Sequential(*down)
        self.sub = sub
        self.up = nn.Sequential(*up)

    def forward(self, x: Tensor) -> Tensor:
        h = self.down(x)
        y = self.up(self.sub(h) if self.sub is not None else h)
        return y if self.outermost else torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """U-Net image-to-image generator with `num_downs` stride-2 levels (8 for 256 px, 7 for 128 px)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        num_downs: int,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = True,
    ):
        super().__init__()
        check_norm(norm)
        if num_downs < 1:
            raise GanforgeError(f"U-Net needs at least one downsampling, got num_downs={num_downs}")
        self.in_ch, self.out_ch, self.num_downs = in_ch, out_ch, num_downs
        ch = [ngf * min(2**k, MAX_MULT) for k in range(num_downs)]
        block: nn.Module | None = None
        # Built innermost first, as the reference, so construction order (and RNG use) matches it.
        for k in range(num_downs - 1, -1, -1):
            innermost, outermost = k == num_downs - 1, k == 0
            block = UnetSkipBlock(
                outer_ch=out_ch if outermost else ch[k - 1],
                inner_ch=ch[k],
                in_ch=in_ch if outermost else None,
                sub=block,
                norm=norm,
                outermost=outermost,
                innermost=innermost,
                # The reference's use_dropout reaches only the intermediate ngf*8 -> ngf*8 levels.
                dropout=use_dropout and not innermost and k >= 4,
            )
        self.model = block
        init_gan_weights(self)

    def levels(self) -> list[UnetSkipBlock]:
        """The U-Net levels from the outermost (k=0) to the innermost."""
        out, block = [], self.model
        while block is not None:
            out.append(block)
            block = block.sub
        return out

    def forward(self, x: Tensor) -> Tensor:
        m = 2**self.num_downs
        if x.shape[-1] % m or x.shape[-2] % m:
            raise GanforgeError(
                f"U-Net with {self.num_downs} downsamplings needs height and width divisible by {m}, "
                f"got {tuple(x.shape[-2:])}"
            )
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: one logit per overlapping patch; n_layers=3 gives 70x70 patches (30x30 logits at 256 px)."""

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        bias = conv_bias(norm)
        if n_layers < 1:
            raise GanforgeError(f"PatchGAN needs n_layers >= 1, got {n_layers}")
        self.n_layers = n_layers
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, MAX_MULT)
            stride = 2 if n < n_layers else 1  # the last two convs keep the resolution (minus 1 px each)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def patch_output_size(image_size: int, n_layers: int) -> int:
    """Side of the PatchGAN logit map for a square input of `image_size` (30 for 256 with n_layers=3)."""
    s = image_size
    for _ in range(n_layers):
        s = s // 2  # k4 s2 p1
    return s - 2  # two k4 s1 p1 convs each lose one pixel


def patch_receptive_field(n_layers: int) -> int:
    """Receptive field in pixels of one PatchGAN logit (70 for n_layers=3)."""
    rf = 4  # the final k4 s1 conv, walked back through the k4 s1 conv and the n_layers k4 s2 convs
    rf = (rf - 1) * 1 + 4
    for _ in range(n_layers):
        rf = (rf - 1) * 2 + 4
    return rf


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("PixelGAN"): one logit per pixel from 1x1 convolutions."""

    def __init__(self, in_ch: int, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        bias = conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 1, 1, 0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, 1, 0, bias=bias),
            norm_layer(norm, ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, 1, 0, bias=bias),
        )
        init_gan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _two_adic(n: int) -> int:
    k = 0
    while n > 0 and n % 2 == 0:
        n //= 2
        k += 1
    return k


def resolve_unet(image_size: int, netG: str | None) -> tuple[str, int]:
    """(netG name, num_downs) for an image size: as many levels as 2 divides it, at most 8 (unet_256)."""
    # 256 -> unet_256, 128 -> unet_128, 64 -> unet_64 (1x1 bottleneck); 512 -> unet_256 (2x2, as the
    # reference); 96 -> unet_32 (3x3).
    if image_size < 2:
        raise GanforgeError(f"pix2pix image_size must be at least 2, got {image_size}")
    if netG is None:
        num_downs = min(_two_adic(image_size), 8)
        if num_downs < 3:
            raise GanforgeError(f"pix2pix image_size must be divisible by 8, got {image_size}")
        return f"unet_{2**num_downs}", num_downs
    m = re.fullmatch(r"unet_(\d+)", netG)
    size = int(m.group(1)) if m else 0
    if size < 2 or size & (size - 1):
        raise GanforgeError(f"unknown pix2pix netG {netG!r} (known: unet_256, unet_128, unet_<power of 2>)")
    if image_size % size:
        raise GanforgeError(f"netG {netG!r} needs image_size divisible by {size}, got {image_size}")
    return netG, size.bit_length() - 1


@register_model("pix2pix")
def pix2pix(
    image_size: int = 256,
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    ndf: int = 64,
    netG: str | None = None,
    netD: str = "basic",
    n_layers_D: int = 3,
    norm: str = "batch",
    dropout: bool = True,
) -> GANModels:
    """Pix2Pix networks: G a U-Net (source -> target), D a PatchGAN on concat(source, target)."""
    check_norm(norm)
    netG, num_downs = resolve_unet(image_size, netG)
    if netD not in NET_D:
        raise GanforgeError(f"unknown pix2pix netD {netD!r} (known: {', '.join(NET_D)})")
    if netD == "basic" and n_layers_D != 3:
        raise GanforgeError(f"netD='basic' is the 3-layer PatchGAN; use netD='n_layers' for n_layers_D={n_layers_D}")
    if netD != "pixel" and patch_output_size(image_size, n_layers_D) < 1:
        raise GanforgeError(f"image_size {image_size} is too small for a PatchGAN with n_layers_D={n_layers_D}")
    G = UnetGenerator(in_channels, out_channels, num_downs, ngf, norm=norm, use_dropout=dropout)
    d_in = in_channels + out_channels
    if netD == "pixel":
        D: nn.Module = PixelDiscriminator(d_in, ndf, norm=norm)
    else:
        D = NLayerDiscriminator(d_in, ndf, n_layers=n_layers_D, norm=norm)
    args = dict(
        image_size=image_size, in_channels=in_channels, out_channels=out_channels, ngf=ngf, ndf=ndf,
        netG=netG, netD=netD, n_layers_D=n_layers_D, norm=norm, dropout=dropout,
    )
    io = ModelIO("translate", image_size=image_size, in_channels=in_channels, out_channels=out_channels,
                 size_multiple=2**num_downs, nets={"translate": "G"})
    return GANModels(name="pix2pix", args=args, nets={"G": G, "D": D}, io=io)
