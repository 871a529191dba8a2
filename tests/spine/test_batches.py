"""The data stream is addressed by a sample cursor: resuming at any cursor, with or without worker
processes, on any number of ranks, or with a batch size that changes on the way, sees exactly the data an
uninterrupted run would."""
import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.errors import GanforgeError
from ganforge.training.batches import Batches


def _folder(tmp_path, n=40):
    for i in range(n):
        Image.fromarray(np.full((8, 8), i * 6, dtype=np.uint8)).save(tmp_path / f"{i:03d}.png")
    return build_dataset(str(tmp_path))


def _take(it, k):
    return [next(it) for _ in range(k)]


def test_in_memory_batches_resume():
    ds = build_dataset("mnist")
    b = Batches(ds, seed=3)
    assert b.tensors is not None  # small data is indexed as one tensor
    full = _take(b.iterate(0, 32), 200)  # crosses epoch boundaries (4,500 items: 140.6 batches an epoch)
    again = _take(Batches(ds, seed=3).iterate(150 * 32, 32), 50)
    for x, y in zip(full[150:], again):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
    seen = torch.cat([x["label"] for x in full])[:len(ds)]
    assert torch.equal(torch.bincount(seen), torch.bincount(ds.as_tensor()[1]))  # an epoch is a permutation
    assert not torch.equal(full[0]["label"], full[1]["label"])


def test_worker_batches_match_in_process(tmp_path):
    ds = _folder(tmp_path)
    one = Batches(ds, seed=1, num_workers=0)
    one.tensors = None  # force the item-by-item path
    two = Batches(ds, seed=1, num_workers=2)
    two.tensors = None
    a = _take(one.iterate(24, 8), 6)
    b = _take(two.iterate(24, 8), 6)
    c = _take(one.iterate(0, 8), 9)[3:]
    for x, y, z in zip(a, b, c):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["image"], z["image"])


def test_a_changing_batch_size_follows_the_cursor():
    """Progressive growing changes the batch size mid-run: the stream continues from the same sample."""
    ds = build_dataset("digits")
    whole = Batches(ds, seed=5).take(0, 48)["image"]
    b = Batches(ds, seed=5)
    parts = [b.take(0, 16)["image"], b.take(16, 8)["image"], b.take(24, 24)["image"]]
    assert torch.equal(torch.cat(parts), whole)


def test_ranks_share_out_the_global_batch():
    ds = build_dataset("digits")
    whole = Batches(ds, seed=2).take(40, 12)
    r0, r1 = (Batches(ds, seed=2, rank=r, world=2).take(40, 6) for r in (0, 1))
    assert torch.equal(r0["image"], whole["image"][0::2]) and torch.equal(r1["image"], whole["image"][1::2])
    with pytest.raises(GanforgeError, match="fewer than one batch of 2000"):
        Batches(ds, seed=2, rank=0, world=2).check_batch(1000)


def test_flips_are_deterministic_and_shared_by_paired_keys():
    imgs = torch.arange(16 * 1 * 2 * 3, dtype=torch.float32).view(16, 1, 2, 3)
    b = Batches(list(zip(imgs, [0] * 16)), seed=0, flip=True)
    out1 = b._flip({"A": imgs.clone(), "B": imgs.clone()}, 7, 16)
    out2 = b._flip({"A": imgs.clone(), "B": imgs.clone()}, 7, 16)
    assert torch.equal(out1["A"], out2["A"]) and torch.equal(out1["A"], out1["B"])
    flipped = [not torch.equal(out1["A"][i], imgs[i]) for i in range(16)]
    assert 0 < sum(flipped) < 16  # some flipped, some not (fails if flipping is disabled or always on)
    for i, f in enumerate(flipped):
        assert torch.equal(out1["A"][i], imgs[i].flip(2) if f else imgs[i])
    other = b._flip({"A": imgs.clone()}, 8, 16)  # another position draws other flips
    assert not torch.equal(other["A"], out1["A"])
    # and through the stream: the flipped batch equals the unflipped one with those items mirrored
    plain = Batches(list(zip(imgs, [0] * 16)), seed=0).take(0, 16)["image"]
    flip = Batches(list(zip(imgs, [0] * 16)), seed=0, flip=True).take(0, 16)["image"]
    mirrored = [not torch.equal(p, f) for p, f in zip(plain, flip)]
    assert 0 < sum(mirrored) < 16 and all(torch.equal(p.flip(2), f) for p, f, m in zip(plain, flip, mirrored) if m)
