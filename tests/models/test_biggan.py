"""BigGAN: reference counts and names, shapes, hierarchical z, conditioning, projection, attention, SN, export.

The reference numbers come from ajbrock/BigGAN-PyTorch (BigGAN.py, layers.py) run in a scratch directory (it
cannot be imported here): Generator/Discriminator(G_ch=D_ch=96, dim_z=120, shared_dim=128, hier=True,
G_shared=True, resolution=128, G_attn=D_attn='64', n_classes=1000), parameters summed, state_dict
"name [shape]" lines sorted and hashed. In that scratch comparison the reference's state dicts (32 px ch 4
attn 16 and 64 px ch 8 attn 32) loaded into ours with strict=True gave identical images, logits and
updated u buffers (max |diff| 0) in train and eval mode.
"""
import hashlib

import pytest
import torch

import ganforge.models.biggan as biggan_mod  # registers "biggan"
from ganforge.errors import GanforgeError
from ganforge.models import count_parameters
from ganforge.models.biggan import Attention, CCBN, SNConv2d, SNEmbedding, SNLinear, biggan
from ganforge.registry import create_model

REF_IMAGENET128 = (70_433_988, 87_982_370)  # the paper's "70.4M" and "88.0M"
REF_KEYS = {  # sha256 of the sorted "name [shape]" state_dict lines of the reference's networks (G, D)
    "imagenet128": ("af8e09df5ebd7f1d04eed2de8fc3137f710db9ac412a6d7f75d757a4170c68d6",
                    "a8ee3fd51ffa3e7ca55fb19b7a6491f408e0a5b56f2601208d8575db8732e3c2"),
    "tiny32": ("e7ab97cc58d815a6b0597e3b773c349bc506ecee4968e831021e5c30c78c96c5",
               "c153807401a125b8ecc663eede5f6f5d148e1a560eac7de91db8a5c917060e54"),
}
TINY32 = dict(image_size=32, ch=4, num_classes=10, dim_z=128, attn=16)
REF_TINY32 = (55_972, 18_485)


def _keys_digest(net: torch.nn.Module) -> str:
    lines = sorted(f"{k} {list(v.shape)}" for k, v in net.state_dict().items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _small(image_size=32, **kw):
    torch.manual_seed(0)
    args = dict(image_size=image_size, ch=8, num_classes=5, shared_dim=16, attn=16 if image_size == 32 else 32)
    args.update(kw)
    return biggan(**args)


@pytest.mark.parametrize("name,kw,ref", [("imagenet128", dict(config="imagenet128"), REF_IMAGENET128),
                                         ("tiny32", TINY32, REF_TINY32)])
def test_counts_and_names_match_reference(name, kw, ref):
    with torch.device("meta"):
        m = biggan(**kw)
    assert (count_parameters(m["G"]), count_parameters(m["D"])) == ref
    assert (_keys_digest(m["G"]), _keys_digest(m["D"])) == REF_KEYS[name]


def test_imagenet128_config_args():
    with torch.device("meta"):
        m = create_model("biggan", config="imagenet128")
    a = m.args
    assert (a["image_size"], a["num_classes"], a["ch"], a["d_ch"], a["dim_z"], a["shared_dim"], a["attn"]) == \
        (128, 1000, 96, 96, 120, 128, 64)
    assert m["G"].num_slots == 6 and m["G"].z_chunk_size == 20
    assert m.io.kind == "noise" and m.io.z_dim == 120 and m.io.num_classes == 1000
    assert "imagenet128" in biggan.configs


@pytest.mark.parametrize("size", [32, 64])
def test_shapes(size):
    m = _small(size)
    g, d = m["G"], m["D"]
    z, y = torch.randn(3, m.io.z_dim), torch.tensor([0, 2, 4])
    x = g(z, y)
    assert x.shape == (3, 3, size, size)
    assert x.abs().max() <= 1
    assert d(x, y).shape == (3,)
    # through the inference interface as `ganforge sample` does
    z2, y2 = m.io.latents(4, seed=1)
    g.eval()
    assert m.io.generate(g, z=z2, y=y2).shape == (4, 3, size, size)


def test_hierarchical_z_chunks_feed_their_own_blocks():
    m = _small(64)
    g = m["G"].eval()
    k = g.z_chunk_size
    assert g.num_slots == len(g.blocks) + 1 and k * g.num_slots == g.dim_z
    z, y = torch.randn(2, g.dim_z), torch.tensor([1, 3])
    seen = {}
    hooks = [mod.register_forward_hook(lambda mod_, inp, out, key=name: seen.__setitem__(key, inp))
             for name, mod in g.named_modules() if isinstance(mod, CCBN) or name == "linear"]
    outs = []
    hooks += [blk[-1].register_forward_hook(lambda mod_, inp, out: outs.append(out)) for blk in g.blocks]
    g(z, y)
    e = g.shared(y)
    assert torch.equal(seen["linear"][0], z[:, :k])
    for i in range(len(g.blocks)):
        want = torch.cat([e, z[:, (i + 1) * k:(i + 2) * k]], 1)
        for bn in ("bn1", "bn2"):
            assert torch.equal(seen[f"blocks.{i}.0.{bn}"][1], want), (i, bn)
    # Changing chunk j + 1 leaves blocks before j untouched and changes block j's output.
    ref_outs = [o.clone() for o in outs]
    j = 2
    z2 = z.clone()
    z2[:, (j + 1) * k:(j + 2) * k] += 1.0
    outs.clear()
    g(z2, y)
    for i in range(j):
        assert torch.equal(outs[i], ref_outs[i])
    assert not torch.allclose(outs[j], ref_outs[j])
    for h in hooks:
        h.remove()


def test_dim_z_must_split_evenly():
    with pytest.raises(GanforgeError, match="multiple of 5"):
        _small(64, dim_z=121)


def test_class_conditioning_changes_output():
    m = _small(32)
    g = m["G"].eval()
    z = torch.randn(2, g.dim_z)
    a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([1, 1]))
    assert (a - b).abs().max() > 1e-4


