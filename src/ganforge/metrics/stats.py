"""Streaming feature statistics: mean and covariance in float64 from batches, in bounded memory.

`FeatureStats` keeps the count, the sum of features and the sum of their outer products (D + D² floats
whatever N is), shifted by the first batch's mean so that the covariance does not lose precision to
cancellation when features have a large mean. Optionally it keeps a uniform random sample of raw
features (reservoir sampling, seeded, capped at `keep` rows) for KID and precision/recall, and all
logits for the Inception Score (N x K float32: 200 MB for 50,000 Inception samples).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..errors import GanforgeError
from ._arrays import as_float64
from .extractor import FeatureExtractor

_FORMAT = 1  # version of to_arrays()' layout


class FeatureStats:
    """Running count, mean and covariance of [N, dim] features, plus an optional capped raw sample."""

    def __init__(self, dim: int, keep: int = 0, keep_logits: bool = False, seed: int = 0) -> None:
        if dim < 1 or keep < 0:
            raise GanforgeError(f"FeatureStats needs dim >= 1 and keep >= 0, got {dim} and {keep}")
        self.dim = int(dim)
        self.keep = int(keep)
        self.keep_logits = keep_logits
        self.count = 0
        self._shift = np.zeros(dim)
        self._sum = np.zeros(dim)
        self._outer = np.zeros((dim, dim))
        self._kept = np.empty((0, dim), dtype=np.float32)
        self._logits: list[np.ndarray] = []
        self._rng = np.random.default_rng(seed)

    def update(self, features, logits=None) -> None:
        """Add a batch of [B, dim] features (and [B, K] logits when keep_logits)."""
        f = as_float64(features, "features", ndim=2)
        if f.shape[1] != self.dim:
            raise GanforgeError(f"features have dimension {f.shape[1]}, expected {self.dim}")
        if f.shape[0] == 0:
            return
        if self.count == 0:
            self._shift = f.mean(axis=0)
        d = f - self._shift
        self._sum += d.sum(axis=0)
        self._outer += d.T @ d
        if self.keep:
            self._reservoir(f.astype(np.float32))
        if self.keep_logits:
            if logits is None:
                raise GanforgeError("FeatureStats(keep_logits=True) needs logits with every batch")
            lg = as_float64(logits, "logits", ndim=2).astype(np.float32)
            if lg.shape[0] != f.shape[0]:
                raise GanforgeError(f"{lg.shape[0]} logits for {f.shape[0]} features")
            self._logits.append(lg)
        self.count += f.shape[0]

    def _reservoir(self, rows: np.ndarray) -> None:
        # Algorithm R: after n items every item is in the sample with probability keep / n.
        start = self.count
        n_fill = max(0, min(self.keep - start, rows.shape[0]))
        if n_fill:
            self._kept = np.concatenate([self._kept, rows[:n_fill]])
        rest = rows[n_fill:]
        if rest.shape[0]:
            seen = np.arange(start + n_fill, start + rows.shape[0]) + 1
            slots = self._rng.integers(0, seen)
            for row, slot in zip(rest, slots):  # in order: a later item overwrites an earlier one
                if slot < self.keep:
                    self._kept[slot] = row

    def mean(self) -> np.ndarray:
        """Mean feature vector, float64 [dim]."""
        self._need(1)
        return self._shift + self._sum / self.count

    def cov(self) -> np.ndarray:
        """Unbiased (N-1) covariance, float64 [dim, dim]."""
        self._need(2)
        c = (self._outer - np.outer(self._sum, self._sum) / self.count) / (self.count - 1)
        return (c + c.T) / 2

    def features(self) -> np.ndarray:
        """The kept raw features (a uniform sample of at most `keep` rows), float32."""
        if self.keep == 0:
            raise GanforgeError("raw features were not kept (FeatureStats keep=0); KID and precision/recall need them")
        self._need(1)
        return self._kept

    def logits(self) -> np.ndarray:
        """All logits seen, float32 [count, K]."""
        if not self.keep_logits:
            raise GanforgeError("logits were not kept (keep_logits=False); the Inception Score needs them")
        self._need(1)
        return np.concatenate(self._logits)

    def _need(self, n: int) -> None:
        if self.count < n:
            raise GanforgeError(f"feature statistics need at least {n} sample(s), have {self.count}")

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Add another accumulator's samples into this one (e.g. per-rank stats under DDP)."""
        if other.dim != self.dim:
            raise GanforgeError(f"cannot merge feature stats of dimension {other.dim} into {self.dim}")
        if other.count == 0:
            return self
        if self.keep_logits and not other.keep_logits:
            raise GanforgeError("cannot merge stats without logits into stats that keep logits")
        kept = self._merge_kept(other) if self.keep else self._kept  # may raise: before any change
        if self.count == 0:
            self._shift = other._shift.copy()
        # Re-express other's sums around this shift: x - s1 = (x - s2) + delta.
        delta = other._shift - self._shift
        n2, s2 = other.count, other._sum
        self._outer += other._outer + np.outer(delta, s2) + np.outer(s2, delta) + n2 * np.outer(delta, delta)
        self._sum += s2 + n2 * delta
        self._kept = kept
        if self.keep_logits:
            self._logits.extend(other._logits)
        self.count += n2
        return self

    def _merge_kept(self, other: "FeatureStats") -> np.ndarray:
        n_total = self.count + other.count
        size = min(self.keep, n_total)
        # How many of a uniform sample of `size` from the union come from each side: hypergeometric.
        from_self = int(self._rng.hypergeometric(self.count, other.count, size)) if self.count else 0
        from_other = size - from_self
        if from_self > len(self._kept) or from_other > len(other._kept):
            raise GanforgeError("cannot merge feature samples: the other accumulator kept too few features")
        a = self._kept[self._rng.choice(len(self._kept), from_self, replace=False)]
        b = other._kept[self._rng.choice(len(other._kept), from_other, replace=False)]
        return np.concatenate([a, b]).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays that `from_arrays` restores exactly (for .npz files, no pickle)."""
        out = {
            "format": np.array(_FORMAT),
            "dim": np.array(self.dim),
            "count": np.array(self.count),
            "keep": np.array(self.keep),
            "shift": self._shift,
            "sum": self._sum,
            "sum_outer": self._outer,
            "features": self._kept,
        }
        if self.keep_logits:
            out["logits"] = np.concatenate(self._logits) if self._logits else np.empty((0, 0), np.float32)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> "FeatureStats":
        """Rebuild a FeatureStats from `to_arrays()` output."""
        if int(arrays["format"]) != _FORMAT:
            raise GanforgeError(f"feature stats format {int(arrays['format'])} is not supported (expected {_FORMAT})")
        stats = cls(int(arrays["dim"]), keep=int(arrays["keep"]), keep_logits="logits" in arrays)
        stats.count = int(arrays["count"])
        stats._shift = np.asarray(arrays["shift"], dtype=np.float64)
        stats._sum = np.asarray(arrays["sum"], dtype=np.float64)
        stats._outer = np.asarray(arrays["sum_outer"], dtype=np.float64)
        stats._kept = np.asarray(arrays["features"], dtype=np.float32)
        if stats.keep_logits and stats.count:
            stats._logits = [np.asarray(arrays["logits"], dtype=np.float32)]
        if stats._outer.shape != (stats.dim, stats.dim) or stats._sum.shape != (stats.dim,):
            raise GanforgeError("feature stats arrays have inconsistent shapes")
        return stats


def _images_of(batch: Any) -> torch.Tensor:
    # Data sources yield images or (images, labels); only images are embedded.
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if isinstance(batch, dict):
        batch = batch["images"] if "images" in batch else batch["image"]
    return batch


def compute_features(
    extractor: FeatureExtractor,
    batches: Iterable[Any],
    max_samples: int | None = None,
    keep: int = 0,
    keep_logits: bool = False,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> FeatureStats:
    """Embed image batches (tensors in [-1,1], or (images, labels)) into a FeatureStats, batch by batch."""
    if keep_logits and not extractor.has_logits:
        raise GanforgeError(f"feature extractor {extractor.name!r} has no logits; the Inception Score needs them")
    stats = FeatureStats(extractor.dim, keep=keep, keep_logits=keep_logits, seed=seed)
    for batch in batches:
        if max_samples is not None and stats.count >= max_samples:
            break
        images = _images_of(batch)
        if max_samples is not None:
            images = images[: max_samples - stats.count]
        feats, logits = extractor.features_and_logits(images, logits=keep_logits)
        stats.update(feats, logits)
        if progress is not None:
            progress(stats.count)
    if stats.count == 0:
        raise GanforgeError("no images to compute features from")
    if max_samples is not None and stats.count < max_samples:
        raise GanforgeError(f"asked for {max_samples} samples but the source ran out after {stats.count}")
    return stats
