"""StyleGAN v1: progressive growing (lod), truncation, noise, style mixing, conditioning, the paper's size."""
import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.models import count_parameters
from ganforge.models.stylegan import StyleGANDiscriminator, StyleGANGenerator, mix_styles
from ganforge.registry import create_model

TINY = dict(image_size=32, channels=3, z_dim=32, w_dim=32, mapping_layers=2, fmap_base=64, fmap_max=32)
LODS = [3.0, 2.5, 2.0, 1.25, 1.0, 0.5, 0.0]


def tiny(**kw):
    torch.manual_seed(0)
    m = create_model("stylegan", **{**TINY, **kw})
    return m["G"].eval(), m["D"].eval()


def with_noise(g):
    """Non-zero noise strengths, so noise modes make a difference (they start at zero, as the paper's)."""
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(0.5)
    return g


def set_lod(lod, *nets):
    for n in nets:
        n.set_lod(lod)


# ---- the reference's "linear" structure, written out with the model's own layers --------------------------
# Every block runs and each resolution is blended with lerp_clip(new, old, lod - lod_of_resolution); the
# model's forward instead branches to the blocks it needs, so agreeing with this checks that branching.
def linear_generator(g, ws):
    s, lod = g.synthesis, g.current_lod
    x = s.const.repeat(ws.shape[0], 1, 1, 1)
    out = None
    for i, block in enumerate(s.blocks):
        for j, layer in enumerate(block):
            x = layer(x, ws[:, 2 * i + j], noise_mode="const")
        img = s.torgb[i](x)
        if out is None:
            out = img
        else:
            t = min(max(lod - (s.max_lod - i), 0.0), 1.0)
            out = img + (F.interpolate(out, scale_factor=2, mode="nearest") - img) * t
    return out


def linear_discriminator(d, x, y=None):
    lod, top = d.current_lod, d.max_lod
    img, h = x, d.fromrgb[top](x)
    for i in range(top, 0, -1):
        h = d.blocks[i](h)
        img = F.avg_pool2d(img, 2)
        t = min(max(lod - (top - i), 0.0), 1.0)
        h = h + (d.fromrgb[i - 1](img) - h) * t
    out = d.out(d.fc(d.conv(d.mbstd(h)).flatten(1)))
    return out[:, 0] if y is None else out[torch.arange(len(y)), y]


# ---- progressive growing -------------------------------------------------------------------------------
def test_outputs_are_full_size_at_every_lod_and_match_the_reference_linear_structure():
    g, d = tiny()
    z = torch.randn(4, 32)
    for lod in LODS:
        set_lod(lod, g, d)
        with torch.no_grad():
            x = g(z)
            assert x.shape == (4, 3, 32, 32)
            assert torch.allclose(x, linear_generator(g, g.mapping(z)), atol=1e-5), lod
            real = torch.randn(4, 3, 32, 32)
            assert d(real).shape == (4,)
            assert torch.allclose(d(real), linear_discriminator(d, real), atol=1e-5), lod


@pytest.mark.parametrize("lod,block", [(3.0, 8), (2.0, 4), (1.0, 2)])
def test_integer_lod_output_is_a_nearest_upsampled_low_resolution_image(lod, block):
    g, _ = tiny()
    g.set_lod(lod)
    with torch.no_grad():
        x = g(torch.randn(2, 32))
    low = x[:, :, ::block, ::block]
    assert torch.equal(x, F.interpolate(low, scale_factor=block, mode="nearest"))
    assert low.std() > 0  # the low-resolution image itself is not flat
    g.set_lod(0)
    with torch.no_grad():
        full = g(torch.randn(2, 32))
    assert not torch.equal(full, F.interpolate(full[:, :, ::block, ::block], scale_factor=block))


