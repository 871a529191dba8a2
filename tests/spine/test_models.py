"""Every registered noise model: shapes, ranges, conditioning; DCGAN faithful to the reference."""
import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models import count_parameters
from ganforge.registry import create_model, factory_arguments, model_names, register_model

NOISE = ["gan", "dcgan", "cgan"]


@pytest.mark.parametrize("name", NOISE)
def test_noise_models_forward(name):
    m = create_model(name)
    g, d = m["G"], m["D"]
    k = m.args.get("num_classes", 0)
    y = torch.arange(3) % k if k else None
    x = g(torch.randn(3, g.z_dim), y)
    assert x.shape == (3, m.args["channels"], m.args["image_size"], m.args["image_size"])
    assert x.min() >= -1 and x.max() <= 1
    assert d(x, y).shape == (3,)


def test_every_registered_model_builds():
    for name in model_names():
        m = create_model(name)
        assert m.nets and all(count_parameters(n) > 0 for n in m.nets.values())


def test_dcgan_64_is_the_reference_network():
    m = create_model("dcgan")
    assert count_parameters(m["G"]) == 3_576_704
    assert count_parameters(m["D"]) == 2_765_568
    convs = [l for l in m["G"].modules() if isinstance(l, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]
    assert all(c.bias is None for c in convs)
    assert isinstance(list(m["G"].modules())[-1], nn.Tanh)
    assert sum(isinstance(l, nn.ReLU) for l in m["G"].modules()) == 4
    dconvs = [l for l in m["D"].modules() if isinstance(l, nn.Conv2d)]
    assert [c.out_channels for c in dconvs] == [64, 128, 256, 512, 1]
    assert all(c.bias is None for c in dconvs)
    assert sum(isinstance(l, nn.BatchNorm2d) for l in m["D"].modules()) == 3  # none on D's input layer
    assert sum(isinstance(l, nn.LeakyReLU) and l.negative_slope == 0.2 for l in m["D"].modules()) == 4
    assert all(c.stride == (2, 2) for c in dconvs[:-1])


@pytest.mark.parametrize("size,ch", [(28, 1), (32, 3), (64, 1), (128, 3)])
def test_dcgan_sizes(size, ch):
    m = create_model("dcgan", image_size=size, channels=ch)
    x = m["G"](torch.randn(2, 100))
    assert x.shape == (2, ch, size, size)
    assert m["D"](x).shape == (2,)


def test_dcgan_bad_size_is_clear():
    with pytest.raises(GanforgeError, match="image_size"):
        create_model("dcgan", image_size=30)


def test_dcgan_init_follows_paper():
    torch.manual_seed(0)
    m = create_model("dcgan")
    w = torch.cat([l.weight.flatten() for l in m["G"].modules() if isinstance(l, nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001


@pytest.mark.parametrize("cond", ["concat", "projection"])
@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_cgan_labels_change_outputs(arch, cond):
    torch.manual_seed(0)
    m = create_model("cgan", arch=arch, d_conditioning=cond)
    g, d = m["G"].eval(), m["D"].eval()
    z = torch.randn(1, 100).repeat(2, 1)
    y = torch.tensor([0, 7])
    x = g(z, y)
    assert not torch.allclose(x[0], x[1])  # the label reaches G
    xx = x[:1].repeat(2, 1, 1, 1)
    out = d(xx, y)
    assert not torch.allclose(out[0], out[1])  # the label reaches D


def test_conditional_model_demands_labels():
    """The inference interface checks inputs (the networks stay plain forwards that trace)."""
    m = create_model("cgan")
    with pytest.raises(GanforgeError, match="labels"):
        m.io.generate(m["G"], z=torch.randn(2, 100))
    with pytest.raises(GanforgeError, match="0..9"):
        m.io.generate(m["G"], z=torch.randn(2, 100), y=torch.tensor([3, 10]))
    with pytest.raises(GanforgeError, match=r"\[N, 100\]"):
        m.io.generate(m["G"], z=torch.randn(2, 64), y=torch.tensor([3, 1]))
    out = m.io.generate(m["G"].eval(), z=torch.randn(2, 100), y=torch.tensor([3, 1]))
    assert out.shape == (2, 1, 28, 28)


@pytest.mark.parametrize("name", model_names())
def test_every_model_declares_its_interface_and_exports(name):
    args = factory_arguments(name)
    small = {k: v for k, v in {"image_size": 64, "ngf": 8, "ndf": 8}.items() if k in args}
    m = create_model(name, **small)
    io = m.io
    for role in io.roles:
        v = io.view(role)
        net = m[v.generator_key].eval()
        if io.kind == "noise":
            z, y = v.latents(3, seed=0)
            args = (z,) if y is None else (z, y)
        else:
            args = (torch.zeros(1, v.in_channels, v.size_multiple * 2, v.size_multiple * 2),)
        exported = torch.export.export(net, args)  # no host-side checks or data-dependent branches in forward
        assert torch.allclose(exported.module()(*args), net(*args), atol=1e-5)


def test_registry_rejects_duplicates_and_unknown_args():
    with pytest.raises(ValueError, match="already registered"):
        register_model("dcgan")(lambda: None)
    with pytest.raises(GanforgeError, match="unknown argument"):
        create_model("dcgan", nfg=3)
    with pytest.raises(GanforgeError, match="unknown model"):
        create_model("nosuch")
