"""The Python API behind `import ganforge`: train, load, sample, create_model, list_models, and the StyleGAN
tools (style_mix_grid, interpolate, project, learn_direction, edit)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from torch import Tensor

from .config import RunConfig, config_for, load_preset, apply_overrides, resolve
from .errors import GanforgeError
from .pretrained import LoadedGenerator, load
from .registry import create_model, model_names, recipe_names
from .training.checkpoint import read_config, resolve_checkpoint, step_dirs
from .tools.directions import Direction, edit, learn_direction
from .tools.interpolation import interpolate
from .tools.projection import Projection, project
from .tools.style import style_mix_grid


def list_models() -> list[str]:
    """Names of every registered model family."""
    return model_names()


def list_recipes() -> list[str]:
    """Names of every registered training recipe."""
    return recipe_names()


def _as_overrides(overrides: list[str] | dict[str, Any] | None, kwargs: dict[str, Any]) -> list[str]:
    items = list(overrides.items()) if isinstance(overrides, dict) else []
    out = [o for o in overrides] if isinstance(overrides, (list, tuple)) else []
    items += list(kwargs.items())
    import yaml

    out += [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in items]
    return out


MAX_NAME_SUFFIX = 1000
_reserved: set[Path] = set()  # run folders plan_run created here for a default name (see discard_reserved)


def reserve_run_dir(runs_dir: Path, base: str) -> Path:
    """Create runs_dir/base, or base-2, base-3, ... if taken: an exclusive mkdir, so two runs never share."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GanforgeError(f"cannot create the runs folder {runs_dir}: {e.strerror}") from None
    for i in range(1, MAX_NAME_SUFFIX + 1):
        cand = runs_dir / (base if i == 1 else f"{base}-{i}")
        try:
            os.mkdir(cand)  # fails if it exists, even when another process created it a moment ago
        except FileExistsError:
            continue
        except OSError as e:
            raise GanforgeError(f"cannot create the run folder {cand}: {e.strerror}") from None
        _reserved.add(cand)
        return cand
    raise GanforgeError(f"{runs_dir} already holds {base} and {MAX_NAME_SUFFIX - 1} numbered copies: "
                        f"choose a --name")


def discard_reserved(run_dir: Path) -> None:
    """Remove a run folder reserved by plan_run if it is still empty (the run failed before it began)."""
    if run_dir in _reserved:
        _reserved.discard(run_dir)
        try:
            run_dir.rmdir()  # only succeeds while empty: never removes anything the run wrote
        except OSError:
            pass


def _multi_process() -> bool:
    # torchrun's variable; read here rather than through training.distributed to keep torch unimported.
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def plan_run(target: str | None = None, data: str | None = None, overrides: list[str] | dict | None = None,
             name: str | None = None, resume: str | Path | bool | None = None, runs_dir: str | None = None,
             reserve: bool = True, **kwargs: Any) -> tuple[RunConfig, Path, Path | None]:
    """Resolve the config, run folder and checkpoint to resume from, without training.

    Without a name the run is called <preset>-<timestamp> and, unless reserve=False (--dry-run), its
    folder is created at once, with a -2, -3, ... suffix when that name is taken.
    """
    ov = _as_overrides(overrides, kwargs)
    if runs_dir is not None:
        ov.append(f"train.runs_dir={runs_dir}")
    if resume:
        if resume is True:
            if not name:
                raise GanforgeError("--resume without a path needs --name (the run to continue)")
            cfg0 = config_for(target or "dcgan", ov, data)
            run_dir = Path(cfg0.train.runs_dir) / name
        else:
            p = Path(resume)
            if not p.exists():
                raise GanforgeError(f"no such run or checkpoint: {p}")
            run_dir = p if (p / "config.yaml").is_file() else p.parent.parent
        ckpt = resolve_checkpoint(resume if resume is not True else run_dir)
        if not (run_dir / "config.yaml").is_file():
            raise GanforgeError(f"{run_dir} has no config.yaml: not a ganforge run folder")
        raw = load_preset(str(run_dir / "config.yaml"))
        if target and resume is not True:
            want = config_for(target).model["name"]
            have = (read_config(ckpt).get("model") or {}).get("name")
            if want != have:
                raise GanforgeError(f"checkpoint {ckpt} is of model {have!r}, not {want!r} ({target})")
        if data is not None:
            raw.setdefault("data", {})["source"] = data
        cfg = resolve(apply_overrides(raw, ov), preset=raw.get("preset", ""))
        return cfg, run_dir, ckpt
    cfg = config_for(target or "dcgan", ov, data)
    run_name = name or cfg.train.name
    if run_name:
        run_dir = Path(cfg.train.runs_dir) / run_name
    else:
        base = f"{cfg.preset or cfg.model['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
        if not reserve:
            run_dir = Path(cfg.train.runs_dir) / base
        elif _multi_process():
            # Each process would reserve a folder of its own; they can only agree on a name given to all.
            raise GanforgeError("a multi-process (torchrun) run needs a --name, so that every process "
                                "writes to the same run folder")
        else:
            run_dir = reserve_run_dir(Path(cfg.train.runs_dir), base)
        run_name = run_dir.name
    cfg.train.name = run_name
    if step_dirs(run_dir / "checkpoints"):
        raise GanforgeError(f"run folder {run_dir} already has checkpoints: add --resume to continue it, "
                            f"or choose another --name")
    return cfg, run_dir, None


def train(target: str | None = None, data: str | None = None, overrides: list[str] | dict | None = None,
          name: str | None = None, resume: str | Path | bool | None = None, runs_dir: str | None = None,
          echo=print, **kwargs: Any) -> Path:
    """Train a model or preset (e.g. "dcgan", "wgan-gp") and return its run folder.

    Extra keyword arguments are config overrides: train(steps=500) == `ganforge train dcgan steps=500`.
    """
    from .training.loop import Trainer

    cfg, run_dir, ckpt = plan_run(target, data, overrides, name, resume, runs_dir, **kwargs)
    try:
        trainer = Trainer(cfg, run_dir, resume=ckpt, echo=echo)
    except BaseException:
        discard_reserved(run_dir)
        raise
    return trainer.run()


def sample(path: str | Path, n: int = 64, seed: int = 0, labels: Tensor | int | None = None,
           ema: bool = True, device: str = "cpu", psi: float = 1.0) -> Tensor:
    """n images in [-1, 1] from a trained run or checkpoint (psi != 1: StyleGAN truncation)."""
    return load(path, ema=ema, device=device).sample(n, seed, labels, psi=psi)


__all__ = ["Direction", "LoadedGenerator", "Projection", "create_model", "edit", "interpolate", "learn_direction",
           "list_models", "list_recipes", "load", "plan_run", "project", "sample", "style_mix_grid", "train"]
