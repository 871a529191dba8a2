"""The Recipe contract: a training game that turns batches into D and G updates.

The loop owns everything else (data order, EMA, logging, checkpoints, NaN recovery); a recipe owns its
networks, optimizers and the phases of one iteration.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import GanforgeError
from ..models.base import GANModels


@dataclass
class RecipeConfig:
    """Options every recipe accepts."""


class Recipe:
    """Base class: subclasses set `Config`, build optimizers in __init__ and implement `step`."""

    Config = RecipeConfig
    batches_per_step = 1  # how many data batches one step consumes (n_critic for WGAN)

    def __init__(self, models: GANModels, cfg: Any, device: torch.device, amp: bool = False):
        self.models = models
        self.nets: dict[str, nn.Module] = models.nets
        self.cfg = cfg
        self.device = device
        self.amp = amp
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.nonfinite_steps = 0  # updates skipped because a loss or gradient was NaN/Inf
        self._amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if (amp and device.type == "cuda") else None

    # ---- what the loop calls ------------------------------------------------------------------
    def attach(self, train: Any) -> None:
        """Receive the loop's settings (TrainConfig) before training: steps, seed; most recipes ignore them."""

    def step(self, batches: list[dict[str, Tensor]]) -> dict[str, float]:
        """One training iteration over `batches_per_step` batches; returns plain-float losses."""
        raise NotImplementedError

    def build_dataset(self, data_cfg: Any):
        """The training dataset, shaped to the model (images and labels by default)."""
        from ..data import build_dataset

        args = self.models.args
        return build_dataset(data_cfg.source, split=data_cfg.split, root=data_cfg.root,
                             image_size=args.get("image_size"), channels=args.get("channels"), resize=data_cfg.resize)

    def ema_targets(self) -> list[str]:
        """Names of the nets whose exponential moving average the loop keeps."""
        return [self.models.generator_key]

    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """Inputs for snapshot grids, fixed for the whole run."""
        raise NotImplementedError

    @torch.no_grad()
    def render(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Snapshot images in [-1, 1] for `inputs`, and the number of images per grid row."""
        raise NotImplementedError

    def eval_images(self, nets: dict[str, nn.Module], n: int, seed: int) -> Tensor:
        """n generated images in [-1, 1] for evaluation during training."""
        raise GanforgeError(f"recipe {type(self).__name__} does not support evaluation during training")

    def scale_lr(self, factor: float) -> None:
        """Multiply every optimizer's learning rate (used after a NaN/Inf recovery)."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= factor

    def end_of_step(self, step: int) -> None:
        """Advance learning-rate schedules once per step."""
        for sch in self.schedulers.values():
            sch.step()

    # ---- helpers for subclasses --------------------------------------------------------------
    def autocast(self):
        """Mixed-precision context for forward passes when AMP is on."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def optimize(self, loss: Tensor, name: str, params: Iterable[nn.Parameter] | None = None) -> float:
        """Backward `loss`, average gradients across ranks, step optimizer `name`; returns the grad norm.

        A non-finite loss or gradient skips the update and counts it in `nonfinite_steps`.
        """
        opt = self.optimizers[name]
        params = [p for g in opt.param_groups for p in g["params"]] if params is None else list(params)
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss.detach()):
            self.nonfinite_steps += 1
            return math.nan
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(opt)
        else:
            loss.backward()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            world = dist.get_world_size()
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(world)
        norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
        if not torch.isfinite(norm):
            opt.zero_grad(set_to_none=True)
            if self.scaler is not None:  # fp16 overflow: let the scaler back off
                self.scaler.update()
                return float(norm)
            self.nonfinite_steps += 1
            return float(norm)
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        return float(norm)

    # ---- state for checkpoints ---------------------------------------------------------------
    def training_state(self) -> dict[str, Any]:
        """Optimizer, scheduler and scaler state (tensors and primitives only)."""
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "nonfinite_steps": self.nonfinite_steps,
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore what training_state() returned."""
        missing = set(self.optimizers) - set(state.get("optimizers", {}))
        if missing:
            raise GanforgeError(f"checkpoint has no optimizer state for {', '.join(sorted(missing))}")
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            if k in state.get("schedulers", {}):
                s.load_state_dict(state["schedulers"][k])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.nonfinite_steps = int(state.get("nonfinite_steps", 0))


def build_optimizer(kind: str, params, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """Adam or RMSprop by name."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise GanforgeError(f"unknown optimizer {kind!r} (known: adam, rmsprop)")
