"""Checkpoints: safetensors weights + config.json (loadable without pickle) and a training state
loadable with torch.load(weights_only=True). Written to a temporary folder, fsynced, then renamed;
older checkpoints are pruned only after the new one has been read back."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import GanforgeError
from ..utils.atomic import atomic_write_text, fsync_dir

STEP_DIR = re.compile(r"^step-(\d+)$")


def rng_state() -> dict[str, Any]:
    """RNG states of torch (CPU and CUDA), numpy and python, as tensors and primitives."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": torch.tensor(py_state[1], dtype=torch.int64),
                   "gauss": py_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_weights(module_state: dict[str, torch.Tensor], path: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in module_state.items()}
    save_file(tensors, str(path))


def save_checkpoint(ckpt_root: Path, step: int, weights: dict[str, dict[str, torch.Tensor]],
                    config: dict[str, Any], state: dict[str, Any], keep: int = 3, name: str | None = None) -> Path:
    """Write checkpoints/step-NNNNNN (or checkpoints/NAME, e.g. best) atomically; a step folder becomes
    `latest` and older step folders are pruned to the `keep` newest."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / (name or f"step-{step:06d}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=ckpt_root))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is an ordinary folder
        for net, sd in weights.items():
            _save_weights(sd, tmp / f"{net}.safetensors")
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        torch.save(state, tmp / "state.pt")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        verify_checkpoint(tmp)
        if final.exists():  # rename the old one aside first: a crash leaves one of the two intact
            old = ckpt_root / f".{final.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(ckpt_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if name is None:
        atomic_write_text(ckpt_root / "latest", final.name + "\n")
        prune(ckpt_root, keep)
    return final


def verify_checkpoint(path: Path) -> None:
    """Read every file of a checkpoint back; raise if any is unreadable."""
    for f in path.glob("*.safetensors"):
        load_file(str(f))
    json.loads((path / "config.json").read_text())
    torch.load(path / "state.pt", weights_only=True, map_location="cpu")


def step_dirs(ckpt_root: Path) -> list[Path]:
    """Checkpoint folders sorted by step."""
    if not ckpt_root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_root.iterdir() if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def prune(ckpt_root: Path, keep: int) -> None:
    """Delete all but the `keep` newest step folders (never `best`)."""
    if keep <= 0:
        return
    for p in step_dirs(ckpt_root)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a run folder (its latest), a checkpoints folder or a step folder."""
    p = Path(path)
    if not p.exists():
        raise GanforgeError(f"no such run or checkpoint: {p}")
    if (p / "config.json").is_file() and any(p.glob("*.safetensors")):
        return p
    root = p / "checkpoints" if (p / "checkpoints").is_dir() else p
    latest = root / "latest"
    if latest.is_file():
        cand = root / latest.read_text().strip()
        if cand.is_dir():
            return cand
    dirs = step_dirs(root)
    if not dirs:
        raise GanforgeError(f"no checkpoint found in {p}")
    return dirs[-1]


def read_config(ckpt: Path) -> dict[str, Any]:
    """The config.json of a checkpoint."""
    try:
        return json.loads((ckpt / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GanforgeError(f"unreadable checkpoint config {ckpt / 'config.json'}: {e}") from None


def load_weights(ckpt: Path, name: str) -> dict[str, torch.Tensor]:
    """The safetensors weights of net `name` in a checkpoint."""
    f = ckpt / f"{name}.safetensors"
    if not f.is_file():
        raise GanforgeError(f"checkpoint {ckpt} has no weights for {name!r}")
    try:
        return load_file(str(f))
    except Exception as e:  # safetensors raises its own error types
        raise GanforgeError(f"corrupt weight file {f}: {e}") from None


def load_state(ckpt: Path) -> dict[str, Any]:
    """The training state of a checkpoint, loaded without unpickling arbitrary objects."""
    try:
        return torch.load(ckpt / "state.pt", weights_only=True, map_location="cpu")
    except Exception as e:
        raise GanforgeError(f"unreadable training state {ckpt / 'state.pt'}: {e}") from None
