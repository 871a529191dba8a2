"""StyleGAN2: shapes, reference-compatible names and counts, truncation, w_avg, noise, mixing, gradients.

The reference numbers below come from NVlabs/stylegan2-ada-pytorch training/networks.py, run in a scratch
directory (it cannot be imported in CI): its networks built with the same settings, their state_dict
listings hashed, parameters counted, and outputs computed for the deterministic weights of `_seeded`.
In that scratch comparison reference state_dicts loaded into ours with strict=True and gave the same
images and logits (max |diff| 0 for f1024 and paper256, < 1e-5 for the rest).
"""
import hashlib

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.models import count_parameters
from ganforge.models.stylegan2 import CONFIGS, style_mix
from ganforge.registry import create_model

# Reference G / D parameter counts: Generator(z_dim=512, c_dim=0, w_dim=512, img_channels=3) and
# Discriminator with the config's img_resolution, channel_base, channel_max and mapping num_layers.
REF_PARAMS = {"f1024": (30_370_060, 29_012_513), "paper256": (24_767_458, 24_001_089),
              "cifar": (19_947_539, 20_720_641)}
# SHA-256 of the reference's sorted "name [shape]" state_dict lines (parameters and buffers).
REF_KEYS = {
    ("f1024", 0): ("9216aa9b85a0ebfe75035c89a6c653f5db361840a91681ab45a292ee65f551dd",
                   "bddbafce076ad5563f7dd20dedc79ed4908b93a00baee2078642129a091e26d4"),
    ("cifar", 0): ("845a1b31eca8b634ffaa79e0dc6dfdb8236e5eaa21b5e69052cba6b2ab74f23b",
                   "4adb6ffa9b261402089a43c1f5fe054a33b0faca4ea350f9baf502bcc84ca0f4"),
    ("cpu-tiny", 10): ("c5e79e3b18c88edb25b94e87c842e27240d8f8b871604be97ee745d89051c099",
                       "60006cdb821248baa585266995a2d544cac0a6449445794cd182678753bdfa51"),
}


def _meta(**kw):
    with torch.device("meta"):  # names, shapes and counts without allocating (f1024 is ~60M parameters)
        return create_model("stylegan2", **kw)


