"""The Python API behind `import ganforge`: train, load, sample, create_model, list_models."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from torch import Tensor

from .config import RunConfig, config_for, load_preset, apply_overrides, resolve
from .errors import GanforgeError
from .pretrained import LoadedGenerator, load
from .registry import create_model, model_names, recipe_names
from .training.checkpoint import read_config, resolve_checkpoint, step_dirs


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


def plan_run(target: str | None = None, data: str | None = None, overrides: list[str] | dict | None = None,
             name: str | None = None, resume: str | Path | bool | None = None, runs_dir: str | None = None,
             **kwargs: Any) -> tuple[RunConfig, Path, Path | None]:
    """Resolve the config, run folder and checkpoint to resume from, without training."""
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
    run_name = name or cfg.train.name or f"{cfg.preset or cfg.model['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg.train.name = run_name
    run_dir = Path(cfg.train.runs_dir) / run_name
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
    return Trainer(cfg, run_dir, resume=ckpt, echo=echo).run()


def sample(path: str | Path, n: int = 64, seed: int = 0, labels: Tensor | int | None = None,
           ema: bool = True, device: str = "cpu") -> Tensor:
    """n images in [-1, 1] from a trained run or checkpoint."""
    return load(path, ema=ema, device=device).sample(n, seed, labels)


__all__ = ["LoadedGenerator", "create_model", "list_models", "list_recipes", "load", "plan_run", "sample", "train"]
