"""File stores: a folder or a .zip seen the same way, as sorted relative POSIX paths you can open."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

from ..errors import GanforgeError
from .decode import IMAGE_EXTENSIONS


def _hidden(rel: str) -> bool:
    """Dot-files, dot-folders and macOS zip metadata are never images."""
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/"))


def is_image_name(rel: str) -> bool:
    """Whether a relative path looks like an image file by its extension."""
    return not _hidden(rel) and os.path.splitext(rel)[1].lower() in IMAGE_EXTENSIONS


class DirStore:
    """Image files under a folder, recursively, in sorted order."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.label = str(self.root)

    def image_files(self) -> list[str]:
        """Sorted relative paths of files with an image extension."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, self.root)
            for f in filenames:
                rel = f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/")
                if is_image_name(rel):
                    out.append(rel)
        return sorted(out)

    def open(self, rel: str) -> BinaryIO:
        """Open one file for binary reading."""
        return open(self.root / rel, "rb")

    def display(self, rel: str) -> str:
        """How to name this file to a user."""
        return str(self.root / rel)


class ZipStore:
    """Image members of a .zip archive, in sorted order; reopened per process for DataLoader workers."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.label = str(self.path)
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        try:
            with zipfile.ZipFile(self.path) as zf:
                self._members = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        except (zipfile.BadZipFile, OSError) as exc:
            raise GanforgeError(f"cannot read zip {self.path}: {exc}") from None

    def _handle(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._pid = os.getpid()
        return self._zip

    def image_files(self) -> list[str]:
        """Sorted member names with an image extension."""
        return sorted(name for name in self._members if is_image_name(name))

    def open(self, rel: str) -> BinaryIO:
        """Read one member fully into memory (PIL needs a seekable file)."""
        try:
            return io.BytesIO(self._handle().read(self._members[rel]))
        except Exception as exc:  # BadZipFile, zlib.error, CRC errors, EOFError: all "unreadable"
            raise OSError(f"cannot read {rel} from {self.path}: {exc}") from None

    def display(self, rel: str) -> str:
        """How to name this member to a user."""
        return f"{self.path}:{rel}"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"] = None  # ZipFile handles are not picklable; each worker opens its own
        return state
