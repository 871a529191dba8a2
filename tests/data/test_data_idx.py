"""IDX (MNIST / Fashion-MNIST) files, raw and gzipped, written with the real header format."""
import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.idx import read_idx
from ganforge.data.sources import FASHION_MNIST_CLASSES
from ganforge.errors import GanforgeError


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_round_trip(tmp_path, mnist_folder, gz):
    written = mnist_folder(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = build_dataset(str(tmp_path), split=split)
        images, labels = written[prefix]
        x, y = ds.as_tensor()
        assert x.shape == (len(images), 1, 28, 28)
        assert torch.equal(x, torch.from_numpy(images).float()[:, None] / 127.5 - 1)
        assert y.tolist() == labels.tolist()
        assert ds.num_classes == int(labels.max()) + 1


def test_header_is_big_endian_and_checked(tmp_path, write_idx):
    arr = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / "x-idx3-ubyte", arr, gz=False)
    raw = path.read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x05"
    assert np.array_equal(read_idx(path), arr)
    path.write_bytes(raw[:-1])
    with pytest.raises(GanforgeError, match="file has 29"):
        read_idx(path)
    path.write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(GanforgeError, match="magic"):
        read_idx(path)


def test_label_count_mismatch(tmp_path, write_idx):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8), gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8), gz=False)
    with pytest.raises(GanforgeError, match="2 labels but"):
        build_dataset(str(tmp_path))


def test_images_without_labels_are_unlabeled(tmp_path, write_idx):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.full((2, 28, 28), 255, np.uint8), gz=True)
    ds = build_dataset(str(tmp_path))
    assert ds.num_classes is None and ds.labels.tolist() == [-1, -1]
    assert float(ds[0][0].min()) == 1.0


def test_single_file_path(tmp_path, mnist_folder):
    written = mnist_folder(tmp_path, gz=True)
    ds = build_dataset(str(tmp_path / "t10k-images-idx3-ubyte.gz"), split="test")
    assert ds.labels.tolist() == written["t10k"][1].tolist()
    with pytest.raises(GanforgeError, match="t10k file"):
        build_dataset(str(tmp_path / "t10k-images-idx3-ubyte.gz"), split="train")


def test_named_sources_read_root(tmp_path, mnist_folder):
    written = mnist_folder(tmp_path / "mnist", gz=True)
    ds = build_dataset("mnist-idx", root=str(tmp_path), split="test")
    assert ds.labels.tolist() == written["t10k"][1].tolist() and ds.name == "mnist-idx"
    mnist_folder(tmp_path / "fm", gz=False, seed=3)
    fm = build_dataset("fashion-mnist", root=str(tmp_path / "fm"))
    assert fm.class_names == FASHION_MNIST_CLASSES and fm.class_names[9] == "Ankle boot"
    with pytest.raises(GanforgeError, match="root"):
        build_dataset("fashion-mnist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="no IDX files"):
        build_dataset("mnist-idx", root=str(tmp_path / "empty"))
    with pytest.raises(GanforgeError, match="does not exist"):
        build_dataset("mnist-idx", root=str(tmp_path / "missing"))


def test_resize_and_channels_on_idx(tmp_path, mnist_folder):
    mnist_folder(tmp_path, gz=False)
    ds = build_dataset(str(tmp_path), image_size=32, channels=3)
    assert ds[0][0].shape == (3, 32, 32) and ds.as_tensor()[0].shape[1:] == (3, 32, 32)
