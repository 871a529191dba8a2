"""Importing StyleGAN2 generators from NVlabs pickles and rosinality checkpoints, without running them.

The reference code bases cannot be used here, so the files are made in the tests:
- NVlabs: a pickle stream written the way `torch_utils.persistence` writes one (each module a call to
  `torch_utils.persistence._reconstruct_persistent_obj(meta)` with the module source and its __dict__),
  from a ganforge generator whose parameter names are the reference's. The embedded module source
  writes a marker file and exits when executed; `test_fake_nvlabs_pickle_would_run_its_source` shows
  that plain pickle.load does run it, the import tests that the importer never does.
- rosinality: a dict of tensors with rosinality's key names and shapes and random weights, and a small
  independent re-statement of rosinality's Generator.forward (model.py: PixelNorm, EqualLinear,
  ModulatedConv2d with conv_transpose + blur, NoiseInjection, FusedLeakyReLU, ToRGB + Upsample) that
  the imported run must match. (The real rosinality and NVlabs code were compared in a scratch
  folder: benchmarks/import_exactness.py, figures in benchmarks/RESULTS.md.)
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import math
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.errors import GanforgeError
from ganforge.registry import create_model
from ganforge.tools.importer import import_generator

# ---- NVlabs-style pickles ------------------------------------------------------------------------

NVLABS_CLASS = {"EqualLinear": "FullyConnectedLayer", "EqualConv2d": "Conv2dLayer",
                "MinibatchStdDev": "MinibatchStdLayer"}


class _EasyDict(dict):
    """Pickled as dnnlib.util.EasyDict (module and name set while dumping)."""


def _reconstruct(meta):  # what the real torch_utils.persistence function does first: exec the source
    exec(meta["module_src"], {})


def _evil_src(marker) -> str:
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('executed')\nraise SystemExit('ran module_src')\n"


class _Persistent:
    """Reduces like a torch_utils.persistence object: _reconstruct_persistent_obj(meta)."""

    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return (_reconstruct, (self.meta,))


@contextlib.contextmanager
def _fake_nvlabs_modules():
    """torch_utils.persistence and dnnlib.util, importable only while a test writes its pickle."""
    mods = {n: types.ModuleType(n) for n in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")}
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct
    mods["dnnlib.util"].EasyDict = _EasyDict
    old = (_reconstruct.__module__, _reconstruct.__qualname__, _EasyDict.__module__, _EasyDict.__qualname__)
    _reconstruct.__module__, _reconstruct.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"
    _EasyDict.__module__, _EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    saved = {n: sys.modules.get(n) for n in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
        _reconstruct.__module__, _reconstruct.__qualname__, _EasyDict.__module__, _EasyDict.__qualname__ = old


def _extra_attrs(kind: str, mod) -> dict:
    """Attributes the reference classes have and ours spell differently (or not at all)."""
    if kind == "Generator":
        return dict(c_dim=mod.num_classes, img_resolution=mod.image_size, img_channels=mod.channels,
                    _init_args=(), _init_kwargs=_EasyDict(z_dim=mod.z_dim, w_dim=mod.w_dim,
                    mapping_kwargs=_EasyDict(num_layers=mod.mapping.num_layers),
                    synthesis_kwargs=_EasyDict(channel_base=2048, channel_max=64, num_fp16_res=0, conv_clamp=None)))
    if kind == "SynthesisBlock":
        return dict(architecture="skip", use_fp16=False, is_last=False)
    if kind == "SynthesisLayer":
        return dict(activation="lrelu", use_noise=True, act_gain=np.float64(math.sqrt(2)))
    if kind in ("FullyConnectedLayer", "ToRGBLayer"):
        return dict(weight_gain=np.float64(mod.weight_gain))  # numpy scalars, as np.sqrt gives the reference
    return {}


def _stub_tree(mod, src: str, **extra) -> _Persistent:
    """Our module tree as the reference pickles it: per module, class name, source and __dict__."""
    kind = NVLABS_CLASS.get(type(mod).__name__, type(mod).__name__)
    plain = {k: v for k, v in vars(mod).items()
             if not k.startswith("_") and isinstance(v, (int, float, str, type(None)))}
    state = {**plain, **_extra_attrs(kind, mod), **extra.get(kind, {}),
             "_parameters": collections.OrderedDict((k, torch.nn.Parameter(v.detach().clone(), requires_grad=False))
                                                    for k, v in mod._parameters.items() if v is not None),
             "_buffers": collections.OrderedDict((k, v.clone()) for k, v in mod._buffers.items() if v is not None),
             "_non_persistent_buffers_set": set(),
             "_modules": collections.OrderedDict((k, _stub_tree(m, src, **extra)) for k, m in mod._modules.items()),
             "_forward_hooks": collections.OrderedDict()}
    return _Persistent(dict(type="class", version=6, module_src=src, class_name=kind, state=state))


def _seeded(net, seed: int) -> None:
    """Non-trivial values everywhere: biases, noise strengths and w_avg non-zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in sorted(net.state_dict().items()):
            if name.endswith("resample_filter"):
                continue
            v = torch.randn(t.shape, generator=gen)
            if name.endswith(("bias", "noise_strength", "w_avg")):
                v = v * 0.3 + (1.0 if name.endswith("affine.bias") else 0.0)
            elif name.startswith("mapping.fc") and name.endswith("weight"):
                v = v * 100.0  # stored / lr_multiplier (0.01)
            t.copy_(v)


