"""The data stream, indexed by a sample cursor.

The stream is the concatenation of per-epoch permutations: global position p holds item
perm(seed, p // n)[p % n]. A step at cursor c with per-rank batch B over W ranks takes positions
c .. c + B*W - 1, and rank r the positions c + r, c + r + W, ... (the rows `StepContext.randn` hands it
too). The cursor is checkpointed, so a resumed run - or one whose batch size changes by schedule
(progressive growing) - sees exactly the data an uninterrupted one would, with or without workers, on
any number of ranks. Random flips are a pure function of (seed, position), shared by all image keys of
an item (paired data flips together).
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from ..data.collate import as_item, collate
from ..errors import GanforgeError

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
        return as_item(self.ds[i])


class Batches:
    """Batches of a run addressed by sample cursor; this rank's share of each global batch."""

    def __init__(self, dataset: Any, seed: int, num_workers: int = 0, flip: bool = False,
                 rank: int = 0, world: int = 1, pin_memory: bool = False):
        self.dataset, self.seed = dataset, seed
        self.n = len(dataset)
        if self.n == 0:
            raise GanforgeError("the dataset is empty")
        self.rank, self.world, self.flip = rank, world, flip
        self.num_workers = num_workers
        self.pin_memory = pin_memory  # worker batches in page-locked memory, for asynchronous copies to a GPU
        self._perms: dict[int, torch.Tensor] = {}
        self.tensors = None
        if hasattr(dataset, "as_tensor"):
            c, h, w = dataset[0][0].shape
            if self.n * c * h * w * 4 <= IN_MEMORY_LIMIT:
                self.tensors = dataset.as_tensor()

    def nbytes(self) -> int:
        """Bytes of the in-memory tensors (0 when the dataset is streamed)."""
        if self.tensors is None:
            return 0
        return sum(t.numel() * t.element_size() for t in self.tensors)

    def to_device(self, device: torch.device) -> None:
        """Hold the in-memory tensors on `device`: batches are then gathered there, with no copy per step."""
        if self.tensors is not None:
            self.tensors = tuple(t.to(device) for t in self.tensors)

    def check_batch(self, batch_size: int) -> None:
        """Refuse a global batch larger than the dataset (it would repeat items within one batch)."""
        if batch_size < 1:
            raise GanforgeError(f"batch size must be >= 1, got {batch_size}")
        if self.n < batch_size * self.world:
            raise GanforgeError(f"dataset has {self.n} items, fewer than one batch of {batch_size * self.world}"
                                + (f" ({batch_size} per process x {self.world})" if self.world > 1 else ""))

    def epoch(self, cursor: int) -> int:
        """The epoch the sample at `cursor` belongs to."""
        return cursor // self.n

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 2:  # only the current and next epoch are ever needed
                self._perms.clear()
            self._perms[epoch] = _epoch_perm(self.n, self.seed, epoch)
        return self._perms[epoch]

    def positions(self, cursor: int, batch_size: int) -> torch.Tensor:
        """Global stream positions of this rank's items in the batch starting at `cursor`."""
        return torch.arange(cursor + self.rank, cursor + batch_size * self.world, self.world)[:batch_size]

    def items(self, cursor: int, batch_size: int) -> list[tuple[int, int]]:
        """(epoch, dataset index) of this rank's items in the batch starting at `cursor`."""
        epochs = (self.positions(cursor, batch_size) // self.n).tolist()
        return list(zip(epochs, self.indices(cursor, batch_size).tolist()))

    def indices(self, cursor: int, batch_size: int) -> torch.Tensor:
        """Dataset indices of this rank's items in the batch starting at `cursor` (those of `items`)."""
        pos = self.positions(cursor, batch_size)
        epochs, ks = pos // self.n, pos % self.n
        out = torch.empty_like(pos)
        for e in epochs.unique().tolist():
            m = epochs == e
            out[m] = self._perm(int(e))[ks[m]]
        return out

    def _flip(self, batch: dict[str, torch.Tensor], cursor: int, batch_size: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 7_919 + cursor)
        mask = (torch.rand(batch_size * self.world, generator=g) < 0.5)[self.rank::self.world][:batch_size]
        for key, v in batch.items():
            if isinstance(v, torch.Tensor) and v.dim() == 4:
                mask = mask.to(v.device, non_blocking=True)
                batch[key] = torch.where(mask[:, None, None, None], v.flip(3), v)
        return batch

    def take(self, cursor: int, batch_size: int) -> dict[str, torch.Tensor]:
        """This rank's batch at `cursor`, read in this process."""
        if self.tensors is not None:
            images, labels = self.tensors
            idx = self.indices(cursor, batch_size).to(images.device, non_blocking=True)
            batch = {"image": images[idx], "label": labels[idx]}
        else:
            at = _AtEpoch(self.dataset)
            batch = collate([at[k] for k in self.items(cursor, batch_size)])
        return self._flip(batch, cursor, batch_size) if self.flip else batch

    def iterate(self, cursor: int, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Batches at cursor, cursor + B*W, ... forever (worker processes when num_workers > 0)."""
        self.check_batch(batch_size)
        step = batch_size * self.world
        if self.tensors is not None or self.num_workers == 0:
            c = cursor
            while True:
                yield self.take(c, batch_size)
                c += step
        sampler = _CursorSampler(self, cursor, batch_size)
        loader = DataLoader(_AtEpoch(self.dataset), batch_sampler=sampler, num_workers=self.num_workers,
                            collate_fn=collate, persistent_workers=False, pin_memory=self.pin_memory,
                            generator=torch.Generator().manual_seed(self.seed))
        for k, batch in enumerate(loader):
            c = cursor + k * step
            yield self._flip(batch, c, batch_size) if self.flip else batch


class _CursorSampler:
    def __init__(self, batches: Batches, cursor: int, batch_size: int):
        self.batches, self.cursor, self.batch_size = batches, cursor, batch_size

    def __iter__(self):
        c = self.cursor
        while True:
            yield self.batches.items(c, self.batch_size)
            c += self.batch_size * self.batches.world

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**62
