"""The record of one evaluation: values plus the protocol that produced them, as JSON and as a table.

A FID is only comparable with another FID computed with the same extractor weights, resize method and
sample counts, so every record carries them. Non-finite values (e.g. PSNR of identical images) are
stored as null, keeping the JSON strict.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Mapping

from .. import __version__
from .extractor import FeatureExtractor


def _plain(value: Any) -> Any:
    """A JSON-safe copy: numpy/torch scalars to Python numbers, non-finite floats to None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if getattr(value, "ndim", 0) and hasattr(value, "tolist"):  # numpy arrays and tensors
        return _plain(value.tolist())
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def build_record(
    metrics: Mapping[str, Any],
    extractor: FeatureExtractor | Mapping[str, Any] | None,
    n_real: int | None,
    n_generated: int | None,
    seed: int | None,
    options: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The JSON-ready record of an evaluation: values, extractor protocol, counts, seed, version, time."""
    info = extractor.describe() if isinstance(extractor, FeatureExtractor) else dict(extractor or {})
    when = (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "metrics": _plain(dict(metrics)),
        "extractor": info.get("name"),
        "weights_sha256": info.get("weights_sha256"),
        "resize_method": info.get("resize_method"),
        "extractor_info": _plain(info),
        "n_real": n_real,
        "n_generated": n_generated,
        "seed": seed,
        "options": _plain(dict(options or {})),
        "ganforge_version": __version__,
        "timestamp": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"
    return str(value)


def format_table(record: Mapping[str, Any]) -> str:
    """A plain-text table of a record's metric values followed by its protocol lines."""
    rows = [(name, _fmt(v)) for name, v in record.get("metrics", {}).items()]
    width = max([len("metric")] + [len(r[0]) for r in rows])
    vwidth = max([len("value")] + [len(r[1]) for r in rows])
    lines = [f"{'metric':<{width}}  {'value':>{vwidth}}", f"{'-' * width}  {'-' * vwidth}"]
    lines += [f"{name:<{width}}  {val:>{vwidth}}" for name, val in rows]
    sha = record.get("weights_sha256")
    lines += [
        "",
        f"extractor: {record.get('extractor')} (weights sha256 {sha[:16] + '...' if sha else 'n/a'})",
        f"resize:    {record.get('resize_method')}",
        f"samples:   real {_fmt(record.get('n_real'))}, generated {_fmt(record.get('n_generated'))}",
        f"seed:      {_fmt(record.get('seed'))}",
        f"ganforge {record.get('ganforge_version')}, {record.get('timestamp')}",
    ]
    return "\n".join(lines)