@pytest.mark.parametrize("k,f", [(1, 0.5), (1, 0.25), (2, 0.75), (0, 0.5)])
def test_fade_in_blends_the_new_and_the_upsampled_old_resolution(k, f):
    g, _ = tiny()
    z = torch.randn(3, 32)
    with torch.no_grad():
        g.set_lod(k)
        new = g(z)
        g.set_lod(k + 1)
        old = g(z)
        g.set_lod(k + f)
        mid = g(z)
    alpha = 1 - f  # weight of the resolution being faded in
    assert torch.allclose(mid, alpha * new + (1 - alpha) * old, atol=1e-5)
    assert not torch.allclose(mid, new, atol=1e-3) and not torch.allclose(mid, old, atol=1e-3)


def test_lod_round_trips_through_the_state_dict_into_a_fresh_model():
    g, d = tiny()
    z = torch.randn(4, 32)
    set_lod(1.3, g, d)
    assert g.synthesis.lod.item() == g.current_lod == pytest.approx(1.3)
    with torch.no_grad():
        ref_img, ref_score = g(z), d(torch.ones(4, 3, 32, 32))
    g2, d2 = tiny()
    torch.manual_seed(1)
    for p in list(g2.parameters()) + list(d2.parameters()):  # different weights, lod 0
        p.data.normal_()
    assert g2.current_lod == 0 and d2.current_lod == 0
    g2.load_state_dict(g.state_dict())
    d2.load_state_dict(d.state_dict())
    assert g2.current_lod == g.current_lod and d2.current_lod == d.current_lod  # exactly: float32 either way
    with torch.no_grad():
        assert torch.equal(g2(z), ref_img) and torch.equal(d2(torch.ones(4, 3, 32, 32)), ref_score)
    # An in-place buffer copy (an EMA's) reaches the python value through sync_lod.
    g3, _ = tiny()
    g3.synthesis.lod.copy_(g.synthesis.lod)
    g3.sync_lod()
    assert g3.current_lod == g.current_lod


def test_bad_lods_are_clear_errors():
    g, d = tiny()
    for bad in (-0.5, 3.5):
        with pytest.raises(GanforgeError, match="lod"):
            g.set_lod(bad)
    sd = d.state_dict()
    sd["lod"] = torch.tensor(7.0)
    with pytest.raises(RuntimeError, match="lod"):
        d.load_state_dict(sd)


def test_d_sees_only_the_downsampled_image_at_low_lod():
    _, d = tiny()
    x = torch.randn(4, 3, 32, 32)
    # A pattern with zero mean in every 2x2 cell: invisible after 2x box downsampling.
    wiggle = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(16, 16)
    for lod, same in [(2.0, True), (1.5, True), (1.0, True), (0.5, False), (0.0, False)]:
        d.set_lod(lod)
        with torch.no_grad():
            a, b = d(x), d(x + wiggle)
        assert torch.allclose(a, b, atol=1e-5) == same, lod


