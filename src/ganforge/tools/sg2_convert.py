"""StyleGAN2 generators of other code bases -> ganforge `stylegan2` factory arguments and state dicts.

- NVlabs (stylegan2-ada-pytorch `training/networks.py`, stylegan3 `training/networks_stylegan2.py`):
  our parameter names are theirs, so the module tree read by `safe_pickle` is flattened as is. The
  settings that change the function (lr multiplier, activations, conv_clamp, architecture) are read
  from each layer's pickled attributes, which hold the values the code actually used, rather than from
  the constructor's keyword arguments, whose defaults differ between the two repositories.
- rosinality (stylegan2-pytorch `model.py`): keys are renamed (the table is the code of
  `rosinality_generator`) and reshaped; the layer maths is the same (EqualLinear stores weight / lr_mul
  and multiplies by lr_mul / sqrt(fan_in), bias by lr_mul; modulated conv; conv_transpose + [1,3,3,1]
  blur with pads (1, 1) for the upsampling conv, upfirdn pads (2, 1) for the skip path; noise, then
  bias and sqrt(2) leaky ReLU). One residual difference: rosinality multiplies the weight by
  1/sqrt(fan_in) *before* demodulating, so its epsilon (1e-8) acts on a fan_in-times smaller sum; the
  relative effect is ~1e-8 * fan_in / |w s|^2, far below float32 rounding (benchmarks/RESULTS.md).
  The mapping's lr multiplier is not stored in these files: 0.01 is assumed (the code's default, used by
  its train.py and convert_weight.py).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import GanforgeError
from .safe_pickle import PersistentStub

# Top-level key prefixes of a rosinality Generator's state dict (how a bare state dict is recognised).
ROSINALITY_KEYS = re.compile(r"^(style\.\d+|input|conv1|to_rgb1|convs\.\d+|to_rgbs\.\d+|noises)\.")
MAPPING_LR = 0.01  # ganforge's MappingNetwork always uses the reference's default lr multiplier
DEFAULT_BASE, DEFAULT_MAX = 32768, 512  # both NVlabs repositories' defaults


@dataclass
class Converted:
    """A generator in ganforge's terms: factory arguments, G (and optionally D) weights, and what to tell."""

    args: dict[str, Any]
    g: dict[str, Tensor]
    d: dict[str, Tensor] | None = None
    source_format: str = ""
    source_net: str = ""
    notes: list[str] = field(default_factory=list)