def _tiny_models(seed: int):
    m = create_model("stylegan2", config="cpu-tiny", image_size=16)
    _seeded(m["G"], seed)
    _seeded(m["D"], seed + 1)
    return m


def _write_nvlabs(path, marker, g_ema, g, d, protocol=4, **extra) -> None:
    src = _evil_src(marker)
    with _fake_nvlabs_modules():
        snap = {"G": _stub_tree(g, src, **extra), "D": _stub_tree(d, src, **extra),
                "G_ema": _stub_tree(g_ema, src, **extra), "augment_pipe": None,
                "training_set_kwargs": _EasyDict(path="~/datasets/tiny.zip", resolution=16)}
        path.write_bytes(pickle.dumps(snap, protocol=protocol))


@pytest.fixture(params=[4, 2], ids=["protocol4", "protocol2"])  # python 3.8+'s default, and the oldest
def nvlabs_pkl(tmp_path, request):
    """(pickle path, marker path, the ganforge G_ema and D the pickle was made from)."""
    ema, raw = _tiny_models(1), _tiny_models(5)  # G differs from G_ema: the import must take G_ema
    path, marker = tmp_path / "network-snapshot-000123.pkl", tmp_path / "EXECUTED"
    _write_nvlabs(path, marker, ema["G"], raw["G"], ema["D"], protocol=request.param)
    return path, marker, ema["G"].eval(), ema["D"].eval()


def test_fake_nvlabs_pickle_would_run_its_source(nvlabs_pkl):
    path, marker, _, _ = nvlabs_pkl
    with _fake_nvlabs_modules(), pytest.raises(SystemExit):
        pickle.loads(path.read_bytes())  # what `pickle.load` does with such a file
    assert marker.read_text() == "executed"


