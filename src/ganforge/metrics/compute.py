"""Distribution metrics by name from two FeatureStats: the one call an evaluation loop needs.

Names: "fid" (mean and covariance), "kid" and "pr" / "dc" (kept raw features), "is" (generated
logits). The result is a flat mapping of plain floats, ready for `build_record`.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import GanforgeError
from .fid import fid_from_stats
from .inception_score import inception_score
from .kid import kid
from .prdc import prdc
from .stats import FeatureStats

METRIC_NAMES = ("fid", "kid", "is", "pr", "dc")


def compute_metrics(
    names: Sequence[str],
    real: FeatureStats | None,
    generated: FeatureStats,
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    pr_k: int = 3,
    dc_k: int = 5,
) -> dict[str, float]:
    """Compute the named metrics of generated vs real statistics into one flat dict of floats."""
    unknown = sorted(set(names) - set(METRIC_NAMES))
    if unknown:
        raise GanforgeError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRIC_NAMES)})")
    needs_real = [n for n in names if n != "is"]
    if needs_real and real is None:
        raise GanforgeError(f"metric(s) {', '.join(needs_real)} need real-data statistics")
    out: dict[str, float] = {}
    if "fid" in names:
        out["fid"] = fid_from_stats(real, generated)
    if "kid" in names:
        out.update(kid(real.features(), generated.features(), kid_subsets, kid_subset_size, seed=seed))
    if "pr" in names or "dc" in names:
        values = prdc(real.features(), generated.features(), k_pr=pr_k, k_dc=dc_k)
        if "pr" in names:
            out.update(precision=values["precision"], recall=values["recall"])
        if "dc" in names:
            out.update(density=values["density"], coverage=values["coverage"])
    if "is" in names:
        out.update(inception_score(generated.logits(), splits=is_splits, seed=seed))
    return out
