"""check(): decodes everything and reports sizes, modes, channels, classes, splits and corrupt files."""
import os

import pytest
from PIL import Image

from ganforge.data.check import check
from ganforge.errors import GanforgeError


def test_folder_report(tmp_path, save, encode):
    save(Image.new("RGB", (8, 8)), tmp_path / "train" / "cat" / "a.png")
    save(Image.new("RGB", (8, 8)), tmp_path / "train" / "cat" / "b.png")
    save(Image.new("L", (16, 8)), tmp_path / "train" / "dog" / "c.png")
    save(Image.new("RGBA", (8, 8)), tmp_path / "test" / "dog" / "d.png")
    full = encode(Image.effect_noise((64, 64), 40))
    (tmp_path / "train" / "dog" / "broken.png").write_bytes(full[: len(full) // 2])
    r = check(str(tmp_path))
    assert r.kind == "folder" and r.count == 4
    assert r.sizes == {(8, 8): 3, (16, 8): 1}
    assert r.modes == {"RGB": 2, "L": 1, "RGBA": 1}
    assert r.channels == {3: 3, 1: 1}
    assert r.splits == {"train": 3, "test": 1}
    assert r.classes == {"cat": 2, "dog": 2}
    assert [os.path.basename(f) for f, _ in r.corrupt] == ["broken.png"]
    assert not r.ok
    text = r.format()
    assert "4 readable, 1 corrupt" in text and "broken.png" in text and "8x8 x3" in text
    assert "cat 2" in text and "PROBLEMS FOUND" in text


def test_flat_zip_report(tmp_path, encode):
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.writestr("a.png", encode(Image.new("L", (5, 5))))
        zf.writestr("b.png", encode(Image.new("L", (5, 5))))
    r = check(str(tmp_path / "x.zip"))
    assert r.kind == "zip" and r.count == 2 and r.ok and r.classes is None
    assert r.splits == {"train": 2}
    assert "unlabeled" in r.format() and "OK" in r.format()


def test_idx_and_cifar_reports(tmp_path, mnist_folder, write_cifar):
    mnist_folder(tmp_path / "m", gz=True, n_train=6, n_test=4)
    r = check(str(tmp_path / "m"))
    assert r.kind == "idx" and r.count == 10 and r.splits == {"train": 6, "test": 4}
    assert r.sizes == {(28, 28): 10} and r.channels == {1: 10}
    assert sum(r.classes.values()) == 10
    write_cifar(tmp_path / "c")
    r = check(str(tmp_path / "c"))
    assert r.kind == "cifar10" and r.count == 13 and r.modes == {"RGB": 13} and r.ok


def test_broken_idx_is_reported(tmp_path, mnist_folder):
    mnist_folder(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    r = check(str(tmp_path))
    assert r.splits == {"train": 6} and len(r.corrupt) == 1 and not r.ok


def test_builtin_name_and_missing_path():
    r = check("digits")
    assert r.count == 1797 and len(r.classes) == 10
    with pytest.raises(GanforgeError, match="no such path"):
        check("/definitely/not/here")
