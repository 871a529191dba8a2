"""Fréchet Inception Distance: the Fréchet (2-Wasserstein) distance between two Gaussians fitted to features.

    FID = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))

The trace term uses A = S1^(1/2), B = S2^(1/2) (symmetric eigendecompositions): S1 S2 = A (A B² A) A^-1
has the eigenvalues of A B² A = (AB)(AB)^T (for singular S1 too: AB and BA share non-zero
eigenvalues), so Tr((S1 S2)^(1/2)) is the sum of the singular values of AB, its nuclear norm. Every
step is real and backward stable, also for rank-deficient covariances (fewer samples than
dimensions), where the classic `scipy.linalg.sqrtm` of the non-symmetric S1 S2 returns complex noise
and needs pytorch-fid's eps*I retry, which biases the value. Singular values (rather than square roots
of eigenvalues) keep null directions at ~eps instead of ~sqrt(eps); eigenvalues of S1 and S2 below
the numerical-rank tolerance (dim * eps * largest) are set to zero for the same reason.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GanforgeError
from ._arrays import as_features, as_float64, same_dim

if TYPE_CHECKING:
    from .stats import FeatureStats


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    # Eigenvalues below the numerical-rank tolerance are rounding noise around zero.
    tol = max(float(w.max(initial=0.0)), 0.0) * m.shape[0] * np.finfo(np.float64).eps
    return (v * np.sqrt(np.where(w > tol, w, 0.0))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) for symmetric PSD S1, S2: the nuclear norm of S1^(1/2) S2^(1/2)."""
    return float(np.linalg.svd(_sqrt_psd(sigma1) @ _sqrt_psd(sigma2), compute_uv=False).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (arrays or tensors)."""
    mu1 = as_float64(mu1, "mu1", ndim=1)
    mu2 = as_float64(mu2, "mu2", ndim=1)
    sigma1 = as_float64(sigma1, "sigma1", ndim=2)
    sigma2 = as_float64(sigma2, "sigma2", ndim=2)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise GanforgeError(
            f"Gaussian shapes do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
            f"mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    # A squared distance: a negative result can only be rounding (e.g. identical sets).
    return max(float(value), 0.0)


def mean_cov(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (N-1) covariance of [N, D] features, as pytorch-fid's np.cov(rowvar=False)."""
    x = as_features(features, "features", min_rows=2)
    mu = x.mean(axis=0)
    xc = x - mu
    return mu, (xc.T @ xc) / (x.shape[0] - 1)


def warn_if_few_samples(n: int, dim: int, what: str) -> None:
    """Warn that FID from fewer samples than feature dimensions is rank-deficient and biased."""
    if n < dim:
        warnings.warn(
            f"FID from {n} {what} samples < feature dimension {dim}: the covariance is rank-deficient "
            "and FID is strongly biased upward; values are only comparable at equal sample counts "
            "(use >= 10,000 samples for reported numbers)",
            stacklevel=3,
        )


def fid_from_features(real, generated) -> float:
    """FID between two [N, D] feature sets (rows are samples)."""
    x = as_features(real, "real features", min_rows=2)
    y = as_features(generated, "generated features", min_rows=2)
    same_dim(x, y, "FID")
    warn_if_few_samples(x.shape[0], x.shape[1], "real")
    warn_if_few_samples(y.shape[0], y.shape[1], "generated")
    mu1, s1 = mean_cov(x)
    mu2, s2 = mean_cov(y)
    return frechet_distance(mu1, s1, mu2, s2)


def fid_from_stats(real: "FeatureStats", generated: "FeatureStats") -> float:
    """FID between two streamed FeatureStats accumulators."""
    if real.dim != generated.dim:
        raise GanforgeError(f"FID: feature dimensions differ ({real.dim} vs {generated.dim})")
    warn_if_few_samples(real.count, real.dim, "real")
    warn_if_few_samples(generated.count, generated.dim, "generated")
    return frechet_distance(real.mean(), real.cov(), generated.mean(), generated.cov())
