"""Crash-safe writes: temporary file in the same folder, fsync, then os.replace.

Temporary files and folders are created with the ordinary modes (0o666 / 0o777) and the kernel applies
the user's umask, so outputs get the same permissions as any other tool's; tempfile.mkstemp/mkdtemp
would make them private (0o600 / 0o700), and that mode would survive the rename. Files that a library
writes privately (safetensors does) are given file_mode() afterwards.
"""
from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import Callable

TEMP_TAG_LEN = 8  # characters of the random part of temporary names (hex)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (no-op where the OS cannot open directories)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask, read without changing it where the OS shows it (Linux), else once per process."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _umask_once()


@functools.lru_cache(maxsize=None)
def _umask_once() -> int:
    # Elsewhere the umask can only be read by setting it. Set it to 0o077 for that instant (not 0): a file
    # another thread creates meanwhile comes out private rather than world-writable.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from the user's umask: 0o666 minus the umask."""
    return 0o666 & ~current_umask()


def _create_unique(folder: Path, prefix: str, suffix: str, create: Callable[[Path], None]) -> Path:
    for _ in range(100):
        cand = folder / f"{prefix}{secrets.token_hex(TEMP_TAG_LEN // 2)}{suffix}"
        try:
            create(cand)
        except FileExistsError:
            continue
        return cand
    raise FileExistsError(f"no free temporary name {prefix}*{suffix} in {folder}")


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def make_temp_file(folder: str | os.PathLike, prefix: str, suffix: str = "") -> Path:
    """Create a new empty file PREFIX<8 hex>SUFFIX in folder, with mode 0o666 minus the umask."""
    return _create_unique(Path(folder), prefix, suffix, _new_file)


def make_temp_dir(folder: str | os.PathLike, prefix: str, suffix: str = "") -> Path:
    """Create a new empty folder PREFIX<8 hex>SUFFIX in folder, with mode 0o777 minus the umask."""
    return _create_unique(Path(folder), prefix, suffix, lambda p: os.mkdir(p, 0o777))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call write(tmp_path) then move the fsynced result onto path in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(make_temp_file(path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically."""
    def _w(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    return atomic_write(path, _w)
