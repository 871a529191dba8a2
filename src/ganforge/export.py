"""Export a trained generator to ONNX or TorchScript, checked against PyTorch, with a JSON sidecar.

What is exported is the generator `load` gives (its EMA weights unless ema=False), wrapped so the file
computes exactly what ganforge itself produces, clamp included:

  noise      z [N, z_dim] float32 (and y [N] int64 class labels when conditional) -> images [N, C, H, W]
             = `LoadedGenerator.sample` for the same z and y (psi 1: no truncation);
  translate  image [N, C_in, H, W] -> [N, C_out, H, W];  upscale  image [N, C, h, w] -> [N, C, h*s, w*s]
             = `gen(image)` (what `ganforge translate` / `ganforge upscale` compute before writing pixels).

Every output is clamped to [-1, 1] (pixel = (v + 1) * 127.5), as `sample` clamps: StyleGAN and SRGAN
outputs are not squashed by a tanh and overshoot. The batch axis is dynamic; so are the height and width
of image inputs, which must be multiples of the model's `size_multiple` (Pix2Pix: 2^depth of its U-Net,
CycleGAN: 4, SRGAN: any size). StyleGAN and StyleGAN2 export with their fixed per-layer noise
(noise_mode='const', the noise `sample` uses) and without truncation (psi = 1). StyleGAN2 is exported
through its shared-weight modulated convolution (fused_modconv=False: the same maths as the grouped one
`sample` runs, which bakes the batch size into the group count), so its file agrees with `sample` up to
float rounding. StyleGAN v1 is exported at the level of detail its checkpoint holds.

Exporters: ONNX by `torch.onnx.export(dynamo=True, optimize=False)` (torch.export; opset 18 by default).
The legacy TorchScript-based ONNX exporter (dynamo=False) cannot export either StyleGAN (v1: a blur
convolution whose depthwise kernel is built from a traced channel count; v2: traced sizes reach
upfirdn's paddings), and the onnxscript graph optimizer (optimize=True) turns StyleGAN v1 with a dynamic
batch into NaNs, so neither is used. TorchScript by `torch.jit.trace`; the traced sizes StyleGAN2's
FIR resampling takes as paddings are turned back into ints while tracing (they are kernel and filter
sizes, never the batch or image size).

After writing, the file is loaded back (onnxruntime / torch.jit.load) and run on seeded inputs at batch
sizes other than the one it was exported with (and, for image models, at a second, non-square size); the
largest absolute difference from PyTorch must stay within the tolerance (TOLERANCE: 1e-4, fp32) or the
export fails and no file is left (the file is written to a temporary name and moved into place only once
it passed). FILE.json tells users outside Python how to call the file: input and output names, shapes,
dtypes and value ranges, the model and the measured difference.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io as _io
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .errors import GanforgeError

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# Largest |exported - PyTorch| accepted, in output units ([-1, 1]), fp32 on the CPU. Measured by export's own
# checks on default-width networks (DCGAN 64 px, BigGAN and BigGAN-deep 32 px, StyleGAN/StyleGAN2 cpu-small,
# Pix2Pix/CycleGAN 128 px, SRGAN): ONNX under onnxruntime differs by 3e-7 to 1.6e-5 (StyleGAN), TorchScript
# by 0, except StyleGAN2's shared-weight convolution against `sample`'s grouped one, 6e-6. Wider, deeper
# networks accumulate more rounding, hence the margin; a wrong export differs by orders of magnitude more.
TOLERANCE = {"onnx": 1e-4, "torchscript": 1e-4}
DEFAULT_OPSET = 18  # torch.onnx's dynamo exporter writes opset 18 natively; others go through a converter
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
EXPORT_BATCH = 2  # the batch size the graph is traced at; the checks use others
CHECK_SEED = 0


@dataclass
class ExportResult:
    """What `export` wrote and measured."""

    path: Path
    sidecar: Path
    max_abs_diff: float
    tolerance: float
    info: dict[str, Any]


# ---- checks before any work ---------------------------------------------------------------------------
def check_format(fmt: str) -> str:
    """The format name if known, else a GanforgeError."""
    if fmt not in FORMATS:
        raise GanforgeError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    return fmt


def check_out(out: str | Path, fmt: str) -> Path:
    """The output path if its suffix fits the format and its folder exists, else a GanforgeError."""
    out = Path(out)
    suffix = FORMATS[check_format(fmt)]
    if out.suffix.lower() != suffix:
        raise GanforgeError(f"a {fmt} export is written to a {suffix} file, got --out {out}")
    if out.is_dir():
        raise GanforgeError(f"--out {out} is a folder; name the {suffix} file to write")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise GanforgeError(f"the folder of --out does not exist: {parent}")
    return out


def check_opset(opset: int | None, fmt: str) -> int | None:
    """The ONNX opset to write (None for TorchScript), checked against what onnx knows."""
    if fmt != "onnx":
        if opset is not None:
            raise GanforgeError("--opset applies to ONNX exports only")
        return None
    if opset is None:
        return DEFAULT_OPSET
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not DEFAULT_OPSET <= opset <= newest:
        raise GanforgeError(f"--opset must be an integer in {DEFAULT_OPSET}..{newest} (the exporter writes "
                            f"{DEFAULT_OPSET} and up), got {opset!r}")
    return opset


def check_packages(fmt: str) -> None:
    """A GanforgeError naming what to install when ONNX export's packages are missing."""
    if fmt == "onnx":
        missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
        if missing:
            raise GanforgeError(f"ONNX export needs {', '.join(ONNX_PACKAGES)}; missing: {', '.join(missing)} "
                                f"(pip install {' '.join(missing)})")


