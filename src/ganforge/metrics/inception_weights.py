"""The FID Inception weight file: where it is, its pinned SHA-256, and an explicit download.

The file is pytorch-fid's port of TensorFlow's inception-2015-12-05 graph. Its SHA-256 is pinned in
full; torch.hub names files by the hash's first 8 hex digits, hence the `6726825d` in the name.
Nothing here touches the network unless `fetch_inception_weights` is called.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import GanforgeError
from ..utils.hashing import sha256_file

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILENAME
)
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_BYTES = 95_628_359  # size of the published file, for progress reports and sanity
INCEPTION_ENV = "GANFORGE_INCEPTION"

_HOW_TO_GET = f"run `ganforge weights fetch inception` or set {INCEPTION_ENV}=/path/to/{INCEPTION_FILENAME}"


def verify_sha256(path: str | os.PathLike, expected: str) -> str:
    """Return the file's SHA-256, or raise GanforgeError naming both hashes when it differs."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise GanforgeError(
            f"SHA-256 mismatch for {path}: expected {expected.lower()}, got {actual} "
            "(wrong or corrupt file; fetch it again)"
        )
    return actual


def resolve_inception_weights(weights: str | os.PathLike | None = None) -> Path:
    """The local weight file: `weights` if given, else $GANFORGE_INCEPTION; error if neither exists."""
    if weights is None:
        env = os.environ.get(INCEPTION_ENV)
        if not env:
            raise GanforgeError(f"Inception weights not given: {_HOW_TO_GET}")
        weights = env
    path = Path(weights).expanduser()
    if path.is_dir():
        path = path / INCEPTION_FILENAME
    if not path.is_file():
        raise GanforgeError(f"Inception weights not found at {path}: {_HOW_TO_GET}")
    return path


def fetch_inception_weights(
    to: str | os.PathLike, url: str | None = None, expected_sha256: str = INCEPTION_SHA256
) -> Path:
    """Download the Inception weights to `to` (a folder or file path), verify the hash, return the path."""
    dest = Path(to).expanduser()
    if dest.is_dir() or str(to).endswith(("/", os.sep)):
        dest = dest / INCEPTION_FILENAME
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and sha256_file(dest) == expected_sha256.lower():
        return dest  # already there and intact
    url = url or INCEPTION_URL
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as e:
                reason = getattr(e, "reason", None) or e
                raise GanforgeError(f"could not download {url}: {reason}") from None
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if actual != expected_sha256.lower():
            raise GanforgeError(
                f"downloaded file from {url} has SHA-256 {actual}, expected {expected_sha256.lower()}; not saved"
            )
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest
