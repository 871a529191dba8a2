"""The Recipe contract: a training game that turns batches into D and G updates.

The loop owns data order, DDP wrappers, EMA bookkeeping, logging, snapshots, checkpoints and NaN
recovery; a recipe owns its networks' game. What a recipe sees and may override:

- `step(batches, ctx)`: one iteration (all its D and G phases) on `ctx.batches` batches; returns losses as
  detached 0-d tensors or plain numbers (keys starting with `loss` are checked for non-finite values). A
  step must not read device values on the host (`float(t)`, `.item()`, `if t.any()`): on a GPU that stalls
  the queue every step; the loop reads the values once per logging interval. `ctx` (StepContext) gives
  the step index, images seen, rank and world size, whether this step is logged, and global-batch noise.
- `batch_plan(ctx)`: (per-rank batch size, batches per step) for the coming step; a schedule may change
  both during a run (progressive growing). The loop follows it through a sample cursor.
- Forward passes that train a network go through `self.ddp[name]` (its DDP wrapper under torchrun, the
  network itself otherwise); a network judged but not trained in a phase is used unwrapped and frozen,
  `with self.frozen("D") as D:`, so no DDP reducer is left waiting and no gradient is wasted.
- Optimisation is split: `zero_grad(name)`, `backward(loss)` (several per phase are fine; gradient
  accumulation over micro-batches wraps all but the last in `self.no_sync(name)`), extra gradient terms
  added to `.grad` in between, then `step_optimizer(name, ctx)`. `optimize(loss, name, ctx)` does all
  three.
- `graph_key(ctx)` / `replayed(ctx)`: opt-in to train.cuda_graphs (training/graphs.py): a key naming the step's
  kernel sequence (None: eager), and the host-side effects of a step replayed from its graph (counters).
- `ema_decay(ctx)`: the EMA rule (default: train.ema with a warm-up); `before_sampling(nets)`: a hook
  before snapshots and evaluation (standing statistics); `make_evaluator(...)`: its evaluation;
  `training_state()` / `load_training_state()`: persistent state (ADA p, path-length mean) beside the
  optimizers, checkpointed and rolled back with the networks.

Learning rates and betas are applied from the config on every resume (`apply_hparams`), so an override
given when resuming takes effect; the NaN-recovery reduction (`lr_scale`) is kept in the state.
"""
from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from ..models.base import GANModels
from .context import StepContext


@dataclass
class RecipeConfig:
    """Options every recipe accepts."""


@contextlib.contextmanager
def uncompiled(*nets: nn.Module) -> Iterator[None]:
    """Run nets compiled in place (train.compile) eagerly in the block: a double backward (R1, gradient
    penalty, path length) cannot go through compiled graphs. DDP wrappers are looked through."""
    saved = []
    for net in nets:
        inner = getattr(net, "module", net)
        impl = getattr(inner, "_compiled_call_impl", None)
        if impl is not None:
            saved.append((inner, impl))
            inner._compiled_call_impl = None
    try:
        yield
    finally:
        for inner, impl in saved:
            inner._compiled_call_impl = impl


@contextlib.contextmanager
def eval_mode(*nets: nn.Module) -> Iterator[None]:
    """Put nets in eval mode for the block and restore each one's mode afterwards."""
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    try:
        yield
    finally:
        for n, m in zip(nets, modes):
            n.train(m)


def build_optimizer(kind: str, params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
                    device: torch.device | None = None) -> torch.optim.Optimizer:
    """Adam or RMSprop by name, with the multi-tensor (foreach) or fused implementation where available."""
    params = list(params)
    if kind == "adam":
        if device is not None and device.type == "cuda":
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    raise GanforgeError(f"unknown optimizer {kind!r} (known: adam, rmsprop)")


def make_capturable(opt: torch.optim.Optimizer, on: bool) -> None:
    """Set an optimizer's `capturable` flag; when on, move its step counts to the parameters' device."""
    for group in opt.param_groups:
        if "capturable" not in group:
            continue
        group["capturable"] = on
        if on:
            for p in group["params"]:
                st = opt.state.get(p)
                if st and isinstance(st.get("step"), torch.Tensor) and st["step"].device != p.device:
                    st["step"] = st["step"].to(p.device, torch.float32)


