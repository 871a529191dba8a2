"""The generic training loop. It never knows which GAN it trains: the recipe does the game, the loop does
the data stream, DDP wrappers, EMA, logging, snapshots, checkpoints, resume, NaN recovery and signals.

Counters (checkpointed, rolled back together with the networks after a non-finite loss):
  step         completed steps
  images_seen  real images consumed by completed steps, all ranks together (throughput, EMA ramp-ups)
  cursor       position in the data stream; it also advances over retried steps, so a retry sees new data
  failures     non-finite steps so far (it salts the retry's noise)
"""
from __future__ import annotations

import copy
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..config import RunConfig
from ..errors import GanforgeError, TrainingDiverged
from ..recipes.context import StepContext
from ..registry import create_model, recipe_class
from ..utils.atomic import atomic_write_text
from ..utils.images import save_grid
from . import checkpoint as ck
from . import distributed as ddp
from .batches import Batches
from . import graphs, speed
from .device import pick_device, resolve_amp
from .ema import EMA
from .logging import MetricsLog, plot_losses


class Interrupted(Exception):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, step: int, ckpt: Path):
        super().__init__(f"interrupted at step {step}; checkpoint saved to {ckpt}")
        self.step, self.ckpt = step, ckpt


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
        "io_roles": models.io.roles,
        "step": step,
        "run": cfg.to_dict(),
    }


