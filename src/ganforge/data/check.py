"""`ganforge data check`: decode everything in a source and report what is there and what is broken."""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GanforgeError
from .dataset import MissingSplit
from .cifar import find_cifar_root, is_cifar_archive, load_cifar10
from .decode import DecodeError, Header, inspect_image
from .folder import open_store, resolve_layout
from .idx import find_idx_folder, is_idx_name, load_idx
from .sources import SPLITS, build_dataset, source_names

MAX_LISTED = 100


@dataclass
class CheckReport:
    """What `check` found: counts, sizes (W, H), modes, channels, classes, splits and corrupt files."""

    source: str
    kind: str
    count: int = 0
    sizes: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    classes: dict[str, int] | None = None
    splits: dict[str, int] = field(default_factory=dict)
    corrupt: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is at least one image and nothing is corrupt."""
        return self.count > 0 and not self.corrupt

    def format(self) -> str:
        """A human-readable multi-line report."""

        def hist(c: Counter, key=str, top: int = 5) -> str:
            items = ", ".join(f"{key(k)} x{n}" for k, n in c.most_common(top))
            more = f" (+{len(c) - top} more)" if len(c) > top else ""
            return (items or "-") + more

        lines = [
            f"{self.source} ({self.kind})",
            f"  images:   {self.count} readable, {len(self.corrupt)} corrupt",
        ]
        if self.splits:
            lines.append("  splits:   " + ", ".join(f"{k} {v}" for k, v in self.splits.items()))
        lines.append("  sizes:    " + hist(self.sizes, key=lambda wh: f"{wh[0]}x{wh[1]}"))
        lines.append("  modes:    " + hist(self.modes))
        lines.append("  channels: " + hist(self.channels))
        if self.classes:
            shown = ", ".join(f"{k} {v}" for k, v in list(self.classes.items())[:20])
            more = f" (+{len(self.classes) - 20} more)" if len(self.classes) > 20 else ""
            lines.append(f"  classes ({len(self.classes)}): {shown}{more}")
        else:
            lines.append("  classes:  none (unlabeled)")
        if self.corrupt:
            lines.append("  corrupt:")
            lines += [f"    {f}: {why}" for f, why in self.corrupt[:MAX_LISTED]]
            if len(self.corrupt) > MAX_LISTED:
                lines.append(f"    ... and {len(self.corrupt) - MAX_LISTED} more")
        lines.append("  result:   " + ("OK" if self.ok else "PROBLEMS FOUND"))
        return "\n".join(lines)


def _check_collection(path: str, kind: str) -> CheckReport:
    store = open_store(path)
    files = store.image_files()
    if not files:
        raise GanforgeError(f"no images found in {path}")
    report = CheckReport(path, kind)

    def one(rel: str) -> tuple[str, Header | None, str]:
        try:
            with store.open(rel) as fp:
                return rel, inspect_image(fp), ""
        except (DecodeError, OSError) as exc:
            return rel, None, str(exc)

    good: set[str] = set()
    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        for rel, header, reason in pool.map(one, files):
            if header is None:
                report.corrupt.append((store.display(rel), reason))
                continue
            good.add(rel)
            report.count += 1
            report.sizes[(header.width, header.height)] += 1
            report.modes[header.mode] += 1
            report.channels[header.channels] += 1
    classes: Counter = Counter()
    labeled = False
    for split in SPLITS:
        try:
            layout = resolve_layout(files, split, store.label + "/")
        except MissingSplit:
            continue  # e.g. no test split
        kept = [(f, y) for f, y in zip(layout.files, layout.labels) if f in good]
        report.splits[split] = len(kept)
        if layout.class_names:
            labeled = True
            for _, y in kept:
                classes[layout.class_names[y]] += 1
    report.classes = dict(sorted(classes.items())) if labeled else None
    return report


def _check_arrays(source: str, kind: str, load) -> CheckReport:
    """Report on an in-memory source given `load(split) -> (images NCHW, labels, class_names)`."""
    report = CheckReport(source, kind)
    classes: Counter = Counter()
    labeled = False
    for split in SPLITS:
        try:
            images, labels, names = load(split)
        except MissingSplit:
            continue  # that split simply is not there
        except GanforgeError as exc:
            report.corrupt.append((f"{source} [{split}]", str(exc)))
            continue
        n, c, h, w = images.shape
        report.count += n
        report.splits[split] = n
        report.sizes[(w, h)] += n
        report.modes["L" if c == 1 else "RGB"] += n
        report.channels[c] += n
        if labels is not None:
            labeled = True
            names = names or [str(i) for i in range(int(labels.max()) + 1)]
            for k, v in zip(*np.unique(labels, return_counts=True)):
                classes[names[int(k)]] += int(v)
    report.classes = dict(classes) if labeled else None
    return report


def check(path: str) -> CheckReport:
    """Decode every image of a source (folder, .zip, IDX, CIFAR-10 or built-in name) and report."""
    if path in source_names():
        def load(split: str):
            ds = build_dataset(path, split=split)
            return ds.raw.numpy(), ds.labels.numpy(), ds.class_names
        return _check_arrays(path, "built-in", load)
    p = Path(path).expanduser()
    if not p.exists():
        raise GanforgeError(f"no such path: {path}")
    if p.is_dir():
        if find_cifar_root(p) is not None:
            return _check_arrays(path, "cifar10", lambda s: load_cifar10(p, s))
        if find_idx_folder(p):
            return _check_arrays(path, "idx", lambda s: (*load_idx(p, s), None))
        return _check_collection(str(p), "folder")
    if is_idx_name(p.name):
        return _check_arrays(path, "idx", lambda s: (*load_idx(p.parent, s), None))
    if is_cifar_archive(p):
        return _check_arrays(path, "cifar10", lambda s: load_cifar10(p, s))
    return _check_collection(str(p), "zip")