def labelled(batch: dict[str, Tensor], recipe: Any) -> Tensor:
    """The batch's labels; a missing or negative (unlabelled) label is an error. Checked on the first batch
    only (`recipe._labels_checked`): the check reads the labels on the host, which would stall a GPU every step."""
    y = batch.get("label")
    if y is None or (not getattr(recipe, "_labels_checked", False) and bool((y < 0).any())):
        raise GanforgeError("a conditional model needs labelled data (a class-folder layout or a labelled dataset)")
    recipe._labels_checked = True
    return y


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"ganforge: warning: {message}", file=sys.stderr)


def self_condition(ds: Any, clusters: int, prior: nn.Module) -> None:
    """Self-conditioning: replace the dataset's labels by k-means clusters of its images, and set the
    generator's cluster prior from their sizes (models/conditioning.py ClusterPrior)."""
    from ..data.clusters import cluster_labels

    images, _ = ds.as_tensor()
    labels = torch.from_numpy(cluster_labels(images, clusters))
    counts = torch.bincount(labels, minlength=clusters)
    ds.labels = labels
    ds.class_names = [f"cluster {i}" for i in range(clusters)]
    ds.num_classes = clusters
    prior.set_sizes(counts)
    print(f"ganforge: self-conditioned on {clusters} k-means clusters of the training images "
          f"({int(counts.min())} to {int(counts.max())} images each)", file=sys.stderr)


