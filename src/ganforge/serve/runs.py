"""The runs a server may show: found under one folder, addressed by name, never by a client's path.

A run is a folder holding `checkpoints/` (as `ganforge train` writes it) or a checkpoint folder itself
(`config.json` beside `*.safetensors`, as `ganforge import` writes it), at most MAX_DEPTH folders below
the root. Symbolic links and hidden folders are not followed, and a checkpoint whose files are links is
refused, so every weight file read lies inside the root. A nested run `group/seed0` is named `group~seed0`:
names are single URL path segments, and a name is only ever looked up in the table found by the last
scan, so a client's string never becomes a path.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GanforgeError
from ..training.checkpoint import read_config, resolve_checkpoint

MAX_DEPTH = 3
SEP = "~"  # joins the parts of a nested run's relative path into one name
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+~-]{0,199}")
PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}")


class BadName(GanforgeError):
    """A run name that cannot name a run (a path, `..`, odd characters)."""


class UnknownRun(GanforgeError):
    """A well-formed run name that was not found under the runs folder."""


@dataclass
class RunEntry:
    """One run found under the root: where it is, its newest checkpoint and that checkpoint's config."""

    name: str
    path: Path
    ckpt: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why the run cannot be used (shown in the listing)

    @property
    def family(self) -> str | None:
        """The model name the run trains (dcgan, stylegan2, ...)."""
        return (self.config.get("model") or {}).get("name")

    @property
    def kind(self) -> str | None:
        """noise, translate or upscale."""
        return self.config.get("task")

    def summary(self) -> dict[str, Any]:
        """What the run listing shows: family, kind, resolution, step (from config.json, nothing loaded)."""
        model = self.config.get("model") or {}
        out: dict[str, Any] = {"name": self.name, "family": self.family, "kind": self.kind,
                               "step": self.config.get("step"), "error": self.error}
        size = model.get("image_size")
        scale = model.get("scale")
        if self.kind == "upscale":
            out["resolution"] = model.get("hr_size") or size
            out["scale"] = int(scale) if isinstance(scale, int) else None
        else:
            out["resolution"] = size if isinstance(size, int) else None
        out["num_classes"] = int(model.get("num_classes") or 0) if isinstance(model.get("num_classes") or 0, int) else 0
        if self.ckpt is not None:
            out["checkpoint"] = self.ckpt.name
        return out


def check_name(name: str) -> str:
    """A run name as given, or a BadName error: one URL segment, no `..`, no slashes."""
    text = str(name)
    if "/" in text or "\\" in text or ".." in text or "\x00" in text:
        raise BadName(f"bad run name {text[:80]!r}: a run is named as listed by /api/runs, never by a path "
                      "(no '/', '\\' or '..')")
    if not NAME_RE.fullmatch(text):
        raise BadName(f"bad run name {text[:80]!r}: letters, digits, '_', '.', '+', '-' and '~' only (at most 200)")
    return text


def _is_checkpoint(p: Path) -> bool:
    return (p / "config.json").is_file() and any(p.glob("*.safetensors"))


def _no_links(ckpt: Path, root: Path) -> None:
    """Refuse a checkpoint outside the root or whose files are symbolic links."""
    real = ckpt.resolve()
    if real != root and root not in real.parents:
        raise GanforgeError(f"checkpoint {ckpt.name} lies outside the runs folder")
    for f in ckpt.iterdir():
        if f.is_symlink():
            raise GanforgeError(f"checkpoint {ckpt.name} holds a symbolic link ({f.name}); refused")


class RunIndex:
    """The runs under one folder, rescanned at most every `ttl` seconds."""

    def __init__(self, root: str | Path, ttl: float = 2.0, max_depth: int = MAX_DEPTH):
        self.root = Path(root)
        self.ttl, self.max_depth = float(ttl), int(max_depth)
        self._runs: dict[str, RunEntry] = {}
        self._scanned = -float("inf")
        self._lock = threading.Lock()

    def scan(self, force: bool = False) -> dict[str, RunEntry]:
        """Name -> run, from a fresh walk of the root unless the last one is younger than ttl."""
        with self._lock:
            if force or time.monotonic() - self._scanned >= self.ttl:
                self._runs = self._walk()
                self._scanned = time.monotonic()
            return dict(self._runs)

    def get(self, name: str) -> RunEntry:
        """The run of a name (checked first), or one clear error; never touches a path the client gave."""
        name = check_name(name)
        runs = self.scan()
        if name not in runs:
            runs = self.scan(force=True)  # a run that appeared since the last scan
        if name not in runs:
            known = ", ".join(sorted(runs)[:20]) or "none"
            raise UnknownRun(f"no run named {name!r} under the runs folder (found: {known})")
        entry = runs[name]
        if entry.error:
            raise GanforgeError(f"run {name!r} cannot be used: {entry.error}")
        return entry

    def _walk(self) -> dict[str, RunEntry]:
        found: dict[str, RunEntry] = {}
        if not self.root.is_dir():
            return found
        root = self.root.resolve()

        def visit(folder: Path, parts: tuple[str, ...]) -> None:
            try:
                children = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                return
            for child in children:
                if child.name.startswith(".") or not child.is_dir(follow_symlinks=False):
                    continue
                if not PART_RE.fullmatch(child.name) or SEP in child.name:
                    continue  # cannot be named safely: not served
                path = Path(child.path)
                rel = parts + (child.name,)
                if (path / "checkpoints").is_dir() and not (path / "checkpoints").is_symlink() \
                        or _is_checkpoint(path):
                    name = SEP.join(rel)
                    if name not in found and NAME_RE.fullmatch(name):
                        found[name] = self._entry(name, path, root, self.root)
                elif len(rel) < self.max_depth and child.name != "checkpoints":
                    visit(path, rel)

        visit(self.root, ())
        return found

    @staticmethod
    def _entry(name: str, path: Path, root: Path, given: Path) -> RunEntry:
        entry = RunEntry(name, path)
        try:
            ckpt = resolve_checkpoint(path)
            _no_links(ckpt, root)
            entry.ckpt = ckpt
            entry.config = read_config(ckpt)
            if entry.kind not in ("noise", "translate", "upscale"):
                raise GanforgeError(f"config.json names no known task ({entry.kind!r})")
        except GanforgeError as e:  # the message names no folder above the root
            entry.error = str(e).replace(str(root), "<runs>").replace(str(given), "<runs>")
        except OSError as e:
            entry.error = f"unreadable: {e.strerror}"
        return entry
