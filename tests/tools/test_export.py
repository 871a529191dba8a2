"""`ganforge export`: every registered model (and BigGAN-deep, and both CycleGAN directions) to ONNX and
TorchScript; the files equal what ganforge samples / translates / upscales (EMA weights, clamp, labels,
StyleGAN's const noise) at other batch sizes and image sizes than they were exported with; the sidecar; and
one-line refusals of bad requests before any work.

Runs are hand-made checkpoints written as the training loop writes them (config.json with task, io_roles and
generator_key; G and G_ema weights that differ), which takes milliseconds where a training step takes
seconds. BatchNorm statistics are the nets' own (one train-mode pass), so outputs are O(1), and the families
without a tanh (StyleGAN, StyleGAN2, SRGAN, SRResNet) overshoot [-1, 1] (SRGAN's tail scaled up to make sure),
so the clamp matters."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnxruntime as ort
import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.export import TOLERANCE, export
from ganforge.registry import model_names
from ganforge.training.checkpoint import save_checkpoint

# name -> (registered model, tiny arguments, role or None, name fragment of parameters to scale up 4x)
CASES = {
    "gan": ("gan", dict(z_dim=8, image_size=8), None, None),
    "dcgan": ("dcgan", dict(ngf=4, ndf=4, z_dim=8, image_size=16, channels=1, clusters=3), None, None),
    "cgan": ("cgan", dict(ngf=4, ndf=4, z_dim=8, embed_dim=4, num_classes=3), None, None),
    "biggan": ("biggan", dict(ch=4, shared_dim=8, num_classes=3), None, None),
    "biggan-deep": ("biggan", dict(ch=4, shared_dim=8, num_classes=3, deep=True), None, None),
    "stylegan": ("stylegan", dict(config="cpu-small", channels=1, fmap_base=64, fmap_max=8, z_dim=8, w_dim=8,
                                  mapping_layers=2, image_size=16, num_classes=3), None, None),
    "stylegan2": ("stylegan2", dict(config="cpu-tiny", channels=1, channel_max=8, z_dim=8, w_dim=8, num_classes=3),
                  None, None),
    "pix2pix": ("pix2pix", dict(image_size=32, ngf=4, ndf=4), None, None),
    "cyclegan-AtoB": ("cyclegan", dict(image_size=32, ngf=4, ndf=4, n_blocks=1, channels_a=1, channels_b=3),
                      "AtoB", None),
    "cyclegan-BtoA": ("cyclegan", dict(image_size=32, ngf=4, ndf=4, n_blocks=1, channels_a=1, channels_b=3),
                      "BtoA", None),
    "srgan": ("srgan", dict(num_blocks=1, features=4, d_features=4, hr_size=16), None, "tail"),
    "srresnet": ("srresnet", dict(num_blocks=1, features=4, hr_size=16, skip="bicubic"), None, None),
}
UNBOUNDED = {"stylegan", "stylegan2", "srgan", "srresnet"}  # no tanh: raw outputs overshoot [-1, 1]


def test_every_registered_model_is_covered():
    assert set(model_names()) <= {model for model, *_ in CASES.values()}


def _perturbed(sd: dict[str, torch.Tensor], params: set[str], g: torch.Generator) -> dict[str, torch.Tensor]:
    """The EMA weights: every parameter moved a little (buffers kept: BN statistics, spectral-norm vectors)."""
    return {k: (v * (1 + 0.2 * torch.randn(v.shape, generator=g)) if k in params else v.clone())
            for k, v in sd.items()}


def _standing_statistics(net: torch.nn.Module, io) -> None:
    """BatchNorm running statistics of the net's own activations (as after training), so outputs are O(1)."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: one batch sets it
    net.train()
    with torch.no_grad():
        if io.kind == "noise":
            net(*io.latents(32, 0))
        else:
            net(torch.rand(8, io.in_channels, io.image_size, io.image_size) * 2 - 1)
    net.eval()
    for m in norms:
        m.momentum = 0.1


def _make_run(root: Path, case: str) -> Path:
    model_name, kw, _, boost = CASES[case]
    torch.manual_seed(0)
    m = ganforge.create_model(model_name, **kw)
    g = torch.Generator().manual_seed(1)
    for role, key in m.io.nets.items():
        net = m.nets[key]
        with torch.no_grad():
            for name, p in net.named_parameters():
                if boost and boost in name:
                    p.mul_(4.0)  # SRGAN's tail: outputs that overshoot, as trained ones do
                if name.endswith(("noise_strength", "noise.strength")):
                    p.fill_(0.5)  # StyleGAN noise that shows (it starts at 0): const noise is part of the export
            for mod in net.modules():
                if hasattr(mod, "set_lod"):
                    mod.set_lod(0.5)  # StyleGAN v1 mid-fade: the blend of two resolutions is exported too
        _standing_statistics(net, m.io.view(role))
    weights = {}
    for key, net in m.nets.items():
        weights[key] = net.state_dict()
        if key in m.io.nets.values():
            weights[f"{key}_ema"] = _perturbed(weights[key], {n for n, _ in net.named_parameters()}, g)
    conf = {"model": {"name": m.name, **m.args}, "generator_key": m.generator_key, "task": m.task,
            "io_roles": m.io.roles, "step": 1, "run": {}}
    save_checkpoint(root / "checkpoints", 1, weights, conf, {})
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    return {case: _make_run(root / case, case) for case in CASES}


