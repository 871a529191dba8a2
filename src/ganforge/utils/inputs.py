"""The image files a command reads (`translate`, `upscale`) and where under --out each one is written."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..data.decode import IMAGE_EXTENSIONS
from ..errors import GanforgeError


def collect_inputs(inputs: list[str], out: Path, rename: Callable[[Path], Path],
                   verb: str) -> list[tuple[Path, Path]]:
    """(image file, output path relative to `out`) for every input file and every image under input folders.

    Files inside a folder keep their subfolders; `rename` gives the output name of an input's relative path.
    Hidden files and folders are skipped. One clear error for a missing input, no images, two inputs that
    would be written to the same file, or an input that its own output would overwrite."""
    found: list[tuple[Path, Path]] = []
    out_abs = out.resolve()
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            # An --out folder inside this one holds a previous run's outputs: not inputs. (--out equal to it
            # is refused below when a file would overwrite itself.)
            nested = out_abs != p.resolve() and out_abs.is_relative_to(p.resolve())
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith(".") for part in f.relative_to(p).parts)
                           and not (nested and f.resolve().is_relative_to(out_abs)))
            found += [(f, rename(f.relative_to(p))) for f in files]
        elif p.is_file():
            found.append((p, rename(Path(p.name))))
        else:
            raise GanforgeError(f"no such input: {p}")
    if not found:
        raise GanforgeError(f"no images in {', '.join(inputs)} (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    seen: dict[Path, Path] = {}
    for src, rel in found:
        if rel in seen:
            raise GanforgeError(f"{seen[rel]} and {src} would both be written to {rel}; {verb} them separately")
        if (out / rel).resolve() == src.resolve():
            raise GanforgeError(f"{src} would be overwritten by its own {verb}d copy; choose another --out")
        seen[rel] = src
    return found
