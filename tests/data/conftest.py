"""Shared helpers for ganforge.data tests: file writers in the real formats, and a network guard."""
from __future__ import annotations

import gzip
import pickle
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data import folder as folder_mod

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail any test that opens a socket to anything but loopback."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
            raise AssertionError(f"test tried to reach the network: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(params=["eager", "lazy"])
def decode_mode(request, monkeypatch):
    """Run a folder test both with build-time decoding and with lazy decoding."""
    if request.param == "lazy":
        monkeypatch.setattr(folder_mod, "EAGER_MAX_FILES", 0)
    return request.param


def _save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


@pytest.fixture
def save():
    """save(img, path, **pil_kwargs): write a PIL image, creating folders."""
    return _save


def gray(value: int, size=(4, 4)) -> Image.Image:
    """A constant 8-bit gray image."""
    return Image.new("L", size, value)


@pytest.fixture
def gray_image():
    """gray(value, size=(w, h)) -> constant "L" image."""
    return gray


def _write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x00000800 | array.ndim  # 0x00 0x00, type 0x08 (ubyte), ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def write_idx():
    """write_idx(path, uint8 array, gz=bool): an IDX file with the real header (big-endian dims)."""
    return _write_idx


def _write_mnist_folder(folder: Path, *, gz: bool, n_train=6, n_test=4, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz=gz)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz=gz)
        out[prefix] = (images, labels)
    return out


@pytest.fixture
def mnist_folder():
    """mnist_folder(folder, gz=bool) -> {"train": (images, labels), "t10k": ...} written as IDX."""
    return _write_mnist_folder


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _write_cifar(root: Path, *, per_batch=2, n_test=3, protocol=2, seed=0) -> dict:
    """A cifar-10-batches-py folder with the real key names; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = {"train": ([], []), "test": ([], [])}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        split = "test" if name == "test_batch" else "train"
        written[split][0].append(data)
        written[split][1].extend(labels)
    meta = {b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return {k: (np.concatenate(v[0]), np.array(v[1])) for k, v in written.items()}


@pytest.fixture
def write_cifar():
    """write_cifar(root, per_batch=2, n_test=3, protocol=2) -> {"train": (data, labels), "test": ...}."""
    return _write_cifar


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    """Encode an image to bytes."""
    import io

    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def encode():
    """encode(img, fmt="PNG") -> bytes."""
    return png_bytes
