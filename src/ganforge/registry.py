"""Name -> factory registries for models (networks) and recipes (training games)."""
from __future__ import annotations

import inspect
import math
import types
import typing
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


_SCALARS = {"bool": bool, "int": int, "float": float, "str": str, "tuple": tuple, "Tuple": tuple, "Sequence": tuple,
            "list": list, "List": list}
_CHECKED = (bool, int, float, str, tuple, list)
_NOT_CONVERTED = object()


def _accepted_types(hint: Any, default: Any) -> tuple[list[type], bool]:
    """The types an argument takes (bool, int, float, str, tuple, list; [] = unchecked) and whether None is allowed."""
    if hint is inspect.Parameter.empty or hint is None:
        kind = type(default)
        return ([kind] if kind in _CHECKED else []), default is None
    if isinstance(hint, str):  # an annotation get_type_hints could not evaluate: read its text
        parts = [p.strip() for p in hint.replace("Optional[", "").rstrip("]").split("|")]
        nullable = "None" in parts or hint.startswith("Optional[")
        kinds = [_SCALARS.get(p.split("[")[0]) for p in parts if p != "None"]
        return ([] if None in kinds else list(dict.fromkeys(kinds))), nullable or default is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        kinds, nullable = [], type(None) in args
        for a in args:
            if a is not type(None):
                sub, _ = _accepted_types(a, None)
                if not sub:
                    return [], True  # a part we do not check: leave the whole argument to the factory
                kinds += sub
        return list(dict.fromkeys(kinds)), nullable or default is None
    if origin is not None:
        hint = origin
    kind = _SCALARS.get(getattr(hint, "__name__", ""))
    return ([kind] if kind in _CHECKED else []), default is None


def _convert(value: Any, kind: type) -> Any:
    """value as `kind`, or ValueError; the same rules as config values (no bool for numbers, 2.0 is 2)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if isinstance(value, bool) or (isinstance(value, (list, tuple, dict)) and kind not in (tuple, list)):
        raise ValueError
    if kind is int:
        f = float(value)
        if not math.isfinite(f) or f != int(f):
            raise ValueError
        return int(f)
    if kind is float:
        return float(value)
    if kind is str:
        if isinstance(value, (str, int, float)):
            return str(value)
        raise ValueError
    if kind in (tuple, list):
        if isinstance(value, (list, tuple)):
            return kind(value)
        raise ValueError
    raise ValueError


def check_model_arguments(name: str, args: dict[str, Any], where: str = "model.") -> dict[str, Any]:
    """args of model `name` converted to the types of its factory's arguments; a bad value is a GanforgeError.

    A count or size (an int argument whose default is positive) must be >= 1, one whose default is 0 (or
    None) must be >= 0: such values would otherwise fail deep inside the network's construction.
    """
    factory = model_factory(name)
    params = inspect.signature(factory).parameters
    try:
        hints = typing.get_type_hints(factory)
    except Exception:  # an annotation naming something not importable here: read the text instead
        hints = {}
    out = {}
    for key, value in args.items():
        p = params.get(key)
        if p is None:
            out[key] = value  # unknown names are refused by the callers with the list of known ones
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        kinds, nullable = _accepted_types(hints.get(key, p.annotation), default)
        if value is None:
            if nullable or not kinds:
                out[key] = None
                continue
            raise GanforgeError(f"{where}{key} must not be null")
        if not kinds or type(value) in kinds:
            converted = value
        else:
            converted = _NOT_CONVERTED
            for kind in kinds:
                try:
                    converted = _convert(value, kind)
                    break
                except (TypeError, ValueError, OverflowError):
                    continue
            if converted is _NOT_CONVERTED:
                expected = " or ".join(k.__name__ for k in kinds)
                raise GanforgeError(f"{where}{key}={value!r} has the wrong type (expected {expected})")
        least = _least_int(default) if type(converted) is int and int in kinds else None
        if least is not None and converted < least:
            raise GanforgeError(f"{where}{key} must be >= {least}, got {converted}")
        out[key] = converted
    return out


def _least_int(default: Any) -> int | None:
    """The smallest sensible value of an int argument, judged by its default (None: no bound)."""
    if default is None:
        return 0
    if isinstance(default, bool) or not isinstance(default, int):
        return None
    return 1 if default > 0 else 0 if default == 0 else None


def create_model(name: str, **overrides: Any):
    """Build the networks of model `name`; unknown arguments and values of the wrong type are an error."""
    factory = model_factory(name)
    allowed = factory_arguments(name)
    bad = sorted(set(overrides) - set(allowed))
    if bad:
        raise GanforgeError(
            f"unknown argument(s) {', '.join(bad)} for model {name!r} (known: {', '.join(allowed)})"
        )
    return factory(**check_model_arguments(name, overrides, where=""))


def _ensure_loaded() -> None:
    # Importing the packages runs their @register_* decorators.
    from . import models, recipes  # noqa: F401
