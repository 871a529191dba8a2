"""Reference statistics and the shared pieces of any evaluation: content fingerprints of datasets,
8-bit quantisation of generated images, and the choice of feature extractor."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor

from ..errors import GanforgeError
from ..utils.paths import cache_root, weights_dir
from .cache import cached_reference_stats, reference_key_parts
from .extractor import FeatureExtractor, get_extractor
from .inception_weights import INCEPTION_ENV, INCEPTION_FILENAME, resolve_inception_weights
from .stats import FeatureStats, compute_features

OFFLINE_EXTRACTOR = "ganforge-photo-v1"


def cache_dir() -> Path:
    """Where reference statistics are cached ($GANFORGE_CACHE/stats or ~/.cache/ganforge/stats)."""
    return cache_root() / "stats"


def quantize(images: Tensor) -> Tensor:
    """Round [-1, 1] images to the 256 levels an 8-bit file would hold."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def dataset_fingerprint(ds: Any) -> str:
    """A content hash of a dataset: its pixels when in memory, else file names, sizes and mtimes."""
    h = hashlib.sha256()
    raw = getattr(ds, "raw", None)
    if isinstance(raw, (Tensor,)) or hasattr(raw, "tobytes"):
        arr = raw.numpy() if isinstance(raw, Tensor) else raw
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    elif getattr(ds, "files", None):
        for f in ds.files:
            st = os.stat(f)
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        for i in range(len(ds)):
            h.update(ds[i][0].numpy().tobytes())
    return h.hexdigest()


def dataset_batches(ds: Any, n: int, batch_size: int) -> Iterator[Tensor]:
    """The first n images of a dataset in batches."""
    if hasattr(ds, "as_tensor") and getattr(ds, "in_memory", False):
        images, _ = ds.as_tensor()
        for i in range(0, min(n, len(images)), batch_size):
            yield images[i:min(i + batch_size, n)]
        return
    for i in range(0, min(n, len(ds)), batch_size):
        yield torch.stack([ds[j][0] for j in range(i, min(i + batch_size, n, len(ds)))])


def generator_batches(gen: Any, n: int, batch_size: int, seed: int) -> Iterator[Tensor]:
    """n quantised samples of a loaded generator in batches, labels cycling through classes."""
    k = gen.num_classes
    for i in range(0, n, batch_size):
        b = min(batch_size, n - i)
        labels = (torch.arange(i, i + b) % k) if k else None
        # One seed per batch keeps any prefix of the stream identical whatever n is.
        yield quantize(gen.sample(b, seed=seed * 1_000_003 + i, labels=labels))


def inception_weights_path(weights: str | None = None) -> Path:
    """The Inception weight file: `weights`, else $GANFORGE_INCEPTION, else the default fetch location.

    Raises a one-line GanforgeError saying how to get the file, and naming the offline extractor, if none exists.
    """
    if not weights and not os.environ.get(INCEPTION_ENV):
        default = weights_dir() / INCEPTION_FILENAME  # where `ganforge weights fetch` puts it
        weights = str(default) if default.is_file() else None
    try:
        return resolve_inception_weights(weights)
    except GanforgeError as e:
        # Never a silent switch to another extractor: its numbers are on another scale. Say it exists.
        raise GanforgeError(f"{e}; or measure offline with --extractor {OFFLINE_EXTRACTOR} (in training: "
                            f"train.eval_extractor={OFFLINE_EXTRACTOR}), on its own scale, not comparable with "
                            f"Inception FID") from None


def choose_extractor(name: str, channels: int, inception_weights: str | None, device: str) -> FeatureExtractor:
    """The named extractor; "auto" is mnist-judge for 1-channel data, inception otherwise (an error without
    its weights: "auto" never switches to the offline ganforge-photo-v1 by itself)."""
    if name == "auto":
        name = "mnist-judge" if channels == 1 else "inception"
    kwargs: dict[str, Any] = {"device": device}
    if name == "inception":
        kwargs["weights"] = str(inception_weights_path(inception_weights))
    return get_extractor(name, **kwargs)


def reference_stats(ref: str, extractor: FeatureExtractor, n: int, *, split: str = "train", root: str | None = None,
                    image_size: int | None = None, channels: int | None = None, batch_size: int = 100,
                    keep: int = 0, keep_logits: bool = False, use_cache: bool = True) -> tuple[FeatureStats, dict]:
    """Features of up to n reference images, cached on disk by content hash and protocol."""
    from ..data import build_dataset

    ds = build_dataset(ref, split=split, root=root, image_size=image_size, channels=channels)
    n = min(n, len(ds))
    info = {"source": ref, "split": split, "n": n, "image_size": image_size, "channels": channels,
            "skipped": ds.skipped, "fingerprint": dataset_fingerprint(ds)}
    parts = reference_key_parts(info, extractor, n, keep=keep, keep_logits=keep_logits)

    def compute() -> FeatureStats:
        return compute_features(extractor, dataset_batches(ds, n, batch_size), max_samples=n, keep=keep,
                                keep_logits=keep_logits)

    stats = cached_reference_stats(parts, compute, cache_dir()) if use_cache else compute()
    return stats, info
