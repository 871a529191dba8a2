"""Paired / unpaired translation datasets and the built-in translation demo data."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganforge.data import translation_demo as demo
from ganforge.data.paired import PairedDataset, UnpairedDataset, sample_generator
from ganforge.errors import GanforgeError


def _noise(seed: int, h: int = 20, w: int = 24, c: int = 3) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    return arr[..., 0] if c == 1 else arr


def _save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _unit(arr: np.ndarray) -> torch.Tensor:
    """uint8 HxWxC (or HxW) as the datasets' [C,H,W] float tensor in [-1, 1]."""
    t = torch.from_numpy(arr.astype(np.float32) / 127.5 - 1.0)
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


@pytest.fixture
def bgr_pairs(tmp_path: Path) -> Path:
    """train/A and train/B where B is A with its channels reversed (so B = f(A) exactly, pixel by pixel)."""
    for i in range(6):
        a = _noise(i)
        _save(tmp_path / "train" / "A" / f"{i:02d}.png", a)
        _save(tmp_path / "train" / "B" / f"{i:02d}.png", a[..., ::-1].copy())
    return tmp_path


def test_same_crop_and_flip_for_a_and_b(bgr_pairs):
    ds = PairedDataset(bgr_pairs, image_size=16, load_size=20, seed=3)
    for e in range(3):
        ds.set_epoch(e)
        for i in range(len(ds)):
            item = ds[i]
            assert item["A"].shape == (3, 16, 16)
            assert torch.equal(item["B"], item["A"].flip(0)), (e, i)


def test_jitter_is_a_real_random_crop_and_flip(bgr_pairs):
    ds = PairedDataset(bgr_pairs, image_size=16, load_size=20, seed=0)
    src = _unit(_noise(0))  # 20x24 photo, resized to 20x20 first
    resized = _unit(np.asarray(Image.fromarray(_noise(0)).resize((20, 20), Image.Resampling.BICUBIC)))
    seen = set()
    for e in range(24):
        ds.set_epoch(e)
        a = ds[0]["A"]
        found = [
            (x, y, f)
            for x in range(5) for y in range(5) for f in (False, True)
            if torch.equal(a, (resized[:, y:y + 16, x:x + 16].flip(-1) if f else resized[:, y:y + 16, x:x + 16]))
        ]
        assert len(found) == 1
        seen.add(found[0])
    assert len({s[:2] for s in seen}) > 8 and {s[2] for s in seen} == {False, True}
    assert src.shape[-1] == 24  # the crop is taken after the resize to load_size x load_size


def test_no_jitter_is_a_plain_resize(bgr_pairs):
    ds = PairedDataset(bgr_pairs, split="train", image_size=16, jitter=False, flip=False)
    want = _unit(np.asarray(Image.fromarray(_noise(2)).resize((16, 16), Image.Resampling.BICUBIC)))
    assert torch.equal(ds[2]["A"], want) and ds[2]["path"].endswith("02.png")


def test_deterministic_per_seed_epoch_index(bgr_pairs):
    a = PairedDataset(bgr_pairs, image_size=16, load_size=20, seed=7)
    b = PairedDataset(bgr_pairs, image_size=16, load_size=20, seed=7)
    a.set_epoch(2)
    b.set_epoch(2)
    first = [a[i]["A"] for i in range(len(a))]
    # Any access order, a fresh object, or reading other epochs first gives the same tensors.
    b.set_epoch(5)
    _ = b[1]
    b.set_epoch(2)
    for i in reversed(range(len(b))):
        assert torch.equal(b[i]["A"], first[i])
    a.set_epoch(3)
    assert any(not torch.equal(a[i]["A"], first[i]) for i in range(len(a)))
    c = PairedDataset(bgr_pairs, image_size=16, load_size=20, seed=8)
    c.set_epoch(2)
    assert any(not torch.equal(c[i]["A"], first[i]) for i in range(len(c)))


