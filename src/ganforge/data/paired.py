"""Image-to-image datasets: aligned pairs for Pix2Pix and two unaligned domains for CycleGAN.

Paired layouts (`PairedDataset`), tried in this order:

1. `root/<split>/A/` + `root/<split>/B/`, files matched by stem (`0001.png` <-> `0001.jpg`);
2. `root/A/<split>/` + `root/B/<split>/` (the reference repo's combine_A_and_B.py input);
3. `root/A/` + `root/B/` with images directly inside (no splits: only split="train");
4. `root/<split>/*.jpg` combined side-by-side AB images (left half A, right half B, as the pix2pix
   facades set), or such images directly in `root` (only split="train").

A file whose stem has no partner is listed in `unpaired` and skipped. Unpaired layout
(`UnpairedDataset`): `root/<split>A/` and `root/<split>B/` (trainA, trainB, testA, testB).

Augmentation follows the papers: resize to load_size x load_size (286), random crop image_size (256),
random horizontal flip; in a pair A and B get the same crop and flip. Every random draw of item
`index` comes from a torch.Generator seeded by (seed, epoch, index), so an epoch is the same whatever
the worker count or resume point; call `set_epoch(epoch)` before each epoch (with persistent
DataLoader workers, recreate the loader, since workers hold their own copy of the dataset).

Images are decoded and converted with the policy of `data.convert` (alpha onto black, 16-bit scaled,
explicit RGB <-> L). Channels: None keeps each domain's native count (3 if any of its files is colour,
else 1); an int asks the same count for both domains, and is an error when the two domains differ
natively (so a colour target is never silently turned grey, nor a grey input into fake colour); a
pair (a, b) converts each domain as told. Unreadable files are skipped and counted (`skipped`,
`skipped_files`); a file that fails to decode later is replaced by the next readable item.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import GanforgeError
from .convert import to_canonical, to_channels, to_chw
from .decode import IMAGE_EXTENSIONS, DecodeError, read_header

DIRECTIONS = ("AtoB", "BtoA")
Channels = int | tuple[int, int] | None


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A torch.Generator whose stream depends only on (seed, epoch, index)."""
    if seed < 0 or epoch < 0 or index < 0:
        raise GanforgeError(f"seed, epoch and index must be >= 0, got {seed}, {epoch}, {index}")
    # SeedSequence mixes the three integers well, so neighbouring items get unrelated streams.
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder` (by extension, hidden files excluded), sorted by name."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _header_channels(path: Path) -> int:
    with open(path, "rb") as fp:
        return read_header(fp).channels


def _decode_canonical(path: Path) -> Image.Image:
    """Fully decode one file to a canonical "L", "RGB" or "F" image; DecodeError if it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()  # a full decode: truncated files fail here
                return to_canonical(img)
    except Exception as exc:  # PIL raises many types for bad input; all mean "unreadable"
        raise DecodeError(f"{type(exc).__name__}: {exc}") from None


def _resolve_channels(channels: Channels, native_a: int, native_b: int, where: str) -> tuple[int, int]:
    """Channels for (A, B) from the user's request and the domains' native counts."""
    if channels is None:
        return native_a, native_b
    pair = (channels, channels) if isinstance(channels, int) else tuple(channels)
    if len(pair) != 2 or any(c not in (1, 3) for c in pair):
        raise GanforgeError(f"channels must be 1, 3, or a pair of them such as (1, 3), got {channels!r}")
    if isinstance(channels, int) and native_a != native_b:
        raise GanforgeError(
            f"{where}: A images have {native_a} channel(s) and B images {native_b}, but channels={channels} "
            f"asks the same for both; pass channels=({native_a}, {native_b}) or another explicit pair"
        )
    return int(pair[0]), int(pair[1])


class _TranslationDataset(Dataset):
    """Shared machinery: epoch, per-item generators, crop/flip draws, skip bookkeeping."""

    def __init__(self, image_size: int, load_size: int, jitter: bool, flip: bool, seed: int):
        if image_size < 1:
            raise GanforgeError(f"image_size must be >= 1, got {image_size}")
        if jitter and load_size < image_size:
            raise GanforgeError(f"load_size ({load_size}) must be >= image_size ({image_size})")
        if seed < 0:
            raise GanforgeError(f"seed must be >= 0, got {seed}")
        self.image_size = image_size
        self.load_size = load_size if jitter else image_size
        self.flip = flip
        self.seed = seed
        self.epoch = 0
        self.skipped_files: list[str] = []

    @property
    def skipped(self) -> int:
        """How many unreadable files were skipped (at build time or while reading)."""
        return len(self.skipped_files)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops and flips (and unpaired partners) items draw."""
        if epoch < 0:
            raise GanforgeError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def _generator(self, index: int) -> torch.Generator:
        return sample_generator(self.seed, self.epoch, index)

    def _draw(self, g: torch.Generator) -> tuple[int, int, bool]:
        """(left, top, flip) of one random crop-and-flip."""
        room = self.load_size - self.image_size + 1
        x, y = (int(v) for v in torch.randint(room, (2,), generator=g))
        flipped = bool(torch.rand((), generator=g) < 0.5) if self.flip else False
        return x, y, flipped

    def _finish(self, img: Image.Image, channels: int, params: tuple[int, int, bool]) -> Tensor:
        """Convert, resize to load_size, crop and flip one canonical image into a [C,H,W] tensor."""
        x, y, flipped = params
        img = to_channels(img, channels)
        if img.size != (self.load_size, self.load_size):
            img = img.resize((self.load_size, self.load_size), Image.Resampling.BICUBIC)
        if self.load_size != self.image_size:
            img = img.crop((x, y, x + self.image_size, y + self.image_size))
        # uint8 maps exactly onto [-1, 1]; float (16-bit) sources may overshoot a hair after bicubic
        t = torch.from_numpy(to_chw(img, channels).astype(np.float32)).div_(127.5).sub_(1.0).clamp_(-1.0, 1.0)
        return t.flip(-1) if flipped else t

    def _note_skip(self, path: Path) -> None:
        if str(path) not in self.skipped_files:
            self.skipped_files.append(str(path))

    def _check_index(self, index: int) -> int:
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        return index


def _stems(files: list[Path], folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise GanforgeError(f"{folder}: two images share the name {f.stem!r} ({out[f.stem].name}, {f.name})")
        out[f.stem] = f
    return out


def _nonempty(folder: Path) -> list[Path]:
    files = list_images(folder)
    if not files:
        raise GanforgeError(f"no images in {folder}")
    return files


def _find_paired_layout(root: Path, split: str) -> tuple[str, list[Path]]:
    """("separate", [dirA, dirB]) or ("combined", [dir]) for `split` under `root`."""
    if not root.is_dir():
        raise GanforgeError(f"dataset folder {root} does not exist")
    for a, b in ((root / split / "A", root / split / "B"), (root / "A" / split, root / "B" / split)):
        if a.is_dir() and b.is_dir():
            return "separate", [a, b]
    a, b = root / "A", root / "B"
    if a.is_dir() and b.is_dir() and (list_images(a) or list_images(b)):
        if split != "train":
            raise GanforgeError(f"{root} has flat A/ and B/ folders, no {split!r} split")
        return "separate", [a, b]
    if (root / split).is_dir():
        return "combined", [root / split]
    if list_images(root):
        if split != "train":
            raise GanforgeError(f"{root} holds images directly, no {split!r} split")
        return "combined", [root]
    raise GanforgeError(
        f"no paired images for split {split!r} under {root} "
        f"(expected {split}/A + {split}/B, A/ + B/, or {split}/ with side-by-side AB images)"
    )


class PairedDataset(_TranslationDataset):
    """Aligned (A, B) image pairs as {"A", "B", "path"}: float tensors in [-1, 1], CHW, same crop and flip."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        image_size: int = 256,
        load_size: int = 286,
        direction: str = "AtoB",
        jitter: bool = True,
        flip: bool = True,
        seed: int = 0,
        channels: Channels = None,
    ):
        super().__init__(image_size, load_size, jitter, flip, seed)
        if direction not in DIRECTIONS:
            raise GanforgeError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        self.root, self.split, self.direction = Path(root), split, direction
        self.layout, dirs = _find_paired_layout(self.root, split)
        self.unpaired: list[str] = []
        self.pairs: list[tuple[Path, Path | None]] = []  # (A file, B file); B None for combined images
        natives: list[tuple[int, int]] = []
        if self.layout == "separate":
            sa, sb = _stems(_nonempty(dirs[0]), dirs[0]), _stems(_nonempty(dirs[1]), dirs[1])
            self.unpaired = sorted(str(p) for s, p in {**sa, **sb}.items() if not (s in sa and s in sb))
            for stem in sorted(set(sa) & set(sb)):
                got = self._headers([sa[stem], sb[stem]])
                if got is not None:
                    self.pairs.append((sa[stem], sb[stem]))
                    natives.append((got[0], got[1]))
        else:
            for f in _nonempty(dirs[0]):
                got = self._headers([f])
                if got is not None:
                    self.pairs.append((f, None))
                    natives.append((got[0], got[0]))
        if not self.pairs:
            why = f"{self.skipped} unreadable, {len(self.unpaired)} without a partner"
            where = dirs[0].parent if self.layout == "separate" else dirs[0]
            raise GanforgeError(f"no usable image pairs under {where} ({why})")
        native_a = 3 if any(n[0] == 3 for n in natives) else 1
        native_b = 3 if any(n[1] == 3 for n in natives) else 1
        self.channels_a, self.channels_b = _resolve_channels(channels, native_a, native_b, str(self.root))
        swap = direction == "BtoA"
        self.in_channels = self.channels_b if swap else self.channels_a
        self.out_channels = self.channels_a if swap else self.channels_b
        self._bad: set[int] = set()

    def _headers(self, files: list[Path]) -> list[int] | None:
        """Native channel counts of `files`, or None (and the bad ones counted) if any is unreadable."""
        out = []
        for f in files:
            try:
                out.append(_header_channels(f))
            except (DecodeError, GanforgeError, OSError):
                self._note_skip(f)
        return out if len(out) == len(files) else None

    def __len__(self) -> int:
        return len(self.pairs)

    def _decode_pair(self, i: int) -> tuple[Image.Image, Image.Image]:
        fa, fb = self.pairs[i]
        try:
            a = _decode_canonical(fa)
        except DecodeError:
            self._note_skip(fa)
            raise
        if fb is None:  # side by side: left half A, right half B (the reference's AlignedDataset split)
            w, h = a.size
            return a.crop((0, 0, w // 2, h)), a.crop((w // 2, 0, w, h))
        try:
            return a, _decode_canonical(fb)
        except DecodeError:
            self._note_skip(fb)
            raise

    def __getitem__(self, index: int) -> dict:
        index = self._check_index(index)
        params = self._draw(self._generator(index))
        n = len(self)
        for step in range(n):
            i = (index + step) % n  # a corrupt pair is replaced by the next readable one
            if i in self._bad:
                continue
            try:
                a, b = self._decode_pair(i)
            except DecodeError:
                self._bad.add(i)
                continue
            ta = self._finish(a, self.channels_a, params)
            tb = self._finish(b, self.channels_b, params)
            path = self.pairs[i][1] if self.direction == "BtoA" and self.pairs[i][1] is not None else self.pairs[i][0]
            if self.direction == "BtoA":
                ta, tb = tb, ta
            return {"A": ta, "B": tb, "path": str(path)}
        raise GanforgeError(f"no readable image pairs under {self.root} ({self.skipped} files skipped)")

    def __repr__(self) -> str:
        return (
            f"<PairedDataset {self.root} [{self.split}, {self.layout}]: {len(self)} pairs, "
            f"{self.in_channels}->{self.out_channels} channels, {len(self.unpaired)} unpaired, {self.skipped} skipped>"
        )


class UnpairedDataset(_TranslationDataset):
    """Two unaligned domains from `<split>A/` and `<split>B/` as {"A", "B", "path_A", "path_B"}."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        image_size: int = 256,
        load_size: int = 286,
        flip: bool = True,
        seed: int = 0,
        serial: bool = False,
        channels: Channels = None,
    ):
        super().__init__(image_size, load_size, load_size != image_size, flip, seed)
        self.root, self.split, self.serial = Path(root), split, serial
        if not self.root.is_dir():
            raise GanforgeError(f"dataset folder {self.root} does not exist")
        self.files_a, native_a = self._domain(self.root / f"{split}A")
        self.files_b, native_b = self._domain(self.root / f"{split}B")
        self.channels_a, self.channels_b = _resolve_channels(channels, native_a, native_b, str(self.root))
        self._bad: set[Path] = set()

    def _domain(self, folder: Path) -> tuple[list[Path], int]:
        if not folder.is_dir():
            raise GanforgeError(f"missing domain folder {folder}")
        kept, natives = [], []
        for f in _nonempty(folder):
            try:
                natives.append(_header_channels(f))
                kept.append(f)
            except (DecodeError, GanforgeError, OSError):
                self._note_skip(f)
        if not kept:
            raise GanforgeError(f"no readable images in {folder}")
        return kept, 3 if 3 in natives else 1

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _load(self, files: list[Path], start: int) -> tuple[Image.Image, Path]:
        """Decode files[start], or the next readable file of that domain."""
        for step in range(len(files)):
            f = files[(start + step) % len(files)]
            if f in self._bad:
                continue
            try:
                return _decode_canonical(f), f
            except DecodeError:
                self._bad.add(f)
                self._note_skip(f)
        raise GanforgeError(f"no readable images left in {files[0].parent} ({self.skipped} files skipped)")

    def __getitem__(self, index: int) -> dict:
        index = self._check_index(index)
        g = self._generator(index)
        ia = index % len(self.files_a)
        # As the reference's unaligned dataset: B is a random partner unless serial.
        ib = index % len(self.files_b) if self.serial else int(torch.randint(len(self.files_b), (), generator=g))
        pa, pb = self._draw(g), self._draw(g)
        a, fa = self._load(self.files_a, ia)
        b, fb = self._load(self.files_b, ib)
        return {
            "A": self._finish(a, self.channels_a, pa),
            "B": self._finish(b, self.channels_b, pb),
            "path_A": str(fa),
            "path_B": str(fb),
        }

    def __repr__(self) -> str:
        return (
            f"<UnpairedDataset {self.root} [{self.split}]: {len(self.files_a)} A, {len(self.files_b)} B, "
            f"{self.skipped} skipped>"
        )
