"""Import a pretrained StyleGAN2 generator from another code base as a ganforge run, running nothing from it.

    import_generator("ffhq.pkl", "runs/ffhq")          # stylegan2-ada-pytorch / stylegan3 network pickle
    import_generator("550000.pt", "runs/ros")           # rosinality stylegan2-pytorch checkpoint

The result is an ordinary run folder: config.yaml (model `stylegan2` with the inferred arguments),
checkpoints/step-000000/{G,G_ema[,D]}.safetensors + config.json + state.pt, checkpoints/latest, and
import.json (source file, its SHA-256, format, notes), so `ganforge.load(out)` and `ganforge sample out`
work, and `train.init_from=out` fine-tunes from it. G and G_ema hold the same weights: the source's
G_ema (g_ema), or its G when it has none. D is imported from NVlabs pickles when it fits.

Formats are recognised by content, not by file name:
- a pickle stream (first byte 0x80): read with `safe_pickle.restricted_load`, which never imports or
  runs the source code these pickles embed; a pickle naming any other global is refused;
- a PyTorch zip file, or a legacy torch.save stream: read with torch.load(weights_only=True);
  `argparse.Namespace` (rosinality's training checkpoints store their arguments) is allowed too.
Anything else is refused with one line.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from ..config import resolve
from ..errors import GanforgeError
from ..registry import create_model
from ..training.checkpoint import load_into, save_checkpoint
from ..training.loop import checkpoint_config
from ..utils.atomic import atomic_write_text, fsync_dir, make_temp_dir
from ..utils.hashing import sha256_file
from .safe_pickle import UnsafePickle, restricted_load
from .sg2_convert import ROSINALITY_KEYS, Converted, nvlabs_generator, rosinality_generator

__all__ = ["import_generator", "read_generator"]

LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a pre-1.6 torch.save file
W_AVG_SAMPLES, W_AVG_SEED = 10000, 0  # w_avg estimate for checkpoints that store none


def _note(message: str) -> None:
    print(f"ganforge: note: {message}", file=sys.stderr)


def _why(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200] or type(e).__name__


def _torch_load(path: Path) -> Any:
    """A PyTorch checkpoint loaded with weights_only=True (argparse.Namespace allowed), or one clear error."""
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        # Never relay PyTorch's advice to retry with weights_only=False: the file may run code when unpickled.
        m = re.search(r"(?:[Uu]nsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(e))  # torch 2.4+
        what = (f"it references {m.group(1)}, which is not checkpoint data" if m else
                "it holds objects other than tensors and plain containers")
        raise GanforgeError(f"refused {path}: {what}; nothing from the file was executed") from None
    except Exception as e:
        raise GanforgeError(f"unreadable PyTorch checkpoint {path}: {_why(e)}") from None


def _read(path: Path) -> tuple[str, Any]:
    """('pickle', object) for a pickle stream, ('torch', object) for a PyTorch file; refuses anything else."""
    if not path.is_file():
        raise GanforgeError(f"no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"PK":  # torch.save's zip format
        return "torch", _torch_load(path)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        try:
            obj = restricted_load(path)
        except UnsafePickle as e:
            raise GanforgeError(f"refused {path}: {e}; nothing from the file was executed") from None
        except Exception as e:  # truncated or corrupt stream: pickle raises many types
            raise GanforgeError(f"unreadable pickle {path}: {_why(e)}") from None
        if isinstance(obj, int) and obj == LEGACY_TORCH_MAGIC:
            return "torch", _torch_load(path)
        return "pickle", obj
    raise GanforgeError(f"{path} is neither an NVlabs network pickle (stylegan2-ada-pytorch / stylegan3 .pkl) "
                        f"nor a rosinality stylegan2-pytorch checkpoint (.pt)")


def read_generator(file: str | os.PathLike) -> Converted:
    """The generator in `file` as ganforge stylegan2 arguments and weights (nothing written)."""
    path = Path(file)
    kind, obj = _read(path)
    if kind == "pickle":
        return nvlabs_generator(obj)
    if isinstance(obj, dict) and ("g_ema" in obj or "g" in obj or
                                  any(isinstance(k, str) and ROSINALITY_KEYS.match(k) for k in obj)):
        return rosinality_generator(obj)
    keys = ", ".join(map(str, list(obj)[:5])) if isinstance(obj, dict) else type(obj).__name__
    raise GanforgeError(f"{path} is a PyTorch file but not a rosinality stylegan2-pytorch checkpoint ({keys})")


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise GanforgeError(f"output folder {out} already exists and is not empty: choose another")


def _build(conv: Converted, path: Path) -> tuple[Any, dict[str, dict[str, torch.Tensor]]]:
    """The ganforge model with the converted weights loaded strictly, and the weights to save."""
    models = create_model("stylegan2", **conv.args)
    g = models["G"]
    own = g.state_dict()
    # The FIR filters are fixed buffers (checked equal where the source stores them); noise images the
    # source lacks keep ganforge's seeded ones (a note says so).
    sd = {**{k: v for k, v in own.items() if k.endswith(("resample_filter", "noise_const"))}, **conv.g}
    sd.setdefault("mapping.w_avg", own["mapping.w_avg"])
    load_into(g, sd, f"the {conv.source_format} generator in {path}")
    if "mapping.w_avg" not in conv.g:
        with torch.no_grad():
            z = torch.randn(W_AVG_SAMPLES, g.z_dim, generator=torch.Generator().manual_seed(W_AVG_SEED))
            g.mapping.w_avg.copy_(g.mapping(z, None)[:, 0].mean(dim=0))
    weights = {"G": g.state_dict(), "G_ema": g.state_dict()}
    if conv.d is not None:
        try:
            load_into(models["D"], conv.d, f"the discriminator in {path}")
            weights["D"] = models["D"].state_dict()
        except GanforgeError as e:
            conv.notes.append(f"D not imported: {e}")
    return models, weights


def import_generator(file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Convert a stylegan2-ada-pytorch pickle or rosinality checkpoint into the run folder `out`; returns it."""
    path, out = Path(file), Path(out)
    _check_out(out)
    conv = read_generator(path)
    models, weights = _build(conv, path)
    raw = {"model": {"name": "stylegan2", **conv.args}, "recipe": {"name": "stylegan2"},
           # No dataset comes with a generator: training or evaluating against data needs --data / --ref.
           "data": {"source": "none"}, "train": {"name": out.name, "runs_dir": str(out.parent)}}
    cfg = resolve(raw, preset="import")
    info = {"source": str(path.resolve()), "source_sha256": sha256_file(path), "format": conv.source_format,
            "net": conv.source_net, "model": cfg.model, "nets_written": sorted(weights), "notes": conv.notes}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")
    try:
        atomic_write_text(tmp / "config.yaml", cfg.to_yaml())
        atomic_write_text(tmp / "import.json", json.dumps(info, indent=2) + "\n")
        # No optimizer state comes with a generator: `--resume` stops with "no optimizer state"; fine-tune
        # with train.init_from=RUN instead (fresh optimizers).
        save_checkpoint(tmp / "checkpoints", 0, weights, checkpoint_config(cfg, models, 0),
                        {"step": 0, "images_seen": 0, "recipe": {}}, keep=1)
        _check_out(out)  # still free? (another process may have taken it meanwhile)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for n in conv.notes:
        _note(n)
    return out
