"""CIFAR-10 "python version": the cifar-10-batches-py folder, or the cifar-10-python.tar.gz archive itself.

Each batch is a pickle of a dict with b"data" (uint8 [N, 3072], 1024 red then 1024 green then 1024
blue values, rows top to bottom) and b"labels" (N ints); batches.meta has b"label_names".
Train = data_batch_1..5, test = test_batch. Pickles are read with an unpickler that only allows the
few numpy names an array needs, so a malicious file cannot run code.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ..errors import GanforgeError
from .dataset import MissingSplit

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META = "batches.meta"


def _allowed() -> dict[tuple[str, str], object]:
    from numpy._core import multiarray, numeric

    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for mod in ("numpy._core", "numpy.core"):  # numpy >= 2 and Python-2-era pickles
        table[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    table[("_codecs", "encode")] = __import__("codecs").encode
    return table


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array reconstruction names."""

    _table = _allowed()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._table[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file") from None


def safe_unpickle(data: bytes, where: str) -> dict:
    """Load a CIFAR batch pickle (Python 2 or 3) with only numpy names allowed."""
    try:
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:
        raise GanforgeError(f"cannot read CIFAR batch {where}: {exc}") from None
    if not isinstance(obj, dict):
        raise GanforgeError(f"{where} is not a CIFAR batch (a dict was expected)")
    # Keys are bytes in the original files; accept str keys from re-pickled copies too.
    return {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}


def find_cifar_root(path: Path) -> Path | None:
    """The folder holding CIFAR batches: `path` itself or its cifar-10-batches-py subfolder."""
    if not path.is_dir():
        return None
    if (path / "data_batch_1").is_file() or (path / "test_batch").is_file():
        return path
    sub = path / FOLDER
    if sub.is_dir():
        return sub
    return None


def is_cifar_archive(path: Path) -> bool:
    """Whether `path` is a tar archive containing cifar-10-batches-py members."""
    if not path.is_file():
        return False
    try:
        if not tarfile.is_tarfile(path):
            return False
        with tarfile.open(path) as tar:
            return any(n.startswith(FOLDER + "/") for n in tar.getnames())
    except (tarfile.TarError, OSError, EOFError):
        return False


def _reader(path: Path):
    """A function name -> bytes (or None if missing) over a batches folder or a .tar.gz."""
    root = find_cifar_root(path)
    if root is not None:
        def read(name: str) -> bytes | None:
            f = root / name
            return f.read_bytes() if f.is_file() else None
        return read, str(root)
    if is_cifar_archive(path):
        wanted = {f"{FOLDER}/{n}" for n in (*TRAIN_BATCHES, *TEST_BATCHES, META)}
        blobs: dict[str, bytes] = {}
        try:
            with tarfile.open(path) as tar:  # one pass: a .tar.gz cannot seek cheaply
                for member in tar:
                    if member.isfile() and member.name in wanted:
                        blobs[member.name.split("/", 1)[1]] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise GanforgeError(f"cannot read {path}: {exc}") from None
        return blobs.get, str(path)
    raise GanforgeError(f"{path} is not a CIFAR-10 python folder ({FOLDER} with data_batch_1..5, test_batch)")


def load_cifar10(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 [N,3,32,32], labels int64 [N] and class names from a CIFAR-10 python folder or archive."""
    read, where = _reader(Path(path))
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    images, labels = [], []
    blobs = {name: read(name) for name in names}
    missing = [name for name, data in blobs.items() if data is None]
    if len(missing) == len(names):
        raise MissingSplit(f"CIFAR-10 folder {where} has no {split} batches ({', '.join(names)})")
    if missing:
        raise GanforgeError(f"CIFAR-10 folder {where} is incomplete: {', '.join(missing)} missing")
    for name, data in blobs.items():
        batch = safe_unpickle(data, f"{where}/{name}")
        try:
            x = np.asarray(batch[b"data"], dtype=np.uint8)
            y = np.asarray(batch[b"labels"], dtype=np.int64)
        except KeyError as exc:
            raise GanforgeError(f"{where}/{name} has no {exc.args[0]!r} entry") from None
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or x.shape[0] != y.shape[0]:
            raise GanforgeError(f"{where}/{name}: data {x.shape} and labels {y.shape} do not fit CIFAR-10")
        images.append(x.reshape(-1, 3, 32, 32))
        labels.append(y)
    meta = read(META)
    if meta is not None:
        raw_names = safe_unpickle(meta, f"{where}/{META}").get(b"label_names", [])
        class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw_names]
    else:
        class_names = []
    y = np.concatenate(labels)
    if not class_names:
        class_names = [str(i) for i in range(int(y.max()) + 1)]
    if y.size and (y.min() < 0 or y.max() >= len(class_names)):
        raise GanforgeError(f"{where}: labels outside 0..{len(class_names) - 1}")
    return np.concatenate(images), y, class_names
