"""Built-in translation demo sources made from photos that ship in packages.

`demo:labels`, `demo:colorize`, `demo:edges` (paired, `translation_demo.make_pix2pix_demo`) and `demo:grass2gravel`
(unpaired, `make_cyclegan_demo`), optionally with `,key=value` options (n_train, n_test, seed; holdout for
the paired ones), e.g. `demo:colorize,n_train=64,n_test=8`. The crops are cut at the model's image_size
into $GANFORGE_CACHE/demo/ (default ~/.cache/ganforge/demo/), once: a folder named after the options is
built beside its final place and renamed into it, so concurrent runs never see half-written data.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..errors import GanforgeError
from ..utils.paths import cache_root

DEMO_PREFIX = "demo:"
# demo name -> (layout, maker keyword arguments)
DEMOS: dict[str, tuple[str, dict[str, Any]]] = {
    "labels": ("paired", {"task": "labels"}),
    "colorize": ("paired", {"task": "colorize"}),
    "edges": ("paired", {"task": "edges"}),
    "grass2gravel": ("unpaired", {}),
}
_DEMO_OPTIONS = {"paired": {"n_train": int, "n_test": int, "seed": int, "holdout": str},
                 "unpaired": {"n_train": int, "n_test": int, "seed": int}}


def parse_demo(source: str) -> tuple[str, dict[str, Any]] | None:
    """(demo name, options) for "demo:NAME[,key=value...]", None for any other source."""
    if not source.startswith(DEMO_PREFIX):
        return None
    name, *opts = source[len(DEMO_PREFIX):].split(",")
    if name not in DEMOS:
        raise GanforgeError(f"unknown demo {source!r} (known: {', '.join(DEMO_PREFIX + d for d in DEMOS)})")
    allowed = _DEMO_OPTIONS[DEMOS[name][0]]
    options: dict[str, Any] = {}
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq or key not in allowed:
            raise GanforgeError(f"bad demo option {opt!r} in {source!r} (known: {', '.join(allowed)}, as key=value)")
        try:
            options[key] = allowed[key](value)
        except ValueError:
            raise GanforgeError(f"demo option {key}={value!r} in {source!r} must be an {allowed[key].__name__}") from None
    return name, options


def demo_folder(source: str, layout: str, image_size: int, echo: Callable[[str], None] | None = None) -> Path | None:
    """The folder holding built-in demo `source` at `image_size` (made on first use); None if not a demo."""
    parsed = parse_demo(source)
    if parsed is None:
        return None
    name, options = parsed
    kind, fixed = DEMOS[name]
    if kind != layout:
        want = [DEMO_PREFIX + d for d, (k, _) in DEMOS.items() if k == layout]
        raise GanforgeError(f"{source} is {kind} data; this recipe needs {layout} data (demos: {', '.join(want)})")
    from .translation_demo import make_cyclegan_demo, make_pix2pix_demo

    maker = make_pix2pix_demo if kind == "paired" else make_cyclegan_demo
    kwargs = {**fixed, **options, "image_size": image_size}
    tag = "-".join(f"{k}{v}" for k, v in sorted(options.items()))
    root = cache_root() / "demo"
    final = root / (f"{name}-{image_size}px" + (f"-{tag}" if tag else ""))
    if _complete(final, kwargs):
        return final
    root.mkdir(parents=True, exist_ok=True)
    if echo is not None:
        echo(f"ganforge: making {source} ({image_size} px crops of bundled photos) in {final}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        maker(tmp, **kwargs)
        if final.exists() and not _complete(final, kwargs):
            shutil.rmtree(final, ignore_errors=True)  # an older, interrupted or different build of ours
        try:
            os.rename(tmp, final)
        except OSError as e:  # another process finished first: use its copy
            if not _complete(final, kwargs):
                raise GanforgeError(f"cannot place demo data in {final}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _complete(folder: Path, kwargs: dict[str, Any]) -> bool:
    """Whether `folder` holds a finished demo made with `kwargs`."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    params = manifest.get("params", {})
    return bool(manifest.get("complete")) and all(params.get(k) == v for k, v in kwargs.items())
