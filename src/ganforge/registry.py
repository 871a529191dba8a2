"""Name -> factory registries for models (networks) and recipes (training games)."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .errors import GanforgeError

_MODELS: dict[str, Callable[..., Any]] = {}
_RECIPES: dict[str, type] = {}


def registrar(table: dict, kind: str, name: str):
    """A decorator that stores its target in `table` under `name`; a duplicate name is an error."""
    def deco(obj):
        if name in table:
            raise ValueError(f"{kind} {name!r} is already registered")
        table[name] = obj
        return obj

    return deco


def register_model(name: str):
    """Decorator: register a model factory (returning a GANModels) under `name`."""
    return registrar(_MODELS, "model", name)


def register_recipe(name: str):
    """Decorator: register a Recipe class under `name`."""
    return registrar(_RECIPES, "recipe", name)


def _lookup(table: dict, kind: str, name: str):
    _ensure_loaded()
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise GanforgeError(f"unknown {kind} {name!r} (known: {known})")
    return table[name]


def model_factory(name: str) -> Callable[..., Any]:
    """The registered factory for model `name`."""
    return _lookup(_MODELS, "model", name)


def recipe_class(name: str) -> type:
    """The registered Recipe class for `name`."""
    return _lookup(_RECIPES, "recipe", name)


def model_names() -> list[str]:
    """Sorted names of registered models."""
    _ensure_loaded()
    return sorted(_MODELS)


def recipe_names() -> list[str]:
    """Sorted names of registered recipes."""
    _ensure_loaded()
    return sorted(_RECIPES)


def factory_arguments(name: str) -> dict[str, Any]:
    """The keyword arguments of model `name`'s factory with their defaults."""
    sig = inspect.signature(model_factory(name))
    return {
        k: (None if p.default is inspect.Parameter.empty else p.default)
        for k, p in sig.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def create_model(name: str, **overrides: Any):
    """Build the networks of model `name`; unknown arguments are an error."""
    factory = model_factory(name)
    allowed = factory_arguments(name)
    bad = sorted(set(overrides) - set(allowed))
    if bad:
        raise GanforgeError(
            f"unknown argument(s) {', '.join(bad)} for model {name!r} (known: {', '.join(allowed)})"
        )
    return factory(**overrides)


def _ensure_loaded() -> None:
    # Importing the packages runs their @register_* decorators.
    from . import models, recipes  # noqa: F401
