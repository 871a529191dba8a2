"""Deterministic batches: batch b's indices are a pure function of (seed, b), so a resumed run sees
exactly the data an uninterrupted one would, whatever the worker count."""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

IN_MEMORY_LIMIT = 2**31  # bytes of float32 images kept in memory for tensor-indexed batches


def _epoch_perm(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


class _AtEpoch(Dataset):
    """Wraps a dataset so each index carries its epoch (for per-epoch augmentation randomness)."""

    def __init__(self, ds: Any):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        if hasattr(self.ds, "set_epoch"):
            self.ds.set_epoch(epoch)
        item = self.ds[i]
        if isinstance(item, dict):
            return item
        image, label = item
        return {"image": image, "label": torch.as_tensor(label, dtype=torch.long)}


class Batches:
    """Batch b of a run: indices perm(seed, epoch)[offset:offset+B], drop-last epochs; rank shards."""

    def __init__(self, dataset: Any, batch_size: int, seed: int, num_workers: int = 0, flip: bool = False,
                 rank: int = 0, world: int = 1):
        n = len(dataset)
        if n < batch_size * world:
            raise ValueError(f"dataset has {n} items, fewer than one batch of {batch_size * world}")
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world, self.flip = rank, world, flip
        self.global_batch = batch_size * world
        self.per_epoch = n // self.global_batch
        self.num_workers = num_workers
        self._perm_epoch, self._perm = -1, None
        self.tensors = None
        if hasattr(dataset, "as_tensor"):
            c, h, w = dataset[0][0].shape
            if n * c * h * w * 4 <= IN_MEMORY_LIMIT:
                self.tensors = dataset.as_tensor()

    def indices(self, b: int) -> tuple[int, torch.Tensor]:
        """(epoch, this rank's dataset indices) of global batch b."""
        epoch, k = divmod(b, self.per_epoch)
        if epoch != self._perm_epoch:
            self._perm, self._perm_epoch = _epoch_perm(len(self.dataset), self.seed, epoch), epoch
        idx = self._perm[k * self.global_batch:(k + 1) * self.global_batch]
        return epoch, idx[self.rank::self.world]

    def _flip(self, batch: dict[str, torch.Tensor], b: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 7_919 + b)
        mask = torch.rand(self.batch_size, generator=g) < 0.5
        for key, v in batch.items():
            if isinstance(v, torch.Tensor) and v.dim() == 4:
                batch[key] = torch.where(mask[:, None, None, None], v.flip(3), v)
        return batch

    def iterate(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        """Batches start, start+1, ... forever."""
        if self.tensors is not None:
            images, labels = self.tensors
            b = start
            while True:
                _, idx = self.indices(b)
                batch = {"image": images[idx], "label": labels[idx]}
                yield self._flip(batch, b) if self.flip else batch
                b += 1
        sampler = _IndexSampler(self, start)
        loader = DataLoader(_AtEpoch(self.dataset), batch_sampler=sampler, num_workers=self.num_workers,
                            persistent_workers=self.num_workers > 0, generator=torch.Generator().manual_seed(self.seed))
        for b, batch in enumerate(loader, start):
            yield self._flip(batch, b) if self.flip else batch


class _IndexSampler:
    def __init__(self, batches: Batches, start: int):
        self.batches, self.start = batches, start

    def __iter__(self):
        b = self.start
        while True:
            epoch, idx = self.batches.indices(b)
            yield [(epoch, int(i)) for i in idx]
            b += 1

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**62
