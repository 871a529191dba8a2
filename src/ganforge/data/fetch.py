"""Download standard dataset archives, verified against pinned SHA-256 digests.

Only `fetch()` touches the network, and only when called. Each file goes to a temporary file in the
destination folder, is hashed while it streams, and is moved into place with os.replace only when its
SHA-256 matches the pinned value; a mismatch deletes it and raises. A file already present with the
right digest is not downloaded again. Archives (.tar.gz, .zip) are then unpacked next to themselves,
refusing members that would land outside the destination.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import GanforgeError
from ..utils.hashing import sha256_file

TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name on the mirror and its pinned SHA-256 (None = no known digest)."""

    filename: str
    sha256: str | None


@dataclass(frozen=True)
class RemoteDataset:
    """Where a dataset's files live, which files, and whether to unpack them."""

    base_url: str
    files: tuple[RemoteFile, ...]
    extract: bool = False
    note: str = ""


def _pinned(*pairs: tuple[str, str | None]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, digest) for name, digest in pairs)


# Digests and where they come from (all from the tensorflow/datasets repository, which lists URL,
# byte size and SHA-256 for every file its builders download). Sizes are noted beside each digest.
DATASETS: dict[str, RemoteDataset] = {
    # tensorflow_datasets/url_checksums/mnist.txt (commit 31f1255e57e519a6c004f0b097a2f5cfcf0dde7d)
    "mnist": RemoteDataset(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        _pinned(
            ("train-images-idx3-ubyte.gz",  # 9,912,422 bytes
             "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            ("train-labels-idx1-ubyte.gz",  # 28,881 bytes
             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            ("t10k-images-idx3-ubyte.gz",  # 1,648,877 bytes
             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            ("t10k-labels-idx1-ubyte.gz",  # 4,542 bytes
             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        ),
    ),
    # tensorflow_datasets/url_checksums/fashion_mnist.txt (commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5)
    "fashion-mnist": RemoteDataset(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        _pinned(
            ("train-images-idx3-ubyte.gz",  # 26,421,880 bytes
             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            ("train-labels-idx1-ubyte.gz",  # 29,515 bytes
             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            ("t10k-images-idx3-ubyte.gz",  # 4,422,102 bytes
             "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            ("t10k-labels-idx1-ubyte.gz",  # 5,148 bytes
             "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        ),
    ),
    # tensorflow_datasets/url_checksums/cifar10.csv (commit 2740d30f03c8f1f48f9665802e48a6bd4c8d156f),
    # the *python* version. (TFDS's cifar10.txt pins cifar-10-binary.tar.gz, which ganforge does not read.)
    "cifar10": RemoteDataset(
        "https://www.cs.toronto.edu/~kriz/",
        _pinned(("cifar-10-python.tar.gz", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")),
        extract=True,
    ),
    # tensorflow_datasets/url_checksums/cycle_gan.txt (commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5)
    # lists these zips at people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/. The CycleGAN
    # authors' download script now points at efrosgans.eecs.berkeley.edu/cyclegan/datasets/ for the
    # same files; should the mirror ever serve different bytes, the digest check refuses them.
    "facades": RemoteDataset(
        "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/",
        _pinned(("facades.zip",  # 35,135,868 bytes
                 "9a31ebf3a31b9b5cd195dd5bf62e9308e00cb94604d1019e3889ac84248695c0")),
        extract=True,
        note="CycleGAN layout: trainA/ trainB/ testA/ testB/",
    ),
    "horse2zebra": RemoteDataset(
        "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/",
        _pinned(("horse2zebra.zip",  # 116,867,962 bytes
                 "a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1")),
        extract=True,
        note="CycleGAN layout: trainA/ trainB/ testA/ testB/",
    ),
    # The pix2pix side-by-side facades (train/ val/ test/). No published SHA-256 was found for this
    # archive, so fetching it is refused rather than done unverified.
    "facades-pix2pix": RemoteDataset(
        "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/",
        _pinned(("facades.tar.gz", None)),
        extract=True,
        note="pix2pix layout: train/ val/ test/ with A|B side by side",
    ),
}


def fetchable() -> dict[str, str]:
    """Names fetch() knows, each with its file names."""
    return {name: ", ".join(f.filename for f in d.files) for name, d in sorted(DATASETS.items())}


def _download(url: str, dest: Path, expected: str) -> None:
    """Stream `url` to a temp file beside `dest`, check its SHA-256, then os.replace it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
                    for chunk in iter(lambda: resp.read(_CHUNK), b""):
                        h.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as exc:
                raise GanforgeError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise GanforgeError(f"download failed (offline or mirror down?): {url}: {reason}") from None
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if actual != expected:
            raise GanforgeError(
                f"SHA-256 mismatch for {dest.name} from {url}: expected {expected}, got {actual}; file deleted"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _safe_target(root: Path, member: str) -> Path:
    target = (root / member).resolve()
    if target != root and root not in target.parents:
        raise GanforgeError(f"archive member {member!r} would be written outside {root}; refusing to unpack")
    return target


def extract_archive(archive: Path, to: Path) -> None:
    """Unpack a .tar.gz or .zip into `to`, refusing absolute paths, '..' and links."""
    root = to.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _safe_target(root, info.filename)
            zf.extractall(root)
        return
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            _safe_target(root, m.name)
            if not (m.isfile() or m.isdir()):
                raise GanforgeError(f"archive member {m.name!r} in {archive.name} is not a plain file; refusing")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters; members were checked above
            tar.extractall(root, members=members)


def fetch(name: str, to: str, *, base_url: str | None = None, extract: bool = True) -> list[Path]:
    """Download dataset `name` into folder `to`, verify every file's pinned SHA-256, unpack archives."""
    spec = DATASETS.get(name)
    if spec is None:
        raise GanforgeError(f"unknown dataset to fetch {name!r} (known: {', '.join(sorted(DATASETS))})")
    missing = [f.filename for f in spec.files if not f.sha256]
    if missing:
        raise GanforgeError(
            f"refusing to fetch {name!r}: no pinned SHA-256 for {', '.join(missing)}; download it yourself"
        )
    dest_dir = Path(to).expanduser()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanforgeError(f"cannot create {dest_dir}: {exc}") from None
    base = (base_url or spec.base_url).rstrip("/") + "/"
    out = []
    for f in spec.files:
        dest = dest_dir / f.filename
        fresh = False
        if not (dest.is_file() and sha256_file(dest) == f.sha256):
            _download(base + f.filename, dest, f.sha256)
            fresh = True
        if extract and spec.extract and (fresh or not _extracted_marker(dest).exists()):
            extract_archive(dest, dest_dir)
            _extracted_marker(dest).write_text(f.sha256 + "\n")
        out.append(dest)
    return out


def _extracted_marker(archive: Path) -> Path:
    """A small file recording that `archive` (with this digest) was fully unpacked."""
    return archive.with_name(f".{archive.name}.extracted")