def channel_args(ch: dict[int, int], size: int, prefer: tuple[int, int] | None = None) -> tuple[int, int]:
    """(channel_base, channel_max) giving min(base // r, max) channels at each resolution r, else an error."""
    def plan(base: int, cmax: int) -> dict[int, int]:
        return {r: min(base // r, cmax) for r in ch}

    if prefer is not None and plan(*prefer) == ch:
        return prefer
    cmax = max(ch.values())
    below = sorted(r for r in ch if ch[r] < cmax)
    base = ch[below[0]] * below[0] if below else cmax * size
    if plan(base, cmax) != ch:
        listing = ", ".join(f"{r}px: {c}" for r, c in sorted(ch.items()))
        raise GanforgeError(f"the channel widths per resolution ({listing}) cannot be written as "
                            f"min(channel_base / resolution, channel_max), which ganforge's stylegan2 needs")
    return base, cmax


def _as_int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise GanforgeError(f"the network pickle's {what} is {x!r}, not an integer")
    return int(x)


def flatten(stub: PersistentStub, prefix: str = "", out: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """A persistent module tree's parameters and persistent buffers as a state dict with dotted names."""
    out = {} if out is None else out
    st = stub.state
    skip = st.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, t in (st.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, Tensor):
                raise GanforgeError(f"{prefix}{name} in the network pickle is a {type(t).__name__}, not a tensor")
            out[prefix + name] = t.detach().float() if t.is_floating_point() else t.detach()
    for name, child in (st.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentStub):
            raise GanforgeError(f"submodule {prefix}{name} of the network pickle is a {type(child).__name__}, "
                                f"not a persistent network module")
        flatten(child, f"{prefix}{name}.", out)
    return out


def _need(stub: PersistentStub | None, what: str) -> PersistentStub:
    if stub is None:
        raise GanforgeError(f"the network pickle's generator has no {what}: not a StyleGAN2 generator")
    return stub


def _weight(sd: dict[str, Tensor], key: str) -> Tensor:
    if key not in sd:
        raise GanforgeError(f"the network pickle's generator has no {key}: not a StyleGAN2 generator")
    return sd[key]


def _check_attr(stub: PersistentStub, name: str, want: Any, where: str) -> None:
    have = stub.attr(name, want)  # absent: the code's default, which the strict weight load then checks
    if isinstance(want, float):
        same = isinstance(have, (int, float, np.floating)) and math.isclose(have, want, rel_tol=1e-9)
    else:
        same = have == want
    if not same:
        raise GanforgeError(f"{where} has {name}={have!r}; ganforge's stylegan2 supports only {want!r}")


def nvlabs_generator(top: Any) -> Converted:
    """Convert the dict of an NVlabs snapshot pickle ({'G', 'D', 'G_ema', ...}) read by safe_pickle."""
    if not isinstance(top, dict):
        raise GanforgeError(f"the pickle holds a {type(top).__name__}, not an NVlabs snapshot dict")
    key = next((k for k in ("G_ema", "G") if isinstance(top.get(k), PersistentStub)), None)
    if key is None:
        raise GanforgeError(f"the pickle holds no G_ema or G network (keys: {', '.join(map(str, top))})")
    g = top[key]
    if g.class_name != "Generator":
        raise GanforgeError(f"{key} in the pickle is a {g.class_name}, not a Generator")
    z_dim, c_dim = _as_int(g.attr("z_dim"), "z_dim"), _as_int(g.attr("c_dim"), "c_dim")
    w_dim, res = _as_int(g.attr("w_dim"), "w_dim"), _as_int(g.attr("img_resolution"), "img_resolution")
    img_channels = _as_int(g.attr("img_channels"), "img_channels")
    mapping, syn = _need(g.child("mapping"), "mapping network"), _need(g.child("synthesis"), "synthesis network")
    sd = flatten(g)
    n_map = _as_int(mapping.attr("num_layers"), "mapping num_layers")
    for i in range(n_map):
        fc = _need(mapping.child(f"fc{i}"), f"mapping layer fc{i}")
        _check_attr(fc, "bias_gain", MAPPING_LR, f"mapping layer fc{i}")  # bias_gain is the lr multiplier
        _check_attr(fc, "activation", "lrelu", f"mapping layer fc{i}")
        want = [w_dim, z_dim + (w_dim if c_dim else 0) if i == 0 else w_dim]
        shape = list(_weight(sd, f"mapping.fc{i}.weight").shape)
        if shape != want:  # embed_features / layer_features other than w_dim
            raise GanforgeError(f"mapping layer fc{i} has shape {shape}; "
                                f"ganforge's stylegan2 needs {want} (label embedding and layer widths = w_dim)")
    ch, clamps = {}, set()
    for r in (2**i for i in range(2, int(math.log2(res)) + 1)):
        block = _need(syn.child(f"b{r}"), f"synthesis block b{r}")
        _check_attr(block, "architecture", "skip", f"synthesis block b{r}")
        for name in ("conv0", "conv1", "torgb"):
            layer = block.child(name)
            if layer is None:
                continue
            clamps.add(layer.attr("conv_clamp"))
            if name != "torgb":
                _check_attr(layer, "activation", "lrelu", f"layer b{r}.{name}")
                _check_attr(layer, "use_noise", True, f"layer b{r}.{name}")
        ch[r] = int(_weight(sd, f"synthesis.b{r}.conv1.weight").shape[0])
    if len(clamps) != 1:
        raise GanforgeError(f"the generator's layers use different conv_clamp values {sorted(map(str, clamps))}")
    conv_clamp = clamps.pop()
    sk = (g.attr("_init_kwargs") or {}).get("synthesis_kwargs") or {}
    base, cmax = channel_args(ch, res, (sk.get("channel_base", DEFAULT_BASE), sk.get("channel_max", DEFAULT_MAX)))
    args = dict(image_size=res, channels=img_channels, z_dim=z_dim, w_dim=w_dim, mapping_layers=n_map,
                channel_base=int(base), channel_max=int(cmax), num_classes=c_dim,
                conv_clamp=float(conv_clamp) if conv_clamp is not None else None)
    out = Converted(args, sd, source_format="nvlabs-pickle", source_net=key)
    if any(bool(syn.child(f"b{r}").attr("use_fp16", False)) for r in ch):
        out.notes.append("the source ran its highest resolutions in float16 on GPU; ganforge computes in "
                         "float32, as the source does on CPU")
    _nvlabs_discriminator(top.get("D"), args, out)
    return out


def _nvlabs_discriminator(d: Any, args: dict[str, Any], out: Converted) -> None:
    """Add D's weights and settings when the pickle's D fits ganforge's (same widths and clamp as G)."""
    if not isinstance(d, PersistentStub) or d.class_name != "Discriminator":
        out.notes.append("the pickle holds no Discriminator: D not imported")
        return
    res = args["image_size"]
    top, head = d.child(f"b{res}"), d.child("b4")
    mbstd = head.child("mbstd") if head is not None else None
    arch = top.attr("architecture") if top is not None else None
    clamp = top.child("conv0").attr("conv_clamp") if top is not None and top.child("conv0") is not None else None
    group = mbstd.attr("group_size") if mbstd is not None else None
    if arch not in ("resnet", "orig") or clamp != args["conv_clamp"] or isinstance(group, bool) \
            or not isinstance(group, (int, np.integer)) or group < 1:
        out.notes.append(f"the Discriminator (architecture {arch}, conv_clamp {clamp}, minibatch-std group {group}) "
                         f"does not fit ganforge's stylegan2 with G's settings: D not imported")
        return
    out.args.update(d_architecture=arch, mbstd_group=int(group))
    out.d = flatten(d)


# ---- rosinality/stylegan2-pytorch ------------------------------------------------------------------

def _kernel(up: bool) -> Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[None, :] * k[:, None]
    return k / k.sum() * (4 if up else 1)


def _take(src: dict[str, Tensor], used: set[str], key: str) -> Tensor:
    if key not in src:
        raise GanforgeError(f"the rosinality checkpoint lacks {key}: not a complete stylegan2-pytorch generator")
    t = src[key]
    if not isinstance(t, Tensor):
        raise GanforgeError(f"{key} in the rosinality checkpoint is a {type(t).__name__}, not a tensor")
    used.add(key)
    return t.detach().float()


def _styled(src: dict, used: set, ros: str, ours: str, out: dict, noise: str | None) -> int:
    """Map one rosinality StyledConv (conv, noise, activate) onto a ganforge SynthesisLayer; its out channels."""
    w = _take(src, used, f"{ros}.conv.weight")  # [1, out, in, k, k]
    out[f"{ours}.weight"] = w.squeeze(0)
    out[f"{ours}.affine.weight"] = _take(src, used, f"{ros}.conv.modulation.weight")
    out[f"{ours}.affine.bias"] = _take(src, used, f"{ros}.conv.modulation.bias")
    out[f"{ours}.noise_strength"] = _take(src, used, f"{ros}.noise.weight").reshape(())
    out[f"{ours}.bias"] = _take(src, used, f"{ros}.activate.bias")
    if noise is not None and noise in src:
        out[f"{ours}.noise_const"] = _take(src, used, noise)[0, 0]
    return int(w.shape[1])


def _to_rgb(src: dict, used: set, ros: str, ours: str, out: dict) -> int:
    w = _take(src, used, f"{ros}.conv.weight")  # [1, C, in, 1, 1]
    out[f"{ours}.weight"] = w.squeeze(0)
    out[f"{ours}.affine.weight"] = _take(src, used, f"{ros}.conv.modulation.weight")
    out[f"{ours}.affine.bias"] = _take(src, used, f"{ros}.conv.modulation.bias")
    out[f"{ours}.bias"] = _take(src, used, f"{ros}.bias").reshape(-1)
    return int(w.shape[1])


def rosinality_generator(ckpt: dict[str, Any]) -> Converted:
    """Convert a rosinality stylegan2-pytorch checkpoint ({'g_ema': state_dict, 'latent_avg', ...})."""
    net = next((k for k in ("g_ema", "g") if isinstance(ckpt.get(k), dict)), None)
    src = ckpt[net] if net else ckpt
    notes: list[str] = []
    if net == "g":
        notes.append("the checkpoint has no g_ema: imported the raw generator g")
    if isinstance(ckpt.get("d"), dict) and ckpt["d"]:
        notes.append("the checkpoint's discriminator d is not imported (only rosinality generators are mapped)")
    used: set[str] = set()
    out: dict[str, Tensor] = {}
    n_map = 0
    while f"style.{n_map + 1}.weight" in src:
        out[f"mapping.fc{n_map}.weight"] = _take(src, used, f"style.{n_map + 1}.weight")
        out[f"mapping.fc{n_map}.bias"] = _take(src, used, f"style.{n_map + 1}.bias")
        n_map += 1
    if n_map == 0 or "input.input" not in src:
        raise GanforgeError("not a rosinality stylegan2-pytorch generator (no style.1.weight / input.input)")
    w_dim, z_dim = out["mapping.fc0.weight"].shape
    const = _take(src, used, "input.input")  # [1, C, 4, 4]
    out["synthesis.b4.const"] = const[0]
    ch = {4: _styled(src, used, "conv1", "synthesis.b4.conv1", out, "noises.noise_0")}
    img_channels = _to_rgb(src, used, "to_rgb1", "synthesis.b4.torgb", out)
    k = 0
    while f"to_rgbs.{k}.conv.weight" in src:
        r = 8 * 2**k
        _styled(src, used, f"convs.{2 * k}", f"synthesis.b{r}.conv0", out, f"noises.noise_{2 * k + 1}")
        ch[r] = _styled(src, used, f"convs.{2 * k + 1}", f"synthesis.b{r}.conv1", out, f"noises.noise_{2 * k + 2}")
        _to_rgb(src, used, f"to_rgbs.{k}", f"synthesis.b{r}.torgb", out)
        k += 1
    size = 4 * 2**k
    if size < 8:
        raise GanforgeError("the rosinality generator is 4x4 px; ganforge's stylegan2 needs image_size >= 8")
    for key in src:  # the FIR kernels are buffers: accept only the [1, 3, 3, 1] filter ganforge uses
        if key.endswith(".kernel") and isinstance(src[key], Tensor):
            want = _kernel(up=key.startswith(("convs.", "to_rgbs.")))
            if src[key].shape != want.shape or not torch.allclose(src[key].float(), want):
                raise GanforgeError(f"{key} is not the [1, 3, 3, 1] blur kernel ganforge's stylegan2 uses")
            used.add(key)
    missing_noise = [key for key in (f"noises.noise_{i}" for i in range(2 * k + 1)) if key not in src]
    if missing_noise:
        notes.append(f"the checkpoint has no {missing_noise[0]} (and {len(missing_noise) - 1} more) noise "
                     f"buffers: noise_mode='const' uses ganforge's own seeded noise images there")
    extra = sorted(set(src) - used)
    if extra:
        raise GanforgeError(f"unexpected keys in the rosinality generator ({', '.join(extra[:3])}"
                            f"{' ...' if len(extra) > 3 else ''}): not a plain stylegan2-pytorch Generator")
    base, cmax = channel_args(ch, size)
    latent = ckpt.get("latent_avg") if net else None
    if isinstance(latent, Tensor) and latent.numel() == w_dim:
        out["mapping.w_avg"] = latent.detach().float().reshape(w_dim)
    else:
        notes.append("the checkpoint has no latent_avg: w_avg estimated as the mean of 10000 mapped z "
                     "(seed 0), as rosinality's generate.py does with random z")
    args = dict(image_size=size, channels=img_channels, z_dim=int(z_dim), w_dim=int(w_dim), mapping_layers=n_map,
                channel_base=int(base), channel_max=int(cmax), num_classes=0, conv_clamp=None)
    return Converted(args, out, source_format="rosinality", source_net=net or "state_dict", notes=notes)

