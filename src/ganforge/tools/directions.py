"""Linear directions in W (InterFaceGAN, Shen et al. 2020) and edits along them.

Learning: N seeded latents (seeds seed .. seed+N-1, z exactly as `io.latents(1, seed)`, no truncation)
are mapped to w; each gets a score, either from a function of its image (images [B, C, H, W] in
[-1, 1] -> scores [B]) or from a CSV of `seed,label` lines. A random 20 % of the samples is held out.
Two distinct label values: a linear SVM (scikit-learn's LinearSVC) separates them, the larger value
being the positive side, and the held-out accuracy is reported. Otherwise: ridge regression (alpha 1)
of score on w, and the held-out Pearson correlation of predicted and true scores is reported. The
direction is the unit vector of the fitted coefficients (from the training split), so moving along
+direction raises the score or moves towards the positive label.

Editing: ws + strength * std * direction on every style layer, where std is the standard deviation of
the sampled w's projections onto the direction (saved with it). Strengths are therefore in standard
deviations of W along the direction: -3..3 spans what the model usually makes.

A direction is saved as RUN/directions/NAME.pt: a plain dict of a tensor and primitives, loadable with
torch.load(weights_only=True).
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from ..errors import GanforgeError
from ..utils.atomic import atomic_write
from .style import as_ws, mapping, model_name, require_style, seed_latents, synthesize

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_SAMPLES = 10
MAX_STRENGTHS = 100
HOLDOUT = 0.2


@dataclass
class Direction:
    """A unit direction in W with its spread and how well it was fitted."""

    direction: Tensor  # [w_dim], unit norm
    std: float  # standard deviation of the sampled w's projections onto it
    mean: float  # their mean projection
    kind: str  # "regression" or "classification"
    metric: str  # "correlation" (held-out Pearson r) or "accuracy" (held-out)
    value: float
    n_train: int
    n_test: int
    source: str  # what scored the samples

    def to_dict(self) -> dict:
        """A plain dict (a tensor and primitives) for torch.save."""
        d = asdict(self)
        d["direction"] = self.direction.detach().cpu().float()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Direction":
        """The inverse of to_dict."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        """One line: the fit's quality."""
        return (f"{self.kind} on {self.n_train} samples: held-out {self.metric} {self.value:.3f} "
                f"({self.n_test} samples); std along the direction {self.std:.4g}")


def parse_strengths(text: str) -> list[float]:
    """Strengths from "start:stop:count" (evenly spaced, both ends included) or a list "-2,0,2"."""
    bad = GanforgeError(f"bad strengths {text!r}: use start:stop:count like -3:3:7, or a list like -2,0,2")
    parts = str(text).split(":")
    try:
        if len(parts) == 3:
            a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
            if not 1 <= n <= MAX_STRENGTHS:
                raise GanforgeError(f"strength count must lie in 1..{MAX_STRENGTHS}, got {n}")
            values = [a] if n == 1 else [a + (b - a) * i / (n - 1) for i in range(n)]
        elif len(parts) == 1:
            values = [float(v) for v in parts[0].split(",")]
        else:
            raise bad
    except ValueError:
        raise bad from None
    if not values or len(values) > MAX_STRENGTHS or not all(math.isfinite(v) for v in values):
        raise bad
    return values


def check_name(name: str) -> str:
    """A direction name usable as a file name (letters, digits, _ . -; at most 64)."""
    if not NAME_RE.fullmatch(str(name)):
        raise GanforgeError(f"bad direction name {name!r}: use letters, digits, '_', '.' and '-' (at most 64, "
                            f"starting with a letter or digit)")
    return str(name)


