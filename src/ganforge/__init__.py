"""ganforge: train, evaluate, sample, translate, upscale, edit and serve classic GANs."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "edit", "interpolate", "learn_direction", "list_models", "list_recipes", "load",
           "project", "sample", "style_mix_grid", "train"]


def __getattr__(name: str) -> Any:
    """The public API, imported on first use (PEP 562)."""
    # Importing it pulls in torch (seconds): `ganforge.cli` starts without it, so that bad arguments and
    # Ctrl-C during start-up meet the command's own error handling rather than end in a traceback.
    if name in __all__:
        from . import api

        value = getattr(api, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Names of the module, the lazily imported API included."""
    return sorted(set(globals()) | set(__all__))
