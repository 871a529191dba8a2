"""Explicit, hash-verified downloads of weight files, and the SHA-256 pin check they share.

A pin is either a full SHA-256 (64 hex digits) or a prefix of one (at least 8 hex digits) where only
the prefix is published, as with torch.hub's `name-<8 hex>.pth` files. A prefix pin is weaker: it
catches corruption and wrong files, not a deliberately crafted collision.
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import GanforgeError
from .atomic import fsync_dir, make_temp_file
from .hashing import sha256_file

MIN_PREFIX_HEX = 8  # torch.hub's file-name prefix length; anything shorter pins next to nothing
_HEX = re.compile(r"[0-9a-f]+")


def check_pin(expected: str) -> str:
    """The pin in lower case, or ValueError if it is not 8 to 64 hex digits (a programming error)."""
    pin = expected.strip().lower()
    if not (MIN_PREFIX_HEX <= len(pin) <= 64 and _HEX.fullmatch(pin)):
        raise ValueError(f"a SHA-256 pin must be {MIN_PREFIX_HEX} to 64 hex digits, got {expected!r}")
    return pin


def describe_pin(expected: str) -> str:
    """The pin as shown in messages: the digest, or the digest prefix marked as such."""
    pin = check_pin(expected)
    return pin if len(pin) == 64 else f"{pin}... (prefix)"


def sha256_matches(actual: str, expected: str) -> bool:
    """Whether a full hex digest satisfies a pin (full digest or prefix)."""
    return actual.lower().startswith(check_pin(expected))


def verify_sha256(path: str | os.PathLike, expected: str) -> str:
    """Return the file's SHA-256, or raise GanforgeError naming both hashes when it does not match the pin."""
    actual = sha256_file(path)
    if not sha256_matches(actual, expected):
        raise GanforgeError(
            f"SHA-256 mismatch for {path}: expected {describe_pin(expected)}, got {actual} "
            "(wrong or corrupt file; fetch it again)"
        )
    return actual


def download_verified(url: str, dest: str | os.PathLike, expected_sha256: str) -> Path:
    """Download `url` to file `dest` unless an intact copy is there; keep it only if its hash matches the pin."""
    dest = Path(dest)
    check_pin(expected_sha256)  # a bad pin fails before any network traffic
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and sha256_matches(sha256_file(dest), expected_sha256):
        return dest  # already there and intact
    # A temporary file beside the destination, so the final os.replace is atomic and a failed or
    # interrupted download never leaves a half file under the real name.
    tmp = make_temp_file(dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
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
        if not sha256_matches(actual, expected_sha256):
            raise GanforgeError(
                f"downloaded file from {url} has SHA-256 {actual}, expected {describe_pin(expected_sha256)}; "
                "not saved"
            )
        os.replace(tmp, dest)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    fsync_dir(dest.parent)
    return dest
