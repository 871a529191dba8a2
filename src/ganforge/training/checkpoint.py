"""Checkpoints: safetensors weights + config.json (loadable without pickle) and a training state
loadable with torch.load(weights_only=True). Written to a temporary folder, fsynced, then renamed;
older checkpoints are pruned only after the new one has been read back.

A checkpoints folder is untrusted input: its `latest` pointer, config.json and state.pt are validated
before use. A run folder is locked (lock_run) while it trains, so the leftovers of a killed writer can
be removed (clean_stale) without touching the files of a live one.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import random
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import GanforgeError
from ..utils.atomic import TEMP_TAG_LEN, atomic_write_text, file_mode, fsync_dir, make_temp_dir

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["RunLock", "clean_stale", "describe_mismatch", "load_into", "load_state", "load_weights", "lock_run",
           "prune", "read_config", "resolve_checkpoint", "rng_state", "save_checkpoint", "set_rng_state",
           "step_dirs", "verify_checkpoint"]

STEP_DIR = re.compile(r"^step-(\d+)$")
NAMED_DIRS = ("best",)  # checkpoints saved under a name rather than a step, which `latest` may point to
# What save_checkpoint leaves behind when it is killed (names from make_temp_dir, older tempfile.mkdtemp
# names too, and atomic_write's temporary `latest`): clean_stale removes these and nothing else.
_TMP_DIR = re.compile(r"^\.(?:step-\d+|[A-Za-z0-9_-]+)\.[a-z0-9_]{%d}$" % TEMP_TAG_LEN)
_OLD_DIR = re.compile(r"^\.(?P<final>step-\d+|[A-Za-z0-9_-]+)\.old$")
_TMP_LATEST = re.compile(r"^\.latest\.[a-z0-9_]{%d}\.tmp$" % TEMP_TAG_LEN)
_HELD_LOCKS: set[Path] = set()  # run folders this process has locked: clean_stale is only safe in these


def _warn(message: str) -> None:
    print(f"ganforge: warning: {message}", file=sys.stderr)


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
    os.chmod(path, file_mode())  # safetensors writes its files 0o600 whatever the umask says


def save_checkpoint(ckpt_root: Path, step: int, weights: dict[str, dict[str, torch.Tensor]],
                    config: dict[str, Any], state: dict[str, Any], keep: int = 3, name: str | None = None) -> Path:
    """Write checkpoints/step-NNNNNN (or checkpoints/NAME, e.g. best) atomically; a step folder becomes
    `latest` and older step folders are pruned to the `keep` newest."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / (name or f"step-{step:06d}")
    tmp = make_temp_dir(ckpt_root, prefix=f".{final.name}.")  # mode 0o777 minus the umask, like any folder
    try:
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
    """Checkpoint folders sorted by step (real folders only: a symbolic link may lead anywhere)."""
    if not ckpt_root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_root.iterdir()
             if (m := STEP_DIR.match(p.name)) and p.is_dir() and not p.is_symlink()]
    return [p for _, p in sorted(found)]


def prune(ckpt_root: Path, keep: int) -> None:
    """Delete all but the `keep` newest step folders (never `best`)."""
    if keep <= 0:
        return
    for p in step_dirs(ckpt_root)[:-keep]:
        shutil.rmtree(p, ignore_errors=True)


