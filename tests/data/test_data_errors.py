"""User errors are one clear GanforgeError line."""
import pytest
from PIL import Image

from ganforge.data import build_dataset, source_names
from ganforge.errors import GanforgeError


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def test_missing_path(tmp_path):
    with pytest.raises(GanforgeError) as e:
        build_dataset(str(tmp_path / "nope"))
    assert "no such path" in one_line(e)


def test_unknown_name_lists_known_names():
    with pytest.raises(GanforgeError) as e:
        build_dataset("imagenet-1k")
    msg = one_line(e)
    assert "unknown dataset 'imagenet-1k'" in msg and "mnist" in msg and "cifar10" in msg


def test_empty_folder(tmp_path):
    with pytest.raises(GanforgeError) as e:
        build_dataset(str(tmp_path))
    assert "no images found" in one_line(e)


def test_single_image_path(tmp_path):
    Image.new("L", (2, 2)).save(tmp_path / "a.png")
    with pytest.raises(GanforgeError) as e:
        build_dataset(str(tmp_path / "a.png"))
    assert "single image" in one_line(e)


def test_broken_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK not really")
    with pytest.raises(GanforgeError) as e:
        build_dataset(str(tmp_path / "x.zip"))
    assert "not a readable zip" in one_line(e)


def test_unknown_file_kind(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(GanforgeError) as e:
        build_dataset(str(tmp_path / "x.bin"))
    assert "cannot tell" in one_line(e)


@pytest.mark.parametrize("kw,text", [
    ({"split": "val"}, "unknown split"),
    ({"resize": "stretch"}, "unknown resize policy"),
    ({"channels": 4}, "channels must be 1 or 3"),
    ({"image_size": 0}, "image_size must be a positive integer"),
    ({"image_size": 3.5}, "image_size must be a positive integer"),
])
def test_bad_arguments(kw, text):
    with pytest.raises(GanforgeError) as e:
        build_dataset("digits", **kw)
    assert text in one_line(e)


def test_cifar10_without_root_says_how_to_fetch():
    with pytest.raises(GanforgeError) as e:
        build_dataset("cifar10")
    assert "ganforge data fetch cifar10" in one_line(e)


def test_source_names():
    names = source_names()
    assert {"mnist", "digits", "mnist-idx", "fashion-mnist", "cifar10"} <= set(names)