def test_r1_double_backward_is_finite_at_every_lod():
    g, d = tiny()
    d.train()
    for lod in (0.0, 1.5, 3.0):
        d.set_lod(lod)
        d.zero_grad()
        x = torch.randn(4, 3, 32, 32, requires_grad=True)
        (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
        penalty = grad.square().sum()
        penalty.backward()
        grads = [p.grad for p in d.parameters() if p.grad is not None]
        assert torch.isfinite(penalty) and grads and all(torch.isfinite(gr).all() for gr in grads)
        assert any(gr.abs().sum() > 0 for gr in grads)


# ---- mapping, truncation, noise, mixing -----------------------------------------------------------------
def test_truncation_psi_zero_gives_the_average_image():
    g, _ = tiny()
    with torch.no_grad():
        g.mapping.w_avg.normal_()
        z = torch.randn(3, 32)
        x = g(z, psi=0.0)  # cutoff 8 = all 8 layers at 32 px
        assert torch.allclose(x[0], x[1], atol=1e-5) and torch.allclose(x[0], x[2], atol=1e-5)
        ws = g.mapping(z, psi=0.0, cutoff=2)
        assert torch.allclose(ws[:, :2], g.mapping.w_avg.expand(3, 2, -1))
        assert torch.allclose(ws[:, 2:], g.mapping(z)[:, 2:])
        ws_half = g.mapping(z, psi=0.5)
        assert torch.allclose(ws_half, 0.5 * (g.mapping(z) + g.mapping.w_avg), atol=1e-6)
        assert not torch.allclose(g(z, psi=0.0, cutoff=2)[0], g(z, psi=0.0, cutoff=2)[1])


def test_w_avg_is_tracked_only_when_asked():
    g, _ = tiny()
    z = torch.randn(8, 32)
    with torch.no_grad():
        g(z)
        g.mapping(z)
        assert torch.count_nonzero(g.mapping.w_avg) == 0
        ws = g.mapping(z, update_w_avg=True)
    assert torch.allclose(g.mapping.w_avg, (1 - 0.995) * ws[:, 0].mean(0), atol=1e-7)
    assert g.num_ws == 8 and ws.shape == (8, 8, 32) and torch.equal(ws[:, 0], ws[:, 7])


def test_mapping_has_learning_rate_multiplier_001():
    g, _ = tiny(mapping_layers=8)
    layers = list(g.mapping.net)
    assert len(layers) == 8
    for layer in layers:
        fan_in = layer.weight.shape[1]
        assert layer.lr_multiplier == 0.01
        assert layer.weight_gain == pytest.approx(0.01 / math.sqrt(fan_in))  # applied at run time
        assert layer.weight.std().item() == pytest.approx(100, rel=0.1)  # stored as N(0, 1) / 0.01
        assert layer.activation == "lrelu"


def test_noise_modes():
    g, _ = tiny()
    with_noise(g)
    z = torch.randn(2, 32)
    with torch.no_grad():
        const = g(z)
        assert torch.equal(const, g(z, noise_mode="const"))  # the default: deterministic
        r1, r2 = g(z, noise_mode="random"), g(z, noise_mode="random")
        none = g(z, noise_mode="none")
    assert not torch.allclose(r1, r2) and not torch.allclose(none, const) and torch.equal(none, g(z, noise_mode="none"))
    with pytest.raises(GanforgeError, match="noise_mode"):
        g(z, noise_mode="fixed")


def test_style_mixing_takes_layers_below_the_crossover_from_the_first_latents():
    g, _ = tiny()
    with_noise(g)
    ws1, ws2 = g.mapping(torch.randn(2, 32)), g.mapping(torch.randn(2, 32))
    mixed = mix_styles(ws1, ws2, 4)
    assert torch.equal(mixed[:, :4], ws1[:, :4]) and torch.equal(mixed[:, 4:], ws2[:, 4:])
    assert torch.equal(g.mix(ws1, ws2, torch.tensor([2, 6]))[1, :6], ws1[1, :6])
    with torch.no_grad():
        img = g.synthesis(mixed)
        # Changing ws2's coarse layers (which the mix does not use) changes nothing; its fine layers do.
        ws2_coarse = ws2.clone()
        ws2_coarse[:, :4] += 1
        assert torch.equal(g.synthesis(mix_styles(ws1, ws2_coarse, 4)), img)
        ws2_fine = ws2.clone()
        ws2_fine[:, 6:] += 1
        assert not torch.allclose(g.synthesis(mix_styles(ws1, ws2_fine, 4)), img)
        assert torch.equal(g.synthesis(mix_styles(ws1, ws2, g.num_ws)), g.synthesis(ws1))


def test_synthesis_layer_is_the_reference_layer_epilogue():
    """Conv0_up: nearest 2x, 3x3 conv (He gain sqrt 2), blur [1,2,1], noise, bias, lrelu, instance norm, StyleMod."""
    g, _ = tiny()
    with_noise(g)
    layer = g.synthesis.blocks[2][0]  # 8x8 -> 16x16, 16 -> 8 channels
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
        x, w = torch.randn(2, 16, 8, 8), torch.randn(2, 32)
        weight = layer.conv.weight * math.sqrt(2) / math.sqrt(16 * 9)
        h = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, padding=1)
        blur = torch.tensor([1.0, 2.0, 1.0])
        blur = (torch.outer(blur, blur) / 16).expand(8, 1, 3, 3)
        h = F.conv2d(h, blur, padding=1, groups=8)
        h = h + layer.noise.noise_const * layer.noise.strength.reshape(1, -1, 1, 1) + layer.bias.reshape(1, -1, 1, 1)
        h = F.leaky_relu(h, 0.2)
        h = (h - h.mean((2, 3), keepdim=True)) / (h.var((2, 3), unbiased=False, keepdim=True) + 1e-8).sqrt()
        style = (w @ layer.adain.affine.weight.T / math.sqrt(32) + layer.adain.affine.bias).reshape(2, 2, 8, 1, 1)
        expected = h * (style[:, 0] + 1) + style[:, 1]
        assert torch.allclose(layer(x, w), expected, atol=1e-4)


