"""Batch b is a pure function of (seed, b): resuming at any batch, with or without worker processes,
sees exactly the data an uninterrupted run would."""
import numpy as np
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.training.batches import Batches


def _folder(tmp_path, n=40):
    for i in range(n):
        Image.fromarray(np.full((8, 8), i * 6, dtype=np.uint8)).save(tmp_path / f"{i:03d}.png")
    return build_dataset(str(tmp_path))


def _take(it, k):
    return [next(it) for _ in range(k)]


def test_in_memory_batches_resume(tmp_path):
    ds = build_dataset("mnist")
    b = Batches(ds, 32, seed=3)
    assert b.tensors is not None  # small data is indexed as one tensor
    full = _take(b.iterate(0), 200)  # crosses epoch boundaries (140 batches an epoch)
    again = _take(Batches(ds, 32, seed=3).iterate(150), 50)
    for x, y in zip(full[150:], again):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
    seen = torch.cat([x["label"] for x in full[:140]])
    assert torch.bincount(seen).min() >= 440  # one epoch is a permutation (drop-last): each class ~450


def test_worker_batches_match_in_process(tmp_path):
    ds = _folder(tmp_path)
    one = Batches(ds, 8, seed=1, num_workers=0)
    one.tensors = None  # force the DataLoader path
    two = Batches(ds, 8, seed=1, num_workers=2)
    two.tensors = None
    a = _take(one.iterate(3), 6)
    b = _take(two.iterate(3), 6)
    c = _take(one.iterate(0), 9)[3:]
    for x, y, z in zip(a, b, c):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["image"], z["image"])


def test_flips_are_deterministic_and_shared_by_paired_keys():
    imgs = torch.arange(4 * 1 * 2 * 3, dtype=torch.float32).view(4, 1, 2, 3)
    b = Batches(list(zip(imgs, [0] * 4)), 4, seed=0, flip=True)
    out1 = b._flip({"A": imgs.clone(), "B": imgs.clone()}, 7)
    out2 = b._flip({"A": imgs.clone(), "B": imgs.clone()}, 7)
    assert torch.equal(out1["A"], out2["A"]) and torch.equal(out1["A"], out1["B"])
    flipped = [not torch.equal(out1["A"][i], imgs[i]) for i in range(4)]
    for i, f in enumerate(flipped):
        assert torch.equal(out1["A"][i], imgs[i].flip(2) if f else imgs[i])