def test_worker_count_does_not_change_batches(bgr_pairs):
    ds = PairedDataset(bgr_pairs, image_size=16, load_size=20, seed=1)
    ds.set_epoch(4)
    one = [b["A"] for b in DataLoader(ds, batch_size=2, num_workers=0)]
    two = [b["A"] for b in DataLoader(ds, batch_size=2, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(one, two)) and len(one) == 3


def test_sample_generator_streams_differ_by_each_key():
    draws = {k: torch.rand(4, generator=sample_generator(*k)) for k in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]}
    assert torch.equal(draws[0, 0, 0], torch.rand(4, generator=sample_generator(0, 0, 0)))
    vals = list(draws.values())
    assert all(not torch.equal(vals[i], vals[j]) for i in range(4) for j in range(i + 1, 4))


def test_unpaired_files_listed_and_skipped(tmp_path):
    for stem in ("a", "b", "c"):
        _save(tmp_path / "A" / f"{stem}.png", _noise(1))
    for stem in ("b", "c", "d"):
        _save(tmp_path / "B" / f"{stem}.jpg", _noise(2))
    ds = PairedDataset(tmp_path, image_size=16, jitter=False)
    assert len(ds) == 2 and ds.layout == "separate"
    assert [Path(p).name for p in ds.unpaired] == ["a.png", "d.jpg"]
    assert [Path(ds[i]["path"]).stem for i in range(2)] == ["b", "c"]
    with pytest.raises(GanforgeError, match="no 'test' split"):
        PairedDataset(tmp_path, split="test")


def test_reference_a_split_layout_and_direction(tmp_path):
    a, b = _noise(5), _noise(6)
    _save(tmp_path / "A" / "test" / "x.png", a)
    _save(tmp_path / "B" / "test" / "x.png", b)
    fwd = PairedDataset(tmp_path, split="test", image_size=20, load_size=20, flip=False)
    rev = PairedDataset(tmp_path, split="test", image_size=20, load_size=20, flip=False, direction="BtoA")
    assert torch.equal(fwd[0]["A"], rev[0]["B"]) and torch.equal(fwd[0]["B"], rev[0]["A"])
    assert Path(rev[0]["path"]).parent.parent.name == "B"
    with pytest.raises(GanforgeError):
        PairedDataset(tmp_path, split="test", direction="sideways")


