"""CIFAR-10 python batches: real key names, pixel layout, meta names, archives, safe unpickling."""
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.errors import GanforgeError

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_round_trip(tmp_path, write_cifar, protocol):
    written = write_cifar(tmp_path, protocol=protocol)
    for split in ("train", "test"):
        ds = build_dataset(str(tmp_path / "cifar-10-batches-py"), split=split)
        data, labels = written[split]
        x, y = ds.as_tensor()
        assert x.shape == (len(data), 3, 32, 32)
        # row layout: 1024 red, then 1024 green, then 1024 blue, each row-major 32x32
        expected = torch.from_numpy(data.reshape(-1, 3, 32, 32)).float() / 127.5 - 1
        assert torch.equal(x, expected)
        assert y.tolist() == labels.tolist()
        assert ds.class_names == CIFAR_NAMES and ds.num_classes == 10
    assert len(build_dataset(str(tmp_path), split="train")) == 10  # parent of cifar-10-batches-py


def test_pixel_layout_known_values(tmp_path, write_cifar):
    write_cifar(tmp_path, per_batch=1, n_test=1)
    folder = tmp_path / "cifar-10-batches-py"
    row = np.zeros(3072, np.uint8)
    row[1] = 255            # red plane, y=0 x=1
    row[1024 + 32] = 255    # green plane, y=1 x=0
    row[2048 + 1023] = 255  # blue plane, y=31 x=31
    batch = {b"data": row[None], b"labels": [7], b"batch_label": b"testing batch 1 of 1"}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    img, label = build_dataset(str(folder), split="test")[0]
    assert label == 7
    assert img[0, 0, 1] == 1 and img[1, 1, 0] == 1 and img[2, 31, 31] == 1
    assert int((img == 1).sum()) == 3


def test_named_source_and_archive(tmp_path, write_cifar):
    written = write_cifar(tmp_path / "src")
    ds = build_dataset("cifar10", root=str(tmp_path / "src"), split="test")
    assert ds.labels.tolist() == written["test"][1].tolist()
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_tar = build_dataset(str(archive), split="test")
    assert torch.equal(from_tar.as_tensor()[0], ds.as_tensor()[0])
    (tmp_path / "only_tar").mkdir()
    os.replace(archive, tmp_path / "only_tar" / archive.name)
    assert len(build_dataset("cifar10", root=str(tmp_path / "only_tar"))) == 10


def test_gray_and_resized(tmp_path, write_cifar):
    written = write_cifar(tmp_path)
    ds = build_dataset(str(tmp_path), split="test", channels=1, image_size=16)
    img = ds[0][0]
    assert img.shape == (1, 16, 16)
    rgb = written["test"][0][0].reshape(3, 32, 32).transpose(1, 2, 0)
    ref = Image.fromarray(rgb).convert("L").resize((16, 16), Image.Resampling.LANCZOS)
    assert np.allclose(img[0].numpy(), np.asarray(ref, np.float32) / 127.5 - 1, atol=1e-6)


def test_incomplete_folder(tmp_path, write_cifar):
    write_cifar(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(GanforgeError, match="data_batch_3 missing"):
        build_dataset(str(tmp_path))


class _Evil:
    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_malicious_pickle_is_refused(tmp_path, write_cifar):
    write_cifar(tmp_path)
    evil = _Evil()
    evil.target = str(tmp_path / "pwned")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": evil, b"labels": []}))
    with pytest.raises(GanforgeError, match="refusing to load"):
        build_dataset(str(tmp_path), split="test")
    assert not (tmp_path / "pwned").exists()
