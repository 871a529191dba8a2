"""Evaluation during training, owned by the recipe: every `train.eval_every` steps one set of metrics,
logged to metrics.jsonl, whose `train.eval_metric` keeps checkpoints/best.

- DistributionEvaluator (noise models): a distribution metric of generated samples against the held-out
  split of the training data (the training split when there is none).
- HeldoutEvaluator (image-to-image models): the recipe's pixel metrics (PSNR, SSIM, L1) of its
  generators on held-out images.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..data import MissingSplit
from ..errors import GanforgeError
from ..metrics import compute_features, compute_metrics
from ..metrics.reference import choose_extractor, quantize, reference_stats

# train.eval_metric -> (metric family computed, key of the value in the result, higher is better)
EVAL_METRICS = {
    "fid": ("fid", "fid", False),
    "kid": ("kid", "kid_mean", False),
    "is": ("is", "is_mean", True),
    "precision": ("pr", "precision", True),
    "recall": ("pr", "recall", True),
    "density": ("dc", "density", True),
    "coverage": ("dc", "coverage", True),
}


class BestTracker:
    """Remembers the best value of one metric (higher or lower is better)."""

    higher = True
    best: float | None = None

    def better(self, v: float) -> bool:
        """Whether v beats the best so far (and becomes it)."""
        if self.best is None or (v > self.best if self.higher else v < self.best):
            self.best = v
            return True
        return False


class DistributionEvaluator(BestTracker):
    """Computes train.eval_metric for the recipe's generated images and tracks the best value."""

    def __init__(self, cfg: Any, recipe: Any, device: Any, echo=print):
        t = cfg.train
        metric = "fid" if t.eval_metric == "auto" else t.eval_metric
        if metric not in EVAL_METRICS:
            raise GanforgeError(f"train.eval_metric {t.eval_metric!r} does not apply to {recipe.models.name} "
                                f"(known: auto, {', '.join(EVAL_METRICS)})")
        self.family, self.key, self.higher = EVAL_METRICS[metric]
        self.recipe, self.n, self.seed = recipe, t.eval_n, t.seed
        args = recipe.models.args
        channels = args.get("channels") or args.get("channels_b") or args.get("out_channels") or 3
        self.extractor = choose_extractor(t.eval_extractor, channels, None, str(device))
        keep = self.n if self.family in ("kid", "pr", "dc") else 0
        size = args.get("image_size")
        try:
            self.real, info = reference_stats(cfg.data.source, self.extractor, self.n, split="test", root=cfg.data.root,
                                              image_size=size, channels=channels, keep=keep)
        except MissingSplit:
            echo("note: the data has no held-out split; evaluating against the training split")
            self.real, info = reference_stats(cfg.data.source, self.extractor, self.n, split="train",
                                              root=cfg.data.root, image_size=size, channels=channels, keep=keep)
        self.n = min(self.n, self.real.count)
        self.keep = keep
        self.best: float | None = None

    def __call__(self, nets: dict[str, nn.Module]) -> tuple[dict[str, float], bool]:
        """(logged values, whether this is the best so far)."""
        images = self.recipe.eval_images(nets, self.n, self.seed)
        fake = compute_features(self.extractor, (quantize(images[i:i + 100]) for i in range(0, len(images), 100)),
                                keep=self.keep, keep_logits=self.family == "is", seed=self.seed)
        values = compute_metrics([self.family], self.real, fake, seed=self.seed,
                                 kid_subset_size=min(1000, self.n))
        better = self.better(values[self.key])
        return {f"eval_{k}": float(x) for k, x in values.items() if isinstance(x, (int, float))}, better


class HeldoutEvaluator(BestTracker):
    """The recipe's held-out metrics (`evaluate_heldout`); train.eval_metric names the one that keeps best."""

    def __init__(self, cfg: Any, recipe: Any, echo=print):
        t = cfg.train
        self.recipe, self.n = recipe, t.eval_n
        self.key = recipe.default_eval_metric if t.eval_metric == "auto" else t.eval_metric
        known = recipe.eval_metric_names
        if self.key not in known:
            raise GanforgeError(f"train.eval_metric {t.eval_metric!r} does not apply to {recipe.models.name} "
                                f"(known: auto, {', '.join(known)})")
        self.higher = not any(w in self.key for w in ("l1", "fid", "kid"))

    def __call__(self, nets: dict[str, nn.Module]) -> tuple[dict[str, float], bool]:
        """(logged values, whether this is the best so far)."""
        values = self.recipe.evaluate_heldout(nets, self.n)
        return {f"eval_{k}": float(v) for k, v in values.items()}, self.better(values[self.key])