def test_d_block_is_the_reference_block():
    """Conv0 + lrelu, blur [1,2,1], Conv1_down (3x3 conv, 2x box), bias, lrelu (the sqrt 2 gain after it)."""
    _, d = tiny()
    block = d.blocks[3]  # 32x32, 4 -> 8 channels
    with torch.no_grad():
        for p in block.parameters():
            p.normal_()
        x = torch.randn(2, 4, 32, 32)
        h = F.conv2d(x, block.conv0.weight / 6, block.conv0.bias, padding=1)  # fan-in 4 * 9
        h = F.leaky_relu(h, 0.2) * math.sqrt(2)
        blur = torch.tensor([1.0, 2.0, 1.0])
        h = F.conv2d(h, (torch.outer(blur, blur) / 16).expand(4, 1, 3, 3), padding=1, groups=4)
        h = F.avg_pool2d(F.conv2d(h, block.conv1.weight / 6, padding=1), 2) + block.bias.reshape(1, -1, 1, 1)
        assert torch.allclose(block(x), F.leaky_relu(h, 0.2) * math.sqrt(2), atol=1e-4)


# ---- conditioning, configs, export, the paper's size ---------------------------------------------------
def test_class_conditional_g_and_d():
    g, d = tiny(num_classes=3)
    z = torch.randn(1, 32).repeat(3, 1)
    y = torch.tensor([0, 1, 2])
    with torch.no_grad():
        x = g(z, y)
        assert not torch.allclose(x[0], x[1])
        same = x[:1].repeat(3, 1, 1, 1)
        all_out = d.out(d.fc(d.conv(d.mbstd(d.blocks[1](d.blocks[2](d.blocks[3](d.fromrgb[3](same))))))
                                .flatten(1)))
        assert torch.allclose(d(same, y), all_out[torch.arange(3), y], atol=1e-6)  # the label's own output
        assert torch.allclose(d(same, y), linear_discriminator(d, same, y), atol=1e-5)
    with pytest.raises(GanforgeError, match="labels"):
        g(z)
    with pytest.raises(GanforgeError, match="labels"):
        d(same)