def load_score_function(spec: str) -> Callable[[Tensor], Tensor]:
    """The function FUNCTION of MODULE:FUNCTION, MODULE an importable module or a path to a .py file."""
    if ":" not in str(spec):
        raise GanforgeError(f"--score takes MODULE:FUNCTION (a module name or a file.py path), got {spec!r}")
    mod_name, fn_name = str(spec).rsplit(":", 1)
    try:
        if mod_name.endswith(".py") or "/" in mod_name or "\\" in mod_name:
            path = Path(mod_name)
            if not path.is_file():
                raise GanforgeError(f"no such score module file: {path}")
            module_spec = importlib.util.spec_from_file_location(f"_ganforge_score_{path.stem}", path)
            if module_spec is None or module_spec.loader is None:
                raise GanforgeError(f"cannot import {path} as a Python module")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_name)
    except GanforgeError:
        raise
    except Exception as e:  # a missing module or an error inside the user's module
        raise GanforgeError(f"importing score module {mod_name!r} failed: {type(e).__name__}: {e}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise GanforgeError(f"score module {mod_name!r} has no function {fn_name!r}")
    return fn


def read_labels(path: str | Path) -> dict[int, float]:
    """seed -> label from a CSV of `seed,label` lines (a header line is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no such labels file: {path}")
    out: dict[int, float] = {}
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise GanforgeError(f"cannot read labels file {path}: {e}") from None
    for i, row in enumerate(rows, 1):
        try:
            if len(row) != 2:
                raise ValueError
            seed, label = int(row[0]), float(row[1])
        except ValueError:
            if i == 1:
                continue  # a header
            raise GanforgeError(f"{path} line {i}: expected `seed,label` (integer seed, numeric label), "
                                f"got {','.join(row)!r}") from None
        if seed < 0 or not math.isfinite(label):
            raise GanforgeError(f"{path} line {i}: seeds must be >= 0 and labels finite, got {','.join(row)!r}")
        out[seed] = label
    return out


def _split(n: int, seed: int, holdout: float) -> tuple[Tensor, Tensor]:
    n_test = max(2, round(n * holdout))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) + 1))
    return perm[n_test:], perm[:n_test]


def fit_direction(w: Tensor, values: Tensor, seed: int = 0, holdout: float = HOLDOUT) -> tuple[Tensor, str, str, float, int, int]:
    """(unit direction, kind, metric, held-out value, n_train, n_test) of a linear fit of values on w [N, w_dim]."""
    import numpy as np

    n = w.shape[0]
    if n < MIN_SAMPLES:
        raise GanforgeError(f"learning a direction needs at least {MIN_SAMPLES} samples, got {n}")
    x = w.double().numpy()
    v = values.double().numpy()
    classes = np.unique(v)
    if len(classes) < 2:
        raise GanforgeError(f"every sample has the same score ({classes[0]:g}): nothing to learn")
    train, test = (i.numpy() for i in _split(n, seed, holdout))
    if len(classes) == 2:
        from sklearn.svm import LinearSVC

        yb = (v == classes[1]).astype(int)
        if len(np.unique(yb[train])) < 2:
            raise GanforgeError("the training split holds one label only: give more samples of each label")
        model = LinearSVC(C=1.0, max_iter=20000).fit(x[train], yb[train])
        coef = model.coef_[0]
        kind, metric, value = "classification", "accuracy", float((model.predict(x[test]) == yb[test]).mean())
    else:
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=1.0).fit(x[train], v[train])
        coef = model.coef_
        pred = model.predict(x[test])
        kind, metric = "regression", "correlation"
        value = float(np.corrcoef(pred, v[test])[0, 1]) if pred.std() > 0 and v[test].std() > 0 else 0.0
    norm = float(np.linalg.norm(coef))
    if not norm > 0:
        raise GanforgeError("the fit found no direction (all coefficients are zero)")
    return torch.from_numpy(coef / norm).float(), kind, metric, value, len(train), len(test)


def _scores(score_fn: Callable, images: Tensor) -> Tensor:
    try:
        out = score_fn(images)
    except Exception as e:
        raise GanforgeError(f"the score function failed: {type(e).__name__}: {e}") from None
    try:
        s = torch.as_tensor(out.detach().cpu() if isinstance(out, Tensor) else out, dtype=torch.float64).reshape(-1)
    except Exception:
        raise GanforgeError(f"the score function must return numbers [N], got {type(out).__name__}") from None
    if s.numel() != images.shape[0] or not torch.isfinite(s).all():
        raise GanforgeError(f"the score function must return {images.shape[0]} finite scores for "
                            f"{images.shape[0]} images, got {s.numel()} values")
    return s


@torch.no_grad()
def learn_direction(gen, score_fn: Callable[[Tensor], Tensor] | None = None, n: int = 1000,
                    labels: Mapping[int, float] | str | Path | None = None, seed: int = 0,
                    holdout: float = HOLDOUT, batch_size: int = 64, source: str = "",
                    class_label: int | None = None) -> Direction:
    """Learn a unit direction in W from a score function of images or from `seed -> label` labels."""
    require_style(gen, "learning a direction")
    if (score_fn is None) == (labels is None):
        raise GanforgeError("give either a score function or labels")
    if not 0 < holdout < 1:
        raise GanforgeError(f"holdout must lie in (0, 1), got {holdout}")
    if labels is not None:
        table = read_labels(labels) if isinstance(labels, (str, Path)) else dict(labels)
        seeds = sorted(table)
        values = torch.tensor([float(table[s]) for s in seeds], dtype=torch.float64)
        source = source or (f"labels:{labels}" if isinstance(labels, (str, Path)) else "labels")
    else:
        if n < MIN_SAMPLES:
            raise GanforgeError(f"learning a direction needs at least {MIN_SAMPLES} samples, got {n}")
        seeds = list(range(int(seed), int(seed) + int(n)))
        source = source or f"score:{getattr(score_fn, '__name__', 'function')}"
    if len(seeds) < MIN_SAMPLES:
        raise GanforgeError(f"learning a direction needs at least {MIN_SAMPLES} samples, got {len(seeds)}")
    label = 0 if gen.io.num_classes and class_label is None else class_label  # one class for every sample
    z, y = seed_latents(gen, seeds, label)
    ws = mapping(gen, z, y)  # no truncation: the direction lives in the model's own distribution
    if score_fn is not None:
        values = torch.cat([_scores(score_fn, synthesize(gen, ws[i:i + batch_size]).clamp(-1, 1))
                            for i in range(0, len(seeds), batch_size)])
    w = ws[:, 0].cpu()
    d, kind, metric, value, n_train, n_test = fit_direction(w, values, seed, holdout)
    proj = w.double() @ d.double()
    return Direction(d, float(proj.std()), float(proj.mean()), kind, metric, value, n_train, n_test, source)


def run_root(gen) -> Path:
    """The run folder of a loaded generator (its checkpoint folder when it is not inside a run)."""
    p = Path(gen.path)
    if p.parent.name == "checkpoints" and (p.parent.parent / "config.yaml").is_file():
        return p.parent.parent
    return p


def list_directions(gen) -> list[str]:
    """Names of the directions saved for a run."""
    folder = run_root(gen) / "directions"
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


def save_direction(gen, direction: Direction, name: str) -> Path:
    """Save a direction as RUN/directions/NAME.pt."""
    path = run_root(gen) / "directions" / f"{check_name(name)}.pt"
    info = dict(direction.to_dict(), model=model_name(gen), w_dim=int(direction.direction.numel()))
    return atomic_write(path, lambda tmp: torch.save(info, tmp))


def load_direction(gen, name: str) -> Direction:
    """The direction NAME saved for a run, or one clear error listing the known ones."""
    path = run_root(gen) / "directions" / f"{check_name(name)}.pt"
    if not path.is_file():
        known = list_directions(gen)
        raise GanforgeError(f"unknown direction {name!r} for {run_root(gen)} (" + (
            f"known: {', '.join(known)})" if known else "none learnt yet: run `ganforge direction` first)"))
    try:
        d = Direction.from_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:
        raise GanforgeError(f"cannot read direction file {path}: {type(e).__name__}: {e}") from None
    if d.direction.numel() != gen.net.w_dim:
        raise GanforgeError(f"direction {name!r} has {d.direction.numel()} dimensions, this model's W has "
                            f"{gen.net.w_dim}")
    return d


@torch.no_grad()
def edit(gen, w: Tensor, direction: Direction | Tensor, strengths: Sequence[float], scale: float | None = None,
         noise: Mapping[str, Tensor] | None = None) -> Tensor:
    """Images [S, C, H, W] of ws + strength * scale * direction for each strength, in order.

    w: one latent ([w_dim], [1, w_dim] or ws [1, num_ws, w_dim]); scale: the direction's std when it is a
    Direction, else 1; noise: const noise maps (from a projection) to render with."""
    from .projection import noise_maps

    require_style(gen, "editing")
    ws = as_ws(gen, w)
    if ws.shape[0] != 1:
        raise GanforgeError(f"edit takes one latent, got {ws.shape[0]}")
    if not len(strengths):
        raise GanforgeError("no strengths given")
    d = direction.direction if isinstance(direction, Direction) else torch.as_tensor(direction).float()
    if scale is None:
        scale = direction.std if isinstance(direction, Direction) else 1.0
    if d.shape != (gen.net.w_dim,):
        raise GanforgeError(f"a direction must have shape [{gen.net.w_dim}], got {list(d.shape)}")
    s = torch.tensor([float(v) for v in strengths], dtype=torch.float32)
    batch = ws + (s * float(scale))[:, None, None] * d.float()[None, None]
    with noise_maps(gen, dict(noise) if noise else None):
        return synthesize(gen, batch)
