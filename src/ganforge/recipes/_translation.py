"""What the image-to-image recipes (pix2pix, cyclegan) share: the papers' learning-rate schedule, the
built-in demo sources, held-out snapshot data and a one-line dataset description.

Learning rate (both papers): constant for the first half of training, then linearly to zero, e.g.
100 + 100 epochs in the reference (`--lr_policy linear`). Here it is counted in steps: `decay_start`
(default: half of `total_steps`) and `total_steps` (default: the run's train.steps, which the loop hands
over through `attach`). The factor for 0-based step s is 1 before decay_start and
(total - s) / (total - decay_start) from there, so it reaches 0 exactly at total_steps. The reference,
stepping per epoch, stops one epoch short of zero (its last epoch trains at 1/(n_epochs_decay + 1)).
The learning rate is a pure function of the step (times the loop's NaN-recovery factor), recomputed
after every step and on resume, so resuming reproduces it bit for bit and extending a run re-plans it.

Demo sources: `demo:colorize`, `demo:edges` (paired, `data.translation_demo.make_pix2pix_demo`) and
`demo:grass2gravel` (unpaired, `make_cyclegan_demo`), optionally with `,key=value` options (n_train,
n_test, seed; holdout for the paired ones), e.g. `demo:colorize,n_train=64,n_test=8`. The crops are cut
at the model's image_size into $GANFORGE_CACHE/demo/ (default ~/.cache/ganforge/demo/), once: a folder
named after the options is built beside its final place and renamed into it, so concurrent runs never
see half-written data.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import GanforgeError
from ..models.base import GANModels
from .base import Recipe

DEMO_PREFIX = "demo:"
# demo name -> (layout, maker keyword arguments)
DEMOS: dict[str, tuple[str, dict[str, Any]]] = {
    "colorize": ("paired", {"task": "colorize"}),
    "edges": ("paired", {"task": "edges"}),
    "grass2gravel": ("unpaired", {}),
}
_DEMO_OPTIONS = {"paired": {"n_train": int, "n_test": int, "seed": int, "holdout": str},
                 "unpaired": {"n_train": int, "n_test": int, "seed": int}}
HELD_OUT_SPLITS = ("test", "val")  # where snapshot inputs come from, in this order


def reference_load_size(image_size: int) -> int:
    """The reference's resize-before-crop size scaled to `image_size`: 286 for 256 (x 286/256, rounded)."""
    return int(round(image_size * 286 / 256))


def lr_factor(step: int, decay_start: int, total_steps: int) -> float:
    """Learning-rate multiplier for 0-based `step`: 1 until decay_start, then linear to 0 at total_steps."""
    if step < decay_start or total_steps <= decay_start:
        return 1.0
    return max(0.0, (total_steps - step) / (total_steps - decay_start))


def cache_root() -> Path:
    """$GANFORGE_CACHE (default ~/.cache/ganforge)."""
    return Path(os.environ.get("GANFORGE_CACHE", "~/.cache/ganforge")).expanduser()


def parse_demo(source: str) -> tuple[str, dict[str, Any]] | None:
    """(demo name, options) for "demo:NAME[,key=value...]", None for any other source."""
    if not source.startswith(DEMO_PREFIX):
        return None
    name, *opts = source[len(DEMO_PREFIX):].split(",")
    if name not in DEMOS:
        raise GanforgeError(f"unknown demo {source!r} (known: {', '.join(DEMO_PREFIX + d for d in DEMOS)})")
    allowed = _DEMO_OPTIONS[DEMOS[name][0]]
    options: dict[str, Any] = {}
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq or key not in allowed:
            raise GanforgeError(f"bad demo option {opt!r} in {source!r} (known: {', '.join(allowed)}, as key=value)")
        try:
            options[key] = allowed[key](value)
        except ValueError:
            raise GanforgeError(f"demo option {key}={value!r} in {source!r} must be an {allowed[key].__name__}") from None
    return name, options


