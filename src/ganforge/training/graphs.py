"""Whole training steps replayed as CUDA graphs (train.cuda_graphs).

At small batches a GPU step is bound by kernel launches, not by arithmetic: DCGAN's step launches a few
hundred kernels of microseconds each, and Python cannot queue them as fast as the GPU runs them. A CUDA
graph records every kernel of a step (the D and G forward and backward passes, the penalties, the optimizer
updates) once and replays them with one launch.

How a step is captured, and what keeps a replay equal to an eager step:

- **Opt-in per recipe.** `Recipe.graph_key(ctx)` names the step's kernel sequence: every step with the same
  key launches the same kernels on tensors of the same shapes. Python values a step bakes into its kernels
  (learning rates, betas, the batch shapes, whether the step is logged) are added to the key here. A recipe
  that returns None runs that step eagerly.
- **Warm-up, then capture.** A key's first `WARMUP` steps run eagerly on a side stream, as PyTorch asks before
  a capture (cuDNN and cuBLAS workspaces, the optimizers' state, autograd's lazy set-up). Its next step is
  captured and then replayed. Every one of them is a real training step.
- **Inputs.** Each step's batch tensors are copied into the graph's static buffers. The noise a step draws
  through `ctx.randn` / `rand` / `randint` is recorded during the warm-up, and before each replay it is drawn
  into static buffers by the same generators, seeded by (seed, step, attempt, call), that an eager step
  uses. So a graphed run sees the latents an eager run would, and a resumed run sees what an uninterrupted
  one would. Other randomness (DiffAugment, StyleGAN2's noise inputs) comes from the default CUDA generator,
  which graph capture advances on every replay: the same distribution, other draws than eager steps.
- **Outputs.** The step's tensor values are stacked inside the graph and cloned after each replay (one
  kernel), so the loop's loss window keeps values that the next replay does not overwrite.
- **Host state.** Capturing runs the recipe's Python once; each later replay calls `recipe.replayed(ctx)`
  for the host-side effects of a step (counters).
- **Optimizers** are made capturable (their step counts live on the GPU). Checkpoints still record them as
  not capturable, so their format does not change; replacing the optimizers' state (a NaN rollback) drops the
  graphs, which are captured again.
- **Memory.** A run's graphs share one memory pool: they never run at once, and none reads what another
  allocated.
- **Fallback.** A capture that fails (a host read inside the step, an operation graphs cannot record) leaves
  that key eager after one notice; the step it was capturing is run eagerly, with the recipe's host state put
  back as it was and the default generator's state replaced by an eager copy.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Hashable

import torch
from torch import Tensor

from ..recipes.context import StepContext

WARMUP = 2  # eager steps of a key before its capture
MAX_GRAPHS = 8  # distinct keys captured; later keys run eagerly (a value that changes every step)


class _PlanMismatch(Exception):
    """A step drew different noise than its warm-up recorded."""


@dataclass
class _RecordingContext(StepContext):
    """An eager step's context that also records what noise the step draws."""

    plan: list = field(default_factory=list)

    def randn(self, n: int, *shape: int) -> Tensor:
        self.plan.append(("randn", n, tuple(shape), None))
        return super().randn(n, *shape)

    def rand(self, n: int, *shape: int) -> Tensor:
        self.plan.append(("rand", n, tuple(shape), None))
        return super().rand(n, *shape)

    def randint(self, high: int, n: int) -> Tensor:
        self.plan.append(("randint", n, (), high))
        return super().randint(high, n)


@dataclass
class _StaticContext(StepContext):
    """The captured step's context: its draws are views of static buffers, filled before each replay."""

    plan: list = field(default_factory=list)
    buffers: list = field(default_factory=list)
    taken: int = 0

    def _take(self, call: tuple) -> Tensor:
        if self.taken >= len(self.plan) or self.plan[self.taken] != call:
            raise _PlanMismatch(f"the step drew {call}, its warm-up drew {self.plan[self.taken:self.taken + 1]}")
        buf = self.buffers[self.taken]
        self.taken += 1
        return self._shard(buf)

    def randn(self, n: int, *shape: int) -> Tensor:
        return self._take(("randn", n, tuple(shape), None))

    def rand(self, n: int, *shape: int) -> Tensor:
        return self._take(("rand", n, tuple(shape), None))

    def randint(self, high: int, n: int) -> Tensor:
        return self._take(("randint", n, (), high))


def _context_as(cls: type, ctx: StepContext, **extra: Any) -> StepContext:
    """A copy of ctx as a StepContext subclass."""
    return cls(**{f.name: getattr(ctx, f.name) for f in fields(StepContext)}, **extra)


