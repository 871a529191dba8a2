"""Image folders and zips: find the split and the classes, skip corrupt files, decode eagerly or lazily.

Layout rules (applied to a folder or to the inside of a .zip):

1. A single wrapping folder (no images beside it) is looked through: `faces.zip/faces/*.png` is flat.
2. `train/` and `test/` subfolders are the splits; `split="test"` on a folder without `test/` is an error.
   CycleGAN-style `trainA/ trainB/ testA/ testB/` keep the folders of the requested split as classes.
3. Images only in subfolders, two or more of them: one class per subfolder, labels by sorted name.
   Otherwise (flat, or images both at the top and in subfolders): every image, unlabeled (-1).

Files are found by extension and sorted by relative path. Every header is read at build time; an
unreadable one is skipped and counted. Small sets (<= EAGER_MAX_FILES and <= EAGER_MAX_BYTES once
decoded) are fully decoded at build time too, which finds truncated files and makes epochs a tensor
index. Larger sets decode lazily; a file that fails then is replaced by the next readable index and
counted (counts made inside DataLoader worker processes stay in those processes).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import GanforgeError
from .dataset import ImageDataset, MissingSplit, TensorImageDataset
from .decode import IMAGE_EXTENSIONS, DecodeError, Header, decode_image, read_header
from .store import DirStore, ZipStore

EAGER_MAX_FILES = 20_000
EAGER_MAX_BYTES = 1 << 30

_SPLIT_PAIR = re.compile(r"(train|test)[a-z0-9_]+")
Store = DirStore | ZipStore


@dataclass
class Layout:
    """Which files of a store form the requested split, and their labels."""

    files: list[str]
    labels: list[int]
    class_names: list[str] | None
    where: str


def _split_tree(rels: list[str]) -> tuple[list[str], list[str]]:
    """Top-level files and sorted top-level folder names of relative paths."""
    top_files = [r for r in rels if "/" not in r]
    dirs = sorted({r.split("/", 1)[0] for r in rels if "/" in r})
    return top_files, dirs


def _under(paths: list[str], prefix: str) -> list[str]:
    return [p[len(prefix):] for p in paths if p.startswith(prefix)]


def resolve_layout(paths: list[str], split: str, where: str) -> Layout:
    """Apply the layout rules to sorted relative image paths and pick `split`."""
    prefix, split_used = "", False
    class_dirs: list[str] | None = None  # folders that hold this split's images
    all_classes: list[str] | None = None  # class names shared by every split, for stable labels
    while True:
        top_files, dirs = _split_tree(_under(paths, prefix))
        lower = {d.lower(): d for d in dirs}
        if not split_used and "train" in lower and "test" in lower:
            split_used = True
            # Classes are the union over train/ and test/, so a class missing from one split
            # does not shift the labels of the others.
            trees = [_split_tree(_under(paths, prefix + lower[s] + "/")) for s in ("train", "test")]
            prefix += lower[split] + "/"
            if all(not files for files, _ in trees):
                all_classes = sorted(set().union(*(set(d) for _, d in trees)))
            break
        if not split_used and dirs and not top_files and all(_SPLIT_PAIR.fullmatch(d.lower()) for d in dirs):
            chosen = [d for d in dirs if d.lower().startswith(split)]
            if not chosen:
                raise MissingSplit(f"{where}{prefix} has no {split} split (folders: {', '.join(dirs)})")
            class_dirs = all_classes = chosen
            split_used = True
            break
        if not top_files and len(dirs) == 1:
            only = dirs[0]
            if only.lower() in ("train", "test") and not split_used:
                if only.lower() != split:
                    raise MissingSplit(f"{where}{prefix} has only a {only}/ folder, no {split}/ split")
                split_used = True
            prefix += only + "/"
            continue
        break
    if split == "test" and not split_used:
        raise MissingSplit(f"{where} has no test split (no test/ folder); use split='train'")
    rels = _under(paths, prefix)
    top_files, dirs = _split_tree(rels)
    if class_dirs is not None:
        keep = set(class_dirs)
        rels = [r for r in rels if r.split("/", 1)[0] in keep]
    if all_classes is None and not top_files:
        all_classes = dirs
    if not top_files and all_classes is not None and len(all_classes) >= 2:
        index = {d: i for i, d in enumerate(all_classes)}
        labels = [index[r.split("/", 1)[0]] for r in rels]
        return Layout([prefix + r for r in rels], labels, list(all_classes), where + prefix)
    return Layout([prefix + r for r in rels], [-1] * len(rels), None, where + prefix)


def open_store(path: str) -> Store:
    """A DirStore for a folder, a ZipStore for a .zip file."""
    if os.path.isdir(path):
        return DirStore(path)
    return ZipStore(path)


def _read_header(store: Store, rel: str) -> Header:
    try:
        with store.open(rel) as fp:
            return read_header(fp)
    except OSError as exc:
        raise DecodeError(f"{type(exc).__name__}: {exc}") from None


def _decode(store: Store, rel: str, channels: int, size: int | None, resize: str) -> np.ndarray:
    try:
        with store.open(rel) as fp:
            return decode_image(fp, channels, size, resize)
    except OSError as exc:
        raise DecodeError(f"{type(exc).__name__}: {exc}") from None


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def scan_headers(store: Store, files: list[str]) -> tuple[list[tuple[str, Header]], list[tuple[str, str]]]:
    """Read every header: (readable files with headers, [(unreadable file, reason)])."""

    def one(rel: str) -> tuple[str, Header | None, str]:
        try:
            return rel, _read_header(store, rel), ""
        except DecodeError as exc:
            return rel, None, str(exc)

    good, bad = [], []
    with ThreadPoolExecutor(_workers()) as pool:
        for rel, header, reason in pool.map(one, files):
            if header is None:
                bad.append((rel, reason))
            else:
                good.append((rel, header))
    return good, bad


def _size_summary(sizes: Counter) -> str:
    return ", ".join(f"{w}x{h} x{n}" for (w, h), n in sizes.most_common(3))


def _target_geometry(
    headers: list[tuple[str, Header]], store: Store, image_size: int | None, resize: str, where: str
) -> tuple[int, int]:
    """Output (H, W): image_size squared, or the one native size all images share."""
    sizes = Counter((h.width, h.height) for _, h in headers)
    if image_size is None:
        if len(sizes) > 1:
            raise GanforgeError(
                f"images in {where} have different sizes ({_size_summary(sizes)}, ...); pass image_size"
            )
        (w, h), = sizes
        return h, w
    if resize == "none":
        for rel, head in headers:
            if (head.width, head.height) != (image_size, image_size):
                raise GanforgeError(
                    f"{store.display(rel)} is {head.width}x{head.height}, not {image_size}x{image_size}, "
                    "and resize='none'"
                )
    return image_size, image_size


class FolderDataset(ImageDataset):
    """Image files decoded on access; a file that fails is replaced by the next readable one and counted."""

    def __init__(
        self,
        store: Store,
        files: list[str],
        labels: list[int],
        *,
        name: str,
        split: str,
        class_names: list[str] | None,
        channels: int,
        image_size: int | None,
        hw: tuple[int, int],
        resize: str,
        skipped_files: list[str],
    ) -> None:
        self._store = store
        self._rel = list(files)
        self.files = [store.display(r) for r in files]
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.name = name
        self.split = split
        self.class_names = class_names
        self.num_classes = len(class_names) if class_names else None
        self.channels = channels
        self.image_size = hw
        self._size = image_size
        self._resize = resize
        self.skipped_files = list(skipped_files)
        self._bad: set[int] = set()
        self.in_memory = False

    def _load(self, j: int) -> torch.Tensor:
        arr = _decode(self._store, self._rel[j], self.channels, self._size, self._resize)
        if arr.shape != (self.channels, *self.image_size):
            raise DecodeError(f"decoded shape {arr.shape} differs from {(self.channels, *self.image_size)}")
        return TensorImageDataset._normalize(torch.from_numpy(arr))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = self._check_index(index)
        n = len(self)
        for k in range(n):
            j = (i + k) % n  # deterministic substitute: the next index that decodes
            if j in self._bad:
                continue
            try:
                return self._load(j), int(self.labels[j])
            except DecodeError:
                self._bad.add(j)
                self.skipped_files.append(self.files[j])
        raise GanforgeError(f"none of the {n} images in {self.name} could be decoded")


def build_image_collection(
    path: str,
    *,
    split: str,
    image_size: int | None,
    channels: int | None,
    resize: str,
    eager: bool | None = None,
) -> ImageDataset:
    """Build an ImageDataset from a folder or a .zip of images (see the module docstring for the rules)."""
    store = open_store(path)
    all_files = store.image_files()
    if not all_files:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise GanforgeError(f"no images found in {path} (looked for {exts})")
    layout = resolve_layout(all_files, split, store.label + ("/" if isinstance(store, DirStore) else ":"))
    if not layout.files:
        raise GanforgeError(f"no images found in {layout.where}")
    headers, bad = scan_headers(store, layout.files)
    skipped = [store.display(rel) for rel, _ in bad]
    if not headers:
        first = f" (first: {skipped[0]}: {bad[0][1]})" if bad else ""
        raise GanforgeError(f"no readable images in {layout.where}: all {len(bad)} files are corrupt{first}")
    if channels is None:
        channels = 3 if any(h.channels == 3 for _, h in headers) else 1
    hw = _target_geometry(headers, store, image_size, resize, layout.where)
    label_of = dict(zip(layout.files, layout.labels))
    files = [rel for rel, _ in headers]
    labels = [label_of[rel] for rel in files]
    nbytes = len(files) * channels * hw[0] * hw[1]
    if eager is None:
        eager = len(files) <= EAGER_MAX_FILES and nbytes <= EAGER_MAX_BYTES
    name = os.path.basename(os.path.normpath(path)) or path
    if not eager:
        return FolderDataset(
            store, files, labels, name=name, split=split, class_names=layout.class_names,
            channels=channels, image_size=image_size, hw=hw, resize=resize, skipped_files=skipped,
        )

    def one(rel: str) -> tuple[np.ndarray | None, str]:
        try:
            arr = _decode(store, rel, channels, image_size, resize)
        except DecodeError as exc:
            return None, str(exc)
        if arr.shape != (channels, *hw):
            return None, f"decoded shape {arr.shape} differs from its header"
        return arr, ""

    arrays, kept_files, kept_labels = [], [], []
    with ThreadPoolExecutor(_workers()) as pool:
        for rel, label, (arr, reason) in zip(files, labels, pool.map(one, files)):
            if arr is None:
                skipped.append(store.display(rel))
                bad.append((rel, reason))
            else:
                arrays.append(arr)
                kept_files.append(store.display(rel))
                kept_labels.append(label)
    if not arrays:
        raise GanforgeError(
            f"no readable images in {layout.where}: all {len(layout.files)} files are corrupt "
            f"(first: {skipped[0]}: {bad[0][1]})"
        )
    dtype = np.uint8 if all(a.dtype == np.uint8 for a in arrays) else np.float32
    images = np.stack([a.astype(dtype, copy=False) for a in arrays])
    return TensorImageDataset(
        images, kept_labels, name=name, split=split, class_names=layout.class_names,
        files=kept_files, skipped_files=skipped,
    )
