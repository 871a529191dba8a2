"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), over splits, mean ± std.

The samples are cut into `splits` consecutive chunks (sizes differ by at most one, as in torch-fidelity);
p(y) is the mean prediction within each chunk. With `seed` given the samples are first shuffled by a
seeded permutation (torch-fidelity shuffles with seed 2020 by default; Salimans' code does not).
The std over splits uses ddof 0, as both references do.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, xlogy

from ..errors import GanforgeError
from ._arrays import as_features


def inception_score(
    scores, splits: int = 10, from_logits: bool = True, seed: int | None = None
) -> dict[str, float]:
    """IS mean and std from [N, K] class logits (or probabilities with from_logits=False)."""
    s = as_features(scores, "logits" if from_logits else "probabilities", min_rows=1)
    n = s.shape[0]
    if splits < 1 or n < splits:
        raise GanforgeError(f"Inception Score needs at least one sample per split: {n} samples, {splits} splits")
    if from_logits:
        log_p = log_softmax(s, axis=1)
        p = np.exp(log_p)
    else:
        if (s < 0).any() or not np.allclose(s.sum(axis=1), 1.0, atol=1e-4):
            raise GanforgeError("probabilities must be non-negative and sum to 1 per row")
        p = s / s.sum(axis=1, keepdims=True)
    if seed is not None:
        p = p[np.random.default_rng(seed).permutation(n)]
    scores_per_split = []
    for i in range(splits):
        chunk = p[i * n // splits:(i + 1) * n // splits]
        marginal = chunk.mean(axis=0, keepdims=True)
        # xlogy: 0·log 0 = 0, so exact one-hot probabilities are fine.
        kl = (xlogy(chunk, chunk) - xlogy(chunk, marginal)).sum(axis=1)
        scores_per_split.append(float(np.exp(kl.mean())))
    values = np.asarray(scores_per_split)
    return {"is_mean": float(values.mean()), "is_std": float(values.std()), "is_splits": int(splits)}