class Recipe:
    """Base class: subclasses set `Config`, build optimizers in __init__ and implement `step`."""

    Config = RecipeConfig
    batches_per_step = 1  # how many data batches one step consumes (n_critic for WGAN)

    def __init__(self, models: GANModels, cfg: Any, device: torch.device, amp: bool | torch.dtype | None = False):
        self.models = models
        self.nets: dict[str, nn.Module] = models.nets
        self.ddp: dict[str, nn.Module] = dict(models.nets)  # replaced by DDP wrappers under torchrun
        self.io = models.io
        self.cfg = cfg
        self.device = device
        # amp: the autocast dtype the loop resolved (train.amp), or True for the device's usual one.
        self.amp = amp is not None and amp is not False
        self.train_cfg: Any = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.lr_scale = 1.0  # the loop's NaN-recovery reductions, kept across resumes and schedule updates
        self._amp_dtype = amp if isinstance(amp, torch.dtype) else (torch.float16 if device.type == "cuda"
                                                                     else torch.bfloat16)
        self._use_scaler = self.amp and self._amp_dtype == torch.float16 and device.type == "cuda"
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.capturable = False  # set by train.cuda_graphs (training/graphs.py): optimizer steps counted on the GPU

    # ---- what the loop calls ------------------------------------------------------------------
    def attach(self, train: Any) -> None:
        """Receive the loop's settings (TrainConfig) before training: steps, seed, batch size, EMA."""
        self.train_cfg = train

    def training_notes(self) -> list[str]:
        """Lines the loop prints when training starts (not when a run is only evaluated): what the run deviates
        from, or what it assumes."""
        return []

    def wrap(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap every trained network for multi-process training (the loop passes DDP's wrapper)."""
        self.ddp = {k: wrapper(net) for k, net in self.nets.items()}

    def step(self, batches: list[dict[str, Tensor]], ctx: StepContext) -> dict[str, Any]:
        """One training iteration over `ctx.batches` batches; returns its losses and figures as 0-d tensors
        (left on the device: the loop reads them at the logging interval) or plain numbers."""
        raise NotImplementedError

    def graph_key(self, ctx: StepContext) -> Any:
        """A hashable naming step ctx's kernel sequence, for train.cuda_graphs (training/graphs.py); None: run it
        eagerly. Steps with the same key must launch the same kernels on tensors of the same shapes, read nothing
        on the host, draw their noise only through ctx, and change no host state but what `replayed` redoes.
        Learning rates, batch shapes and ctx.log are added to the key by the loop. Default: never captured."""
        return None

    def replayed(self, ctx: StepContext) -> None:
        """The host-side effects of step ctx (counters), when it was replayed from a CUDA graph instead of run."""

    def batch_plan(self, ctx: StepContext) -> tuple[int, int]:
        """(per-rank batch size, batches per step) for step ctx.step: train.batch_size and batches_per_step."""
        return int(self.train_cfg.batch_size), int(self.batches_per_step)

    def build_dataset(self, data_cfg: Any):
        """The training dataset, shaped to the model (images and labels by default)."""
        from ..data import build_dataset

        args = self.models.args
        return build_dataset(data_cfg.source, split=data_cfg.split, root=data_cfg.root,
                             image_size=args.get("image_size"), channels=args.get("channels"), resize=data_cfg.resize)

    def ema_targets(self) -> list[str]:
        """Names of the nets whose exponential moving average the loop keeps."""
        return [self.models.generator_key]

    def ema_decay(self, ctx: StepContext) -> float | None:
        """EMA decay after step ctx.step (None: no update). Default: train.ema, warmed up after train.ema_start.

        The warm-up (as TF's ExponentialMovingAverage with num_updates) keeps the average from being
        dominated by the random initial weights early on.
        """
        t = self.train_cfg
        n = ctx.step + 1 - t.ema_start
        if t.ema <= 0 or n <= 0:
            return None
        return min(t.ema, (1 + n) / (10 + n))

    def before_sampling(self, nets: dict[str, nn.Module]) -> None:
        """Hook run on the nets about to be sampled for snapshots or evaluation (e.g. standing statistics)."""

    def make_evaluator(self, run_cfg: Any, echo: Callable[..., None] = print):
        """The evaluation run every train.eval_every steps: a callable nets -> (values, is_best), with .best."""
        from .evaluation import DistributionEvaluator

        return DistributionEvaluator(run_cfg, self, self.device, echo=echo)

    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """Inputs for snapshot grids, fixed for the whole run."""
        raise NotImplementedError

    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Snapshot images in [-1, 1] for `inputs`, and the number of images per grid row."""
        raise NotImplementedError

    def eval_images(self, nets: dict[str, nn.Module], n: int, seed: int) -> Tensor:
        """n generated images in [-1, 1] for distribution metrics during training."""
        raise GanforgeError(f"recipe {type(self).__name__} does not generate images for distribution metrics")

    def end_of_step(self, ctx: StepContext) -> None:
        """Called after every completed step (schedules that are not a pure function of the step)."""

    # ---- learning rates ------------------------------------------------------------------------
    def base_hparams(self, name: str) -> dict[str, Any]:
        """Optimizer `name`'s settings from the config: {"lr": ..., "betas": ...} (subclasses define)."""
        return {}

    def lr_factor(self, step: int) -> float:
        """Schedule multiplier of the learning rate at 0-based `step` (1 unless a subclass schedules)."""
        return 1.0

    def apply_hparams(self, step: int) -> None:
        """Set every optimizer's lr (config x schedule x NaN-recovery scale) and other settings for `step`."""
        factor = self.lr_factor(step) * self.lr_scale
        for name, opt in self.optimizers.items():
            hp = self.base_hparams(name)
            for group in opt.param_groups:
                for key, value in hp.items():
                    group[key] = value * factor if key == "lr" else value

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rates now and for the rest of the run (after a NaN/Inf recovery)."""
        self.lr_scale *= factor
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= factor

    # ---- optimisation helpers for subclasses ----------------------------------------------------
    def autocast(self):
        """Mixed-precision context for forward passes when AMP is on."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def eager(self, *names: str):
        """The trained modules `names` (keys of self.ddp) uncompiled for the block: for double-backward penalties."""
        return uncompiled(*(self.ddp[n] for n in names))

    def compile_targets(self) -> list[nn.Module]:
        """The modules train.compile compiles in place: those the step calls (self.ddp's, unwrapped)."""
        return [getattr(m, "module", m) for m in self.ddp.values()]

    @contextlib.contextmanager
    def frozen(self, *names: str) -> Iterator[Any]:
        """The unwrapped nets `names` with requires_grad off for the block (judged, not trained)."""
        nets = [self.nets[n] for n in names]
        for n in nets:
            n.requires_grad_(False)
        try:
            yield nets[0] if len(nets) == 1 else nets
        finally:
            for n in nets:
                n.requires_grad_(True)

    def no_sync(self, *names: str):
        """Skip DDP's gradient all-reduce for these nets in the block (all micro-batches but the last)."""
        stack = contextlib.ExitStack()
        for n in names:
            m = self.ddp[n]
            if hasattr(m, "no_sync"):
                stack.enter_context(m.no_sync())
        return stack

    def zero_grad(self, name: str) -> None:
        """Clear optimizer `name`'s gradients."""
        self.optimizers[name].zero_grad(set_to_none=True)

    def backward(self, loss: Tensor, name: str | None = None) -> None:
        """Backward `loss` (scaled for fp16 when optimizer `name` has a grad scaler).

        It always runs, also for a non-finite loss: under DDP every rank must reach the gradient
        all-reduce. The loop then skips the step on every rank together.
        """
        scaler = self._scaler(name)
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def step_optimizer(self, name: str, ctx: StepContext | None = None) -> Tensor | float | None:
        """Step optimizer `name`; returns the gradient norm on logged steps (None otherwise)."""
        opt = self.optimizers[name]
        scaler = self._scaler(name)
        if scaler is not None:
            scaler.unscale_(opt)
        norm = None
        if ctx is None or ctx.log:
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).detach() if grads else 0.0
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        return norm

    def optimize(self, loss: Tensor, name: str, ctx: StepContext | None = None) -> Tensor | float | None:
        """zero_grad, backward and step optimizer `name`; returns the gradient norm on logged steps."""
        self.zero_grad(name)
        self.backward(loss, name)
        return self.step_optimizer(name, ctx)

    def _scaler(self, name: str | None) -> torch.amp.GradScaler | None:
        if not self._use_scaler or name is None:
            return None
        if name not in self.scalers:
            self.scalers[name] = torch.amp.GradScaler("cuda")
        return self.scalers[name]

    # ---- state for checkpoints ---------------------------------------------------------------
    def training_state(self) -> dict[str, Any]:
        """Optimizer and grad-scaler state and the NaN-recovery scale (tensors and primitives only)."""
        optimizers = {k: o.state_dict() for k, o in self.optimizers.items()}
        for sd in optimizers.values():  # saved as an eager run's, whatever train.cuda_graphs was
            for group in sd["param_groups"]:
                if "capturable" in group:
                    group["capturable"] = False
        return {
            "optimizers": optimizers,
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "lr_scale": self.lr_scale,
        }

    def load_training_state(self, state: dict[str, Any], step: int | None = None) -> None:
        """Restore what training_state() returned; re-apply the config's settings for `step` when given."""
        missing = set(self.optimizers) - set(state.get("optimizers", {}))
        if missing:
            raise GanforgeError(f"checkpoint has no optimizer state for {', '.join(sorted(missing))}")
        for k, o in self.optimizers.items():
            try:
                o.load_state_dict(state["optimizers"][k])
            except (ValueError, KeyError) as e:
                raise GanforgeError(f"optimizer state {k!r} in the checkpoint does not fit this model: {e}") from None
            make_capturable(o, self.capturable)
        for k, sd in (state.get("scalers") or {}).items():
            if self._scaler(k) is not None:
                self.scalers[k].load_state_dict(sd)
        self.lr_scale = float(state.get("lr_scale", 1.0))
        if not math.isfinite(self.lr_scale) or self.lr_scale <= 0:
            raise GanforgeError(f"checkpoint holds an invalid learning-rate scale {self.lr_scale}")
        if step is not None:
            self.apply_hparams(step)


class NoiseSampling:
    """Snapshots and evaluation samples of a noise-to-image recipe (mixed in before Recipe)."""

    io: Any

    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """Fixed latents (and labels cycling through classes, one class per grid column)."""
        if (c := self.io.num_classes) > 0:
            n = max(c, (n // c) * c)
        z, y = self.io.latents(n, seed)
        return {"z": z, **({"y": y} if y is not None else {})}

    @torch.no_grad()
    def eval_images(self, nets: dict[str, nn.Module], n: int, seed: int) -> Tensor:
        """n samples from seeded latents (labels cycling through the classes), in [-1, 1]."""
        z, y = self.io.latents(n, seed + 1)
        with eval_mode(nets["G"]):
            return self.io.generate(nets["G"], z=z, y=y).clamp(-1, 1)

    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Generator output for the fixed latents, and the grid's columns (one per class)."""
        with eval_mode(nets["G"]):
            imgs = self.io.generate(nets["G"], z=inputs["z"], y=inputs.get("y")).clamp(-1, 1)
        return imgs, (self.io.num_classes if self.io.num_classes > 0 else 8)