def _listing_digest(net) -> str:
    lines = "\n".join(f"{k} {list(v.shape)}" for k, v in sorted(net.state_dict().items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def _tiny(num_classes=0, **kw):
    torch.manual_seed(0)
    m = create_model("stylegan2", config="cpu-tiny", num_classes=num_classes, **kw)
    return m, m["G"].eval(), m["D"].eval()


def _seeded(net):
    """Weights from one seeded CPU generator per tensor (platform-independent), like a trained net's."""
    with torch.no_grad():
        for i, (name, t) in enumerate(sorted(net.state_dict().items())):
            if name.endswith("resample_filter"):
                continue
            v = torch.randn(t.shape, generator=torch.Generator().manual_seed(1000 + i))
            if name.endswith(("bias", "noise_strength", "w_avg")):
                v = v * 0.2 + (1.0 if name.endswith("affine.bias") else 0.0)
            elif name.startswith("mapping.fc"):
                v = v * 100.0  # stored / lr_multiplier (0.01), as initialised
            t.copy_(v)


@pytest.mark.parametrize("config,channels,k", [("cpu-tiny", 1, 0), ("cpu-small", 3, 10), ("cifar", 3, 0)])
def test_named_configs_shapes(config, channels, k):
    m = create_model("stylegan2", config=config, channels=channels, num_classes=k)
    g, d = m["G"].eval(), m["D"].eval()
    size = CONFIGS[config]["image_size"]
    y = torch.arange(2) % k if k else None
    with torch.no_grad():
        x = g(torch.randn(2, g.z_dim), y)
        assert x.shape == (2, channels, size, size) and torch.isfinite(x).all()
        assert d(x, y).shape == (2,)
    assert g.num_ws == 2 * 4 and m.io.extra["num_ws"] == g.num_ws and m.io.extra["truncation"]
    assert m.args["image_size"] == size and m.args["config"] == config


def test_config_values_can_be_overridden_and_rebuilt():
    m = create_model("stylegan2", config="cpu-tiny", image_size=64, channel_max=32)
    assert m.args["image_size"] == 64 and m.args["channel_max"] == 32 and m.args["z_dim"] == 128
    assert m["G"](torch.randn(1, 128)).shape == (1, 3, 64, 64)
    again = create_model("stylegan2", **m.args)  # the recorded args rebuild the same networks
    assert {k: v.shape for k, v in again["G"].state_dict().items()} == {
        k: v.shape for k, v in m["G"].state_dict().items()}


@pytest.mark.parametrize("kw,match", [(dict(config="f2048"), "unknown stylegan2 config"),
                                      (dict(image_size=48), "power of two"),
                                      (dict(d_architecture="skip"), "d_architecture"),
                                      (dict(d_mapping_layers=-1), "d_mapping_layers")])
def test_bad_settings_are_one_clear_error(kw, match):
    with pytest.raises(GanforgeError, match=match):
        create_model("stylegan2", **kw)


@pytest.mark.parametrize("config", ["f1024", "paper256", "cifar"])
def test_parameter_counts_equal_the_reference(config):
    m = _meta(config=config)
    assert (count_parameters(m["G"]), count_parameters(m["D"])) == REF_PARAMS[config]


@pytest.mark.parametrize("config,k", list(REF_KEYS))
def test_state_dict_names_and_shapes_mirror_the_reference(config, k):
    m = _meta(config=config, num_classes=k)
    assert (_listing_digest(m["G"]), _listing_digest(m["D"])) == REF_KEYS[(config, k)]


def test_a_few_reference_names():
    m = _meta(config="f1024")
    g, d = m["G"].state_dict(), m["D"].state_dict()
    expected_g = {"mapping.fc0.weight": (512, 512), "mapping.fc7.bias": (512,), "mapping.w_avg": (512,),
                  "synthesis.b4.const": (512, 4, 4), "synthesis.b4.conv1.noise_strength": (),
                  "synthesis.b8.conv0.affine.weight": (512, 512), "synthesis.b8.conv0.noise_const": (8, 8),
                  "synthesis.b8.resample_filter": (4, 4), "synthesis.b8.torgb.weight": (3, 512, 1, 1),
                  "synthesis.b1024.conv1.weight": (32, 32, 3, 3)}
    expected_d = {"b1024.fromrgb.weight": (32, 3, 1, 1), "b1024.skip.weight": (64, 32, 1, 1),
                  "b8.conv1.resample_filter": (4, 4), "b4.conv.weight": (512, 513, 3, 3),
                  "b4.fc.weight": (512, 8192), "b4.out.weight": (1, 512)}
    for sd, expected in ((g, expected_g), (d, expected_d)):
        assert {k: tuple(sd[k].shape) for k in expected} == expected
    assert "b1024.skip.bias" not in d and "synthesis.b4.conv0.weight" not in g
    dk = _meta(config="cpu-tiny", num_classes=10)["D"].state_dict()
    assert dk["mapping.embed.weight"].shape == (64, 10) and dk["mapping.fc7.weight"].shape == (64, 64)
    assert "skip.weight" not in " ".join(_meta(config="cifar")["D"].state_dict())  # 'orig' D


# Outputs of the reference networks (eval, noise_mode='const') given the `_seeded` weights of cpu-tiny with
# 10 classes, z below, labels [0, 3, 7, 9], truncation psi 0.7 with cutoff 4; D on the reference's image.
REF_IMG_MEAN = [0.5347496867179871, 1.022304892539978, 1.681509017944336, 0.3591328561306]
REF_IMG_ABSMEAN = [1.1203162670135498, 1.2655370235443115, 1.9419981241226196, 1.18690025806427]
REF_PIXELS = [2.3823790550231934, 0.7913385629653931, 1.4084289073944092]  # image 0, all channels, (16, 16)
REF_LOGITS = [-1.3932294845581055, -1.9654628038406372, -1.5063848495483398, -2.092167377471924]


def test_outputs_match_the_reference_for_fixed_weights():
    m, g, d = _tiny(num_classes=10)
    _seeded(g)
    _seeded(d)
    z = torch.sin(torch.arange(4 * 128, dtype=torch.float64) * 0.11 + 0.3).reshape(4, 128).float() * 1.5
    y = torch.tensor([0, 3, 7, 9])
    with torch.no_grad():
        img = g(z, y, psi=0.7, cutoff=4)
        logits = d(img, y)
        img_train = g.train()(z, y, psi=0.7, cutoff=4)  # the non-fused path computes the same function
    close = dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(img.mean((1, 2, 3)), torch.tensor(REF_IMG_MEAN), **close)
    torch.testing.assert_close(img.abs().mean((1, 2, 3)), torch.tensor(REF_IMG_ABSMEAN), **close)
    torch.testing.assert_close(img[0, :, 16, 16], torch.tensor(REF_PIXELS), **close)
    torch.testing.assert_close(logits, torch.tensor(REF_LOGITS), **close)
    torch.testing.assert_close(img_train, img, rtol=1e-4, atol=1e-4)


def test_demodulation_makes_layers_blind_to_style_scale():
    _, g, _ = _tiny()
    z = torch.randn(2, 128)
    with torch.no_grad():
        ref = g(z)
        layer = g.synthesis.b16.conv0.affine
        layer.weight.mul_(5.0)
        layer.bias.mul_(5.0)
        torch.testing.assert_close(g(z), ref, rtol=1e-4, atol=1e-5)  # demodulated: a style scale cancels
        rgb = g.synthesis.b16.torgb.affine
        rgb.weight.mul_(5.0)
        rgb.bias.mul_(5.0)
        assert not torch.allclose(g(z), ref, atol=1e-3)  # ToRGB is not demodulated


def test_truncation():
    _, g, _ = _tiny()
    with torch.no_grad():
        g.mapping.w_avg.normal_()
        z = torch.randn(3, 128)
        center = g.synthesis(g.mapping.w_avg.reshape(1, 1, -1).repeat(1, g.num_ws, 1))
        at_zero = g(z, psi=0.0)
        torch.testing.assert_close(at_zero, center.expand_as(at_zero), rtol=1e-5, atol=1e-5)
        plain = g.synthesis(g.mapping(z), noise_mode="const")
        torch.testing.assert_close(g(z, psi=1.0), plain)
        torch.testing.assert_close(g(z, psi=1.0, cutoff=3), plain)
        ws, ws_cut = g.mapping(z), g.mapping(z, psi=0.5, cutoff=3)
        torch.testing.assert_close(ws_cut[:, :3], g.mapping.w_avg + 0.5 * (ws[:, :3] - g.mapping.w_avg))
        torch.testing.assert_close(ws_cut[:, 3:], ws[:, 3:])
        assert not torch.allclose(g(z, psi=0.5), plain, atol=1e-3)


def test_labels_change_outputs():
    _, g, d = _tiny(num_classes=10)
    z = torch.randn(1, 128).repeat(2, 1)
    y = torch.tensor([1, 8])
    with torch.no_grad():
        x = g(z, y)
        assert not torch.allclose(x[0], x[1], atol=1e-4)
        torch.testing.assert_close(g(z, torch.nn.functional.one_hot(y, 10)), x)  # one-hot vectors work too
        out = d(x[:1].repeat(2, 1, 1, 1), y)
        assert not torch.allclose(out[0], out[1])
    with pytest.raises(GanforgeError, match="class-conditional"):
        g(z)


def test_d_label_mapping_depth():
    # The reference's conditional D maps the label through 8 layers at lr x 0.01; d_mapping_layers=0 keeps only
    # the normalised embedding: a plain projection D, the label's vector learning at the full rate.
    deep = create_model("stylegan2", config="cpu-digits", channels=1, num_classes=10)["D"].mapping
    assert deep.num_layers == 8 and hasattr(deep, "fc7")
    m = create_model("stylegan2", config="cpu-digits", channels=1, num_classes=10, d_mapping_layers=0)
    flat = m["D"].mapping
    assert flat.num_layers == 0 and not hasattr(flat, "fc0") and m.args["d_mapping_layers"] == 0
    y = torch.tensor([3, 3, 7])
    cmap = flat(None, y)
    e = flat.embed(torch.nn.functional.one_hot(y, 10).float())
    torch.testing.assert_close(cmap, e * e.square().mean(dim=1, keepdim=True).add(1e-8).rsqrt())
    x = torch.randn(1, 1, 32, 32).repeat(3, 1, 1, 1)
    out = m["D"](x, y)
    assert torch.allclose(out[0], out[1]) and not torch.allclose(out[0], out[2])


def test_w_avg_moves_only_when_asked():
    _, g, _ = _tiny()
    g.train()
    z = torch.randn(8, 128)
    before = g.mapping.w_avg.clone()
    g(z, noise_mode="random")
    g.mapping(z)
    assert torch.equal(g.mapping.w_avg, before)
    ws = g.mapping(z, update_w_avg=True)
    expected = before + (1 - 0.995) * (ws[:, 0].detach().mean(0) - before)
    torch.testing.assert_close(g.mapping.w_avg, expected)
    assert not torch.equal(g.mapping.w_avg, before)


def test_noise_modes():
    _, g, _ = _tiny()
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)  # zero at init: make the noise visible
        z = torch.randn(2, 128)
        torch.testing.assert_close(g(z), g(z, noise_mode="const"), rtol=0, atol=0)
        assert not torch.allclose(g(z, noise_mode="random"), g(z, noise_mode="random"), atol=1e-4)
        none = g(z, noise_mode="none")
        assert not torch.allclose(none, g(z), atol=1e-4)
        for name, b in g.named_buffers():
            if name.endswith("noise_const"):
                b.zero_()
        torch.testing.assert_close(g(z), none)  # 'none' is exactly zero noise
        with pytest.raises(GanforgeError, match="noise_mode"):
            g(z, noise_mode="fixed")


def _affine_inputs(g, ws):
    """The w each style affine received during g.synthesis(ws), by module name."""
    seen, hooks = {}, []
    for name, mod in g.synthesis.named_modules():
        if name.endswith("affine"):
            hooks.append(mod.register_forward_hook(lambda m, a, o, n=name: seen.__setitem__(n, a[0].detach())))
    with torch.no_grad():
        g.synthesis(ws)
    for h in hooks:
        h.remove()
    return seen


def test_each_layer_reads_its_own_w_and_style_mixing():
    _, g, _ = _tiny()
    # Layer order of the skip generator: b4.conv1=0, b4.torgb=1, then per block conv0=2i-1, conv1=2i, torgb=2i+1
    # (a ToRGB shares its w with the next block's conv0, as in the reference).
    expected = {"b4.conv1.affine": 0, "b4.torgb.affine": 1}
    for i, r in enumerate((8, 16, 32), start=1):
        expected.update({f"b{r}.conv0.affine": 2 * i - 1, f"b{r}.conv1.affine": 2 * i, f"b{r}.torgb.affine": 2 * i + 1})
    ws = torch.randn(2, g.num_ws, g.w_dim)
    seen = _affine_inputs(g, ws)
    assert set(seen) == set(expected)
    for name, j in expected.items():
        torch.testing.assert_close(seen[name], ws[:, j], msg=name)
    ws_a, ws_b = g.mapping(torch.randn(2, 128)), g.mapping(torch.randn(2, 128))
    for cutoff in (0, 3, g.num_ws):
        seen = _affine_inputs(g, style_mix(ws_a, ws_b, cutoff))
        for name, j in expected.items():
            torch.testing.assert_close(seen[name], (ws_a if j < cutoff else ws_b)[:, j], msg=f"{name} cut {cutoff}")
    with pytest.raises(GanforgeError, match="cutoff"):
        style_mix(ws_a, ws_b, g.num_ws + 1)


def test_gradients_and_r1_double_backward_are_finite():
    torch.manual_seed(0)
    m = create_model("stylegan2", config="cpu-tiny", num_classes=3)
    g, d = m["G"].train(), m["D"].train()
    y = torch.tensor([0, 1, 2, 0])
    fake = g(torch.randn(4, 128), y, noise_mode="random")
    d(fake, y).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())
    assert g.synthesis.b32.conv1.noise_strength.grad.abs() > 0
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(d(x, y).sum(), x, create_graph=True)
    d.zero_grad()
    grad.square().sum().backward()  # R1 penalty: needs second derivatives through the FIR filters
    grads = [p.grad for p in d.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert d.b32.conv0.weight.grad.abs().sum() > 0 and d.b32.skip.weight.grad.abs().sum() > 0


def test_exports_and_reproduces_eager():
    _, g, _ = _tiny(num_classes=10)
    z, y = torch.randn(2, 128), torch.tensor([2, 5])
    exported = torch.export.export(g, (z, y))
    torch.testing.assert_close(exported.module()(z, y), g(z, y), rtol=1e-5, atol=1e-5)