def load_generator(run: str | Path, ema: bool = True, direction: str | None = None):
    """The generator of a run or checkpoint folder on the CPU (a translation run's `direction`)."""
    from .pretrained import load
    from .registry import model_names
    from .training.checkpoint import read_config, resolve_checkpoint

    p = Path(run)
    if not p.exists():
        raise GanforgeError(f"no such run or checkpoint folder: {p}")
    try:
        ckpt = resolve_checkpoint(p)
    except GanforgeError as e:
        raise GanforgeError(f"{p} is not a generator run or checkpoint folder ({e})") from None
    conf = read_config(ckpt)
    name = conf["model"]["name"]
    if name not in model_names():
        raise GanforgeError(f"{ckpt} holds a {name!r} model, not a ganforge generator "
                            f"(known: {', '.join(model_names())})")
    if conf.get("task") == "translate":
        from .translate import load_translator

        return load_translator(ckpt, direction, device="cpu", ema=ema)[0]
    gen = load(ckpt, ema=ema, device="cpu")
    if gen.io.kind == "translate":  # a hand-made config.json that does not name its task: the model does
        return gen if direction is None else load(ckpt, ema=ema, device="cpu", role=direction)
    if direction is not None:
        raise GanforgeError(f"{ckpt} holds a {name} model, which has no directions (--direction picks one of a "
                            f"translation model's, e.g. CycleGAN's AtoB or BtoA)")
    return gen


# ---- the exported function ----------------------------------------------------------------------------
def _style_call(net: nn.Module) -> Callable[[Tensor, Tensor | None], Tensor] | None:
    """For a StyleGAN generator: z, y -> images with const noise, no truncation, batch-independent convs."""
    if not (hasattr(net, "mapping") and hasattr(net, "synthesis")):
        return None
    import inspect

    kw: dict[str, Any] = {"noise_mode": "const"}
    if "fused_modconv" in inspect.signature(net.synthesis.forward).parameters:
        kw["fused_modconv"] = False  # the grouped conv's group count is the batch size: not a dynamic axis

    def call(z: Tensor, y: Tensor | None) -> Tensor:
        return net.synthesis(net.mapping(z, y, psi=1.0), **kw)

    return call


