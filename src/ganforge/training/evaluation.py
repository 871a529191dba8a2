"""Evaluation during training: every `eval_every` steps, one metric of generated samples against the
held-out split of the training data (the training split when there is none), logged to metrics.jsonl
and used to keep checkpoints/best."""
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


class TrainingEvaluator:
    """Computes train.eval_metric for the recipe's generated images and tracks the best value."""

    def __init__(self, cfg: Any, recipe: Any, device: Any, echo=print):
        t = cfg.train
        if t.eval_metric not in EVAL_METRICS:
            raise GanforgeError(f"unknown train.eval_metric {t.eval_metric!r} (known: {', '.join(EVAL_METRICS)})")
        self.family, self.key, self.higher = EVAL_METRICS[t.eval_metric]
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
        v = values[self.key]
        better = self.best is None or (v > self.best if self.higher else v < self.best)
        if better:
            self.best = v
        return {f"eval_{k}": float(x) for k, x in values.items() if isinstance(x, (int, float))}, better