def test_combined_ab_images_split_left_right(tmp_path):
    for i in range(3):
        a = _noise(10 + i, 16, 16)
        _save(tmp_path / "val" / f"{i}.png", np.concatenate([a, a[..., ::-1]], 1))
    ds = PairedDataset(tmp_path, split="val", image_size=16, jitter=False, flip=False)
    assert ds.layout == "combined" and len(ds) == 3
    for i in range(3):
        a = _noise(10 + i, 16, 16)
        assert torch.equal(ds[i]["A"], _unit(a)) and torch.equal(ds[i]["B"], _unit(a[..., ::-1].copy()))
    jit = PairedDataset(tmp_path, split="val", image_size=12, load_size=16, seed=2)
    for e in range(4):
        jit.set_epoch(e)
        assert torch.equal(jit[1]["B"], jit[1]["A"].flip(0))


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    for i in range(4):
        _save(tmp_path / "A" / f"{i}.png", _noise(i))
        _save(tmp_path / "B" / f"{i}.png", _noise(i)[..., ::-1].copy())
    (tmp_path / "A" / "1.png").write_bytes(b"not an image at all")  # unreadable header
    whole = (tmp_path / "B" / "3.png").read_bytes()
    (tmp_path / "B" / "3.png").write_bytes(whole[: len(whole) // 2])  # valid header, truncated data
    ds = PairedDataset(tmp_path, image_size=16, load_size=20)
    assert len(ds) == 3 and ds.skipped == 1 and ds.skipped_files[0].endswith("1.png")
    items = [ds[i] for i in range(len(ds))]  # the truncated pair is replaced, never a crash
    assert ds.skipped == 2 and ds.skipped_files[1].endswith("3.png")
    assert Path(items[2]["path"]).stem == "0"  # next readable pair, wrapping around
    assert all(torch.equal(it["B"], it["A"].flip(0)) for it in items)


def test_empty_and_missing_folders_are_user_errors(tmp_path):
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    with pytest.raises(GanforgeError):
        PairedDataset(tmp_path / "nope")
    with pytest.raises(GanforgeError, match="no paired images"):
        PairedDataset(tmp_path)
    (tmp_path / "train" / "A").mkdir(parents=True)
    (tmp_path / "train" / "B").mkdir(parents=True)
    with pytest.raises(GanforgeError, match="no images in"):
        PairedDataset(tmp_path)


def test_channels_native_demanded_and_mismatch(tmp_path):
    gray, rgb = _noise(1, c=1), _noise(2)
    _save(tmp_path / "A" / "x.png", gray)
    _save(tmp_path / "B" / "x.png", rgb)
    native = PairedDataset(tmp_path, image_size=16, jitter=False)
    assert (native.in_channels, native.out_channels) == (1, 3)
    assert native[0]["A"].shape == (1, 16, 16) and native[0]["B"].shape == (3, 16, 16)
    with pytest.raises(GanforgeError, match=r"channels=\(1, 3\)"):
        PairedDataset(tmp_path, channels=3)
    both = PairedDataset(tmp_path, image_size=16, jitter=False, flip=False, channels=(3, 1))
    a, b = both[0]["A"], both[0]["B"]
    assert a.shape[0] == 3 and torch.equal(a[0], a[2]) and b.shape[0] == 1
    rev = PairedDataset(tmp_path, direction="BtoA")
    assert (rev.in_channels, rev.out_channels) == (3, 1)
    with pytest.raises(GanforgeError):
        PairedDataset(tmp_path, channels=2)


def _unpaired_root(tmp_path: Path, na: int, nb: int) -> Path:
    for i in range(na):
        _save(tmp_path / "trainA" / f"a{i}.png", np.full((12, 12, 3), 10 + i, np.uint8))
    for i in range(nb):
        _save(tmp_path / "trainB" / f"b{i}.png", np.full((12, 12, 3), 200 + i, np.uint8))
    return tmp_path


def _level(t: torch.Tensor) -> int:
    return round((float(t.mean()) + 1) * 127.5)


def test_unpaired_length_serial_and_random_partners(tmp_path):
    root = _unpaired_root(tmp_path, 5, 3)
    serial = UnpairedDataset(root, image_size=12, load_size=12, serial=True)
    assert len(serial) == 5
    assert [(_level(serial[i]["A"]), _level(serial[i]["B"])) for i in range(5)] == [
        (10 + i, 200 + i % 3) for i in range(5)
    ]
    rnd = UnpairedDataset(root, image_size=12, load_size=12, seed=4)
    picks = {}
    for e in range(6):
        rnd.set_epoch(e)
        picks[e] = [_level(rnd[i]["B"]) for i in range(5)]
        assert [_level(rnd[i]["A"]) for i in range(5)] == [10, 11, 12, 13, 14]
    assert all(200 <= v <= 202 for p in picks.values() for v in p)
    assert len({tuple(p) for p in picks.values()}) > 1  # partners change with the epoch
    again = UnpairedDataset(root, image_size=12, load_size=12, seed=4)
    again.set_epoch(3)
    assert [_level(again[i]["B"]) for i in reversed(range(5))] == picks[3][::-1]
    assert rnd[0]["path_A"].endswith("a0.png")


def test_unpaired_crops_are_independent_per_domain(tmp_path):
    for i in range(2):
        _save(tmp_path / "trainA" / f"{i}.png", _noise(i))
        _save(tmp_path / "trainB" / f"{i}.png", _noise(i))  # identical files in both domains
    ds = UnpairedDataset(tmp_path, image_size=16, load_size=20, serial=True, seed=0)
    different = 0
    for e in range(5):
        ds.set_epoch(e)
        different += not torch.equal(ds[0]["A"], ds[0]["B"])
    assert different >= 4


def test_unpaired_errors_name_the_folder(tmp_path):
    _unpaired_root(tmp_path, 2, 0)
    (tmp_path / "trainB").mkdir()
    with pytest.raises(GanforgeError, match="trainB"):
        UnpairedDataset(tmp_path)
    with pytest.raises(GanforgeError, match="testA"):
        UnpairedDataset(tmp_path, split="test")


def test_unpaired_corrupt_file_skipped(tmp_path):
    root = _unpaired_root(tmp_path, 3, 2)
    (root / "trainA" / "a1.png").write_bytes(b"\x89PNG garbage")
    ds = UnpairedDataset(root, image_size=12, load_size=12, serial=True)
    assert len(ds) == 2 and ds.skipped == 1 and ds.skipped_files[0].endswith("a1.png")


# ---------------------------------------------------------------- built-in demo data


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _check_items_match_sources(root: Path, items: list[dict], folder_of, image_size: int) -> None:
    photos = {}
    for it in items:
        photo = photos.setdefault(it["photo"], demo.load_photo(it["photo"]))
        want = np.asarray(demo.cut(photo, tuple(it["box"]), image_size).convert("RGB"))
        got = np.asarray(Image.open(root / folder_of(it) / it["file"]).convert("RGB"))
        assert np.array_equal(got, want), it


def test_pix2pix_demo_regions_are_disjoint_and_truthful(tmp_path):
    m = demo.make_pix2pix_demo(tmp_path, image_size=32, n_train=14, n_test=7, seed=1, task="colorize")
    items = m["items"]
    assert sum(it["split"] == "train" for it in items) == 14
    for name in {it["photo"] for it in items}:
        width = demo.load_photo(name).shape[1]
        cut = int(width * demo.TRAIN_FRACTION)
        assert all(it["box"][2] <= cut for it in items if it["photo"] == name and it["split"] == "train")
        assert all(it["box"][0] >= cut for it in items if it["photo"] == name and it["split"] == "test")
    assert {it["photo"] for it in items if it["split"] == "test"} >= {"astronaut", "coffee"}
    # Every file is exactly the recorded crop of the recorded photo, so the boxes above are the truth.
    _check_items_match_sources(tmp_path, items, lambda it: f"{it['split']}/B", 32)
    a = np.asarray(Image.open(tmp_path / "train" / "A" / "0003.png"))
    b = Image.open(tmp_path / "train" / "B" / "0003.png")
    assert np.array_equal(a[..., 0], np.asarray(b.convert("L"))) and np.array_equal(a[..., 0], a[..., 2])
    train = PairedDataset(tmp_path, image_size=32, jitter=False)
    test = PairedDataset(tmp_path, split="test", image_size=32, jitter=False)
    assert len(train) == 14 and len(test) == 7 and train.in_channels == 3


def test_pix2pix_demo_photo_holdout_and_edges(tmp_path):
    m = demo.make_pix2pix_demo(tmp_path, image_size=32, n_train=10, n_test=4, task="edges", holdout="photos")
    train = {it["photo"] for it in m["items"] if it["split"] == "train"}
    test = {it["photo"] for it in m["items"] if it["split"] == "test"}
    assert test == set(demo.HELD_OUT_PHOTOS) and not (train & test)
    _check_items_match_sources(tmp_path, m["items"], lambda it: f"{it['split']}/B", 32)
    edges = np.stack([np.asarray(Image.open(f)) for f in sorted((tmp_path / "train" / "A").iterdir())])
    assert set(np.unique(edges)) == {0, 255}  # black edges on white, nothing in between


def test_pix2pix_labels_demo_classes_come_from_training_crops_only(tmp_path):
    m = demo.make_pix2pix_demo(tmp_path / "x", image_size=32, n_train=12, n_test=3, seed=2)  # labels: the default
    m5 = demo.make_pix2pix_demo(tmp_path / "y", image_size=32, n_train=12, n_test=6, seed=2)
    centres = np.array(m["colour_classes"])
    assert centres.shape == (demo.LABEL_CLASSES, 3)
    assert np.array_equal(centres, np.array(m5["colour_classes"]))  # more test crops change nothing
    luma = centres @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(luma) > 0)  # numbered from dark to light
    _check_items_match_sources(tmp_path / "x", m["items"], lambda it: f"{it['split']}/B", 32)
    trains = [Image.open(f) for f in sorted((tmp_path / "x" / "train" / "B").iterdir())]
    refit = demo.fit_colour_classes(trains, seed=2)
    assert np.allclose(refit, centres, atol=1e-3)
    palette = np.array(demo.LABEL_PALETTE)
    for split in ("train", "test"):
        for f in sorted((tmp_path / "x" / split / "A").iterdir()):
            a = np.asarray(Image.open(f).convert("RGB")).reshape(-1, 3)
            b = np.asarray(Image.open(tmp_path / "x" / split / "B" / f.name).convert("RGB"), dtype=float).reshape(-1, 3)
            nearest = ((b[:, None] - centres[None]) ** 2).sum(2).argmin(1)
            assert np.array_equal(a, palette[nearest]), f  # each pixel: its nearest class, in the palette


def test_colour_classes_match_sklearn_kmeans(tmp_path):
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 6, size=(400, 3)) for c in (20, 70, 120, 160, 200, 240)]).clip(0, 255)
    img = Image.fromarray(blobs.reshape(60, 40, 3).astype(np.uint8))
    px = np.asarray(img, dtype=float).reshape(-1, 3)
    ours = demo.fit_colour_classes([img], k=6, seed=0, sample=len(px))
    ref = KMeans(6, n_init=10, random_state=0).fit(px)

    def inertia(c):
        return ((px[:, None] - c[None]) ** 2).sum(2).min(1).sum()

    assert inertia(ours) <= inertia(ref.cluster_centers_) * 1.01
    assert np.allclose(np.sort(ours[:, 0]), np.sort(ref.cluster_centers_[:, 0]), atol=1.0)