def _run_file(fmt: str, path: Path, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The exported file's output, run the way a user outside ganforge would."""
    if fmt == "onnx":
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: t.numpy() for i, t in zip(sess.get_inputs(), inputs)}
        return torch.from_numpy(sess.run(None, feed)[0])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13: "torch.jit.load is deprecated"
        return torch.jit.load(str(path))(*inputs)


def _inputs_and_expected(gen, n: int, seed: int, size: tuple[int, int] | None = None):
    """Inputs for the file and what ganforge itself gives for them (sample for noise, gen(image) otherwise)."""
    io = gen.io
    if io.kind == "noise":
        z, y = io.latents(n, seed)
        return ((z,) if y is None else (z, y)), gen.sample(n, seed=seed)
    h, w = size or (io.image_size, io.image_size)
    x = torch.rand(n, io.in_channels, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return (x,), gen(x).clamp(-1, 1)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("case", list(CASES))
def test_export_matches_ganforge(runs, tmp_path, case, fmt):
    role = CASES[case][2]
    out = tmp_path / f"g{'.onnx' if fmt == 'onnx' else '.pt'}"
    res = export(runs[case], fmt, out, direction=role)
    assert out.is_file() and res.max_abs_diff <= TOLERANCE[fmt]
    gen = ganforge.load(runs[case], role=role)  # EMA weights, as export's default
    raw = ganforge.load(runs[case], role=role, ema=False)
    assert gen.ema and res.info["ema"]

    # A batch other than the export's (2), and for image models a second, non-square size.
    checks = [_inputs_and_expected(gen, 4, seed=7)]
    if gen.io.kind != "noise":
        m = gen.io.size_multiple
        checks.append(_inputs_and_expected(gen, 1, seed=8, size=(gen.io.image_size + 2 * max(m, 3),
                                                                 gen.io.image_size + max(m, 3))))
    for inputs, expected in checks:
        got = _run_file(fmt, out, inputs)
        assert got.shape == expected.shape
        assert float((got - expected).abs().max()) <= TOLERANCE[fmt], case
        assert float(got.abs().max()) <= 1.0
        # The EMA weights, not the raw generator's.
        unclamped_raw = raw.io.generate(raw.net, z=inputs[0], y=inputs[1] if len(inputs) > 1 else None) \
            if raw.io.kind == "noise" else raw(inputs[0])
        assert float((got - unclamped_raw.clamp(-1, 1)).abs().max()) > 1e-3
    if case in UNBOUNDED:  # the clamp is part of what ganforge gives: without it these would differ
        inputs, _ = checks[0]
        unclamped = gen.io.generate(gen.net, z=inputs[0], y=inputs[1] if len(inputs) > 1 else None) \
            if gen.io.kind == "noise" else gen(inputs[0])
        assert float(unclamped.abs().max()) > 1.05
    if gen.io.num_classes:  # labels are an input: other labels, other images, each as ganforge makes them
        z, _ = gen.io.latents(4, 7)
        y = torch.tensor([2, 2, 1, 0])
        got = _run_file(fmt, out, (z, y))
        expected = gen.io.generate(gen.net, z=z, y=y).clamp(-1, 1)
        assert float((got - expected).abs().max()) <= TOLERANCE[fmt]
        assert float((got - checks[0][1]).abs().max()) > 1e-3


def test_sidecar_describes_the_file(runs, tmp_path):
    out = tmp_path / "c.onnx"
    res = export(runs["cgan"], "onnx", out)
    info = json.loads(Path(str(out) + ".json").read_text())
    assert info == json.loads(json.dumps(res.info))
    assert info["model"] == "cgan" and info["format"] == "onnx" and info["ema"] is True and info["opset"] == 18
    assert [(i["name"], i["shape"], i["dtype"]) for i in info["inputs"]] == [("z", ["N", 8], "float32"),
                                                                             ("y", ["N"], "int64")]
    assert info["inputs"][1]["range"] == [0, 2]
    assert info["outputs"][0]["shape"] == ["N", 1, 28, 28] and info["outputs"][0]["range"] == [-1.0, 1.0]
    assert 0 <= info["max_abs_diff"] <= info["tolerance"] == TOLERANCE["onnx"]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["z", "y"]
    assert [o.name for o in sess.get_outputs()] == [info["outputs"][0]["name"]]

    res = export(runs["pix2pix"], "torchscript", tmp_path / "p.pt", ema=False)
    info = json.loads((tmp_path / "p.pt.json").read_text())
    assert info["ema"] is False and info["kind"] == "translate"
    img = info["inputs"][0]
    assert img["name"] == "image" and img["shape"] == ["N", 3, "H", "W"] and img["range"] == [-1.0, 1.0]
    assert img["size_multiple"] == 32 and "multiples of 32" in img["constraint"]
    raw = ganforge.load(runs["pix2pix"], ema=False)
    x = torch.rand(2, 3, 64, 32) * 2 - 1
    got = _run_file("torchscript", tmp_path / "p.pt", (x,))
    assert float((got - raw(x).clamp(-1, 1)).abs().max()) <= TOLERANCE["torchscript"]
    sr = export(runs["srgan"], "torchscript", tmp_path / "s.pt").info
    assert sr["scale"] == 4 and sr["outputs"][0]["shape"] == ["N", 3, "H*4", "W*4"]


def test_cli_writes_one_line(runs, tmp_path, capsys):
    out = tmp_path / "c.onnx"
    assert main(["export", str(runs["cyclegan-AtoB"]), "--format", "onnx", "--out", str(out),
                 "--direction", "BtoA"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "cyclegan BtoA" in line and "max |onnx - pytorch|" in line
    assert json.loads((tmp_path / "c.onnx.json").read_text())["inputs"][0]["shape"] == ["N", 3, "H", "W"]


def test_over_tolerance_fails_and_leaves_no_file(runs, tmp_path, capsys):
    out = tmp_path / "s.onnx"
    out.write_bytes(b"older export")
    code = main(["export", str(runs["srgan"]), "--format", "onnx", "--out", str(out), "--atol", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("ganforge: error:") and "\n" not in err and "differs from PyTorch" in err
    assert out.read_bytes() == b"older export" and not (tmp_path / "s.onnx.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s.onnx"]  # no temporary file left


def _bad_requests(runs, tmp_path):
    judge = tmp_path / "judge" / "checkpoints" / "step-000001"
    judge.mkdir(parents=True)
    (judge / "config.json").write_text(json.dumps({"model": {"name": "mnist-judge"}}))
    (judge / "net.safetensors").write_bytes(b"")
    (tmp_path / "images").mkdir()
    dc, cyc, out = str(runs["dcgan"]), str(runs["cyclegan-AtoB"]), str(tmp_path / "g.onnx")
    return {
        "format": ([dc, "--format", "tflite", "--out", str(tmp_path / "g.tflite")], "unknown export format"),
        "folder": ([dc, "--format", "onnx", "--out", str(tmp_path / "nope" / "g.onnx")], "does not exist"),
        "suffix-onnx": ([dc, "--format", "onnx", "--out", str(tmp_path / "g.pt")], ".onnx file"),
        "suffix-pt": ([dc, "--format", "torchscript", "--out", out], ".pt file"),
        "run": ([str(tmp_path / "missing"), "--format", "onnx", "--out", out], "no such run"),
        "direction-noise": ([dc, "--format", "onnx", "--out", out, "--direction", "AtoB"], "no directions"),
        "direction-cyclegan": ([cyc, "--format", "onnx", "--out", out, "--direction", "CtoD"], "AtoB, BtoA"),
        "direction-pix2pix": ([str(runs["pix2pix"]), "--format", "onnx", "--out", out, "--direction", "BtoA"],
                              "trained AtoB"),
        "not-a-run": ([str(tmp_path / "images"), "--format", "onnx", "--out", out], "not a generator run"),
        "not-a-generator": ([str(tmp_path / "judge"), "--format", "onnx", "--out", out], "not a ganforge generator"),
        "opset": ([dc, "--format", "onnx", "--out", out, "--opset", "9"], "--opset"),
        "opset-torchscript": ([dc, "--format", "torchscript", "--out", str(tmp_path / "g.pt"), "--opset", "18"],
                              "ONNX exports only"),
    }


BAD = ["format", "folder", "suffix-onnx", "suffix-pt", "run", "direction-noise", "direction-cyclegan",
       "direction-pix2pix", "not-a-run", "not-a-generator", "opset", "opset-torchscript"]


@pytest.mark.parametrize("what", BAD)
def test_bad_requests_fail_in_one_line_before_any_work(runs, tmp_path, capsys, monkeypatch, what):
    import ganforge.export as ex

    def never(*a, **k):
        raise AssertionError("exported despite a bad request")

    monkeypatch.setattr(ex, "write_onnx", never)
    monkeypatch.setattr(ex, "write_torchscript", never)
    argv, expect = _bad_requests(runs, tmp_path)[what]
    before = set(tmp_path.rglob("*"))
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error:") and "\n" not in err and expect in err, err
    assert set(tmp_path.rglob("*")) == before
