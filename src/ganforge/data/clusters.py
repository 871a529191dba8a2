"""Unsupervised classes from the images themselves: k-means, for self-conditioned training and label maps.

A self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs") trains a
class-conditional G and D on cluster indices of the training images instead of human labels, and samples
clusters in proportion to their sizes; every conditional distribution then has far fewer modes than the
whole data set, which is what an unconditional G on a few thousand images struggles with. The clusters here
are k-means on the pixels (downsampled to at most CLUSTER_SIZE px a side), fitted once on the training split.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GanforgeError

CLUSTER_INITS = 4  # k-means++ restarts for self-conditioning (a single start can merge two modes)
CLUSTER_SIZE = 32  # largest side of the pixel features k-means sees (cost, and robustness to small shifts)
MAX_CLUSTERS = 1000


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25, n_init: int = 1) -> np.ndarray:
    """k centres (k x D, float64) of `points` (N x D): the best of n_init runs of Lloyd's iterations, each
    from a k-means++ start.

    Deterministic for the generator's state and independent of any library's version; an emptied cluster
    keeps its previous centre.
    """
    px = np.asarray(points, dtype=np.float64)
    sq = (px * px).sum(1)

    def dist2(c: np.ndarray) -> np.ndarray:  # N x k squared distances, without an N x k x D temporary
        return np.maximum(sq[:, None] - 2 * px @ c.T + (c * c).sum(1)[None], 0)

    best, best_inertia = None, np.inf
    for _ in range(n_init):
        centres = [px[rng.integers(len(px))]]
        closest = dist2(centres[0][None])[:, 0]
        for _ in range(1, k):
            total = closest.sum()
            centres.append(px[rng.choice(len(px), p=closest / total)] if total > 0 else px[rng.integers(len(px))])
            closest = np.minimum(closest, dist2(centres[-1][None])[:, 0])
        c = np.array(centres)
        for _ in range(iters):
            lab = dist2(c).argmin(1)
            counts = np.bincount(lab, minlength=k)
            sums = np.zeros_like(c)
            np.add.at(sums, lab, px)
            c = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)
        inertia = dist2(c).min(1).sum()
        if inertia < best_inertia:
            best, best_inertia = c, inertia
    return best


def nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each point's nearest centre."""
    px = np.asarray(points, dtype=np.float64)
    d = (px * px).sum(1)[:, None] - 2 * px @ centres.T + (centres * centres).sum(1)[None]
    return d.argmin(1)


def pixel_features(images: torch.Tensor, size: int = CLUSTER_SIZE) -> np.ndarray:
    """Images [N,C,H,W] as flat vectors, area-downsampled so the longer side is at most `size`."""
    h, w = images.shape[-2:]
    if max(h, w) > size:
        scale = size / max(h, w)
        images = F.interpolate(images.float(), size=(max(1, round(h * scale)), max(1, round(w * scale))),
                               mode="area")
    return images.reshape(images.shape[0], -1).double().numpy()


_CACHE: dict[tuple[str, int, int], np.ndarray] = {}  # content hash, k, seed -> labels (runs in one process)


def cluster_labels(images: torch.Tensor, k: int, seed: int = 0) -> np.ndarray:
    """A k-means cluster index (int64) for each image of [N,C,H,W]."""
    if not 2 <= k <= MAX_CLUSTERS:
        raise GanforgeError(f"the number of clusters must be in 2..{MAX_CLUSTERS}, got {k}")
    if images.shape[0] < k:
        raise GanforgeError(f"{images.shape[0]} training images cannot form {k} clusters")
    feats = pixel_features(images)
    key = (hashlib.sha256(feats.tobytes()).hexdigest(), k, seed)
    if key not in _CACHE:  # a resumed or repeated run in the same process clusters the same images once
        centres = kmeans(feats, k, np.random.default_rng(seed), n_init=CLUSTER_INITS)
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = nearest(feats, centres).astype(np.int64)
    return _CACHE[key].copy()
