"""What the image-to-image recipes (pix2pix, cyclegan) share: the papers' learning-rate schedule, their
data folders (or built-in demos, see data.demo), the held-out split for snapshots and evaluation, and
their evaluation: pixel metrics on held-out images.

Learning rate (both papers): constant for the first half of training, then linearly to zero, e.g.
100 + 100 epochs in the reference (`--lr_policy linear`). Here it is counted in steps: `decay_start`
(default: half of `total_steps`) and `total_steps` (default: the run's train.steps, which the loop hands
over through `attach`). The factor for 0-based step s is 1 before decay_start and
(total - s) / (total - decay_start) from there, so it reaches 0 exactly at total_steps. The reference,
stepping per epoch, stops one epoch short of zero (its last epoch trains at 1/(n_epochs_decay + 1)).
The learning rate is a pure function of the step (times the loop's NaN-recovery factor), recomputed
after every step and on resume, so resuming reproduces it bit for bit and extending a run re-plans it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..data.demo import DEMO_PREFIX, DEMOS, demo_folder
from ..errors import GanforgeError
from ..models.base import GANModels
from ..data.collate import collate
from ._schedule import lr_factor
from .base import Recipe, warn
from .context import StepContext

HELD_OUT_SPLITS = ("test", "val")  # where snapshot and evaluation inputs come from, in this order


def reference_load_size(image_size: int) -> int:
    """The reference's resize-before-crop size scaled to `image_size`: 286 for 256 (x 286/256, rounded)."""
    return int(round(image_size * 286 / 256))


def find_heldout(make: Callable[[str], Any], root: Path, train_split: str, what: str) -> Any:
    """The first held-out split (test, then val) that `make(split)` can open; the training split otherwise."""
    for split in HELD_OUT_SPLITS:
        if split == train_split:
            continue
        try:
            return make(split)
        except GanforgeError:
            continue
    warn(f"no held-out split ({'/'.join(HELD_OUT_SPLITS)}) under {root}: {what} use training images")
    return make(train_split)


class TranslationData(Dataset):
    """A paired or unpaired dataset plus where it came from, with the one-line `describe()` the CLI prints."""

    def __init__(self, ds: Any, source: str, root: Path):
        self.ds, self.source, self.root = ds, source, root

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> dict:
        return self.ds[index]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops, flips and partners the items draw."""
        self.ds.set_epoch(epoch)

    def describe(self) -> str:
        """One line: source, split, sizes, channels, skipped and unpaired files."""
        ds = self.ds
        where = self.source if self.source.startswith(DEMO_PREFIX) else str(self.root)
        crop = f"{ds.image_size}px" + (f" crops of {ds.load_size}px" if ds.load_size != ds.image_size else "")
        if hasattr(ds, "pairs"):
            return (f"{where} [{ds.split}]: {len(ds)} pairs, {ds.direction} {ds.in_channels}->{ds.out_channels} "
                    f"channels, {crop}, {len(ds.unpaired)} without a partner, {ds.skipped} skipped")
        return (f"{where} [{ds.split}]: {len(ds.files_a)} A + {len(ds.files_b)} B images, "
                f"{ds.channels_a}/{ds.channels_b} channels, {crop}, {ds.skipped} skipped")


def as_rgb(images: Tensor) -> Tensor:
    """Repeat single-channel images to three channels, so mixed-channel snapshot sheets can be tiled."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def sheet_columns(n: int, per_example: int) -> int:
    """Images per grid row: whole examples of `per_example` columns, the sheet kept roughly square."""
    return per_example * max(1, round(math.sqrt(n / per_example)))


