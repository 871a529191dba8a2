"""Turning feature inputs (numpy arrays or torch tensors) into validated float64 arrays."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GanforgeError


def as_float64(x, what: str, ndim: int | None = None) -> np.ndarray:
    """`x` (array or tensor) as a finite float64 numpy array, optionally of a given rank."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise GanforgeError(f"{what} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise GanforgeError(f"{what} contains NaN or infinite values")
    return arr


def as_features(x, what: str, min_rows: int = 1) -> np.ndarray:
    """`x` as a finite float64 [N, D] feature matrix with at least `min_rows` rows."""
    arr = as_float64(x, what, ndim=2)
    if arr.shape[0] < min_rows:
        raise GanforgeError(f"{what} needs at least {min_rows} samples, got {arr.shape[0]}")
    return arr


def same_dim(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Raise unless two feature matrices have the same feature dimension."""
    if a.shape[1] != b.shape[1]:
        raise GanforgeError(f"{what}: feature dimensions differ ({a.shape[1]} vs {b.shape[1]})")