class _Noise(nn.Module):
    """z [N, z_dim] -> images [N, C, H, W] in [-1, 1]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self._style = _style_call(net)

    def generate(self, z: Tensor, y: Tensor | None) -> Tensor:
        out = self._style(z, y) if self._style is not None else self.net(z, y)
        return out.float().clamp(-1.0, 1.0)  # as LoadedGenerator.sample

    def forward(self, z: Tensor) -> Tensor:
        return self.generate(z, None)


class _ConditionalNoise(_Noise):
    """z [N, z_dim] and labels y [N] (int64) -> images [N, C, H, W] in [-1, 1]."""

    def forward(self, z: Tensor, y: Tensor) -> Tensor:  # type: ignore[override]
        return self.generate(z, y)


class _Image(nn.Module):
    """image [N, C, H, W] in [-1, 1] -> image in [-1, 1] (translated or upscaled)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image).float().clamp(-1.0, 1.0)


def export_module(gen) -> nn.Module:
    """The module that is exported: the loaded generator plus what `sample` does around it (clamp, noise)."""
    if gen.io.kind == "noise":
        return (_ConditionalNoise if gen.io.num_classes > 0 else _Noise)(gen.net).eval()
    return _Image(gen.net).eval()


def input_names(io) -> list[str]:
    """The names of the exported file's inputs."""
    if io.kind == "noise":
        return ["z", "y"] if io.num_classes > 0 else ["z"]
    return ["image"]


OUTPUT_NAME = "output"


def example_inputs(gen, n: int, seed: int, size: tuple[int, int] | None = None) -> tuple[Tensor, ...]:
    """Seeded inputs of batch n: ganforge's own latents (io.latents), or an image in [-1, 1] of `size`."""
    io = gen.io
    if io.kind == "noise":
        z, y = io.latents(n, seed)
        return (z,) if y is None else (z, y)
    h, w = size or (io.image_size, io.image_size)
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, io.in_channels, h, w, generator=g) * 2 - 1,)


def reference(gen, inputs: tuple[Tensor, ...], seed: int | None = None) -> Tensor:
    """What ganforge produces for these inputs: `sample` (by seed) for noise, `gen(image)` clamped otherwise."""
    if gen.io.kind == "noise":
        return gen.sample(inputs[0].shape[0], seed=seed)
    return gen(inputs[0]).clamp(-1, 1)


def check_cases(gen) -> list[tuple[tuple[Tensor, ...], int]]:
    """(inputs, seed) pairs the export is checked on: batches other than EXPORT_BATCH, a second image size."""
    io = gen.io
    if io.kind == "noise":
        return [(example_inputs(gen, n, CHECK_SEED + i), CHECK_SEED + i) for i, n in enumerate((3, 1))]
    s, m = io.image_size, io.size_multiple
    other = (s, s + max(m, 3))  # non-square, still a multiple of size_multiple
    return [(example_inputs(gen, 3, CHECK_SEED), CHECK_SEED),
            (example_inputs(gen, 1, CHECK_SEED + 1, size=other), CHECK_SEED + 1)]


# ---- writers and runners --------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints, tracer warnings and logging chatter (errors still raise)."""
    sink = _io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx",
                                               "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _dynamic_shapes(io, names: list[str]) -> dict[str, dict[int, Any]]:
    batch = torch.export.Dim("batch", min=1)
    if io.kind == "noise":
        return {n: {0: batch} for n in names}
    # Height and width: whatever the network allows (torch.export works out the multiple-of constraint).
    return {"image": {0: batch, 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}}


def write_onnx(module: nn.Module, inputs: tuple[Tensor, ...], path: str, io, opset: int) -> None:
    """Write `module` as ONNX with a dynamic batch (and image height/width)."""
    names = input_names(io)
    with _quiet(), torch.no_grad():
        torch.onnx.export(module, inputs, path, dynamo=True, optimize=False, external_data=False,
                          input_names=names, output_names=[OUTPUT_NAME], opset_version=opset,
                          dynamic_shapes=_dynamic_shapes(io, names), verbose=False, report=False)


