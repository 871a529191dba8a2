"""On-disk cache of reference (real-data) feature statistics, keyed by what determines them.

The key is the SHA-256 of a canonical JSON (sorted keys, no whitespace) of `key_parts`: the dataset's
identity, the extractor's name, weights hash and resize method, the sample count, and anything else
that changes the numbers. Files are `.npz` (numpy arrays only, loaded with allow_pickle=False),
written to a temporary file in the cache folder, fsynced, then `os.replace`d, so a crash never leaves
a half-written entry under the final name. The key JSON is stored inside and checked on load.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import GanforgeError
from ..utils.atomic import atomic_write
from .extractor import FeatureExtractor
from .stats import FeatureStats

_KEY_FIELD = "cache_key_json"


def canonical_json(obj: Mapping[str, Any]) -> str:
    """Deterministic JSON text of a mapping: sorted keys, compact separators, ASCII only."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise GanforgeError(f"cache key parts must be plain JSON values: {e}") from None


def cache_key(key_parts: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of `key_parts`."""
    return hashlib.sha256(canonical_json(key_parts).encode("ascii")).hexdigest()


def reference_key_parts(
    dataset: Mapping[str, Any] | str, extractor: FeatureExtractor, n: int, **extra: Any
) -> dict[str, Any]:
    """Key parts for real-data stats: dataset identity, extractor protocol, count, extras (e.g. keep=...)."""
    info = extractor.describe()
    return {
        "dataset": dataset,
        "extractor": info["name"],
        "weights_sha256": info["weights_sha256"],
        "resize_method": info["resize_method"],
        "n": int(n),
        **extra,
    }


def _write_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def _read(path: Path, key_json: str) -> FeatureStats | None:
    """The cached stats, or None (with a warning) when the file is unreadable or for another key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        if str(arrays.pop(_KEY_FIELD)) != key_json:
            warnings.warn(f"reference stats cache {path} holds another key; recomputing", stacklevel=3)
            return None
        return FeatureStats.from_arrays(arrays)
    except (OSError, ValueError, KeyError, GanforgeError) as e:
        warnings.warn(f"reference stats cache {path} is unreadable ({e}); recomputing", stacklevel=3)
        return None


def cached_reference_stats(
    key_parts: Mapping[str, Any],
    compute_fn: Callable[[], FeatureStats],
    cache_dir: str | os.PathLike,
) -> FeatureStats:
    """Load the FeatureStats for `key_parts` from `cache_dir`, or compute, store atomically and return them."""
    key_json = canonical_json(key_parts)
    path = Path(cache_dir).expanduser() / f"{cache_key(key_parts)}.npz"
    if path.is_file():
        stats = _read(path, key_json)
        if stats is not None:
            return stats
    stats = compute_fn()
    if not isinstance(stats, FeatureStats):
        raise TypeError(f"compute_fn must return FeatureStats, got {type(stats).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, {**stats.to_arrays(), _KEY_FIELD: np.array(key_json)})
    return stats
