"""The FID Inception weight file: where it is, its pinned SHA-256, and an explicit download.

The file is pytorch-fid's port of TensorFlow's inception-2015-12-05 graph. Its SHA-256 is pinned in
full; torch.hub names files by the hash's first 8 hex digits, hence the `6726825d` in the name.
Nothing here touches the network unless `fetch_inception_weights` is called.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import GanforgeError
from ..utils.download import download_verified, verify_sha256
from ..utils.hashing import sha256_file  # noqa: F401  (re-exported by ganforge.metrics)

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILENAME
)
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_BYTES = 95_628_359  # size of the published file, for progress reports and sanity
INCEPTION_ENV = "GANFORGE_INCEPTION"

_HOW_TO_GET = f"run `ganforge weights fetch inception` or set {INCEPTION_ENV}=/path/to/{INCEPTION_FILENAME}"


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
    return download_verified(url or INCEPTION_URL, dest, expected_sha256)
