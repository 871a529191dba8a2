"""Pix2Pix and CycleGAN networks: reference parameter counts, shapes, dropout placement, bias rule, init."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge.models.cyclegan as cg
import ganforge.models.pix2pix as p2p
from ganforge.errors import GanforgeError
from ganforge.models.base import GANModels, count_parameters
from ganforge.registry import create_model

# Counts of the reference code (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py, ngf=ndf=64,
# 3-channel images). They agree with the reference's own log line "[Network G] Total number of
# parameters : 54.414 M" / "[Network D] ... 2.769 M" and with torchsummary counts published for it.
UNET_256 = 54_413_955
UNET_128 = 41_828_995
PATCHGAN_6CH_BATCH = 2_768_705
RESNET_9 = 11_378_179
RESNET_6 = 7_837_699
PATCHGAN_3CH_INSTANCE = 2_764_737


def meta(factory, **kw) -> GANModels:
    """Build on the meta device: structure and counts without allocating or initialising weights."""
    with torch.device("meta"):
        return factory(**kw)


def test_pix2pix_parameter_counts_match_reference():
    m = meta(p2p.pix2pix)
    assert count_parameters(m["G"]) == UNET_256
    assert count_parameters(m["D"]) == PATCHGAN_6CH_BATCH
    assert count_parameters(meta(p2p.pix2pix, image_size=128)["G"]) == UNET_128


def test_cyclegan_parameter_counts_match_reference():
    m = meta(cg.cyclegan)
    assert m.args["n_blocks"] == 9
    for k in ("G_AB", "G_BA"):
        assert count_parameters(m[k]) == RESNET_9
    for k in ("D_A", "D_B"):
        assert count_parameters(m[k]) == PATCHGAN_3CH_INSTANCE
    small = meta(cg.cyclegan, image_size=128)
    assert small.args["n_blocks"] == 6 and count_parameters(small["G_AB"]) == RESNET_6


def _unet_formula(cin: int, cout: int, n: int, ngf: int, norm: str) -> int:
    """Parameters of the reference U-Net, counted layer by layer from its definition."""
    bias = norm == "instance"
    nparam = (lambda c: 2 * c) if norm == "batch" else (lambda c: 0)
    ch = [ngf * min(2**k, 8) for k in range(n)]
    total = 0
    for k in range(n):
        inner = ch[k]
        outer = cout if k == 0 else ch[k - 1]
        src = cin if k == 0 else outer
        total += src * inner * 16 + (inner if bias else 0)  # down conv
        if 0 < k < n - 1:
            total += nparam(inner)  # down norm
        up_in = inner if k == n - 1 else 2 * inner
        total += up_in * outer * 16 + (outer if (bias or k == 0) else 0)  # up conv
        if k > 0:
            total += nparam(outer)  # up norm
    return total


@pytest.mark.parametrize(
    "cin,cout,n,ngf,norm",
    [(3, 3, 8, 64, "batch"), (1, 3, 6, 16, "instance"), (2, 1, 5, 8, "batch"), (3, 2, 7, 8, "none")],
)
def test_unet_counts_follow_reference_layer_rules(cin, cout, n, ngf, norm):
    with torch.device("meta"):
        g = p2p.UnetGenerator(cin, cout, n, ngf, norm=norm)
    assert count_parameters(g) == _unet_formula(cin, cout, n, ngf, norm)


@pytest.mark.parametrize(
    "size,netG,downs",
    [(256, "unet_256", 8), (128, "unet_128", 7), (64, "unet_64", 6), (32, "unet_32", 5), (512, "unet_256", 8)],
)
def test_unet_output_shape_and_one_pixel_bottleneck(size, netG, downs):
    m = p2p.pix2pix(image_size=size, ngf=4, ndf=4, in_channels=1, out_channels=3)
    assert m.args["netG"] == netG and m["G"].num_downs == downs
    seen = {}
    inner = m["G"].levels()[-1]
    inner.down.register_forward_hook(lambda mod, i, o: seen.update(z=o.shape) and None)
    y = m["G"](torch.randn(1, 1, size, size))
    assert y.shape == (1, 3, size, size)
    assert y.abs().max() <= 1.0  # Tanh
    assert seen["z"][-2:] == (size // 2**downs,) * 2  # 1x1 up to 256 px, 2x2 for unet_256 at 512 px


def test_unet_encoder_plan_norms_and_biases():
    g = meta(p2p.pix2pix)["G"]
    levels = g.levels()
    convs = [lv.down[-1] if isinstance(lv.down[-1], nn.Conv2d) else lv.down[-2] for lv in levels]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    # No norm after the first and the innermost down conv; BatchNorm on the others.
    assert [any(isinstance(m, nn.BatchNorm2d) for m in lv.down) for lv in levels] == [False] + [True] * 6 + [False]
    assert not any(isinstance(m, nn.LeakyReLU) for m in levels[0].down)
    assert all(isinstance(lv.down[0], nn.LeakyReLU) and lv.down[0].negative_slope == 0.2 for lv in levels[1:])
    # With BatchNorm only the outermost transposed conv has a bias.
    convs_all = [(name, mod) for name, mod in g.named_modules() if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d))]
    biased = [name for name, mod in convs_all if mod.bias is not None]
    assert biased == ["model.up.1"]
    g_in = p2p.UnetGenerator(3, 3, 8, 8, norm="instance")
    assert all(m.bias is not None for m in g_in.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_dropout_in_exactly_the_three_decoder_blocks_after_the_innermost():
    g = meta(p2p.pix2pix)["G"]
    flags = [any(isinstance(m, nn.Dropout) for m in lv.up) for lv in g.levels()]
    assert flags == [False, False, False, False, True, True, True, False]
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3
    assert all(m.p == 0.5 for m in g.modules() if isinstance(m, nn.Dropout))
    # Reference: only the intermediate ngf*8 levels, so unet_128 has two; dropout=False none.
    g128 = meta(p2p.pix2pix, image_size=128)["G"]
    assert [any(isinstance(m, nn.Dropout) for m in lv.up) for lv in g128.levels()] == [False] * 4 + [True, True, False]
    assert not any(isinstance(m, nn.Dropout) for m in meta(p2p.pix2pix, dropout=False)["G"].modules())


def test_dropout_active_in_train_mode_only():
    g = p2p.UnetGenerator(3, 3, 6, 4)
    x = torch.randn(2, 3, 64, 64)
    g.train()
    assert not torch.equal(g(x), g(x))
    g.eval()
    assert torch.equal(g(x), g(x))


def test_skip_connections_concatenate_encoder_features():
    g = p2p.UnetGenerator(3, 3, 5, 4)
    lv = g.levels()[2]
    x = torch.randn(1, 8, 8, 8)
    y = lv(x)
    assert y.shape == (1, 16, 8, 8) and torch.equal(y[:, :8], x)
    assert g.levels()[1].up[1].in_channels == 2 * 8  # decoder sees [skip, up] of the level below


def test_init_normal_002():
    torch.manual_seed(0)
    g = p2p.UnetGenerator(3, 3, 8, 16)
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.mean().item()) < 1e-4 and abs(w.std().item() - 0.02) < 3e-4
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 5e-3 and abs(bn.std().item() - 0.02) < 5e-3
    biases = [m.bias for m in g.modules() if isinstance(m, (nn.BatchNorm2d, nn.ConvTranspose2d)) and m.bias is not None]
    assert biases and all(torch.all(b == 0) for b in biases)


def test_patchgan_output_size_and_receptive_field():
    m = p2p.pix2pix(ngf=4, ndf=4)
    assert m["D"](torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)
    assert p2p.patch_output_size(256, 3) == 30 and p2p.patch_receptive_field(3) == 70
    # Measure the field: the gradient of one central logit is non-zero on exactly a 70x70 window.
    d = p2p.NLayerDiscriminator(1, 4, n_layers=3, norm="none")
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    d(x)[0, 0, 8, 8].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_pixel_discriminator_is_one_by_one():
    m = p2p.pix2pix(image_size=32, ngf=4, ndf=4, netD="pixel")
    x = torch.randn(1, 6, 32, 32)
    y = m["D"](x)
    assert y.shape == (1, 1, 32, 32)
    m["D"].eval()
    x2 = x.clone()
    x2[..., 5, 7] += 1.0
    changed = (m["D"](x2) != m["D"](x)).nonzero()
    assert changed.tolist() == [[0, 0, 5, 7]]


def test_discriminator_sees_source_and_target_channels():
    m = p2p.pix2pix(image_size=64, in_channels=1, out_channels=3, ngf=4, ndf=4)
    assert m["D"].model[0].in_channels == 4 and m["G"].levels()[0].down[0].in_channels == 1


def test_pix2pix_registered_and_args_rebuild():
    m = create_model("pix2pix", image_size=64, ngf=4, ndf=4)
    assert isinstance(m, GANModels) and m.name == "pix2pix" and m.task == "translate" and m.generator_key == "G"
    assert set(m.nets) == {"G", "D"} and m.args["netG"] == "unet_64"
    again = create_model("pix2pix", **m.args)
    assert again.args == m.args and count_parameters(again["G"]) == count_parameters(m["G"])


@pytest.mark.parametrize(
    "kw",
    [
        dict(image_size=128, netG="unet_256"),
        dict(netD="basic", n_layers_D=4),
        dict(norm="group"),
        dict(netG="resnet_9blocks"),
        dict(image_size=20),
        dict(image_size=16, netD="n_layers", n_layers_D=3),
    ],
)
def test_pix2pix_bad_arguments_are_user_errors(kw):
    with pytest.raises(GanforgeError):
        meta(p2p.pix2pix, **kw)


def test_resnet_generator_structure():
    g = meta(cg.cyclegan)["G_AB"]
    mods = list(g.model)
    assert isinstance(mods[0], nn.ReflectionPad2d) and mods[0].padding == (3, 3, 3, 3)
    assert mods[1].kernel_size == (7, 7) and isinstance(mods[2], nn.InstanceNorm2d) and not mods[2].affine
    downs = [m for m in mods if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [(d.in_channels, d.out_channels, d.kernel_size) for d in downs] == [(64, 128, (3, 3)), (128, 256, (3, 3))]
    ups = [m for m in mods if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels, u.kernel_size, u.stride, u.padding, u.output_padding) for u in ups] == [
        (256, 128, (3, 3), (2, 2), (1, 1), (1, 1)),
        (128, 64, (3, 3), (2, 2), (1, 1), (1, 1)),
    ]
    assert sum(isinstance(m, cg.ResnetBlock) for m in mods) == 9
    assert isinstance(mods[-3], nn.ReflectionPad2d) and isinstance(mods[-1], nn.Tanh)
    assert all(m.bias is not None for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_resnet_block_is_residual():
    blk = cg.ResnetBlock(8)
    x = torch.randn(2, 8, 6, 6)
    assert not torch.allclose(blk(x), x)
    for m in blk.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
    assert torch.equal(blk(x), x)


@pytest.mark.parametrize("size,blocks", [(512, 9), (256, 9), (128, 6), (64, 6)])
def test_cyclegan_blocks_from_image_size(size, blocks):
    m = meta(cg.cyclegan, image_size=size)
    assert m.args["n_blocks"] == blocks and sum(isinstance(x, cg.ResnetBlock) for x in m["G_BA"].modules()) == blocks


@pytest.mark.parametrize("size", [128, 64])
def test_cyclegan_shapes(size):
    m = cg.cyclegan(image_size=size, channels_a=1, channels_b=3, ngf=4, ndf=4)
    assert m.generator_key == "G_AB" and m.task == "translate"
    a, b = torch.randn(1, 1, size, size), torch.randn(1, 3, size, size)
    assert m["G_AB"](a).shape == b.shape and m["G_BA"](b).shape == a.shape
    patch = p2p.patch_output_size(size, 3)
    assert m["D_A"](a).shape == (1, 1, patch, patch) and m["D_B"](b).shape == (1, 1, patch, patch)
    assert m["D_A"].model[0].in_channels == 1 and m["D_B"].model[0].in_channels == 3


def test_cyclegan_registered_and_errors():
    m = create_model("cyclegan", image_size=64, ngf=4, ndf=4, n_blocks=2)
    assert set(m.nets) == {"G_AB", "G_BA", "D_A", "D_B"} and m.args["n_blocks"] == 2
    with pytest.raises(GanforgeError):
        meta(cg.cyclegan, image_size=66)
    with pytest.raises(GanforgeError):
        meta(cg.cyclegan, norm="layer")
    with pytest.raises(GanforgeError):
        m["G_AB"](torch.randn(1, 3, 30, 30))