def write_torchscript(module: nn.Module, inputs: tuple[Tensor, ...], path: str) -> None:
    """Write `module` as a traced TorchScript module."""
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(module, inputs, check_trace=False)
    traced.save(path)


def runner(fmt: str, path: str) -> Callable[[tuple[Tensor, ...]], Tensor]:
    """A function that runs an exported file on input tensors and returns its output as a tensor."""
    if fmt == "onnx":
        import numpy as np
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]

        def run_onnx(inputs: tuple[Tensor, ...]) -> Tensor:
            feed = {n: np.ascontiguousarray(t.numpy()) for n, t in zip(names, inputs)}
            return torch.from_numpy(sess.run(None, feed)[0])

        return run_onnx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates torch.jit in favour of torch.export
        module = torch.jit.load(path, map_location="cpu")

    def run_ts(inputs: tuple[Tensor, ...]) -> Tensor:
        with torch.no_grad():
            return module(*inputs)

    return run_ts


def _describe(t: Tensor) -> str:
    return f"{list(t.shape)} {str(t.dtype).replace('torch.', '')}"


def verify(gen, fmt: str, path: str) -> tuple[float, list[dict[str, Any]]]:
    """Run the exported file on the check inputs: the largest |file - ganforge| and one record per check."""
    run = runner(fmt, path)
    worst, checks = 0.0, []
    for inputs, seed in check_cases(gen):
        expected = reference(gen, inputs, seed)
        try:
            with _quiet():
                got = run(inputs)
        except Exception as e:  # onnxruntime's own error types: a file that refuses a shape the model takes
            raise GanforgeError(f"the exported file does not run on inputs {', '.join(map(_describe, inputs))}: "
                                f"{_first_line(e)}") from None
        if tuple(got.shape) != tuple(expected.shape):
            raise GanforgeError(f"the exported file gives shape {list(got.shape)} for inputs "
                                f"{', '.join(map(_describe, inputs))}; ganforge gives {list(expected.shape)}")
        diff = float((got.float() - expected).abs().max())
        if diff != diff:  # NaN
            diff = float("inf")
        worst = max(worst, diff)
        checks.append({"inputs": [list(t.shape) for t in inputs], "seed": seed, "max_abs_diff": diff})
    return worst, checks


def _first_line(e: BaseException) -> str:
    """The exception's type and first non-empty line, without terminal colour codes."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:400]


# ---- the sidecar --------------------------------------------------------------------------------------
def describe_io(io) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The inputs and output of the exported file, for users outside Python."""
    out_hw = ["H", "W"] if io.kind == "translate" else [f"H*{io.scale}", f"W*{io.scale}"]
    if io.kind == "noise":
        inputs = [{"name": "z", "shape": ["N", io.z_dim], "dtype": "float32",
                   "range": "standard normal samples, N(0, 1)"}]
        if io.num_classes > 0:
            inputs.append({"name": "y", "shape": ["N"], "dtype": "int64", "range": [0, io.num_classes - 1],
                           "meaning": "class label of each sample"})
        out_shape: list[Any] = ["N", io.out_channels, io.image_size, io.image_size]
    else:
        m = io.size_multiple
        inputs = [{"name": "image", "shape": ["N", io.in_channels, "H", "W"], "dtype": "float32",
                   "range": [-1.0, 1.0], "meaning": "pixels as value / 127.5 - 1",
                   "size_multiple": m,
                   "constraint": f"H and W multiples of {m}" if m > 1 else "any H and W"}]
        out_shape = ["N", io.out_channels, *out_hw]
    output = [{"name": OUTPUT_NAME, "shape": out_shape, "dtype": "float32", "range": [-1.0, 1.0],
               "meaning": "pixels as (value + 1) * 127.5"}]
    return inputs, output


