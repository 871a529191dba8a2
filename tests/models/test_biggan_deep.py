"""BigGAN-deep: reference counts and names, shapes, unsplit z, shared-embedding path, skips, factory checks.

The reference numbers come from ajbrock/BigGAN-PyTorch (BigGANdeep.py, layers.py) run in a scratch directory (it
cannot be imported here): Generator/Discriminator(G_ch=D_ch=128, G_depth=D_depth=2, dim_z=128, shared_dim=128,
hier=True, G_shared=True, resolution=128, G_attn=D_attn='64', n_classes=1000) as launch_BigGAN_deep.sh, and the
same at 64 px with ch 8, attention at 32, 10 classes; parameters summed, state_dict "name [shape]" lines sorted
and hashed. In that scratch comparison the reference's state dicts (32 px ch 4 attn 16, 64 px ch 8 attn 32,
128 px ch 4 attn 64, and the imagenet128-deep networks) loaded into ours with strict=True gave identical
images, logits and updated u0/sv0 buffers (max |diff| 0) in eval and train mode.
"""
import hashlib

import pytest
import torch
import torch.nn.functional as F

import ganforge.models.biggan as biggan_mod
import ganforge.models.biggan_deep as deep_mod
from ganforge.errors import GanforgeError
from ganforge.models import count_parameters
from ganforge.models.biggan import CCBN, biggan
from ganforge.models.biggan_deep import (Attention, BigGANDeepDiscriminator, BigGANDeepGenerator, DeepDBlock,
                                         DeepGBlock)
from ganforge.registry import create_model

REF = {  # (G params, D params, sha256 of G's and D's sorted "name [shape]" state_dict lines) of the reference
    "imagenet128-deep": (dict(config="imagenet128-deep"), 50_244_484, 34_590_210,
                         "65f39f84f8604f5f6db231063dc925f2484b14131005ce81d7724f630628a2df",
                         "f4c81e1ea8d96c638225ce6c64b4397c522989dc94ebca32b84aa7c4bc8c9b0c"),
    "small64": (dict(image_size=64, ch=8, num_classes=10, attn=32, deep=True), 1_281_716, 76_354,
                "0d7672419aab1a25274e5c9afe72fe2504f882eed3967c8e01746c65c596a5b3",
                "82189a125834793364f348019a601cfc4705898ed608821af72afd6b9548a5ea"),
}
TINY_ATTN = {32: 16, 64: 32, 128: 64, 256: 64}  # resolutions where ch=4 still gives attention >= 8 channels


