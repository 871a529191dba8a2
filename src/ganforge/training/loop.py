"""The generic training loop. It never knows which GAN it trains: the recipe does the game, the loop
does data order, EMA, logging, snapshots, checkpoints, resume, NaN recovery and signals."""
from __future__ import annotations

import copy
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .. import __version__
from ..config import RunConfig
from ..errors import GanforgeError, TrainingDiverged
from ..registry import create_model, recipe_class
from ..utils.atomic import atomic_write_text
from ..utils.images import save_grid
from . import checkpoint as ck
from .batches import Batches
from .device import pick_device
from .ema import EMA
from .logging import MetricsLog, plot_losses


class Interrupted(Exception):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, step: int, ckpt: Path):
        super().__init__(f"interrupted at step {step}; checkpoint saved to {ckpt}")
        self.step, self.ckpt = step, ckpt


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python RNGs."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def checkpoint_config(cfg: RunConfig, models, step: int) -> dict[str, Any]:
    """What config.json records: enough to rebuild every net without pickle."""
    return {
        "ganforge_version": __version__,
        "model": cfg.model,
        "generator_key": models.generator_key,
        "task": models.task,
        "step": step,
        "run": cfg.to_dict(),
    }


class Trainer:
    """Runs one training run in `run_dir`, optionally resuming from a checkpoint folder."""

    def __init__(self, cfg: RunConfig, run_dir: Path, resume: Path | None = None, echo=print):
        self.cfg, self.run_dir, self.resume, self.echo = cfg, Path(run_dir), resume, echo
        self.rank, self.world = _dist_info()
        self.main = self.rank == 0
        t = cfg.train
        self.device = pick_device(t.device)
        seed_everything(t.seed)  # the same initial weights on every rank
        model_args = {k: v for k, v in cfg.model.items() if k != "name"}
        self.models = create_model(cfg.model["name"], **model_args).to(self.device)
        if self.world > 1:
            for net in self.models.nets.values():
                for tensor in [*net.parameters(), *net.buffers()]:
                    dist.broadcast(tensor.data, 0)
        seed_everything(t.seed + self.rank)  # different noise on every rank
        rcls = recipe_class(cfg.recipe["name"])
        rcfg = rcls.Config(**{k: v for k, v in cfg.recipe.items() if k != "name"})
        self.recipe = rcls(self.models, rcfg, self.device, amp=t.amp)
        self.recipe.attach(t)
        self.dataset = self.recipe.build_dataset(cfg.data)
        self.ema = EMA({k: self.models.nets[k] for k in self.recipe.ema_targets()}, t.ema) if t.ema > 0 else None
        self.step = 0
        self.failures = 0
        self._eval_best: float | None = None
        if resume is not None:
            self._load(resume)
        try:
            self.batches = Batches(self.dataset, t.batch_size, t.seed, cfg.data.num_workers, cfg.data.flip,
                                   self.rank, self.world)
        except ValueError as e:
            raise GanforgeError(str(e)) from None
        self.fixed = self.recipe.fixed_inputs(t.n_samples, t.seed, self.dataset)
        self._stop_signal: int | None = None
        self._good: dict[str, Any] | None = None
        self.evaluator = None
        if t.eval_every > 0 and self.main:
            from .evaluation import TrainingEvaluator

            self.evaluator = TrainingEvaluator(cfg, self.recipe, self.device, echo=echo)
            self.evaluator.best = self._eval_best

    # ---- state ------------------------------------------------------------------------------------
    def _weights(self) -> dict[str, dict[str, torch.Tensor]]:
        w = {k: net.state_dict() for k, net in self.models.nets.items()}
        if self.ema is not None:
            w.update({f"{k}_ema": sd for k, sd in self.ema.state_dicts().items()})
        return w

    def _state(self) -> dict[str, Any]:
        rng = ck.rng_state()
        if self.world > 1:
            all_rng: list[Any] = [None] * self.world
            dist.all_gather_object(all_rng, rng)
        else:
            all_rng = [rng]
        best = self.evaluator.best if self.evaluator is not None else self._eval_best
        return {"step": self.step, "recipe": self.recipe.training_state(), "rng": all_rng,
                "failures": self.failures, "ema_decay": self.cfg.train.ema, "eval_best": best}

    def save(self, name: str | None = None) -> Path:
        """Write a checkpoint of the current step, or checkpoints/NAME (rank 0 writes; all ranks take part)."""
        state = self._state()
        path = self.run_dir / "checkpoints" / (name or f"step-{self.step:06d}")
        if self.main:
            path = ck.save_checkpoint(self.run_dir / "checkpoints", self.step, self._weights(),
                                      checkpoint_config(self.cfg, self.models, self.step), state,
                                      keep=self.cfg.train.keep_ckpts, name=name)
        if self.world > 1:
            dist.barrier()
        return path

    def _load(self, ckpt: Path) -> None:
        conf = ck.read_config(ckpt)
        if conf.get("model", {}).get("name") != self.cfg.model["name"]:
            raise GanforgeError(
                f"checkpoint {ckpt} is of model {conf.get('model', {}).get('name')!r}, not {self.cfg.model['name']!r}")
        for k, net in self.models.nets.items():
            try:
                net.load_state_dict(ck.load_weights(ckpt, k))
            except RuntimeError as e:
                raise GanforgeError(f"checkpoint {ckpt} does not fit this model ({k}): {str(e).splitlines()[0]}") from None
        if self.ema is not None:
            names = [f"{k}_ema" for k in self.ema.shadows]
            if all((ckpt / f"{n}.safetensors").is_file() for n in names):
                self.ema.load_state_dicts({k: ck.load_weights(ckpt, f"{k}_ema") for k in self.ema.shadows})
            else:
                self.ema = EMA({k: self.models.nets[k] for k in self.ema.shadows}, self.cfg.train.ema)
        state = ck.load_state(ckpt)
        self.recipe.load_training_state(state["recipe"])
        self.step = int(state["step"])
        self.failures = int(state.get("failures", 0))
        self._eval_best = state.get("eval_best")
        rngs = state["rng"]
        ck.set_rng_state(rngs[self.rank] if self.rank < len(rngs) else rngs[0])

    def _remember_good(self) -> None:
        self._good = {
            "nets": {k: copy.deepcopy(n.state_dict()) for k, n in self.models.nets.items()},
            "opt": copy.deepcopy(self.recipe.training_state()),
            "ema": copy.deepcopy(self.ema.state_dicts()) if self.ema is not None else None,
        }

    def _restore_good(self) -> None:
        g = self._good
        for k, n in self.models.nets.items():
            n.load_state_dict(g["nets"][k])
        lrs = {k: [grp["lr"] for grp in o.param_groups] for k, o in self.recipe.optimizers.items()}
        self.recipe.load_training_state(g["opt"])
        for k, o in self.recipe.optimizers.items():  # keep the lowered learning rates
            for grp, lr in zip(o.param_groups, lrs[k]):
                grp["lr"] = lr
        if self.ema is not None and g["ema"] is not None:
            self.ema.load_state_dicts(g["ema"])

    # ---- snapshots --------------------------------------------------------------------------------
    def snapshot(self, log: MetricsLog) -> None:
        """Sample grid from the fixed inputs (EMA nets when kept) and the loss plot."""
        nets = dict(self.models.nets)
        if self.ema is not None:
            nets.update(self.ema.shadows)
        images, nrow = self.recipe.render(nets, self.fixed)
        save_grid(images, self.run_dir / "samples" / f"step-{self.step:06d}.png", nrow=nrow)
        plot_losses(log.history, self.run_dir / "losses.png")

    # ---- the loop ---------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        if self._stop_signal is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_signal = signum

    def run(self) -> Path:
        """Train until train.steps; returns the run folder."""
        t = self.cfg.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.main:
            atomic_write_text(self.run_dir / "config.yaml", self.cfg.to_yaml())
        log = MetricsLog(self.run_dir / "metrics.jsonl", resume_step=self.step if self.resume else None,
                         tensorboard_dir=(self.run_dir / "tb") if (t.tensorboard and self.main) else None) \
            if self.main else None
        handlers = {}
        if threading_main():
            for s in (signal.SIGINT, signal.SIGTERM):
                handlers[s] = signal.signal(s, self._on_signal)
        try:
            return self._run(log)
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            if log is not None:
                log.close()

    def _run(self, log: MetricsLog | None) -> Path:
        t = self.cfg.train
        bps = self.recipe.batches_per_step
        stream = self.batches.iterate(self.step * bps)
        bar = _progress(t.steps, self.step, enabled=t.progress and self.main)
        window: dict[str, list[float]] = {}
        tick, tick_step, started = time.perf_counter(), self.step, time.perf_counter()
        self._remember_good()
        last_saved = self.step if self.resume else -1
        try:
            while self.step < t.steps:
                batches = [_to(next(stream), self.device) for _ in range(bps)]
                before = self.recipe.nonfinite_steps
                losses = self.recipe.step(batches)
                bad = self.recipe.nonfinite_steps > before or not all(
                    math.isfinite(v) for k, v in losses.items() if k.startswith("loss"))
                if bad:
                    self._recover(losses)
                    continue
                self.recipe.end_of_step(self.step)
                self.step += 1
                if self.ema is not None and self.step > t.ema_start:
                    # Warm-up (as TF's ExponentialMovingAverage with num_updates): early on the average
                    # would otherwise be dominated by the random initial weights.
                    n = self.step - t.ema_start
                    self.ema.update(self.models.nets, min(t.ema, (1 + n) / (10 + n)))
                for k, v in losses.items():
                    window.setdefault(k, []).append(v)
                if bar is not None:
                    bar.update(1)
                if self.step % t.log_every == 0 or self.step == t.steps:
                    now = time.perf_counter()
                    rate = (self.step - tick_step) * t.batch_size * bps * self.world / max(now - tick, 1e-9)
                    rec = {"step": self.step, "epoch": self.step * bps // self.batches.per_epoch,
                           "time_s": round(now - started, 3), "images_per_s": round(rate, 1),
                           **{k: sum(v) / len(v) for k, v in window.items()},
                           **{f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.recipe.optimizers.items()}}
                    if log is not None:
                        log.log(rec)
                    if bar is not None:
                        bar.set_postfix({k: f"{rec[k]:.3f}" for k in rec if k.startswith("loss_")}, refresh=False)
                    window, tick, tick_step = {}, now, self.step
                    self._remember_good()
                if self.main and (self.step % t.sample_every == 0 or self.step == t.steps):
                    self.snapshot(log)
                if t.eval_every > 0 and self.step % t.eval_every == 0:
                    self._evaluate(log)
                if self.step % t.ckpt_every == 0 or self.step == t.steps:
                    self.save()
                    last_saved = self.step
                if self._stop_signal is not None:
                    break
        finally:
            if bar is not None:
                bar.close()
        if self._stop_signal is not None:
            ckpt = self.run_dir / "checkpoints" / f"step-{self.step:06d}"
            if last_saved != self.step:
                ckpt = self.save()
            raise Interrupted(self.step, ckpt)
        if last_saved != self.step:
            self.save()
        return self.run_dir

    def _evaluate(self, log: MetricsLog | None) -> None:
        best = False
        if self.evaluator is not None:
            nets = dict(self.models.nets)
            if self.ema is not None:
                nets.update(self.ema.shadows)
            values, best = self.evaluator(nets)
            log.log({"step": self.step, **values})
            self.echo(f"step {self.step}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
                      + ("  (best so far)" if best else ""), file=sys.stderr)
        if self.world > 1:
            flag = [best]
            dist.broadcast_object_list(flag, 0)
            best = flag[0]
        if best:
            self.save("best")

    def _recover(self, losses: dict[str, float]) -> None:
        t = self.cfg.train
        self.failures += 1
        shown = ", ".join(f"{k}={v}" for k, v in losses.items() if k.startswith("loss"))
        if self.failures >= t.max_nan_failures:
            raise TrainingDiverged(
                f"training diverged: non-finite loss at step {self.step + 1} ({shown}), {self.failures} times; "
                f"checkpoints in {self.run_dir / 'checkpoints'} are intact")
        self._restore_good()
        self.recipe.scale_lr(t.nan_lr_factor)
        if self.main:
            self.echo(f"warning: non-finite loss at step {self.step + 1} ({shown}); update skipped, "
                      f"restored the last good state, learning rates x{t.nan_lr_factor} "
                      f"({self.failures}/{t.max_nan_failures})", file=sys.stderr)


def threading_main() -> bool:
    """True in the main thread, where signal handlers may be installed."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=0.5 if tty else 30,
                file=sys.stderr)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