def _latest_target(root: Path) -> tuple[Path | None, str]:
    """The folder `root/latest` names, or None and why it cannot be used ("" when there is no pointer)."""
    latest = root / "latest"
    if not latest.exists() and not latest.is_symlink():
        return None, ""
    if latest.is_symlink() or not latest.is_file():
        return None, "is not a plain file"
    try:
        with open(latest, "rb") as f:
            text = f.read(4096).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None, "is unreadable"
    name = text.strip()
    if not name:
        return None, "is empty"
    if "\n" in name or "\r" in name:
        return None, "holds more than one line"
    if not (STEP_DIR.match(name) or name in NAMED_DIRS):  # also refuses `../x`, `/abs` and `a/b`
        return None, f"names {name[:60]!r}, which is not a checkpoint folder name"
    cand = root / name
    if cand.is_symlink():
        return None, f"names {name}, a symbolic link (checkpoints are plain folders)"
    if not cand.is_dir():
        return None, f"names {name}, which does not exist"
    if cand.resolve().parent != root.resolve():  # paranoia: only a folder directly inside `root`
        return None, f"names {name}, which is not inside {root}"
    return cand, ""


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a run folder (its latest), a checkpoints folder or a step folder."""
    p = Path(path)
    if not p.exists():
        raise GanforgeError(f"no such run or checkpoint: {p}")
    if (p / "config.json").is_file() and any(p.glob("*.safetensors")):
        return p
    root = p / "checkpoints" if (p / "checkpoints").is_dir() else p
    target, problem = _latest_target(root)
    if target is not None:
        return target
    dirs = step_dirs(root)
    if problem:
        if not dirs:
            raise GanforgeError(f"{root / 'latest'} {problem}, and {root} holds no step-NNNNNN checkpoint folder")
        _warn(f"{root / 'latest'} {problem}; using the newest checkpoint, {dirs[-1].name}")
    if not dirs:
        raise GanforgeError(f"no checkpoint found in {p}")
    return dirs[-1]


def read_config(ckpt: Path) -> dict[str, Any]:
    """The config.json of a checkpoint, checked to be an object naming its model."""
    where = ckpt / "config.json"
    try:
        conf = json.loads(where.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GanforgeError(f"unreadable checkpoint config {where}: {e}") from None
    if not isinstance(conf, dict):
        raise GanforgeError(f"checkpoint config {where} is not a JSON object")
    model = conf.get("model")
    if not isinstance(model, dict):
        raise GanforgeError(f"checkpoint config {where} has no model section (a JSON object of the model's arguments)")
    if not isinstance(model.get("name"), str) or not model["name"]:
        raise GanforgeError(f"checkpoint config {where} names no model (model.name must be a string)")
    for key, typ in (("run", dict), ("generator_key", str), ("task", str)):
        if key in conf and not isinstance(conf[key], typ):
            raise GanforgeError(f"checkpoint config {where}: {key!r} must be a JSON {'object' if typ is dict else 'string'}")
    return conf


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
    f = ckpt / "state.pt"
    if not f.is_file():
        raise GanforgeError(f"checkpoint {ckpt} has no training state (state.pt)")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of foreign files
            warnings.simplefilter("ignore")
            state = torch.load(f, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        # Never relay PyTorch's advice to retry with weights_only=False: this file may run code when unpickled.
        raise GanforgeError(f"training state {f} is not a plain tensor file (refused to unpickle it)") from None
    except Exception as e:
        why = (str(e).strip().splitlines() or [""])[0] or type(e).__name__
        raise GanforgeError(f"unreadable training state {f}: {why}") from None
    if not isinstance(state, dict):
        raise GanforgeError(f"training state {f} is a {type(state).__name__}, not a dictionary")
    return state


def _shape(t: Any) -> str:
    return str(tuple(t.shape)) if hasattr(t, "shape") else type(t).__name__


def _listing(keys: list[str], shown: int = 3) -> str:
    more = f" (and {len(keys) - shown} more)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def describe_mismatch(module: torch.nn.Module, state_dict: dict[str, Any]) -> str:
    """How `state_dict` differs from `module`'s own: shapes, missing and unexpected keys ("" if it fits)."""
    own = module.state_dict()
    parts = []
    shapes = [k for k in own if k in state_dict and _shape(state_dict[k]) != _shape(own[k])]
    if shapes:
        k = shapes[0]
        more = f" (and {len(shapes) - 1} more)" if len(shapes) > 1 else ""
        parts.append(f"{k} has shape {_shape(state_dict[k])} in the checkpoint but {_shape(own[k])} in the model{more}")
    missing = [k for k in own if k not in state_dict]
    if missing:
        parts.append(f"missing keys: {_listing(missing)}")
    unexpected = [k for k in state_dict if k not in own]
    if unexpected:
        parts.append(f"unexpected keys: {_listing(unexpected)}")
    return "; ".join(parts)


def load_into(module: torch.nn.Module, state_dict: dict[str, Any], what: str) -> None:
    """Load state_dict into module strictly; a misfit is a GanforgeError saying what differs.

    `what` names the weights for the message, e.g. "G of checkpoint runs/x/checkpoints/step-000012".
    """
    problem = describe_mismatch(module, state_dict)
    if not problem:  # checked first, so a misfit leaves the module untouched
        try:
            module.load_state_dict(state_dict)
            return
        except RuntimeError as e:  # e.g. a value that is not a tensor
            problem = "; ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip()) or str(e)
    raise GanforgeError(f"{what} does not fit the model: {problem}")


class RunLock:
    """An exclusive lock on a run folder (its .lock file), held until release() or the process ends."""

    def __init__(self, run_dir: Path, fd: int):
        self.run_dir, self.fd = run_dir, fd

    def release(self) -> None:
        """Give the lock up (the .lock file stays: removing it would let two processes lock two files)."""
        if self.fd < 0:
            return
        _HELD_LOCKS.discard(self.run_dir)
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_run(run_dir: str | Path) -> RunLock:
    """Lock run_dir for this process; a GanforgeError when another process trains it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = run_dir.resolve()
    try:
        fd = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise GanforgeError(f"cannot open {run_dir / '.lock'}: {e.strerror}") from None
    if fcntl is None:
        _warn(f"this platform has no fcntl: {run_dir} is not locked; do not train it twice at once")
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            try:
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):  # another holder (process or lock)
                raise GanforgeError(f"run {run_dir} is being trained by another process (pid {pid})") from None
            raise GanforgeError(f"cannot lock {run_dir / '.lock'}: {e.strerror}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS.add(key)
    return RunLock(key, fd)


def clean_stale(ckpt_root: str | Path) -> list[Path]:
    """Remove what killed checkpoint writes left in ckpt_root; returns what was removed. Needs lock_run."""
    ckpt_root = Path(ckpt_root)
    if ckpt_root.parent.resolve() not in _HELD_LOCKS:
        # Without the lock a live writer's temporary folder would look exactly like a dead one's.
        raise RuntimeError(f"clean_stale({ckpt_root}) needs lock_run({ckpt_root.parent}) first")
    if not ckpt_root.is_dir():
        return []
    removed = []
    for p in sorted(ckpt_root.iterdir()):
        if p.is_symlink():
            continue  # never ours
        if (m := _OLD_DIR.match(p.name)) and p.is_dir():
            final = ckpt_root / m.group("final")
            if not final.exists() and not final.is_symlink():
                # Killed between moving the old checkpoint aside and moving the new one in: the old one is
                # the intact copy, so put it back rather than delete it.
                os.replace(p, final)
                _warn(f"restored {final} from {p.name} (a checkpoint write was interrupted)")
                continue
            shutil.rmtree(p)
        elif _TMP_DIR.match(p.name) and p.is_dir():
            shutil.rmtree(p)
        elif _TMP_LATEST.match(p.name) and p.is_file():
            p.unlink()
        else:
            continue
        removed.append(p)
    if removed:
        fsync_dir(ckpt_root)
    return removed