def _keys_digest(net: torch.nn.Module) -> str:
    lines = sorted(f"{k} {list(v.shape)}" for k, v in net.state_dict().items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _tiny(image_size=32, **kw):
    torch.manual_seed(0)
    args = dict(image_size=image_size, ch=4, num_classes=5, shared_dim=16, dim_z=24, attn=TINY_ATTN[image_size],
                deep=True)
    args.update(kw)
    return biggan(**args)


@pytest.mark.parametrize("name", sorted(REF))
def test_counts_and_names_match_reference(name):
    kw, g_params, d_params, g_keys, d_keys = REF[name]
    with torch.device("meta"):
        m = biggan(**kw)
    assert isinstance(m["G"], BigGANDeepGenerator) and isinstance(m["D"], BigGANDeepDiscriminator)
    assert (count_parameters(m["G"]), count_parameters(m["D"])) == (g_params, d_params)
    assert (_keys_digest(m["G"]), _keys_digest(m["D"])) == (g_keys, d_keys)


def test_imagenet128_deep_config_args():
    with torch.device("meta"):
        m = create_model("biggan", config="imagenet128-deep")
    a = m.args
    assert (a["image_size"], a["num_classes"], a["ch"], a["d_ch"], a["dim_z"], a["shared_dim"], a["attn"],
            a["deep"]) == (128, 1000, 128, 128, 128, 128, 64, True)
    assert m.io.kind == "noise" and m.io.z_dim == 128 and m.io.num_classes == 1000
    assert m.io.extra["z_chunks"] == 1 and m.io.extra["shared_dim"] == 128
    assert "imagenet128-deep" in biggan.configs


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_shapes(size):
    m = _tiny(size, channels=2)
    g, d = m["G"], m["D"]
    assert len(g.blocks) == 2 * {32: 3, 64: 4, 128: 5, 256: 6}[size]  # two blocks per resolution, G_depth 2
    z, y = torch.randn(2, m.io.z_dim), torch.tensor([0, 4])
    x = g(z, y)
    assert x.shape == (2, 2, size, size)
    assert x.abs().max() <= 1
    last = []
    hook = d.blocks[-1][-1].register_forward_hook(lambda mod_, inp, out: last.append(out))
    assert d(x, y).shape == (2,)
    hook.remove()
    assert last[0].shape[2:] == ((8, 8) if size == 32 else (4, 4))  # 32 px: two of three resolutions pool
    assert d.features(x).shape == (2, 4 * (4 if size == 32 else 16))
    z2, y2 = m.io.latents(2, seed=1)  # through the inference interface as `ganforge sample` does
    g.eval()
    assert m.io.generate(g, z=z2, y=y2).shape == (2, 2, size, size)


def test_attention_follows_last_block_of_its_resolution():
    m = _tiny(64)  # attention at 32: G's third resolution (blocks 4, 5), D's first
    g_att = [i for i, blk in enumerate(m["G"].blocks) if any(isinstance(b, Attention) for b in blk)]
    assert g_att == [5] and len(m["G"].blocks[5]) == 2
    assert [len(blk) for blk in m["D"].blocks] == [3, 2, 2, 2]
    assert isinstance(m["D"].blocks[0][2], Attention)
    ups = [blk[0].upsample for blk in m["G"].blocks]
    assert ups == [False, True] * 4  # only the last block of a resolution upsamples


def test_attn_resolutions_checked_by_the_factory_cover_deep_d():
    # The factory validates attn against G's and plain D's resolutions; deep D's are among plain D's.
    for size, arch in deep_mod.D_ARCH.items():
        assert set(arch["res"]) <= set(biggan_mod.D_ARCH[size]["res"]), size
        assert len(arch["res"]) == len(arch["cin"]) == len(arch["cout"]) == len(arch["down"])


def test_z_is_not_split():
    m = _tiny(32)
    g = m["G"].eval()
    assert g.z_dim == m.io.z_dim == 24 and m.io.extra["z_chunks"] == 1
    z, y = torch.randn(2, g.z_dim), torch.tensor([1, 3])
    seen = {}
    hooks = [mod.register_forward_hook(lambda mod_, inp, out, key=name: seen.__setitem__(key, inp))
             for name, mod in g.named_modules() if isinstance(mod, CCBN) or name == "linear"]
    g(z, y)
    for h in hooks:
        h.remove()
    want = torch.cat([g.shared(y), z], 1)  # the reference's order: embedding, then z
    assert torch.equal(seen.pop("linear")[0], want)
    assert len(seen) == 4 * len(g.blocks)
    for name, inp in seen.items():
        assert torch.equal(inp[1], want), name
    # Every entry of z reaches the first block (a split z would give it only its chunks) and the image: row i + 1
    # of the batch has entry i changed (eval-mode BN treats the rows independently).
    first = []
    hook = g.blocks[0][0].register_forward_hook(lambda mod_, inp, out: first.append(out))
    zs = z[:1].repeat(g.z_dim + 1, 1)
    zs[1:] += torch.eye(g.z_dim)
    with torch.no_grad():
        out = g(zs, torch.full((g.z_dim + 1,), 2))
    hook.remove()
    for name, t in (("image", out), ("block 0", first[0])):
        diff = (t[1:] - t[:1]).flatten(1).abs().amax(1)
        assert (diff > 1e-6).all(), (name, diff.argmin().item())


def test_dim_z_need_not_split():
    with torch.device("meta"):
        m = biggan(image_size=64, dim_z=121, deep=True)
    assert m["G"].z_dim == 121 and m["G"].linear.in_features == 121 + 128
    with pytest.raises(GanforgeError, match="multiple of 5"):
        biggan(image_size=64, dim_z=121)  # plain BigGAN still splits


def test_shared_embedding_through_synthesize():
    m = _tiny(32)
    g = m["G"].eval()
    z, y = torch.randn(3, g.z_dim), torch.tensor([0, 1, 4])
    e = g.shared(y)
    assert torch.equal(g.synthesize(z, e), g(z, y))
    # A mix of two classes' embeddings is a third image, neither end.
    ea, eb = g.shared(torch.tensor([0, 1]))
    mid = g.synthesize(z[:1], (0.5 * ea + 0.5 * eb)[None])
    assert (mid - g(z[:1], torch.tensor([0]))).abs().max() > 1e-4
    assert (mid - g(z[:1], torch.tensor([1]))).abs().max() > 1e-4
    # The image is differentiable in e (what class interpolation and the shared embedding's training rely on).
    e = e.detach().requires_grad_(True)
    g.synthesize(z, e).sum().backward()
    assert e.grad is not None and e.grad.abs().sum() > 0


def test_g_skip_drops_channels_and_upsamples():
    torch.manual_seed(0)
    blk = DeepGBlock(16, 8, cond_dim=6, upsample=True).eval()
    assert (blk.conv1.out_channels, blk.conv4.in_channels) == (4, 4)  # the bottleneck: in // 4
    hook = blk.conv4.register_forward_hook(lambda mod_, inp, out: torch.zeros_like(out))  # residual branch off
    x, c = torch.randn(2, 16, 4, 4), torch.randn(2, 6)
    assert torch.equal(blk(x, c), F.interpolate(x[:, :8], scale_factor=2.0))
    hook.remove()
    assert not torch.equal(blk(x, c), F.interpolate(x[:, :8], scale_factor=2.0))


def test_d_skip_pools_and_concatenates_new_channels():
    torch.manual_seed(0)
    blk = DeepDBlock(8, 16, downsample=True).eval()
    assert (blk.conv1.out_channels, blk.conv_sc.out_channels) == (4, 8)  # bottleneck out // 4; 16 - 8 new
    blk.conv4.register_forward_hook(lambda mod_, inp, out: torch.zeros_like(out))
    x = torch.randn(2, 8, 8, 8)
    p = F.avg_pool2d(x, 2)
    assert torch.equal(blk(x), torch.cat([p, blk.conv_sc(p)], 1))
    same = DeepDBlock(16, 16, downsample=False)
    assert not hasattr(same, "conv_sc")  # identity skip where the width stays


def test_depth_other_than_two():
    torch.manual_seed(0)
    for depth in (1, 3):
        g = BigGANDeepGenerator(32, 3, 5, ch=4, dim_z=8, shared_dim=8, attn=0, depth=depth).eval()
        d = BigGANDeepDiscriminator(32, 3, 5, ch=4, attn=0, depth=depth).eval()
        assert len(g.blocks) == 3 * depth and [len(b) for b in d.blocks] == [depth] * 3
        y = torch.tensor([0, 1])
        assert d(g(torch.randn(2, 8), y), y).shape == (2,)
    with pytest.raises(GanforgeError, match="depth"):
        BigGANDeepGenerator(32, ch=4, depth=0)


def test_backward_reaches_every_parameter():
    m = _tiny(32)
    g, d = m["G"], m["D"]
    for a in (mod for net in (g, d) for mod in net.modules() if isinstance(mod, Attention)):
        with torch.no_grad():
            a.gamma.fill_(0.1)  # with gamma 0 the attention convs get no gradient
    y = torch.tensor([0, 1, 2])
    d(g(torch.randn(3, g.z_dim), y), y).sum().backward()
    for net in (g, d):
        for n, p in net.named_parameters():
            if n.startswith(("shared", "embed")):
                continue  # only the rows of the classes drawn
            assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_defaults():
    with torch.device("meta"):
        m32, m64, plain64 = biggan(deep=True), biggan(image_size=64, deep=True), biggan(image_size=64)
    assert (m32.args["dim_z"], m32.args["attn"], m32.args["deep"]) == (128, 0, True)
    assert (m64.args["dim_z"], m64.args["attn"]) == (128, 64)
    assert plain64.args["dim_z"] == 120 and plain64.args["deep"] is False
    assert type(m64["G"].shared) is torch.nn.Embedding


@pytest.mark.parametrize("deep", ["yes", 1, 0, None, 1.0])
def test_deep_must_be_a_bool(deep):
    with pytest.raises(GanforgeError, match="deep must be True or False"):
        biggan(deep=deep)


@pytest.mark.parametrize("kw,match", [
    (dict(image_size=128, ch=1, attn=0), "bottleneck"),  # 2*ch-channel blocks: 0 bottleneck channels
    (dict(image_size=64, ch=8, d_ch=1), "bottleneck"),
    (dict(image_size=64, attn=128), "attn"),
    (dict(image_size=48), "image_size"),
    (dict(image_size=32, ch=1, attn=16), "attention needs at least 8 channels"),
])
def test_bad_deep_combinations_are_one_ganforge_error(kw, match):
    with torch.device("meta"), pytest.raises(GanforgeError, match=match):
        biggan(deep=True, **kw)