def sidecar(gen, fmt: str, path: Path, opset: int | None, diff: float, tol: float,
            checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON written next to an export."""
    io = gen.io
    inputs, outputs = describe_io(io)
    info: dict[str, Any] = {
        "file": path.name, "format": fmt, "model": gen.config["model"]["name"], "kind": io.kind,
        "role": io.roles[0], "net": io.generator_key, "ema": bool(gen.ema), "checkpoint": str(gen.path),
        "step": gen.config.get("step"), "inputs": inputs, "outputs": outputs,
        "dynamic_axes": {n: ([0] if io.kind == "noise" else [0, 2, 3]) for n in input_names(io)},
        "max_abs_diff": diff, "tolerance": tol, "checks": checks,
        "exporter": ("torch.onnx.export(dynamo=True, optimize=False)" if fmt == "onnx" else "torch.jit.trace"),
        "torch": torch.__version__,
    }
    if opset is not None:
        info["opset"] = opset
    if io.kind == "upscale":
        info["scale"] = io.scale
    if io.kind == "noise" and io.extra.get("mixing"):
        info["style"] = {"noise_mode": "const", "truncation_psi": 1.0}
    return info


# ---- the whole job ------------------------------------------------------------------------------------
def export(run: str | Path, fmt: str, out: str | Path, direction: str | None = None, ema: bool = True,
           opset: int | None = None, tolerance: float | None = None) -> ExportResult:
    """Export the generator of a run to `out` (ONNX or TorchScript), check it against PyTorch, write out.json."""
    from .utils.atomic import atomic_write, atomic_write_text

    check_format(fmt)
    out = check_out(out, fmt)
    check_packages(fmt)
    opset = check_opset(opset, fmt)
    tol = TOLERANCE[fmt] if tolerance is None else float(tolerance)
    if not 0.0 <= tol < float("inf"):
        raise GanforgeError(f"the tolerance must be a finite number >= 0, got {tolerance!r}")
    gen = load_generator(run, ema=ema, direction=direction)
    module = export_module(gen)
    inputs = example_inputs(gen, EXPORT_BATCH, CHECK_SEED)
    measured: dict[str, Any] = {}

    def write(tmp: str) -> None:
        try:
            if fmt == "onnx":
                write_onnx(module, inputs, tmp, gen.io, opset)
            else:
                write_torchscript(module, inputs, tmp)
        except Exception as e:  # the exporters raise many kinds; one line says which and why
            why = _first_line(e)
            if e.__cause__ is not None:  # torch.onnx wraps torch.export's error: that one says what failed
                why += f" ({_first_line(e.__cause__)})"
            raise GanforgeError(f"{fmt} export of {gen.config['model']['name']} failed: {why[:600]}") from None
        diff, checks = verify(gen, fmt, tmp)
        if not diff <= tol:
            raise GanforgeError(f"the {fmt} file differs from PyTorch by {diff:.3g} (> tolerance {tol:g}); "
                                f"nothing written")
        measured.update(diff=diff, checks=checks)

    atomic_write(out, write)
    info = sidecar(gen, fmt, out, opset, measured["diff"], tol, measured["checks"])
    side = Path(str(out) + ".json")
    try:
        atomic_write_text(side, json.dumps(info, indent=2) + "\n")
    except BaseException:
        os.unlink(out)
        raise
    return ExportResult(out, side, measured["diff"], tol, info)


def _shape(shape: list[Any]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def summary(result: ExportResult) -> str:
    """One line for the command: what was written, from what, and how close it is."""
    i = result.info
    ins = ", ".join(f"{d['name']} {_shape(d['shape'])} {d['dtype']}" for d in i["inputs"])
    weights = "EMA" if i["ema"] else "raw"
    role = f" {i['role']}" if i["kind"] == "translate" else ""
    out = i["outputs"][0]
    return (f"exported {i['model']}{role} ({i['net']}, {weights} weights) to {result.path}: {ins} -> {out['name']} "
            f"{_shape(out['shape'])} in [-1, 1]; max |{i['format']} - pytorch| = {result.max_abs_diff:.2g} "
            f"(tolerance {result.tolerance:g}); wrote {result.sidecar}")
