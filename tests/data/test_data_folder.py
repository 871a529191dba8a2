"""Image folders: flat (unlabeled), one subfolder per class, train/test splits, wrappers, zips."""
import os
import pickle
import zipfile

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganforge.data import build_dataset
from ganforge.errors import GanforgeError


def v(x):
    return x / 127.5 - 1.0


def first_pixels(ds):
    return [round((float(ds[i][0][0, 0, 0]) + 1) * 127.5) for i in range(len(ds))]


def test_flat_folder_unlabeled_sorted(tmp_path, save, gray_image, decode_mode):
    for name, val in (("b.png", 20), ("a.png", 10), ("c.JPG", 30), ("notes.txt", 0), (".hidden.png", 99)):
        if name.endswith(".txt"):
            (tmp_path / name).write_text("not an image")
        else:
            save(gray_image(val), tmp_path / name, **({"quality": 100} if name.endswith("JPG") else {}))
    ds = build_dataset(str(tmp_path))
    assert len(ds) == 3
    assert [os.path.basename(f) for f in ds.files] == ["a.png", "b.png", "c.JPG"]
    assert first_pixels(ds)[:2] == [10, 20]
    assert ds.num_classes is None and ds.class_names is None
    assert ds.labels.tolist() == [-1, -1, -1] and ds[0][1] == -1
    assert "unlabeled" in ds.describe() and "3 images" in ds.describe()


def test_class_subfolders(tmp_path, save, gray_image, decode_mode):
    save(gray_image(10), tmp_path / "dogs" / "x.png")
    save(gray_image(20), tmp_path / "cats" / "y.png")
    save(gray_image(30), tmp_path / "cats" / "deeper" / "z.png")
    save(gray_image(40), tmp_path / "emu" / "w.png")
    ds = build_dataset(str(tmp_path))
    assert ds.class_names == ["cats", "dogs", "emu"] and ds.num_classes == 3
    got = {os.path.relpath(f, tmp_path): ds[i][1] for i, f in enumerate(ds.files)}
    assert got == {"cats/deeper/z.png": 0, "cats/y.png": 0, "dogs/x.png": 1, "emu/w.png": 2}
    assert ds.class_counts() == {"cats": 2, "dogs": 1, "emu": 1}
    x, y = ds.as_tensor()
    assert y.tolist() == [0, 0, 1, 2] and x.shape == (4, 1, 4, 4)


def test_images_beside_subfolders_are_unlabeled(tmp_path, save, gray_image):
    save(gray_image(10), tmp_path / "top.png")
    save(gray_image(20), tmp_path / "a" / "x.png")
    save(gray_image(30), tmp_path / "b" / "y.png")
    ds = build_dataset(str(tmp_path))
    assert len(ds) == 3 and ds.num_classes is None


def test_train_test_subfolders(tmp_path, save, gray_image, decode_mode):
    save(gray_image(10), tmp_path / "train" / "cat" / "a.png")
    save(gray_image(20), tmp_path / "train" / "dog" / "b.png")
    save(gray_image(30), tmp_path / "test" / "cat" / "c.png")
    save(gray_image(40), tmp_path / "test" / "dog" / "d.png")
    save(gray_image(50), tmp_path / "test" / "dog" / "e.png")
    train = build_dataset(str(tmp_path))
    test = build_dataset(str(tmp_path), split="test")
    assert first_pixels(train) == [10, 20] and train.labels.tolist() == [0, 1]
    assert first_pixels(test) == [30, 40, 50] and test.labels.tolist() == [0, 1, 1]
    assert test.class_names == ["cat", "dog"]


def test_no_test_split_is_an_error(tmp_path, save, gray_image):
    save(gray_image(10), tmp_path / "a.png")
    assert len(build_dataset(str(tmp_path))) == 1
    with pytest.raises(GanforgeError, match="no test split"):
        build_dataset(str(tmp_path), split="test")


def test_only_train_folder_has_no_test(tmp_path, save, gray_image):
    save(gray_image(10), tmp_path / "train" / "a.png")
    assert len(build_dataset(str(tmp_path))) == 1
    with pytest.raises(GanforgeError, match="test"):
        build_dataset(str(tmp_path), split="test")


def test_wrapper_folder_is_looked_through(tmp_path, save, gray_image):
    save(gray_image(10), tmp_path / "faces" / "x" / "a.png")
    save(gray_image(20), tmp_path / "faces" / "y" / "b.png")
    ds = build_dataset(str(tmp_path))
    assert ds.class_names == ["x", "y"]


def test_cyclegan_layout_picks_split_folders(tmp_path, save, gray_image):
    for i, d in enumerate(("trainA", "trainB", "testA", "testB")):
        save(gray_image(10 * (i + 1)), tmp_path / "h2z" / d / "a.png")
    train = build_dataset(str(tmp_path))
    test = build_dataset(str(tmp_path), split="test")
    assert train.class_names == ["trainA", "trainB"] and first_pixels(train) == [10, 20]
    assert test.class_names == ["testA", "testB"] and first_pixels(test) == [30, 40]


def _zip(path, members: dict):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_source_with_classes_and_corrupt_member(tmp_path, encode, decode_mode):
    z = _zip(tmp_path / "set.zip", {
        "set/a/1.png": encode(Image.new("L", (4, 4), 10)),
        "set/a/2.png": encode(Image.new("L", (4, 4), 20)),
        "set/b/3.png": encode(Image.new("L", (4, 4), 30)),
        "set/b/bad.png": b"garbage",
        "__MACOSX/set/a/._1.png": b"resource fork",
    })
    ds = build_dataset(str(z))
    assert len(ds) == 3 and ds.class_names == ["a", "b"]
    assert first_pixels(ds) == [10, 20, 30] and ds.labels.tolist() == [0, 0, 1]
    assert ds.skipped == 1 and ds.skipped_files[0].endswith("set.zip:set/b/bad.png")


def test_zip_lazy_dataset_pickles_for_workers(tmp_path, encode, monkeypatch):
    from ganforge.data import folder

    monkeypatch.setattr(folder, "EAGER_MAX_FILES", 0)
    z = _zip(tmp_path / "flat.zip", {f"{i}.png": encode(Image.new("RGB", (6, 4), (i, 0, 0))) for i in range(5)})
    ds = build_dataset(str(z), image_size=4)
    ds[0]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3][0], ds[3][0])
    x, y = next(iter(DataLoader(ds, batch_size=5)))
    assert x.shape == (5, 3, 4, 4) and y.tolist() == [-1] * 5


def test_empty_folder_and_non_images(tmp_path):
    with pytest.raises(GanforgeError, match="no images found"):
        build_dataset(str(tmp_path))
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(GanforgeError, match="no images found"):
        build_dataset(str(tmp_path))


def test_relative_path_under_root(tmp_path, save, gray_image):
    save(gray_image(10), tmp_path / "faces" / "a.png")
    assert len(build_dataset("faces", root=str(tmp_path))) == 1


def test_labels_stay_stable_when_a_class_is_missing_from_test(tmp_path, save, gray_image):
    save(gray_image(10), tmp_path / "train" / "cat" / "a.png")
    save(gray_image(20), tmp_path / "train" / "dog" / "b.png")
    save(gray_image(30), tmp_path / "train" / "emu" / "c.png")
    save(gray_image(40), tmp_path / "test" / "emu" / "d.png")
    test = build_dataset(str(tmp_path), split="test")
    assert test.class_names == ["cat", "dog", "emu"] and test.labels.tolist() == [2]
