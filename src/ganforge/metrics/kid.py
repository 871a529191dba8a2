"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel.

    k(x, y) = (x·y / d + 1)^3
    MMD²_u = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m²

averaged over random subsets of m samples drawn without replacement from each set (default 100 subsets
of 1000, as in the paper and torch-fidelity); the spread over subsets is reported as the std (ddof 0).
"""
from __future__ import annotations

import numpy as np

from ..errors import GanforgeError
from ._arrays import as_features, same_dim


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """Kernel matrix (x·y / d + coef0)^degree between the rows of x and y."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² estimate between samples x [m, d] and y [n, d] under the cubic polynomial kernel."""
    m, n = x.shape[0], y.shape[0]
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float(sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum() / (m * n))


def kid(
    real, generated, subsets: int = 100, subset_size: int = 1000, seed: int | None = 0
) -> dict[str, float]:
    """KID mean and std over random subsets; subset_size is capped at the smaller set's size."""
    x = as_features(real, "real features", min_rows=2)
    y = as_features(generated, "generated features", min_rows=2)
    same_dim(x, y, "KID")
    if subsets < 1 or subset_size < 2:
        raise GanforgeError(f"KID needs subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    m = min(subset_size, x.shape[0], y.shape[0])
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        xi = x[rng.choice(x.shape[0], m, replace=False)]
        yi = y[rng.choice(y.shape[0], m, replace=False)]
        values[i] = mmd2_unbiased(xi, yi)
    return {
        "kid_mean": float(values.mean()),
        "kid_std": float(values.std()),
        "kid_subsets": int(subsets),
        "kid_subset_size": int(m),
    }
