"""ImageDataset: the one interface every single-image source implements, and its in-memory form.

Paired (pix2pix) and unpaired (CycleGAN) translation datasets are separate classes that will live
beside this one; they are not ImageDatasets because an item is two images, not an image and a label.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import GanforgeError


class MissingSplit(GanforgeError):
    """The source exists but has no data for the requested split (e.g. no test/ folder)."""


class ImageDataset(Dataset):
    """Images as float32 [C,H,W] tensors in [-1, 1], each with an int label (-1 when unlabeled)."""

    name: str
    split: str
    channels: int
    image_size: tuple[int, int]
    num_classes: int | None
    class_names: list[str] | None
    labels: torch.Tensor  # int64 [N]; all -1 when the source has no labels
    files: list[str] | None  # the file behind each index, for file-based sources
    skipped_files: list[str]
    in_memory: bool

    @property
    def skipped(self) -> int:
        """How many corrupt or unreadable files were skipped (at build time or while reading)."""
        return len(self.skipped_files)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def _check_index(self, index: int) -> int:
        n = len(self)
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset index must be an int, not {type(index).__name__}")
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        return index

    def as_tensor(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image and label at once: float32 [N,C,H,W] in [-1, 1] and int64 [N]."""
        n = len(self)
        h, w = self.image_size
        out = torch.empty((n, self.channels, h, w), dtype=torch.float32)
        labels = torch.empty(n, dtype=torch.int64)
        for i in range(n):
            out[i], labels[i] = self[i]
        return out, labels

    def class_counts(self) -> dict[str, int]:
        """Images per class name (empty when unlabeled)."""
        if not self.class_names:
            return {}
        counts = torch.bincount(self.labels[self.labels >= 0], minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts.tolist())}

    def describe(self) -> str:
        """One line: source, split, count, shape, classes and skipped files."""
        h, w = self.image_size
        classes = f"{self.num_classes} classes" if self.num_classes else "unlabeled"
        where = "in memory" if self.in_memory else "lazy"
        return (
            f"{self.name} [{self.split}]: {len(self)} images, {self.channels}x{h}x{w}, {classes}, "
            f"{self.skipped} skipped, {where}"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class TensorImageDataset(ImageDataset):
    """An ImageDataset held in memory as uint8 (or float32 on a 0..255 scale for 16-bit sources)."""

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor | None,
        *,
        name: str,
        split: str = "train",
        class_names: list[str] | None = None,
        files: list[str] | None = None,
        skipped_files: list[str] | None = None,
    ) -> None:
        images = torch.as_tensor(images)
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be [N,C,H,W] with C in (1, 3), got {tuple(images.shape)}")
        if images.dtype not in (torch.uint8, torch.float32):
            raise ValueError(f"images must be uint8 or float32, got {images.dtype}")
        n = images.shape[0]
        if labels is None:
            labels = torch.full((n,), -1, dtype=torch.int64)
        labels = torch.as_tensor(labels).to(torch.int64).reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"{n} images but {labels.shape[0]} labels")
        self._images = images.contiguous()
        self.labels = labels
        self.name = name
        self.split = split
        self.channels = int(images.shape[1])
        self.image_size = (int(images.shape[2]), int(images.shape[3]))
        self.class_names = list(class_names) if class_names else None
        self.num_classes = len(self.class_names) if self.class_names else None
        self.files = files
        self.skipped_files = list(skipped_files or [])
        self.in_memory = True

    @staticmethod
    def _normalize(x: torch.Tensor) -> torch.Tensor:
        out = x.to(torch.float32).div_(127.5).sub_(1.0)
        # uint8 maps exactly onto [-1, 1]; float (16-bit) sources may be a hair outside after resampling
        return out if x.dtype == torch.uint8 else out.clamp_(-1.0, 1.0)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = self._check_index(index)
        return self._normalize(self._images[i]), int(self.labels[i])

    def as_tensor(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image and label at once: float32 [N,C,H,W] in [-1, 1] and int64 [N] (one vector op)."""
        return self._normalize(self._images), self.labels.clone()

    @property
    def raw(self) -> torch.Tensor:
        """The stored images: uint8 [N,C,H,W] (float32 on a 0..255 scale for 16-bit sources)."""
        return self._images