class TranslationRecipe(Recipe):
    """Base of the image-to-image recipes: the linear-decay schedule, data folders and held-out evaluation."""

    def __init__(self, models: GANModels, cfg: Any, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if not cfg.lr > 0:
            raise GanforgeError(f"recipe.lr must be > 0, got {cfg.lr}")
        for key in ("total_steps", "decay_start"):
            if getattr(cfg, key) is not None and getattr(cfg, key) < 0:
                raise GanforgeError(f"recipe.{key} must be >= 0, got {getattr(cfg, key)}")
        if cfg.lr > 0.01:
            warn(f"recipe.lr={cfg.lr} is far above the papers' 2e-4; training is likely to diverge")
        self.seed = 0
        self.schedule: tuple[int, int] | None = None  # (decay_start, total_steps)
        self.heldout: Any = None

    # ---- loop settings and the learning-rate schedule ------------------------------------------------
    def attach(self, train: Any) -> None:
        """Receive the run's loop settings (TrainConfig): steps plan the LR decay, seed the augmentation."""
        super().attach(train)
        self.seed = int(train.seed)
        self.plan_schedule(int(train.steps))

    def plan_schedule(self, train_steps: int | None) -> None:
        """Resolve (decay_start, total_steps) from the recipe config, defaulting to the run's train.steps."""
        total = self.cfg.total_steps if self.cfg.total_steps is not None else train_steps
        if total is None:
            return
        start = self.cfg.decay_start if self.cfg.decay_start is not None else total // 2
        self.schedule = (int(start), int(total))
        self.apply_hparams(0)

    def base_hparams(self, name: str) -> dict[str, Any]:
        """The config's learning rate and Adam betas (G and D alike, as in the papers)."""
        return {"lr": self.cfg.lr, "betas": (self.cfg.beta1, self.cfg.beta2)}

    def lr_factor(self, step: int) -> float:
        """The schedule's multiplier at 0-based `step`."""
        if self.schedule is None:  # only when driven without the loop, which attaches train.steps
            raise GanforgeError("recipe.total_steps is not set and no train.steps was attached; "
                                "set recipe.total_steps")
        return lr_factor(step, *self.schedule)

    def check_schedule(self) -> None:
        """Refuse to train without a planned schedule (one clear line, before any update)."""
        if self.schedule is None:
            self.lr_factor(0)

    def end_of_step(self, ctx: StepContext) -> None:
        """Set the learning rate of the next step."""
        super().end_of_step(ctx)
        self.apply_hparams(ctx.step + 1)

    def ema_targets(self) -> list[str]:
        """The generators (the loop keeps their EMA only when train.ema > 0; the papers use none)."""
        return [k for k in self.nets if k.startswith("G")]

    # ---- data ----------------------------------------------------------------------------------------
    def data_root(self, source: str, layout: str, image_size: int) -> Path:
        """The folder of `source`: a built-in demo (made on first use) or a path that must exist."""
        import sys

        demo = demo_folder(source, layout, image_size, echo=lambda m: print(m, file=sys.stderr))
        if demo is not None:
            return demo
        root = Path(source).expanduser()
        if not root.exists():
            known = ", ".join(DEMO_PREFIX + d for d, (k, _) in DEMOS.items() if k == layout)
            raise GanforgeError(f"dataset folder {root} does not exist (built-in {layout} demos: {known})")
        return root

    def load_size(self, image_size: int) -> int:
        """The resize-before-crop size: recipe.load_size, or the reference's 286/256 ratio."""
        size = self.cfg.load_size if self.cfg.load_size is not None else reference_load_size(image_size)
        if size < image_size:
            raise GanforgeError(f"recipe.load_size ({size}) must be >= the model's image_size ({image_size})")
        return size

    def heldout_slice(self, lo: int, hi: int) -> dict[str, Tensor]:
        """Held-out items lo..hi-1 stacked as {"A", "B"}."""
        if self.heldout is None:
            raise GanforgeError("held-out data needs build_dataset to have run")
        batch = collate([self.heldout[i] for i in range(lo, hi)])
        return {"A": batch["A"], "B": batch["B"]}

    def heldout_size(self) -> int:
        """Number of held-out items."""
        return len(self.heldout)

    # ---- evaluation ----------------------------------------------------------------------------------
    def make_evaluator(self, run_cfg: Any, echo: Callable[..., None] = print):
        """Pixel metrics of the generators on the held-out images (see `evaluate_heldout`)."""
        from .evaluation import HeldoutEvaluator

        return HeldoutEvaluator(run_cfg, self, echo=echo)

    @torch.no_grad()
    def evaluate_heldout(self, nets: dict[str, nn.Module], n: int, batch_size: int = 16) -> dict[str, float]:
        """Metrics of `nets` on up to n held-out items (subclasses define)."""
        raise NotImplementedError

    def fixed_inputs(self, n: int, seed: int, dataset: Any = None) -> dict[str, Tensor]:
        """The first n held-out items (fewer if the split is smaller)."""
        return self.heldout_slice(0, min(n, self.heldout_size()))