def test_demo_is_deterministic_and_reused(tmp_path):
    demo.make_pix2pix_demo(tmp_path / "x", image_size=16, n_train=5, n_test=2, seed=3)
    demo.make_pix2pix_demo(tmp_path / "y", image_size=16, n_train=5, n_test=2, seed=3)
    assert _tree_hash(tmp_path / "x") == _tree_hash(tmp_path / "y")
    stamp = (tmp_path / "x" / "train" / "A" / "0000.png").stat().st_mtime_ns
    demo.make_pix2pix_demo(tmp_path / "x", image_size=16, n_train=5, n_test=2, seed=3)
    assert (tmp_path / "x" / "train" / "A" / "0000.png").stat().st_mtime_ns == stamp  # not rewritten
    demo.make_pix2pix_demo(tmp_path / "x", image_size=16, n_train=3, n_test=2, seed=4)
    assert len(list((tmp_path / "x" / "train" / "A").iterdir())) == 3  # old output replaced, not mixed
    assert _tree_hash(tmp_path / "x") != _tree_hash(tmp_path / "y")
    (tmp_path / "z" / "train").mkdir(parents=True)
    with pytest.raises(GanforgeError):
        demo.make_pix2pix_demo(tmp_path / "z")


def test_interrupted_demo_is_rewritten(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = demo.cut

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(demo, "cut", flaky)
    with pytest.raises(KeyboardInterrupt):
        demo.make_pix2pix_demo(tmp_path / "x", image_size=16, n_train=5, n_test=2)
    assert json.loads((tmp_path / "x" / "manifest.json").read_text())["complete"] is False
    monkeypatch.setattr(demo, "cut", real)
    demo.make_pix2pix_demo(tmp_path / "x", image_size=16, n_train=5, n_test=2)
    demo.make_pix2pix_demo(tmp_path / "y", image_size=16, n_train=5, n_test=2)
    assert _tree_hash(tmp_path / "x") == _tree_hash(tmp_path / "y")


def test_cut_uses_only_pixels_inside_the_box():
    photo = demo.load_photo("coffee").copy()
    box = (100, 50, 196, 146)
    before = np.asarray(demo.cut(photo, box, 32))
    photo[:, :100] = 0
    photo[:, 196:] = 255
    photo[:50] = 0
    photo[146:] = 255
    assert np.array_equal(np.asarray(demo.cut(photo, box, 32)), before)


def test_cyclegan_demo_domains_and_disjoint_regions(tmp_path):
    m = demo.make_cyclegan_demo(tmp_path, image_size=32, n_train=6, n_test=3, seed=2)
    assert json.loads((tmp_path / "manifest.json").read_text())["domains"] == {"A": "grass", "B": "gravel"}
    for it in m["items"]:
        assert it["photo"] == {"A": "grass", "B": "gravel"}[it["domain"]]
        cut = int(512 * demo.TRAIN_FRACTION)
        assert it["box"][2] <= cut if it["split"] == "train" else it["box"][0] >= cut
    _check_items_match_sources(tmp_path, m["items"], lambda it: f"{it['split']}{it['domain']}", 32)
    ds = UnpairedDataset(tmp_path, split="test", image_size=32, load_size=32)
    assert len(ds) == 3 and ds[0]["A"].shape == (3, 32, 32)
