"""CycleGAN (Zhu et al. 2017): two ResNet generators (A -> B, B -> A) and two 70x70 PatchGAN critics.

Layer for layer the networks of the authors' reference code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py): c7s1-64, d128, d256, n_blocks x R256, u128, u64, c7s1-3 with reflection padding
and non-affine InstanceNorm. resnet_9blocks (used at 256 px) has 11,378,179 parameters and the PatchGAN
on 3 channels 2,764,737, the reference's figures. D_A judges domain-A images, D_B domain-B images.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..errors import GanforgeError
from ..nn.blocks import check_norm, conv_bias, init_gan_weights, norm_layer
from ..registry import register_model
from .base import GANModels
from .interface import ModelIO
from .pix2pix import NLayerDiscriminator, patch_output_size


class ResnetBlock(nn.Module):
    """x + (reflect-pad, 3x3 conv, norm, ReLU, [dropout], reflect-pad, 3x3 conv, norm)(x)."""

    def __init__(self, dim: int, norm: str = "instance", use_dropout: bool = False):
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim), nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s image-transformation network: 2 stride-2 downs, n_blocks residual blocks, 2 ups."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        ngf: int = 64,
        norm: str = "instance",
        n_blocks: int = 9,
        use_dropout: bool = False,
    ):
        super().__init__()
        check_norm(norm)
        if n_blocks < 0:
            raise GanforgeError(f"n_blocks must be >= 0, got {n_blocks}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), norm_layer(norm, ngf), nn.ReLU(True),
        ]
        ch = ngf
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1, bias=bias), norm_layer(norm, ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, use_dropout) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias),
                norm_layer(norm, ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.in_ch, self.out_ch, self.n_blocks = in_ch, out_ch, n_blocks
        init_gan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            # Two stride-2 convs then two x2 transposed convs: other sizes come back a few pixels off.
            raise GanforgeError(f"ResNet generator needs height and width divisible by 4, got {tuple(x.shape[-2:])}")
        return self.model(x)


@register_model("cyclegan")
def cyclegan(
    image_size: int = 256,
    channels_a: int = 3,
    channels_b: int = 3,
    ngf: int = 64,
    ndf: int = 64,
    n_blocks: int | None = None,
    n_layers_D: int = 3,
    norm: str = "instance",
) -> GANModels:
    """CycleGAN networks: G_AB, G_BA (ResNet generators) and D_A, D_B (PatchGANs on single images)."""
    check_norm(norm)
    if image_size < 4 or image_size % 4:
        raise GanforgeError(f"cyclegan image_size must be a multiple of 4, got {image_size}")
    if n_blocks is None:
        n_blocks = 9 if image_size >= 256 else 6  # resnet_9blocks at 256 px, resnet_6blocks at 128 px
    if patch_output_size(image_size, n_layers_D) < 1:
        raise GanforgeError(f"image_size {image_size} is too small for a PatchGAN with n_layers_D={n_layers_D}")
    nets = {
        "G_AB": ResnetGenerator(channels_a, channels_b, ngf, norm=norm, n_blocks=n_blocks),
        "G_BA": ResnetGenerator(channels_b, channels_a, ngf, norm=norm, n_blocks=n_blocks),
        "D_A": NLayerDiscriminator(channels_a, ndf, n_layers=n_layers_D, norm=norm),
        "D_B": NLayerDiscriminator(channels_b, ndf, n_layers=n_layers_D, norm=norm),
    }
    args = dict(
        image_size=image_size, channels_a=channels_a, channels_b=channels_b, ngf=ngf, ndf=ndf,
        n_blocks=n_blocks, n_layers_D=n_layers_D, norm=norm,
    )
    io = ModelIO("translate", image_size=image_size, in_channels=channels_a, out_channels=channels_b, size_multiple=4,
                 nets={"AtoB": "G_AB", "BtoA": "G_BA"},
                 role_channels={"AtoB": (channels_a, channels_b), "BtoA": (channels_b, channels_a)})
    return GANModels(name="cyclegan", args=args, nets=nets, io=io)