def _cpu_copy(obj: Any) -> Any:
    """A deep copy with every tensor in CPU memory (the rollback copy must not double GPU memory)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


class Trainer:
    """Runs one training run in `run_dir`, optionally resuming from a checkpoint folder."""

    def __init__(self, cfg: RunConfig, run_dir: Path, resume: Path | None = None, echo=print):
        self.cfg, self.run_dir, self.resume, self.echo = cfg, Path(run_dir), resume, echo
        t = cfg.train
        self.dist = ddp.init_distributed(t.device, t.dist_timeout)
        self.rank, self.world = self.dist.rank, self.dist.world
        self.main = self.rank == 0
        self.device = pick_device(t.device, self.dist.local_rank)
        speed.set_threads(t.threads)
        self.amp_dtype = resolve_amp(self.device, t.amp, warn=self._warn, note=self._note)
        seed_everything(t.seed)  # the same initial weights on every rank
        model_args = {k: v for k, v in cfg.model.items() if k != "name"}
        self.models = create_model(cfg.model["name"], **model_args).to(self.device)
        # NHWC before the optimizers and the EMA copy exist, so their state takes the same layout.
        self.channels_last = speed.use_channels_last(t.channels_last, self.models.nets.values(), t.compile,
                                                     self._note)
        if self.channels_last:
            speed.to_channels_last(self.models.nets.values())
        if t.init_from and resume is None:
            self._init_from(t.init_from, t.init_nets)
        if t.sync_bn and self.device.type != "cuda":
            raise GanforgeError("train.sync_bn needs CUDA devices: PyTorch's SyncBatchNorm does not run on "
                                f"{self.device.type}")
        if t.sync_bn and (cfg.recipe.get("gp_weight") or 0) > 0:
            raise GanforgeError("train.sync_bn cannot be combined with a gradient penalty (its double backward "
                                "through SyncBatchNorm is not supported)")
        if t.sync_bn and self.world > 1:
            n = ddp.convert_sync_bn(self.models.nets)
            if self.main:
                self._note(f"SyncBatchNorm: {n} BatchNorm layer(s) normalise over the global batch")
        seed_everything(t.seed + self.rank)  # different augmentation draws on every rank
        rcls = recipe_class(cfg.recipe["name"])
        rcfg = rcls.Config(**{k: v for k, v in cfg.recipe.items() if k != "name"})
        self.recipe = rcls(self.models, rcfg, self.device, amp=self.amp_dtype)
        self.recipe.attach(t)
        for message in self.recipe.training_notes():  # rank 0 only, and never when evaluating
            self._note(f"note: {message}")
        self.dataset = self.recipe.build_dataset(cfg.data)
        targets = self.recipe.ema_targets()
        self.ema = EMA({k: self.models.nets[k] for k in targets}, t.ema) if t.ema > 0 else None
        self.step = self.images_seen = self.cursor = self.failures = 0
        self._eval_best: float | None = None
        if resume is not None:
            self._load(resume)
        else:
            self.recipe.apply_hparams(0)
        # DDP wrappers after the weights are final: construction broadcasts rank 0's parameters.
        self.recipe.wrap(lambda net, **kw: ddp.wrap(net, self.device, **kw))
        self.batches = Batches(self.dataset, t.seed, cfg.data.num_workers, cfg.data.flip, self.rank, self.world,
                               pin_memory=self.device.type == "cuda")
        self.batches.check_batch(self._context().batch_size)
        if self.batches.tensors is not None and speed.data_on_device(t.data_on_device, self.device,
                                                                     self.batches.nbytes()):
            self.batches.to_device(self.device)
        self.compiled = speed.compile_nets(self.recipe.compile_targets(), t.compile, self.device, self._note)
        self.graphs = graphs.setup(t.cuda_graphs, self.recipe, self.device, self.world, self.compiled, self._note)
        self._stream, self._stream_at = None, (-1, -1)
        self.fixed = self.recipe.fixed_inputs(t.n_samples, t.seed, self.dataset)
        self._stop_signal: int | None = None
        self._good: dict[str, Any] | None = None
        self.evaluator = None
        if t.eval_every > 0 and self.main:
            self.evaluator = self.recipe.make_evaluator(cfg, echo=echo)
            self.evaluator.best = self._eval_best

    def _note(self, message: str) -> None:
        if self.main:
            self.echo(f"ganforge: {message}", file=sys.stderr)

    def _warn(self, message: str) -> None:
        self._note(f"warning: {message}")

    # ---- staged training ------------------------------------------------------------------------------
    def _init_from(self, source: str, names: str) -> None:
        """Take the weights of some nets from another run (SRGAN after SRResNet, fine-tuning); fresh optimizers."""
        path = ck.resolve_checkpoint(source)
        conf = ck.read_config(path)
        have = [k for k in self.models.nets if (path / f"{k}.safetensors").is_file()]
        wanted = [n.strip() for n in names.split(",") if n.strip()] if names else have
        unknown = [n for n in wanted if n not in self.models.nets]
        if unknown:
            raise GanforgeError(f"train.init_nets names {', '.join(unknown)}, which model {self.cfg.model['name']!r} "
                                f"does not have (nets: {', '.join(self.models.nets)})")
        missing = [n for n in wanted if n not in have]
        if missing or not wanted:
            raise GanforgeError(f"{path} has no weights for {', '.join(missing) or 'any net of this model'} "
                                f"(it holds {', '.join(p.stem for p in sorted(path.glob('*.safetensors')))})")
        for n in wanted:
            ck.load_into(self.models.nets[n], ck.load_weights(path, n), f"{n} from {path}")
        # Weights can fit while the model differs in an argument without weights (SRResNet's bicubic skip):
        # then the loaded net computes something else than it was trained to.
        theirs = {k: v for k, v in (conf.get("model") or {}).items() if k != "name"}
        differ = [f"model.{k}={theirs[k]!r} there, {v!r} here" for k, v in self.cfg.model.items()
                  if k in theirs and theirs[k] != v]
        if differ:
            self._warn(f"{path} was trained with other model settings: {'; '.join(differ)}")
        self._note(f"initialised {', '.join(wanted)} from {path} ({(conf.get('model') or {}).get('name')}, "
                   f"step {conf.get('step')}); optimizers start fresh")

    # ---- state ------------------------------------------------------------------------------------
    def _weights(self) -> dict[str, dict[str, torch.Tensor]]:
        w = {k: net.state_dict() for k, net in self.models.nets.items()}
        if self.ema is not None:
            w.update({f"{k}_ema": sd for k, sd in self.ema.state_dicts().items()})
        return w

    def _counters(self) -> dict[str, int]:
        return {"step": self.step, "images_seen": self.images_seen, "cursor": self.cursor, "failures": self.failures}

    def _state(self) -> dict[str, Any]:
        best = self.evaluator.best if self.evaluator is not None else self._eval_best
        return {**self._counters(), "recipe": self.recipe.training_state(), "rng": ddp.gather_objects(ck.rng_state()),
                "world": self.world, "ema_decay": self.cfg.train.ema, "eval_best": best}

    def _sync(self) -> None:
        """Average the ranks' buffers (BatchNorm statistics) before anything reads or saves them."""
        if self.world > 1:
            mods = list(self.models.nets.values()) + (list(self.ema.shadows.values()) if self.ema else [])
            ddp.sync_buffers(mods)

    def save(self, name: str | None = None) -> Path:
        """Write a checkpoint of the current step, or checkpoints/NAME (rank 0 writes; all ranks take part)."""
        self._sync()
        self._sample_nets()  # the saved generator is the one sampling would use (e.g. BigGAN's standing statistics)
        state = self._state()
        path = self.run_dir / "checkpoints" / (name or f"step-{self.step:06d}")
        if self.main:
            path = ck.save_checkpoint(self.run_dir / "checkpoints", self.step, self._weights(),
                                      checkpoint_config(self.cfg, self.models, self.step), state,
                                      keep=self.cfg.train.keep_ckpts, name=name)
        ddp.barrier()
        return path

    def _load(self, path: Path) -> None:
        conf = ck.read_config(path)
        if conf.get("model", {}).get("name") != self.cfg.model["name"]:
            raise GanforgeError(
                f"checkpoint {path} is of model {conf.get('model', {}).get('name')!r}, not {self.cfg.model['name']!r}")
        for k, net in self.models.nets.items():
            ck.load_into(net, ck.load_weights(path, k), f"checkpoint {path} ({k})")
        if self.ema is not None:
            names = [f"{k}_ema" for k in self.ema.shadows]
            if all((path / f"{n}.safetensors").is_file() for n in names):
                self.ema.load_state_dicts({k: ck.load_weights(path, f"{k}_ema") for k in self.ema.shadows})
            else:  # EMA switched on when resuming: start it from the current weights
                self.ema = EMA({k: self.models.nets[k] for k in self.ema.shadows}, self.cfg.train.ema)
        state = ck.load_state(path)
        self.step = int(state["step"])
        # Checkpoints of ganforge 0.1 counted batches, not samples: continue at the equivalent position.
        self.images_seen = int(state.get("images_seen", self.step * self.cfg.train.batch_size * self.world))
        self.cursor = int(state.get("cursor", self.images_seen))
        self.failures = int(state.get("failures", 0))
        # The config's learning rates and betas win over the saved optimizer's (an override when resuming).
        self.recipe.load_training_state(state["recipe"], step=self.step)
        self._eval_best = state.get("eval_best")
        rngs = state["rng"]
        ck.set_rng_state(rngs[self.rank] if self.rank < len(rngs) else rngs[0])

    def _remember_good(self) -> None:
        if not self.cfg.train.nan_rollback:
            return
        self._good = {
            "nets": {k: _cpu_copy(n.state_dict()) for k, n in self.models.nets.items()},
            "recipe": _cpu_copy(self.recipe.training_state()),
            "ema": _cpu_copy(self.ema.state_dicts()) if self.ema is not None else None,
            "counters": {k: v for k, v in self._counters().items() if k in ("step", "images_seen")},
        }

    def _restore_good(self) -> None:
        g = self._good
        for k, n in self.models.nets.items():
            n.load_state_dict(g["nets"][k])
        scale = self.recipe.lr_scale  # keep the reductions made since the copy was taken
        state = dict(g["recipe"], lr_scale=scale)
        self.step, self.images_seen = g["counters"]["step"], g["counters"]["images_seen"]
        self.recipe.load_training_state(_cpu_copy(state), step=self.step)
        if self.graphs is not None:  # the optimizers' state tensors were replaced: the graphs point at the old ones
            self.graphs.reset()
        if self.ema is not None and g["ema"] is not None:
            self.ema.load_state_dicts(g["ema"])

    # ---- snapshots --------------------------------------------------------------------------------
    def _sample_nets(self) -> dict[str, torch.nn.Module]:
        nets = dict(self.models.nets)
        if self.ema is not None:
            nets.update(self.ema.shadows)
        self.recipe.before_sampling(nets)
        return nets

    def snapshot(self, log: MetricsLog | None) -> None:
        """Sample grid from the fixed inputs (EMA nets when kept) and the loss plot."""
        images, nrow = self.recipe.render(self._sample_nets(), self.fixed)
        save_grid(images, self.run_dir / "samples" / f"step-{self.step:06d}.png", nrow=nrow)
        if log is not None:
            plot_losses(log.history, self.run_dir / "losses.png")

    # ---- the loop ---------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        if self._stop_signal is not None and self.world == 1:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_signal = signum

    def _context(self, log: bool = True) -> StepContext:
        t = self.cfg.train
        ctx = StepContext(step=self.step, images_seen=self.images_seen, rank=self.rank, world=self.world,
                          total_steps=t.steps, log=log, seed=t.seed, attempt=self.failures, device=self.device)
        ctx.batch_size, ctx.batches = self.recipe.batch_plan(ctx)
        return ctx

    def run(self) -> Path:
        """Train until train.steps; returns the run folder."""
        t = self.cfg.train
        lock = log = None
        handlers = {}
        try:
            if self.main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                lock = ck.lock_run(self.run_dir)
                removed = ck.clean_stale(self.run_dir / "checkpoints")
                if removed:
                    self._note(f"removed {len(removed)} leftover temporary checkpoint item(s) of an earlier "
                               f"killed run")
                atomic_write_text(self.run_dir / "config.yaml", self.cfg.to_yaml())
                log = MetricsLog(self.run_dir / "metrics.jsonl", resume_step=self.step if self.resume else None,
                                 tensorboard_dir=(self.run_dir / "tb") if t.tensorboard else None)
            if threading_main():
                for s in (signal.SIGINT, signal.SIGTERM):
                    handlers[s] = signal.signal(s, self._on_signal)
            return self._run(log)
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            if log is not None:
                log.close()
            if lock is not None:
                lock.release()

    def train_step(self, logged: bool = False) -> dict[str, Any]:
        """One training step as `ganforge train` runs it: the next batches from the stream, the recipe's step,
        the counters and the EMA. Nothing is read back from the device: the step's values stay tensors."""
        ctx = self._context(log=logged)
        if self._stream is None or self._stream_at != (self.cursor, ctx.batch_size):
            self.batches.check_batch(ctx.batch_size)
            self._stream = self.batches.iterate(self.cursor, ctx.batch_size)
        batches = [self._to(next(self._stream)) for _ in range(ctx.batches)]
        used = ctx.batch_size * self.world * ctx.batches
        self.cursor += used
        self._stream_at = (self.cursor, ctx.batch_size)
        losses = self.graphs.run(batches, ctx) if self.graphs is not None else self.recipe.step(batches, ctx)
        # Accepted now, checked later: a non-finite loss found at the next check rolls all of this back.
        self.recipe.end_of_step(ctx)
        self.step += 1
        self.images_seen += used
        self._last_batch = ctx.batch_size * self.world
        if self.ema is not None:
            decay = self.recipe.ema_decay(ctx)
            if decay is not None:
                self.ema.update(self.models.nets, decay)
        return losses

    @property
    def images_per_step(self) -> int:
        """Real images the next step consumes (all ranks together)."""
        ctx = self._context(log=False)
        return ctx.batch_size * self.world * ctx.batches

    def synchronize(self) -> None:
        """Wait for the device's queued work (timing)."""
        speed.synchronize(self.device)

    def _to(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = _to(batch, self.device)
        if self.channels_last:
            out = {k: (speed.channels_last_input(v) if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        return out

    def _run(self, log: MetricsLog | None) -> Path:
        t = self.cfg.train
        bar = _progress(t.steps, self.step, enabled=t.progress and self.main)
        window = _Window()
        tick, tick_images, started = time.perf_counter(), self.images_seen, time.perf_counter()
        self._remember_good()
        last_saved = self.step if self.resume else -1
        try:
            while self.step < t.steps:
                logged = (self.step + 1) % t.log_every == 0 or self.step + 1 == t.steps
                losses = self.train_step(logged)
                window.add(self.step, losses)
                stop = self._stop_signal is not None
                if self.world > 1:
                    # One small collective a step: the ranks stop together, and the BatchNorm statistics are averaged.
                    _, stop = ddp.agree([False, stop], self.models.nets.values())
                if bar is not None:
                    bar.update(1)
                snap = self.step % t.sample_every == 0 or self.step == t.steps
                evaluate = t.eval_every > 0 and self.step % t.eval_every == 0
                save = self.step % t.ckpt_every == 0 or self.step == t.steps
                if not (logged or snap or evaluate or save or stop):
                    continue
                # A check point: the only place the loop reads the device. Every rank skips a non-finite window
                # together.
                bad_local = window.bad()
                if self.world > 1:
                    bad, stop = ddp.agree([bad_local is not None, stop])
                else:
                    bad = bad_local is not None
                if bad:
                    self._recover(bad_local)
                    window, tick, tick_images = _Window(), time.perf_counter(), self.images_seen  # those steps are undone
                    continue
                if logged:
                    now = time.perf_counter()
                    rate = (self.images_seen - tick_images) / max(now - tick, 1e-9)
                    rec = {"step": self.step, "epoch": self.batches.epoch(self.cursor), "images_seen": self.images_seen,
                           "time_s": round(now - started, 3), "images_per_s": round(rate, 1),
                           "batch_size": self._last_batch, **window.means(),
                           **{f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.recipe.optimizers.items()}}
                    if log is not None:
                        log.log(rec)
                    if bar is not None:
                        bar.set_postfix({k: f"{rec[k]:.3f}" for k in rec if k.startswith("loss_")}, refresh=False)
                    window, tick, tick_images = _Window(), now, self.images_seen
                    self._remember_good()
                if snap:
                    self._sync()
                    if self.main:
                        self.snapshot(log)
                if evaluate:
                    self._evaluate(log)
                if save:
                    self.save()
                    last_saved = self.step
                if stop:
                    self._stop_signal = self._stop_signal or signal.SIGTERM
                    break
        except (RuntimeError, ddp.DistributedError) as e:
            if speed.is_out_of_memory(e):
                b = self._context().batch_size
                raise GanforgeError(
                    f"out of memory at step {self.step + 1} with a batch of {b} per process on {self.device}; "
                    f"`ganforge bench {self.cfg.preset or self.cfg.model['name']} --batch {b}` finds the largest "
                    f"batch that fits") from None
            if self.world > 1 and (isinstance(e, ddp.DistributedError) or _is_collective_error(e)):
                detail = ddp.first_line(e).removeprefix("lost contact with the other processes: ")
                raise ddp.DistributedError(f"rank {self.rank} lost contact with the other processes at step "
                                           f"{self.step + 1} (one died or hung): {detail}; continue with "
                                           f"--resume {self.run_dir}") from None
            raise
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
        self._sync()
        best = False
        if self.evaluator is not None:
            values, best = self.evaluator(self._sample_nets())
            if log is not None:
                log.log({"step": self.step, **values})
            self.echo(f"step {self.step}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
                      + ("  (best so far)" if best else ""), file=sys.stderr)
        if ddp.broadcast_object(best):
            self.save("best")

    def _recover(self, bad: tuple[int, dict[str, float]] | None) -> None:
        """Roll back to the last good copy after a non-finite loss (bad: its step and values on this rank)."""
        t = self.cfg.train
        self.failures += 1
        if bad is not None:
            failed_at, values = bad
            where = f"at step {failed_at} (" + ", ".join(f"{k}={v}" for k, v in values.items()
                                                          if k.startswith("loss")) + ")"
        else:
            where = f"by step {self.step} (on another rank)"
        if self._good is None:
            raise TrainingDiverged(
                f"training diverged: non-finite loss {where}; train.nan_rollback is off, "
                f"so the run stops; checkpoints in {self.run_dir / 'checkpoints'} are intact")
        if self.failures >= t.max_nan_failures:
            raise TrainingDiverged(
                f"training diverged: non-finite loss {where}, {self.failures} times; "
                f"checkpoints in {self.run_dir / 'checkpoints'} are intact (try a lower learning rate)")
        self._restore_good()
        self.recipe.scale_lr(t.nan_lr_factor)
        self._warn(f"non-finite loss {where}; rolled back to step {self.step} (the last good copy), learning rates "
                   f"x{t.nan_lr_factor} ({self.failures}/{t.max_nan_failures})")


class _Window:
    """The steps' values since the last check, kept as they came (device tensors): read at the check only."""

    def __init__(self):
        self.steps: list[int] = []
        self.values: list[dict[str, Any]] = []

    def add(self, step: int, losses: dict[str, Any]) -> None:
        self.steps.append(step)
        self.values.append(losses)

    def bad(self) -> tuple[int, dict[str, float]] | None:
        """(step, values) of the first step with a non-finite loss, or None: one read of the device."""
        owner, losses = [], []
        for i, vals in enumerate(self.values):
            for k, v in vals.items():
                if k.startswith("loss") and v is not None:
                    owner.append(i)
                    losses.append(v.detach().float().reshape(()) if isinstance(v, torch.Tensor)
                                  else torch.tensor(float(v)))
        if not losses:
            return None
        dev = next((v.device for v in losses if v.device.type != "cpu"), losses[0].device)
        finite = torch.stack([v.to(dev) for v in losses]).isfinite().tolist()
        if all(finite):
            return None
        i = owner[finite.index(False)]
        return self.steps[i], {k: _number(v) for k, v in self.values[i].items() if v is not None}

    def means(self) -> dict[str, float]:
        """Each value's mean over the window, read back in one transfer per device."""
        keys: dict[str, list[Any]] = {}
        for vals in self.values:
            for k, v in vals.items():
                if v is not None:
                    keys.setdefault(k, []).append(v)
        out: dict[str, float] = {}
        dev_keys, dev_means = [], []
        for k, vs in keys.items():
            if all(isinstance(v, torch.Tensor) for v in vs):
                dev_keys.append(k)
                dev_means.append(torch.stack([v.detach().float().reshape(()) for v in vs]).mean())
            else:
                out[k] = sum(_number(v) for v in vs) / len(vs)
        if dev_means:
            dev = dev_means[0].device
            out.update(zip(dev_keys, torch.stack([m.to(dev) for m in dev_means]).tolist()))
        return {k: out[k] for k in keys}


def _number(v: Any) -> float:
    return float(v.detach().float()) if isinstance(v, torch.Tensor) else v


def _is_collective_error(e: BaseException) -> bool:
    """Whether a RuntimeError came from a collective (a peer died, hung or disagreed)."""
    text = str(e).lower()
    return any(w in text for w in ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "collective",
                                   "broken pipe", "socket", "distributed"))


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
