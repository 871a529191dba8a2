"""IDX files (the MNIST / Fashion-MNIST format), raw or gzipped.

Format: 2 zero bytes, a type byte (0x08 = unsigned byte), a byte with the number of dimensions, then
one big-endian uint32 per dimension, then the data in C order. Images are 0x00000803 (N, H, W) and
labels 0x00000801 (N,). Standard names: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`
and the same with `t10k` for the held-out split (the `train-images.idx3-ubyte` spelling also works).
"""
from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from ..errors import GanforgeError
from .dataset import MissingSplit

IDX_NAME = re.compile(r"(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?")
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_UBYTE = 0x08


def is_idx_name(name: str) -> bool:
    """Whether a file name follows the standard IDX naming."""
    return IDX_NAME.fullmatch(name) is not None


def read_idx(path: str | Path) -> np.ndarray:
    """Read one unsigned-byte IDX file (optionally .gz) into a uint8 array of its declared shape."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise GanforgeError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise GanforgeError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != _UBYTE:
        raise GanforgeError(f"{path}: IDX element type 0x{raw[2]:02x} is not supported (only unsigned byte)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise GanforgeError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise GanforgeError(
            f"{path}: IDX header says {'x'.join(map(str, dims))} = {expected} bytes of data, "
            f"file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find(folder: Path, prefix: str, kind: str) -> Path | None:
    hits = sorted(
        p for p in folder.iterdir()
        if p.is_file() and (m := IDX_NAME.fullmatch(p.name)) and m.group(1) == prefix and m.group(2) == kind
    )
    if len(hits) > 1:
        # e.g. both the .gz and the unpacked file: the same data, prefer the unpacked one
        raw = [p for p in hits if not p.name.endswith(".gz")]
        hits = raw or hits
    return hits[0] if hits else None


def find_idx_folder(path: Path) -> bool:
    """Whether `path` is a folder holding at least one standard IDX images file."""
    return path.is_dir() and any(
        (m := IDX_NAME.fullmatch(p.name)) and m.group(2) == "images" for p in path.iterdir()
    )


def load_idx(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Images uint8 [N,1,H,W] and labels int64 [N] (None if no labels file) from an IDX folder or file."""
    path = Path(path)
    if path.is_file():
        m = IDX_NAME.fullmatch(path.name)
        if not m or m.group(2) != "images":
            raise GanforgeError(f"{path} is not a standard IDX images file (e.g. train-images-idx3-ubyte.gz)")
        if m.group(1) != _SPLIT_PREFIX[split]:
            raise GanforgeError(f"{path.name} is the {m.group(1)} file but split={split!r} was asked for")
        images_path, folder, prefix = path, path.parent, m.group(1)
    else:
        folder, prefix = path, _SPLIT_PREFIX[split]
        images_path = _find(folder, prefix, "images")
        if images_path is None:
            raise MissingSplit(f"no {prefix}-images-idx3-ubyte[.gz] in {folder} (split={split!r})")
    images = read_idx(images_path)
    if images.ndim != 3:
        raise GanforgeError(f"{images_path}: expected 3 dimensions (N, H, W), got {images.ndim}")
    labels_path = _find(folder, prefix, "labels")
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path).astype(np.int64)
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise GanforgeError(
                f"{labels_path} has {labels.shape[0]} labels but {images_path.name} has {images.shape[0]} images"
            )
    return images[:, None], labels