def test_configs_sizes_and_arguments():
    with pytest.raises(GanforgeError, match="config"):
        create_model("stylegan", config="ffhq")
    for bad in (24, 4, 48):
        with pytest.raises(GanforgeError, match="power of two"):
            create_model("stylegan", image_size=bad)
    small = create_model("stylegan", config="cpu-small", channels=1)
    assert small.args["image_size"] == 32 and small.args["z_dim"] == 128 and small.args["fmap_max"] == 128
    assert small.args["channels"] == 1 and small.args["config"] == "cpu-small"
    assert small.io.extra == dict(truncation=True, mixing=True, num_ws=8, w_dim=128, progressive=True)
    narrow = create_model("stylegan", config="cpu-small", z_dim=64)  # a given argument wins over the config
    assert narrow.args["z_dim"] == 64 and narrow.args["w_dim"] == 128 and narrow["G"].mapping.net[0].weight.shape[1] == 64
    rebuilt = create_model("stylegan", **small.args)  # recorded args rebuild the same networks
    for key in ("G", "D"):
        assert [p.shape for p in rebuilt[key].parameters()] == [p.shape for p in small[key].parameters()]
    with torch.no_grad():
        x = small["G"].eval()(torch.randn(4, 128))
    assert x.shape == (4, 1, 32, 32) and small["D"](x).shape == (4,)


def test_exports_mid_fade():
    g, _ = tiny()
    g.set_lod(1.5)
    z = torch.randn(2, 32)
    exported = torch.export.export(g, (z,))
    assert torch.allclose(exported.module()(z), g(z), atol=1e-5)


def _reference_counts(res_log2=10, fmap_base=8192, fmap_max=512, z=512, w=512, mapping=8, ch=3):
    """G and D trainable parameters summed from NVlabs/stylegan networks_stylegan.py's layer list."""
    def nf(stage):
        return min(int(fmap_base / 2.0**stage), fmap_max)

    def epilogue(c):  # Noise weight [c], bias [c], StyleMod dense w -> 2c with bias
        return c + c + w * 2 * c + 2 * c

    g_map = z * w + w + (mapping - 1) * (w * w + w)
    g_syn = nf(1) * 16 + epilogue(nf(1)) + 9 * nf(1) ** 2 + epilogue(nf(1))  # 4x4: Const, Conv
    for r in range(3, res_log2 + 1):  # Conv0_up, Conv1
        g_syn += 9 * nf(r - 2) * nf(r - 1) + epilogue(nf(r - 1)) + 9 * nf(r - 1) ** 2 + epilogue(nf(r - 1))
    g_syn += sum(nf(r - 1) * ch + ch for r in range(2, res_log2 + 1))  # ToRGB_lod*
    d = sum(ch * nf(r - 1) + nf(r - 1) for r in range(2, res_log2 + 1))  # FromRGB_lod*
    for r in range(3, res_log2 + 1):  # Conv0, Conv1_down
        d += 9 * nf(r - 1) ** 2 + nf(r - 1) + 9 * nf(r - 1) * nf(r - 2) + nf(r - 2)
    d += 9 * (nf(1) + 1) * nf(1) + nf(1) + 16 * nf(1) * nf(0) + nf(0) + nf(0) + 1  # 4x4: Conv, Dense0, Dense1
    return g_map, g_syn, d


def test_ffhq1024_has_the_papers_parameter_count():
    m = create_model("stylegan", config="ffhq1024")
    g, d = m["G"], m["D"]
    g_map, g_syn, d_ref = _reference_counts()
    assert count_parameters(g.mapping) == g_map == 2_101_248
    assert count_parameters(g.synthesis) == g_syn
    assert count_parameters(g) == 26_219_627  # the paper: "26.2M trainable parameters"
    assert round(count_parameters(g) / 1e6, 1) == 26.2
    assert count_parameters(d) == d_ref == 23_087_249
    assert g.num_ws == 18 and g.synthesis.max_lod == 8
    assert [b[1].adain.affine.weight.shape[0] // 2 for b in g.synthesis.blocks] == \
        [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_generator_and_discriminator_build_directly():
    g = StyleGANGenerator(image_size=8, z_dim=8, w_dim=8, mapping_layers=1, fmap_base=16, fmap_max=8)
    d = StyleGANDiscriminator(image_size=8, fmap_base=16, fmap_max=8)
    x = g(torch.randn(2, 8))
    assert x.shape == (2, 3, 8, 8) and d(x).shape == (2,) and g.num_ws == 4
