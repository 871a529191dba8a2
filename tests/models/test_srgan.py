"""SRResNet and the SRGAN discriminator (Ledig et al. 2017): counts, shapes, skips, sub-pixel upsampling, errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganforge.models.srgan as sr  # imported explicitly: registers "srgan" whatever models/__init__ lists
from ganforge.errors import GanforgeError
from ganforge.models.base import GANModels, count_parameters
from ganforge.registry import create_model

# Defaults (3 channels, 64 features, 16 blocks, 4x; D on 96x96), counted by hand from the layer list:
#   SRResNet: head 9*9*3*64 + 64 = 15,616, PReLU 1; block 2 * (3*3*64*64 + 64) + 2 * (2*64) + 1 = 74,113,
#   x16 = 1,185,808; trunk conv-BN 36,928 + 128 = 37,056; upsampling stage 3*3*64*256 + 256 + 1 = 147,713,
#   x2 = 295,426; tail 9*9*64*3 + 3 = 15,555. Total 1,549,462 (the "about 1.5M" usually quoted).
#   D: convs (with BN after all but the first) 1,792 + 37,056 + 74,112 + 147,840 + 295,680 + 590,592
#   + 1,181,184 + 2,360,832 = 4,689,088; dense 512*6*6*1024 + 1024 = 18,875,392; dense 1024 + 1 = 1,025.
#   Total 23,565,505.
SRRESNET_4X = 1_549_462
SRGAN_D_96 = 23_565_505


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout  # weights + bias


def bn(c: int) -> int:
    return 2 * c  # scale + shift


PRELU = 1  # one shared slope per PReLU layer


def srresnet_count(cin: int, cout: int, scale: int, blocks: int, f: int) -> int:
    head = conv(9, cin, f) + PRELU
    block = conv(3, f, f) + bn(f) + PRELU + conv(3, f, f) + bn(f)
    trunk_out = conv(3, f, f) + bn(f)
    stage = conv(3, f, 4 * f) + PRELU
    tail = conv(9, f, cout)
    return head + blocks * block + trunk_out + int(math.log2(scale)) * stage + tail


def disc_count(cin: int, f: int, hr: int) -> int:
    widths = [f, f, 2 * f, 2 * f, 4 * f, 4 * f, 8 * f, 8 * f]
    total, ch = 0, cin
    for i, w in enumerate(widths):
        total += conv(3, ch, w) + (bn(w) if i > 0 else 0)
        ch = w
    side = hr // 16
    return total + (ch * side * side * 1024 + 1024) + (1024 * 1 + 1)


def meta(**kw) -> GANModels:
    """Build on the meta device: structure and counts without allocating weights."""
    with torch.device("meta"):
        return sr.srgan(**kw)


def small(**kw) -> GANModels:
    args = dict(num_blocks=2, features=8, d_features=8, hr_size=32)
    args.update(kw)
    return sr.srgan(**args)


# ---- sizes and counts -----------------------------------------------------------------------------------

def test_default_parameter_counts():
    m = meta()
    assert count_parameters(m["G"]) == SRRESNET_4X == srresnet_count(3, 3, 4, 16, 64)
    assert count_parameters(m["D"]) == SRGAN_D_96 == disc_count(3, 64, 96)


@pytest.mark.parametrize("scale,ch,blocks,f,df,hr", [(2, 1, 5, 16, 8, 32), (8, 3, 3, 32, 16, 64), (4, 1, 1, 8, 4, 48)])
def test_counts_follow_the_layer_list(scale, ch, blocks, f, df, hr):
    m = meta(scale=scale, channels=ch, num_blocks=blocks, features=f, d_features=df, hr_size=hr)
    assert count_parameters(m["G"]) == srresnet_count(ch, ch, scale, blocks, f)
    assert count_parameters(m["D"]) == disc_count(ch, df, hr)


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("ch", [1, 3])
def test_generator_output_shapes(scale, ch):
    g = small(scale=scale, channels=ch)["G"]
    assert g(torch.randn(2, ch, 7, 11)).shape == (2, ch, 7 * scale, 11 * scale)
    assert g(torch.randn(1, ch, 4, 4)).shape == (1, ch, 4 * scale, 4 * scale)


def test_default_generator_takes_any_size():
    g = sr.srgan()["G"].eval()
    assert g(torch.randn(1, 3, 7, 11)).shape == (1, 3, 28, 44)


# ---- generator structure --------------------------------------------------------------------------------

def test_generator_layers_as_in_the_paper():
    g = meta()["G"]
    head_conv, head_act = g.head
    assert (head_conv.in_channels, head_conv.out_channels) == (3, 64)
    assert head_conv.kernel_size == (9, 9) and head_conv.padding == (4, 4)
    assert isinstance(head_act, nn.PReLU)
    assert len(g.blocks) == 16
    for blk in g.blocks:
        assert [type(m) for m in blk.body] == [nn.Conv2d, nn.BatchNorm2d, nn.PReLU, nn.Conv2d, nn.BatchNorm2d]
        assert all(c.kernel_size == (3, 3) and c.in_channels == c.out_channels == 64 for c in blk.body[::3])
    assert [type(m) for m in g.trunk_out] == [nn.Conv2d, nn.BatchNorm2d]
    assert len(g.upsample) == 2
    for stage in g.upsample:
        c, shuffle, act = stage
        assert (c.in_channels, c.out_channels, c.kernel_size) == (64, 256, (3, 3))
        assert isinstance(shuffle, nn.PixelShuffle) and shuffle.upscale_factor == 2 and isinstance(act, nn.PReLU)
    assert (g.tail.in_channels, g.tail.out_channels, g.tail.kernel_size, g.tail.padding) == (64, 3, (9, 9), (4, 4))
    prelus = [m for m in g.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 1 + 16 + 2 and all(p.num_parameters == 1 for p in prelus)
    assert not any(isinstance(m, (nn.Tanh, nn.Sigmoid, nn.Hardtanh)) for m in g.modules())
    assert [len(meta(scale=s)["G"].upsample) for s in (2, 4, 8)] == [1, 2, 3]


def test_output_is_linear():
    g = small()["G"].eval()
    nn.init.zeros_(g.tail.weight)
    nn.init.constant_(g.tail.bias, 3.0)
    assert torch.equal(g(torch.randn(1, 3, 5, 5)), torch.full((1, 3, 20, 20), 3.0))  # nothing squashes after the tail


def _zero(conv_layer: nn.Conv2d) -> None:
    nn.init.zeros_(conv_layer.weight)
    nn.init.zeros_(conv_layer.bias)


def test_residual_blocks_are_identity_with_zeroed_convs():
    torch.manual_seed(0)
    g = sr.SRResNet(features=8, num_blocks=3).eval()
    h = torch.randn(2, 8, 5, 6)
    assert not torch.allclose(g.blocks(h), h)
    for blk in g.blocks:
        _zero(blk.body[0])
        _zero(blk.body[3])
    assert torch.equal(g.blocks(h), h)  # each block: x + BN(conv(...)) with a zero branch is x
    # The blocks pass h through; the long skip adds the head's features once more to conv-BN of them.
    assert torch.allclose(g.trunk(h), h + g.trunk_out(h))
    _zero(g.trunk_out[0])
    assert torch.equal(g.trunk(h), h)  # the whole trunk is the identity


def test_long_skip_adds_the_head_output():
    torch.manual_seed(0)
    g = sr.SRResNet(features=8, num_blocks=3).eval()
    h = torch.randn(2, 8, 5, 6)
    assert not torch.allclose(g.blocks(h), h)  # live residual blocks
    _zero(g.trunk_out[0])
    assert torch.equal(g.trunk(h), h)  # the skip starts at the head's output, not at the blocks' output
    # And forward really runs head -> trunk -> upsampling -> tail.
    x = torch.randn(1, 3, 4, 5)
    assert torch.equal(g(x), g.tail(g.upsample(g.head(x))))


def _subpixel_pattern(scale: int) -> torch.Tensor:
    """The factor at each of the scale x scale sub-pixels when stage k writes (2i + j + 1) at sub-pixel (i, j).

    Stage 1 picks the most significant bit of the row/column offset inside a block, the last stage the least.
    """
    n = int(math.log2(scale))
    p = torch.ones(scale, scale)
    for a in range(scale):
        for b in range(scale):
            for k in range(n):
                i, j = (a >> (n - 1 - k)) & 1, (b >> (n - 1 - k)) & 1
                p[a, b] *= 2 * i + j + 1
    return p


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_pixel_shuffle_places_sub_pixels(scale):
    """Wire G so that each stage's conv copies channel c into its 4 sub-pixel channels scaled by 1..4.

    PixelShuffle(2) puts channel 4c + 2i + j at offset (i, j) of each 2x2 block, so the output is the input
    repeated scale x scale times with a fixed factor pattern; interpolation or a missing stage cannot give it.
    """
    torch.manual_seed(0)
    ch, f = 3, 8
    g = sr.SRResNet(ch, ch, scale, num_blocks=2, features=f).eval()
    with torch.no_grad():
        for conv_layer, k in ((g.head[0], 4), (g.tail, 4)):
            _zero(conv_layer)
            for c in range(ch):
                conv_layer.weight[c, c, k, k] = 1.0  # centre tap: a copy
        _zero(g.trunk_out[0])  # trunk = identity through the long skip (the blocks stay random)
        for stage in g.upsample:
            _zero(stage[0])
            for c in range(f):
                for q in range(4):
                    stage[0].weight[4 * c + q, c, 1, 1] = q + 1.0
    x = torch.randint(1, 5, (2, ch, 3, 5)).float()  # positive integers: PReLU passes them, products are exact
    y = g(x)
    expected = x.repeat_interleave(scale, -2).repeat_interleave(scale, -1) * _subpixel_pattern(scale).repeat(3, 5)
    assert y.shape == expected.shape and torch.equal(y, expected)


# ---- discriminator --------------------------------------------------------------------------------------

def test_discriminator_logits_shape():
    d = small(channels=1)["D"]
    assert d(torch.randn(3, 1, 32, 32)).shape == (3,)
    d96 = sr.srgan()["D"].eval()
    assert d96(torch.randn(2, 3, 96, 96)).shape == (2,)


@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 3, 96, 95), (1, 1, 96, 96), (3, 96, 96)])
def test_discriminator_refuses_other_sizes(shape):
    d = meta()["D"]
    with pytest.raises(GanforgeError, match=r"\[N, 3, 96, 96\].*hr_size=96") as e:
        d(torch.zeros(shape, device="meta"))
    assert "\n" not in str(e.value)


def test_discriminator_layers_as_in_the_paper():
    d = meta()["D"]
    body = list(d.body)
    convs = [m for m in body if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    after = [body[body.index(c) + 1] for c in convs]
    assert [isinstance(m, nn.BatchNorm2d) for m in after] == [False] + [True] * 7
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 7
    relus = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(relus) == 9 and all(r.negative_slope == 0.2 for r in relus)
    linears = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(512 * 6 * 6, 1024), (1024, 1)]
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())  # logits; the sigmoid lives in the loss


def test_discriminator_features_shrink_by_16():
    d = small(hr_size=48)["D"]
    assert d.body(torch.randn(2, 3, 48, 48)).shape == (2, 64, 3, 3)


# ---- factory, registry, interface, export ---------------------------------------------------------------

@pytest.mark.parametrize(
    "kw,word",
    [
        (dict(scale=3), "scale"), (dict(scale=16), "scale"), (dict(scale=1), "scale"),
        (dict(hr_size=100), "hr_size"), (dict(hr_size=0), "hr_size"), (dict(hr_size=8), "hr_size"),
        (dict(num_blocks=0), "num_blocks"), (dict(channels=0), "channels"),
        (dict(features=0), "features"), (dict(d_features=-1), "d_features"),
    ],
)
def test_bad_factory_arguments_are_one_clear_error(kw, word):
    for build in (lambda: meta(**kw), lambda: create_model("srgan", **kw)):
        with pytest.raises(GanforgeError, match=word) as e:
            build()
        assert "\n" not in str(e.value)


def test_scale_error_names_the_allowed_values():
    with pytest.raises(GanforgeError, match="2, 4, 8"):
        sr.SRResNet(scale=3)
    with pytest.raises(GanforgeError, match="multiple of 16"):
        sr.SRGANDiscriminator(hr_size=40)


def test_registered_with_upscale_interface_and_args_rebuild():
    m = create_model("srgan", scale=2, channels=1, num_blocks=2, features=8, d_features=8, hr_size=32)
    assert isinstance(m, GANModels) and m.name == "srgan" and m.task == "upscale" and m.generator_key == "G"
    assert set(m.nets) == {"G", "D"}
    io = m.io
    assert (io.kind, io.scale, io.in_channels, io.out_channels, io.image_size, io.size_multiple) == (
        "upscale", 2, 1, 1, 16, 1)  # image_size: the LR tile G trains on (hr_size // scale)
    again = create_model("srgan", **m.args)
    assert again.args == m.args
    for key in m.nets:
        a, b = m[key].state_dict(), again[key].state_dict()
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    defaults = create_model("srgan").args
    assert defaults == dict(scale=4, channels=3, num_blocks=16, features=64, d_features=64, hr_size=96, skip="none")


def test_srresnet_model_is_g_alone_with_the_same_weight_names():
    torch.manual_seed(0)
    sr = create_model("srresnet", num_blocks=2, features=8, hr_size=32)
    gan = create_model("srgan", num_blocks=2, features=8, hr_size=32, d_features=8)
    assert set(sr.nets) == {"G"} and sr.task == "upscale" and sr.io.image_size == 8
    assert {k: v.shape for k, v in sr["G"].state_dict().items()} == {k: v.shape for k, v in gan["G"].state_dict().items()}
    assert create_model("srresnet", hr_size=12).args["hr_size"] == 12  # any multiple of the scale: no D to fit
    with pytest.raises(GanforgeError, match="multiple of scale"):
        create_model("srresnet", hr_size=30)


def test_bicubic_skip_starts_near_bicubic_and_is_off_by_default():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 10) * 2 - 1
    bic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    plain = sr.SRResNet(num_blocks=2, features=8).eval()
    skip = sr.SRResNet(num_blocks=2, features=8, skip="bicubic").eval()
    with torch.no_grad():
        far, near = (plain(x) - bic).abs().mean(), (skip(x) - bic).abs().mean()
        skip.tail.weight.zero_()
        assert torch.allclose(skip(x), bic, atol=1e-6)  # the correction is exactly the tail's output
    assert near < 0.2 * far
    with pytest.raises(GanforgeError, match="skip must be one of"):
        create_model("srgan", skip="nearest")


def test_generate_through_the_interface():
    m = small(scale=2, channels=1)
    out = m.io.generate(m["G"].eval(), image=torch.rand(3, 1, 5, 7) * 2 - 1, batch_size=2)
    assert out.shape == (3, 1, 10, 14)
    with pytest.raises(GanforgeError, match=r"\[N, 1, H, W\]"):
        m.io.generate(m["G"], image=torch.rand(1, 3, 5, 7))


def test_generator_and_discriminator_export():
    torch.manual_seed(0)
    m = sr.srgan()
    g = m["G"].eval()
    x = torch.randn(1, 3, 6, 5)
    exported = torch.export.export(g, (x,))
    torch.testing.assert_close(exported.module()(x), g(x), rtol=1e-5, atol=1e-5)
    d = small()["D"].eval()
    hr = torch.randn(2, 3, 32, 32)
    exported_d = torch.export.export(d, (hr,))
    torch.testing.assert_close(exported_d.module()(hr), d(hr), rtol=1e-5, atol=1e-5)
