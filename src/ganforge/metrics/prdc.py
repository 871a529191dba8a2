"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

Each real sample x_i has a radius r_i: the distance to its k-th nearest other real sample (likewise
for generated samples). In feature space:
  precision = share of generated samples inside some real ball      d(y_j, x_i) <= r_i   (k = 3)
  recall    = share of real samples inside some generated ball      d(x_i, y_j) <= r'_j  (k = 3)
  density   = sum_j #{i : d(y_j, x_i) < r_i} / (k M)                                    (k = 5)
  coverage  = share of real x_i whose nearest generated sample lies inside its ball (<)   (k = 5)
The comparisons (<= for P/R, < for D/C) follow the authors' code; they differ only on exact ties.
Distances are computed in float64 in row blocks, so 10k x 10k sets need block x N memory, not N².
"""
from __future__ import annotations

import torch

from ..errors import GanforgeError
from ._arrays import as_features, same_dim


def _as_tensor(x, what: str, k: int, device) -> torch.Tensor:
    arr = as_features(x, what, min_rows=k + 1)
    return torch.from_numpy(arr).to(device or "cpu")


def _blocks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def knn_radii(x: torch.Tensor, ks: tuple[int, ...], block_size: int) -> dict[int, torch.Tensor]:
    """Distance from each row of x to its k-th nearest other row, for each k in ks."""
    ks = tuple(sorted(set(ks)))
    kmax = max(ks)
    parts: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    for a, b in _blocks(x.shape[0], block_size):
        d = torch.cdist(x[a:b], x)
        # Zero the self-distances exactly (cdist's matmul path leaves ~1e-8 there), then skip them.
        d[torch.arange(b - a), torch.arange(a, b)] = 0.0
        nearest = torch.topk(d, kmax + 1, dim=1, largest=False).values
        for k in ks:
            parts[k].append(nearest[:, k])
    return {k: torch.cat(v) for k, v in parts.items()}


def _check(real, generated, k_max: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    if k_max < 1:
        raise GanforgeError(f"k must be >= 1, got {k_max}")
    x = _as_tensor(real, "real features", k_max, device)
    y = _as_tensor(generated, "generated features", k_max, device)
    same_dim(x, y, "precision/recall")
    return x, y


def prdc(
    real, generated, k_pr: int = 3, k_dc: int = 5, block_size: int = 1024, device: str | None = None
) -> dict[str, float]:
    """Precision, recall (k_pr-NN balls) and density, coverage (k_dc-NN balls) of generated vs real features."""
    x, y = _check(real, generated, max(k_pr, k_dc), device)
    if block_size < 1:
        raise GanforgeError(f"block_size must be >= 1, got {block_size}")
    r_real = knn_radii(x, (k_pr, k_dc), block_size)
    r_gen = knn_radii(y, (k_pr,), block_size)[k_pr]
    precision_hit = torch.zeros(y.shape[0], dtype=torch.bool, device=x.device)
    density_count = torch.zeros(y.shape[0], dtype=torch.float64, device=x.device)
    recall_hit = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    nearest_gen = torch.full((x.shape[0],), float("inf"), dtype=torch.float64, device=x.device)
    for a, b in _blocks(y.shape[0], block_size):
        d = torch.cdist(y[a:b], x)  # [block of generated, all real]
        precision_hit[a:b] = (d <= r_real[k_pr][None, :]).any(dim=1)
        density_count[a:b] = (d < r_real[k_dc][None, :]).sum(dim=1).to(torch.float64)
        recall_hit |= (d <= r_gen[a:b, None]).any(dim=0)
        nearest_gen = torch.minimum(nearest_gen, d.min(dim=0).values)
    return {
        "precision": float(precision_hit.double().mean()),
        "recall": float(recall_hit.double().mean()),
        "density": float(density_count.mean() / k_dc),
        "coverage": float((nearest_gen < r_real[k_dc]).double().mean()),
    }


def precision_recall(
    real, generated, k: int = 3, block_size: int = 1024, device: str | None = None
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN balls."""
    out = prdc(real, generated, k_pr=k, k_dc=k, block_size=block_size, device=device)
    return {"precision": out["precision"], "recall": out["recall"]}


def density_coverage(
    real, generated, k: int = 5, block_size: int = 1024, device: str | None = None
) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020) with k-NN balls around real samples."""
    out = prdc(real, generated, k_pr=k, k_dc=k, block_size=block_size, device=device)
    return {"density": out["density"], "coverage": out["coverage"]}

