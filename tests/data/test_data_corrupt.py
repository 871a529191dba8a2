"""Corrupt files are skipped and counted, at build time or while reading; never a crash mid-run."""
import os

import pytest
import torch
from PIL import Image

from ganforge.data import FolderDataset, TensorImageDataset, build_dataset
from ganforge.errors import GanforgeError


def v(x):
    return x / 127.5 - 1.0


@pytest.fixture
def messy(tmp_path, save, encode):
    """3 good images (values 10, 20, 30) and 4 broken files, interleaved in sorted order."""
    save(Image.new("L", (4, 4), 10), tmp_path / "a_good.png")
    full = encode(Image.effect_noise((64, 64), 50))
    (tmp_path / "b_truncated.png").write_bytes(full[: len(full) // 2])
    save(Image.new("L", (4, 4), 20), tmp_path / "c_good.png")
    (tmp_path / "d_random.jpg").write_bytes(os.urandom(300))
    (tmp_path / "e_empty.png").write_bytes(b"")
    jpg = encode(Image.effect_noise((64, 64), 50), "JPEG")
    (tmp_path / "f_truncated.jpg").write_bytes(jpg[: len(jpg) * 3 // 4])  # header intact, scan data cut
    save(Image.new("L", (4, 4), 30), tmp_path / "g_good.png")
    return tmp_path


BROKEN = {"b_truncated.png", "d_random.jpg", "e_empty.png", "f_truncated.jpg"}


def test_eager_skips_and_counts_every_broken_file(messy):
    ds = build_dataset(str(messy), image_size=4)
    assert isinstance(ds, TensorImageDataset)
    assert len(ds) == 3
    assert ds.skipped == 4
    assert {os.path.basename(f) for f in ds.skipped_files} == BROKEN
    values = [float(ds[i][0][0, 0, 0]) for i in range(3)]
    assert values == pytest.approx([v(10), v(20), v(30)])


def test_lazy_skips_bad_headers_then_substitutes_on_read(messy, monkeypatch):
    from ganforge.data import folder

    monkeypatch.setattr(folder, "EAGER_MAX_FILES", 0)
    ds = build_dataset(str(messy), image_size=4)
    assert isinstance(ds, FolderDataset)
    # random bytes and the empty file fail at the header; truncated files pass it
    assert {os.path.basename(f) for f in ds.skipped_files} == {"d_random.jpg", "e_empty.png"}
    names = [os.path.basename(f) for f in ds.files]
    assert names == ["a_good.png", "b_truncated.png", "c_good.png", "f_truncated.jpg", "g_good.png"]
    img, label = ds[1]  # truncated PNG -> the next readable index (c_good)
    assert torch.allclose(img, torch.full((1, 4, 4), v(20))) and label == -1
    assert ds.skipped == 3
    img, _ = ds[3]  # truncated JPEG -> g_good
    assert torch.allclose(img, torch.full((1, 4, 4), v(30)))
    assert ds.skipped == 4
    img, _ = ds[1]  # known bad: substituted again without counting twice
    assert torch.allclose(img, torch.full((1, 4, 4), v(20))) and ds.skipped == 4
    x, _ = ds.as_tensor()
    assert x.shape == (5, 1, 4, 4)


def test_lazy_substitution_wraps_around(tmp_path, save, encode, monkeypatch):
    from ganforge.data import folder

    monkeypatch.setattr(folder, "EAGER_MAX_FILES", 0)
    save(Image.new("L", (4, 4), 50), tmp_path / "a.png")
    full = encode(Image.effect_noise((64, 64), 50))
    (tmp_path / "z.png").write_bytes(full[: len(full) // 2])
    ds = build_dataset(str(tmp_path), image_size=4)
    img, _ = ds[1]
    assert torch.allclose(img, torch.full((1, 4, 4), v(50)))


def test_all_corrupt_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(GanforgeError, match="corrupt"):
        build_dataset(str(tmp_path))


def test_all_corrupt_found_lazily_is_an_error(tmp_path, encode, monkeypatch):
    from ganforge.data import folder

    monkeypatch.setattr(folder, "EAGER_MAX_FILES", 0)
    full = encode(Image.effect_noise((64, 64), 50))
    (tmp_path / "a.png").write_bytes(full[: len(full) // 2])
    ds = build_dataset(str(tmp_path))
    with pytest.raises(GanforgeError, match="could be decoded"):
        ds[0]