def test_nvlabs_import_is_exact_and_runs_nothing(nvlabs_pkl, tmp_path, capsys):
    path, marker, g_ema, d = nvlabs_pkl
    out = import_generator(path, tmp_path / "run")
    assert not marker.exists()  # the embedded module source never ran
    loaded = ganforge.load(out)
    assert loaded.ema and loaded.config["model"]["name"] == "stylegan2"
    model = loaded.config["model"]
    assert (model["image_size"], model["z_dim"], model["mapping_layers"], model["channel_base"],
            model["channel_max"], model["conv_clamp"]) == (16, 128, 2, 2048, 64, None)
    z = torch.randn(3, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            assert torch.equal(loaded.net(z, psi=psi, noise_mode="const"), g_ema(z, psi=psi, noise_mode="const"))
        ckpt = out / "checkpoints" / "step-000000"
        d2 = create_model("stylegan2", **{k: v for k, v in model.items() if k != "name"})["D"].eval()
        d2.load_state_dict(ganforge.training.checkpoint.load_weights(ckpt, "D"))
        img = torch.randn(2, 3, 16, 16)
        assert torch.equal(d2(img), d(img))
    assert sorted(p.name for p in ckpt.iterdir()) == ["D.safetensors", "G.safetensors", "G_ema.safetensors",
                                                      "config.json", "state.pt"]
    assert (out / "config.yaml").is_file() and (out / "import.json").is_file()
    assert loaded.sample(4, seed=0).shape == (4, 3, 16, 16)  # what `ganforge sample` calls


def test_nvlabs_settings_come_from_the_layers(tmp_path):
    m = _tiny_models(2)
    path, marker = tmp_path / "clamp.pkl", tmp_path / "EXECUTED"
    # As stylegan3's networks_stylegan2.py, whose default conv_clamp (256) is not in the init kwargs.
    _write_nvlabs(path, marker, m["G"], m["G"], m["D"], SynthesisLayer={"conv_clamp": 256},
                  ToRGBLayer={"conv_clamp": 256}, Conv2dLayer={"conv_clamp": 256})
    out = import_generator(path, tmp_path / "run")
    assert ganforge.load(out).config["model"]["conv_clamp"] == 256.0
    path2 = tmp_path / "lr.pkl"
    _write_nvlabs(path2, marker, m["G"], m["G"], m["D"], FullyConnectedLayer={"bias_gain": 0.1})
    with pytest.raises(GanforgeError, match="bias_gain=0.1"):
        import_generator(path2, tmp_path / "run2")
    assert not marker.exists()


class _Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize("evil", ["os.system", "builtins.eval", "subprocess.Popen", "nested"])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, evil):
    marker = tmp_path / "PWNED"
    payload = {"os.system": _Call(os.system, f"touch {marker}"),
               "builtins.eval": _Call(eval, f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"),
               "subprocess.Popen": _Call(subprocess.Popen, ["touch", str(marker)])}.get(evil)
    if evil == "nested":  # a harmful global deep inside an otherwise NVlabs-like snapshot
        m = _tiny_models(3)
        with _fake_nvlabs_modules():
            tree = _stub_tree(m["G"], "pass\n")
            tree.meta["state"]["_hook"] = _Call(os.system, f"touch {marker}")
            data = pickle.dumps({"G_ema": tree}, protocol=4)
    else:
        data = pickle.dumps({"G_ema": payload}, protocol=2)
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    name = {"os.system": os.system.__module__ + ".system", "builtins.eval": "builtins.eval",
            "subprocess.Popen": "subprocess.Popen", "nested": os.system.__module__ + ".system"}[evil]
    with pytest.raises(GanforgeError, match=rf"refused .*evil.pkl: it references {name}.*nothing from the file"):
        import_generator(path, tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_malicious_torch_file_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": _Call(os.system, f"touch {marker}")}, path)
    with pytest.raises(GanforgeError, match=r"refused .*evil.pt: it references .*system"):
        import_generator(path, tmp_path / "run")
    assert not marker.exists()


@pytest.mark.parametrize("content,match", [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "neither an NVlabs network pickle"),
    (b"", "neither an NVlabs network pickle"),
    (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94(", "unreadable pickle"),  # truncated
    (pickle.dumps([1, 2, 3], protocol=4), "holds a list, not an NVlabs snapshot"),
    (pickle.dumps({"G": 1}, protocol=4), "no G_ema or G network"),
])
def test_other_files_are_refused_with_one_line(tmp_path, content, match):
    path = tmp_path / "file.pkl"
    path.write_bytes(content)
    with pytest.raises(GanforgeError, match=match) as e:
        import_generator(path, tmp_path / "run")
    assert "\n" not in str(e.value)


def test_output_folder_must_be_new_or_empty(nvlabs_pkl, tmp_path):
    path = nvlabs_pkl[0]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep")
    with pytest.raises(GanforgeError, match="already exists and is not empty"):
        import_generator(path, busy)
    assert (busy / "x").read_text() == "keep" and len(list(busy.iterdir())) == 1
    (tmp_path / "afile").write_text("")
    with pytest.raises(GanforgeError, match="already exists"):
        import_generator(path, tmp_path / "afile")
    (tmp_path / "empty").mkdir()
    assert import_generator(path, tmp_path / "empty") == tmp_path / "empty"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".empty.")]  # no temporary left


# ---- rosinality ------------------------------------------------------------------------------------

def _kernel(scale: float) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[None, :] * k[:, None]
    return k / k.sum() * scale


def ros_state(style: int, n_mlp: int, ch: dict[int, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under rosinality Generator's state_dict names and shapes (3 colour channels)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    sd = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"], sd[f"style.{i}.bias"] = r(style, style) / 0.01, r(style) * 30

    def styled(name, cin, cout, up):
        sd[f"{name}.conv.weight"] = r(1, cout, cin, 3, 3)
        if up:
            sd[f"{name}.conv.blur.kernel"] = _kernel(4)
        sd[f"{name}.conv.modulation.weight"], sd[f"{name}.conv.modulation.bias"] = r(cin, style), 1 + 0.3 * r(cin)
        sd[f"{name}.noise.weight"], sd[f"{name}.activate.bias"] = 0.3 * r(1), 0.3 * r(cout)

    def to_rgb(name, cin, up):
        sd[f"{name}.bias"], sd[f"{name}.conv.weight"] = 0.3 * r(1, 3, 1, 1), r(1, 3, cin, 1, 1)
        sd[f"{name}.conv.modulation.weight"], sd[f"{name}.conv.modulation.bias"] = r(cin, style), 1 + 0.3 * r(cin)
        if up:
            sd[f"{name}.upsample.kernel"] = _kernel(4)

    sd["input.input"] = r(1, ch[4], 4, 4)
    styled("conv1", ch[4], ch[4], False)
    to_rgb("to_rgb1", ch[4], False)
    res = sorted(ch)[1:]
    for k, s in enumerate(res):
        styled(f"convs.{2 * k}", ch[s // 2], ch[s], True)
        styled(f"convs.{2 * k + 1}", ch[s], ch[s], False)
        to_rgb(f"to_rgbs.{k}", ch[s], True)
    for i in range(2 * len(res) + 1):
        sd[f"noises.noise_{i}"] = r(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2))
    return sd


def _upfirdn(x, k, up, pad):  # rosinality's upfirdn2d_native for square kernels and equal x/y padding
    n, c, h, w = x.shape
    if up > 1:
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
        x = y
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, torch.flip(k, [0, 1])[None, None].repeat(c, 1, 1, 1), groups=c)


def _linear(x, w, b, lr_mul, act):  # EqualLinear (+ fused_leaky_relu, whose CPU path is this)
    out = F.linear(x, w * (lr_mul / math.sqrt(w.shape[1])))
    return F.leaky_relu(out + b * lr_mul, 0.2) * math.sqrt(2) if act else out + b * lr_mul


def _modconv(sd, name, x, style, demod, up):  # ModulatedConv2d, fused path
    b, cin, h, w = x.shape
    wt = sd[f"{name}.weight"]
    cout, k = wt.shape[1], wt.shape[-1]
    s = _linear(style, sd[f"{name}.modulation.weight"], sd[f"{name}.modulation.bias"], 1, False)
    wt = wt / math.sqrt(cin * k * k) * s.view(b, 1, cin, 1, 1)
    if demod:
        wt = wt * torch.rsqrt(wt.pow(2).sum([2, 3, 4]) + 1e-8).view(b, cout, 1, 1, 1)
    if up:
        wt = wt.transpose(1, 2).reshape(b * cin, cout, k, k)
        out = F.conv_transpose2d(x.reshape(1, b * cin, h, w), wt, stride=2, groups=b)
        return _upfirdn(out.view(b, cout, *out.shape[2:]), _kernel(4), 1, (1, 1))
    out = F.conv2d(x.reshape(1, b * cin, h, w), wt.reshape(b * cout, cin, k, k), padding=k // 2, groups=b)
    return out.view(b, cout, h, w)


def ros_forward(sd, z, psi=1.0, latent_avg=None):
    """rosinality Generator.forward(styles=[z], truncation=psi, truncation_latent, randomize_noise=False)."""
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        x = _linear(x, sd[f"style.{i}.weight"], sd[f"style.{i}.bias"], 0.01, True)
        i += 1
    if psi < 1:
        x = latent_avg + psi * (x - latent_avg)

    def styled(name, h, noise, up):
        h = _modconv(sd, f"{name}.conv", h, x, True, up) + sd[f"{name}.noise.weight"] * sd[noise]
        return F.leaky_relu(h + sd[f"{name}.activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)

    def to_rgb(name, h, skip):
        out = _modconv(sd, f"{name}.conv", h, x, False, False) + sd[f"{name}.bias"]
        return out if skip is None else out + _upfirdn(skip, _kernel(4), 2, (2, 1))

    h = styled("conv1", sd["input.input"].repeat(z.shape[0], 1, 1, 1), "noises.noise_0", False)
    skip = to_rgb("to_rgb1", h, None)
    k = 0
    while f"to_rgbs.{k}.conv.weight" in sd:
        h = styled(f"convs.{2 * k}", h, f"noises.noise_{2 * k + 1}", True)
        h = styled(f"convs.{2 * k + 1}", h, f"noises.noise_{2 * k + 2}", False)
        skip = to_rgb(f"to_rgbs.{k}", h, skip)
        k += 1
    return skip


CH = {4: 32, 8: 32, 16: 16}  # rosinality-like widths (constant, then halving), 16 px


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])  # torch >= 1.6 and older files
def test_rosinality_import_matches_its_forward(tmp_path, zipfile):
    sd = ros_state(32, 2, CH)
    latent_avg = torch.randn(32, generator=torch.Generator().manual_seed(9))
    path = tmp_path / "stylegan2-tiny.pt"
    torch.save({"g_ema": sd, "latent_avg": latent_avg}, path, _use_new_zipfile_serialization=zipfile)
    out = import_generator(path, tmp_path / "run")
    loaded = ganforge.load(out)
    model = loaded.config["model"]
    assert (model["image_size"], model["z_dim"], model["w_dim"], model["mapping_layers"], model["channel_base"],
            model["channel_max"]) == (16, 32, 32, 2, 256, 32)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            ref = ros_forward(sd, z, psi, latent_avg)
            ours = loaded.net(z, psi=psi, noise_mode="const")
            assert ref.abs().max() > 1  # a real image, not zeros
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_rosinality_training_checkpoint_without_latent_avg(tmp_path, capsys):
    sd = ros_state(32, 2, CH, seed=3)
    path = tmp_path / "010000.pt"  # train.py's layout, with its argparse.Namespace of arguments
    torch.save({"g": ros_state(32, 2, CH, seed=4), "d": {}, "g_ema": sd, "g_optim": {}, "d_optim": {},
                "args": argparse.Namespace(size=16, latent=32), "ada_aug_p": 0.0}, path)
    out = import_generator(path, tmp_path / "run")
    assert "no latent_avg" in capsys.readouterr().err
    g = ganforge.load(out).net
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(g(z, noise_mode="const"), ros_forward(sd, z), rtol=1e-5, atol=1e-5)
        w = g.mapping(torch.randn(10000, 32, generator=torch.Generator().manual_seed(0)), None)[:, 0]
        torch.testing.assert_close(g.mapping.w_avg, w.mean(0))


@pytest.mark.parametrize("change,match", [
    (lambda sd: sd.update({"convs.0.conv.extra": torch.zeros(1)}), "unexpected keys .*convs.0.conv.extra"),
    (lambda sd: sd.pop("convs.1.activate.bias"), "lacks convs.1.activate.bias"),
    (lambda sd: sd.update({"convs.0.conv.blur.kernel": _kernel(4).flip(0) * 2}), "not the \\[1, 3, 3, 1\\] blur"),
])
def test_rosinality_misfits_are_refused(tmp_path, change, match):
    sd = ros_state(32, 2, CH)
    change(sd)
    torch.save({"g_ema": sd}, tmp_path / "bad.pt")
    with pytest.raises(GanforgeError, match=match):
        import_generator(tmp_path / "bad.pt", tmp_path / "run")


def test_rosinality_channel_plan_that_ganforge_cannot_express(tmp_path):
    # rosinality's channel_multiplier=4 gives 512 channels at 32 px but 1024 at 64 px: widths that grow.
    torch.save({"g_ema": ros_state(8, 1, {4: 8, 8: 16})}, tmp_path / "wide.pt")
    with pytest.raises(GanforgeError, match="cannot be written as min\\(channel_base / resolution, channel_max\\)"):
        import_generator(tmp_path / "wide.pt", tmp_path / "run")


def test_cli_import_then_sample_and_errors(nvlabs_pkl, tmp_path, capsys):
    from ganforge.cli import main

    path, marker, _, _ = nvlabs_pkl
    assert main(["import", str(path), "--out", str(tmp_path / "imp")]) == 0
    assert "ganforge sample" in capsys.readouterr().out and not marker.exists()
    assert main(["sample", str(tmp_path / "imp"), "--seeds", "0-3", "--trunc", "0.7",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()
    assert main(["import", str(path), "--out", str(tmp_path / "imp")]) == 2  # not empty
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle at all")
    assert main(["import", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("ganforge: error:") == 2 and "Traceback" not in err


def test_cli_weights_fetch_refuses_unpinned_and_unknown_names(tmp_path, capsys):
    from ganforge.cli import main

    assert main(["weights", "fetch", "stylegan2-afhqcat-512", "--to", str(tmp_path)]) == 2
    assert main(["weights", "fetch", "stylegan9", "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "stylegan2-ffhq-1024" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing downloaded