def draw_into(ctx: StepContext, plan: list, buffers: list[Tensor]) -> None:
    """Draw a step's noise into static buffers with the generators an eager step of ctx would use, in order."""
    for (kind, n, shape, high), buf in zip(plan, buffers):
        g = ctx._generator()
        if kind == "randn":
            torch.randn(buf.shape, generator=g, device=buf.device, out=buf)
        elif kind == "rand":
            torch.rand(buf.shape, generator=g, device=buf.device, out=buf)
        else:
            torch.randint(0, high, buf.shape, generator=g, device=buf.device, out=buf)


def _empty_like_draw(call: tuple, world: int, device: torch.device) -> Tensor:
    kind, n, shape, _ = call
    # zeros, not empty: a valid class index until the first draw fills it
    return torch.zeros((n * world, *shape), device=device, dtype=torch.int64 if kind == "randint" else torch.float32)


@dataclass
class _Entry:
    """One key's graph and its static tensors."""

    seen: int = 0
    plan: list | None = None
    failed: bool = False
    graph: Any = None
    batches: list = field(default_factory=list)
    buffers: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    constants: dict = field(default_factory=dict)
    packed: Tensor | None = None


def problem(device: torch.device, recipe: Any, world: int, compiled: bool) -> str | None:
    """Why train.cuda_graphs cannot be used here (None: it can)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, not {device.type}"
    if world > 1:
        return "CUDA graphs are not used with several processes (DDP's all-reduce runs eagerly)"
    if compiled:
        return "CUDA graphs are not combined with train.compile here"
    if getattr(recipe, "_use_scaler", False):
        return "fp16's grad scaler reads the device on every step; use train.amp=bf16 or off"
    if type(recipe).graph_key is _base_graph_key():
        return f"recipe {type(recipe).__name__} does not declare which of its steps can be captured"
    return None


def _base_graph_key():
    from ..recipes.base import Recipe

    return Recipe.graph_key


class GraphedSteps:
    """Runs a recipe's steps, replaying each step key as a CUDA graph after its warm-up."""

    def __init__(self, recipe: Any, device: torch.device, note: Callable[[str], None]):
        self.recipe, self.device, self.note = recipe, device, note
        self.entries: dict[Hashable, _Entry] = {}
        self.replays = self.captures = 0
        self._noted_full = False
        # One memory pool for all of this run's graphs: they never run at once, and a step reads nothing another
        # step's graph allocated (its values are cloned right after its replay). With a pool per graph, StyleGAN2
        # at 256 px ran out of an H200's memory: 36 GiB in graph pools, 100 GiB reserved that they could not use.
        self._pool = None
        self._make_capturable()

    def _make_capturable(self) -> None:
        """Optimizers whose steps can be captured (and stay so when a rollback reloads their state)."""
        from ..recipes.base import make_capturable

        self.recipe.capturable = True
        for opt in self.recipe.optimizers.values():
            make_capturable(opt, True)

    def reset(self) -> None:
        """Drop every graph (the tensors they point at were replaced); keys are captured again after warm-up. The
        kinds of step that could not be captured stay eager."""
        self.entries = {k: e for k, e in self.entries.items() if e.failed}
        self._pool = None

    # ---- the device side (a test double replaces these on CPU) ----------------------------------------
    def _eager(self, fn: Callable[[], Any]) -> Any:
        """Run fn on a side stream, as PyTorch asks for the iterations before a capture."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            out = fn()
        torch.cuda.current_stream(self.device).wait_stream(side)
        return out

    def _capture(self, fn: Callable[[], Any]) -> tuple[Any, Any]:
        """Record fn's kernels in a new graph; returns (graph, fn's result).

        Python's garbage collector is held off meanwhile: a collection that frees another CUDA graph (an earlier
        trainer's) during the capture destroys it there, which CUDA forbids while a stream captures (seen on an
        H200: the capture failed)."""
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)
        collecting = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                out = fn()
        finally:
            if collecting:
                gc.enable()
        if self._pool is None:
            self._pool = graph.pool()
        return graph, out

    def _after_failed_capture(self) -> None:
        """Put the device's random generator back in eager mode after a capture that failed.

        A failed capture never reaches the generator's capture epilogue, so every later eager draw would fail
        ("Offset increment outside graph capture", seen on an H200). A fresh copy of its state (same seed and
        offset) is eager again. Graphs captured before hold the old state, so they are dropped and captured
        again; the kinds of step that failed stay eager."""
        self._reset_generator()
        self.reset()

    def _reset_generator(self) -> None:
        torch.cuda.synchronize(self.device)
        gen = torch.cuda.default_generators[self.device.index if self.device.index is not None
                                            else torch.cuda.current_device()]
        if hasattr(gen, "graphsafe_set_state") and hasattr(gen, "clone_state"):
            gen.graphsafe_set_state(gen.clone_state())

    def _replay(self, graph: Any) -> None:
        graph.replay()

    # ---- steps -----------------------------------------------------------------------------------------
    def key(self, batches: list[dict[str, Any]], ctx: StepContext) -> Hashable | None:
        """The step's full key: the recipe's, and every Python value the captured kernels would bake in."""
        rkey = self.recipe.graph_key(ctx)
        if rkey is None:
            return None
        shapes = []
        for b in batches:
            for k, v in sorted(b.items()):
                if not isinstance(v, Tensor) or v.device != self.device:
                    return None
                shapes.append((k, tuple(v.shape), v.stride(), v.dtype))
        # Learning rates, betas and flags are passed to the optimizer kernels as numbers: a capture bakes them in.
        hp = tuple((name, tuple(sorted((k, v) for k, v in g.items() if isinstance(v, (int, float, tuple)))))
                   for name, o in sorted(self.recipe.optimizers.items()) for g in o.param_groups)
        return rkey, ctx.log, ctx.batch_size, ctx.batches, tuple(shapes), hp

    def run(self, batches: list[dict[str, Any]], ctx: StepContext) -> dict[str, Any]:
        """One training step: eager, a warm-up, a capture or a replay."""
        key = self.key(batches, ctx)
        if key is None:
            return self.recipe.step(batches, ctx)
        entry = self.entries.get(key)
        if entry is None:
            if len(self.entries) >= MAX_GRAPHS:
                if not self._noted_full:
                    self._noted_full = True
                    self.note(f"train.cuda_graphs: {MAX_GRAPHS} kinds of step are captured already; steps of "
                              f"other kinds (a value that changes every step) run eagerly")
                return self.recipe.step(batches, ctx)
            entry = self.entries[key] = _Entry()
        if entry.failed:
            return self.recipe.step(batches, ctx)
        if entry.seen < WARMUP:
            entry.seen += 1
            rec = _context_as(_RecordingContext, ctx)
            out = self._eager(lambda: self.recipe.step(batches, rec))
            if entry.plan is not None and entry.plan != rec.plan:
                entry.failed = True  # the step's draws change from step to step: not capturable
            entry.plan = rec.plan
            return out
        if entry.graph is None:
            if not self._capture_entry(entry, batches, ctx):
                return self.recipe.step(batches, ctx)
        else:
            self.recipe.replayed(ctx)
        for static, b in zip(entry.batches, batches):
            for k, v in b.items():
                static[k].copy_(v, non_blocking=True)
        draw_into(ctx, entry.plan, entry.buffers)
        self._replay(entry.graph)
        self.replays += 1
        out = dict(entry.constants)
        if entry.packed is not None:
            values = entry.packed.clone()
            out.update({k: values[i] for i, k in enumerate(entry.keys)})
        return out

    def _capture_entry(self, entry: _Entry, batches: list[dict[str, Any]], ctx: StepContext) -> bool:
        """Capture entry's graph on this step's shapes; False (after one notice) when it cannot be captured."""
        entry.batches = [{k: v.clone() for k, v in b.items()} for b in batches]
        entry.buffers = [_empty_like_draw(call, ctx.world, self.device) for call in entry.plan]
        sctx = _context_as(_StaticContext, ctx, plan=entry.plan, buffers=entry.buffers)
        host = {k: v for k, v in vars(self.recipe).items() if isinstance(v, (bool, int, float))}
        for opt in self.recipe.optimizers.values():
            opt.zero_grad(set_to_none=True)  # the gradients are allocated inside the graph

        def step():
            sctx.taken = 0
            out = self.recipe.step(entry.batches, sctx)
            if sctx.taken != len(entry.plan):
                raise _PlanMismatch(f"the step drew {sctx.taken} of the {len(entry.plan)} draws of its warm-up")
            keys = [k for k, v in out.items() if isinstance(v, Tensor)]
            packed = torch.stack([out[k].detach().float().reshape(()) for k in keys]) if keys else None
            return keys, {k: v for k, v in out.items() if not isinstance(v, Tensor)}, packed

        try:
            entry.graph, (entry.keys, entry.constants, entry.packed) = self._capture(step)
        except Exception as e:  # noqa: BLE001 - any failure leaves this kind of step eager
            vars(self.recipe).update(host)
            entry.failed, entry.graph, entry.batches, entry.buffers = True, None, [], []
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self.note(f"train.cuda_graphs: a step could not be captured ({first[:200]}); steps of this kind run "
                      f"eagerly")
            self._after_failed_capture()
            return False
        self.captures += 1
        return True


def setup(mode: str, recipe: Any, device: torch.device, world: int, compiled: bool,
          note: Callable[[str], None]) -> GraphedSteps | None:
    """GraphedSteps for train.cuda_graphs (auto | on | off), or None with a notice when asked for but unusable.

    auto: on for CUDA runs of recipes that declare their step keys (single process, no fp16 scaler, not
    compiled); off elsewhere without a word."""
    if mode == "off":
        return None
    why = problem(device, recipe, world, compiled)
    if why is not None:
        if mode == "on":
            note(f"train.cuda_graphs=on: {why}; steps run eagerly")
        return None
    return GraphedSteps(recipe, device, note)