def demo_folder(source: str, layout: str, image_size: int, echo: Callable[[str], None] | None = None) -> Path | None:
    """The folder holding built-in demo `source` at `image_size` (made on first use); None if not a demo."""
    parsed = parse_demo(source)
    if parsed is None:
        return None
    name, options = parsed
    kind, fixed = DEMOS[name]
    if kind != layout:
        want = [DEMO_PREFIX + d for d, (k, _) in DEMOS.items() if k == layout]
        raise GanforgeError(f"{source} is {kind} data; this recipe needs {layout} data (demos: {', '.join(want)})")
    from ..data.translation_demo import make_cyclegan_demo, make_pix2pix_demo

    maker = make_pix2pix_demo if kind == "paired" else make_cyclegan_demo
    kwargs = {**fixed, **options, "image_size": image_size}
    tag = "-".join(f"{k}{v}" for k, v in sorted(options.items()))
    root = cache_root() / "demo"
    final = root / (f"{name}-{image_size}px" + (f"-{tag}" if tag else ""))
    if _complete(final, kwargs):
        return final
    root.mkdir(parents=True, exist_ok=True)
    if echo is not None:
        echo(f"ganforge: making {source} ({image_size} px crops of bundled photos) in {final}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        maker(tmp, **kwargs)
        if final.exists() and not _complete(final, kwargs):
            shutil.rmtree(final, ignore_errors=True)  # an older, interrupted or different build of ours
        try:
            os.rename(tmp, final)
        except OSError as e:  # another process finished first: use its copy
            if not _complete(final, kwargs):
                raise GanforgeError(f"cannot place demo data in {final}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _complete(folder: Path, kwargs: dict[str, Any]) -> bool:
    """Whether `folder` holds a finished demo made with `kwargs`."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    params = manifest.get("params", {})
    return bool(manifest.get("complete")) and all(params.get(k) == v for k, v in kwargs.items())


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"ganforge: warning: {message}", file=sys.stderr)


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
    """Base of the image-to-image recipes: the linear-decay learning rate and the loop settings they need."""

    def __init__(self, models: GANModels, cfg: Any, device: torch.device, amp: bool = False):
        super().__init__(models, cfg, device, amp)
        if cfg.lr <= 0:
            raise GanforgeError(f"recipe.lr must be > 0, got {cfg.lr}")
        for key in ("total_steps", "decay_start"):
            if getattr(cfg, key) is not None and getattr(cfg, key) < 0:
                raise GanforgeError(f"recipe.{key} must be >= 0, got {getattr(cfg, key)}")
        self.train_cfg: Any = None
        self.seed = 0
        self.lr_scale = 1.0  # the loop's NaN-recovery reductions, kept across schedule updates
        self.next_step = 0  # the step whose learning rate the optimizers hold
        self.schedule: tuple[int, int] | None = None  # (decay_start, total_steps)
        self.heldout: Any = None

    # ---- loop settings and the learning-rate schedule ------------------------------------------------
    def attach(self, train: Any) -> None:
        """Receive the run's loop settings (TrainConfig): steps plan the LR decay, seed the augmentation."""
        super().attach(train)
        self.train_cfg = train
        self.seed = int(train.seed)
        self.plan_schedule(int(train.steps))

    def plan_schedule(self, train_steps: int | None) -> None:
        """Resolve (decay_start, total_steps) from the recipe config, defaulting to the run's train.steps."""
        total = self.cfg.total_steps if self.cfg.total_steps is not None else train_steps
        if total is None:
            return
        start = self.cfg.decay_start if self.cfg.decay_start is not None else total // 2
        self.schedule = (int(start), int(total))
        self.apply_lr(self.next_step)

    def lr_at(self, step: int) -> float:
        """The learning rate the schedule gives 0-based `step` (before NaN-recovery reductions)."""
        if self.schedule is None:  # only when driven without the loop, which attaches train.steps
            raise GanforgeError("recipe.total_steps is not set and no train.steps was attached; "
                                "set recipe.total_steps")
        return self.cfg.lr * lr_factor(step, *self.schedule)

    def apply_lr(self, step: int) -> None:
        """Set every optimizer's learning rate for `step`."""
        lr = self.lr_at(step) * self.lr_scale
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr
        self.next_step = step

    def check_schedule(self) -> None:
        """Refuse to train without a planned schedule (one clear line, before any update)."""
        if self.schedule is None:
            self.lr_at(0)

    def end_of_step(self, step: int) -> None:
        """Set the learning rate of the next step."""
        super().end_of_step(step)
        self.apply_lr(step + 1)

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rates now and for the rest of the schedule (NaN recovery)."""
        super().scale_lr(factor)
        self.lr_scale *= factor

    def training_state(self) -> dict[str, Any]:
        """Optimizers plus the schedule position and the NaN-recovery factor."""
        return {**super().training_state(), "lr_scale": self.lr_scale, "next_step": self.next_step}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore training_state() and recompute the learning rate from this run's schedule."""
        super().load_training_state(state)
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.next_step = int(state.get("next_step", 0))
        if self.schedule is not None:
            self.apply_lr(self.next_step)

    def ema_targets(self) -> list[str]:
        """The generators (the loop keeps their EMA only when train.ema > 0; the papers use none)."""
        return [k for k in self.nets if k.startswith("G")]

    # ---- data ----------------------------------------------------------------------------------------
    def data_root(self, source: str, layout: str, image_size: int) -> Path:
        """The folder of `source`: a built-in demo (made on first use) or a path that must exist."""
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