def test_d_projection_term():
    m = _small(32)
    d = m["D"].eval()
    x = torch.randn(3, 3, 32, 32)
    y, y2 = torch.tensor([0, 1, 2]), torch.tensor([4, 3, 0])
    with torch.no_grad():
        h = d.features(x)
        emb = d.embed.sn_weight()
        want = ((emb[y] - emb[y2]) * h).sum(1)
        got = d(x, y) - d(x, y2)
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
        assert torch.allclose(d(x, y), d.linear(h).squeeze(1) + (emb[y] * h).sum(1), atol=1e-4, rtol=1e-4)
    assert h.shape == (3, 4 * 8)


def test_attention_placement_and_zero_gamma():
    m = _small(32)
    g, d = m["G"], m["D"]
    g_att = [i for i, blk in enumerate(g.blocks) if any(isinstance(b, Attention) for b in blk)]
    assert g_att == [1]  # the 16x16 block
    assert sum(isinstance(b, Attention) for blk in d.blocks for b in blk) == 4  # D at 32 px: all blocks at 16
    atts = [mod for net in (g, d) for mod in net.modules() if isinstance(mod, Attention)]
    assert all(a.gamma.item() == 0.0 and a.gamma.requires_grad for a in atts)
    att = atts[0].eval()
    x = torch.randn(2, att.ch, 16, 16)
    assert torch.equal(att(x), x)
    with torch.no_grad():
        att.gamma.fill_(1.0)
    assert not torch.allclose(att(x), x)
    assert (att.theta.out_channels, att.phi.out_channels, att.g.out_channels) == (att.ch // 8, att.ch // 8,
                                                                                  att.ch // 2)
    none = _small(32, attn=0)
    assert not any(isinstance(mod, Attention) for net in none.nets.values() for mod in net.modules())


def test_spectral_norm_everywhere():
    m = _small(32)
    for key, net in m.nets.items():
        for name, mod in net.named_modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                assert isinstance(mod, (SNConv2d, SNLinear)), (key, name)
                assert mod.eps == 1e-6 and mod.num_itrs == 1
        names = {n for n, _ in net.named_parameters()}
        assert not any(n.endswith(("u0", "sv0")) for n in names)  # buffers, not parameters
        assert any(n.endswith("u0") for n, _ in net.named_buffers())
    assert isinstance(m["D"].embed, SNEmbedding)
    assert type(m["G"].shared) is torch.nn.Embedding  # the reference keeps G's shared embedding plain
    # After the power iteration converges (training-mode forwards), every normalised weight has norm ~1.
    conv = m["D"].blocks[1][0].conv1
    conv.train()
    x = torch.randn(1, conv.in_channels, 4, 4)
    for _ in range(200):
        conv(x)
    w = conv.sn_weight().view(conv.out_channels, -1)
    assert torch.linalg.matrix_norm(w, 2).item() == pytest.approx(1.0, abs=1e-3)
    assert conv.sv0.item() == pytest.approx(torch.linalg.matrix_norm(conv.weight.view(conv.out_channels, -1), 2)
                                            .item(), rel=1e-3)
    # ... and the forward pass uses that normalised weight, not the raw one (scaled first: the orthogonal
    # initialisation already has a largest singular value of 1)
    with torch.no_grad():
        conv.weight.mul_(3)
    for _ in range(200):
        conv(x)
    sigma = torch.linalg.matrix_norm(conv.weight.view(conv.out_channels, -1), 2)
    with torch.no_grad():
        want = torch.nn.functional.conv2d(x, conv.weight / sigma, conv.bias, padding=conv.padding)
        assert torch.allclose(conv.eval()(x), want, rtol=1e-3, atol=1e-4)
    lin = m["D"].linear.train()
    h = torch.randn(3, lin.in_features)
    with torch.no_grad():
        lin.weight.mul_(3)
    for _ in range(200):
        lin(h)
    with torch.no_grad():
        want = torch.nn.functional.linear(h, lin.weight / torch.linalg.matrix_norm(lin.weight, 2), lin.bias)
        assert torch.allclose(lin.eval()(h), want, rtol=1e-3, atol=1e-4)


def test_eval_mode_leaves_sn_buffers_alone():
    m = _small(32)
    g = m["G"].eval()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    g(torch.randn(2, g.dim_z), torch.tensor([0, 1]))
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())
    g.train()
    g(torch.randn(2, g.dim_z), torch.tensor([0, 1]))
    assert not torch.equal(before["linear.u0"], g.linear.u0)


