"""Where ganforge keeps its caches (standard library only: the CLI imports it before torch)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$GANFORGE_CACHE, default ~/.cache/ganforge: demo data, reference statistics, downloaded weights."""
    return Path(os.environ.get("GANFORGE_CACHE", "~/.cache/ganforge")).expanduser()


def weights_dir() -> Path:
    """Where `ganforge weights fetch` puts weight files, and where evaluation looks for them by default."""
    return cache_root() / "weights"