def test_backward_reaches_every_parameter():
    m = _small(32)
    g, d = m["G"], m["D"]
    for a in (mod for net in (g, d) for mod in net.modules() if isinstance(mod, Attention)):
        with torch.no_grad():
            a.gamma.fill_(0.1)  # with gamma 0 the attention convs get no gradient
    y = torch.tensor([0, 1, 2])
    d(g(torch.randn(3, g.dim_z), y), y).sum().backward()
    for net in (g, d):
        for n, p in net.named_parameters():
            if n.startswith("shared") and net is g:
                assert p.grad[:3].abs().sum() > 0
                continue
            if n.startswith("embed"):
                continue
            assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_export_generator_eval():
    m = _small(32)
    g = m["G"].eval()
    z, y = torch.randn(2, g.dim_z), torch.tensor([0, 3])
    ep = torch.export.export(g, (z, y))
    assert torch.allclose(ep.module()(z, y), g(z, y), atol=1e-5)


def test_argument_errors():
    with pytest.raises(GanforgeError, match="image_size"):
        biggan(image_size=48)
    with pytest.raises(GanforgeError, match="attn"):
        biggan(image_size=32, attn=64)
    with pytest.raises(GanforgeError, match="unknown BigGAN config"):
        biggan(config="nope")
    with pytest.raises(GanforgeError, match="num_classes"):
        biggan(num_classes=0)


def test_defaults():
    with torch.device("meta"):
        m = create_model("biggan")
        m64 = biggan(image_size=64)
    assert (m.args["image_size"], m.args["dim_z"], m.args["attn"], m.args["d_ch"]) == (32, 128, 0, 32)
    assert m64.args["dim_z"] == 120 and m64.args["attn"] == 64
    assert biggan_mod.DEFAULT_DIM_Z[256] == 140


def test_summary_of_both_networks(capsys):
    from ganforge.cli import main

    assert main(["summary", "biggan", "model.channels=3", "model.ch=32"]) == 0  # over the digit preset's
    out = capsys.readouterr().out
    assert "1,253,379" in out and "1,055,105" in out  # G and D at the factory defaults (32 px, RGB, ch 32)
