"""Feature extractors: the networks that embed images for FID, KID, IS and precision/recall, by name.

A factory registers with `@register_extractor("name")`; `get_extractor("name", **kw)` builds one.
Extractors whose modules are costly or optional to import (Inception, the MNIST judge, the offline
photo CNN) are listed in `_LAZY_PROVIDERS`: their module is imported on first request and registers
itself then.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from ..registry import registrar

_EXTRACTORS: dict[str, Callable[..., "FeatureExtractor"]] = {}
# name -> module that calls register_extractor(name) when imported.
_LAZY_PROVIDERS: dict[str, str] = {
    "inception": "ganforge.metrics.inception",
    "mnist-judge": "ganforge.metrics.judge_extractor",
    "ganforge-photo-v1": "ganforge.metrics.photo_extractor",
}


class FeatureExtractor(nn.Module):
    """An image embedding: `features(images in [-1,1], NCHW) -> [N, dim]`, optionally `logits` for IS."""

    name: str = ""
    dim: int = 0
    weights_sha256: str | None = None
    input_size: int | None = None
    resize_method: str = "none"
    logits_method: str | None = None  # how logits are taken, recorded with IS; None: no logits

    @property
    def has_logits(self) -> bool:
        """Whether this extractor provides class logits (needed for the Inception Score)."""
        return self.logits_method is not None

    @property
    def device(self) -> torch.device:
        """Device of the extractor's parameters (cpu when it has none)."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def features(self, images: Tensor) -> Tensor:
        """[N,C,H,W] images in [-1,1] -> [N, dim] float32 features."""
        return self.features_and_logits(images, logits=False)[0]

    def logits(self, images: Tensor) -> Tensor:
        """[N,C,H,W] images in [-1,1] -> [N, K] class logits."""
        if not self.has_logits:
            raise GanforgeError(f"feature extractor {self.name!r} has no class logits (needed for IS)")
        out = self.features_and_logits(images, logits=True)[1]
        assert out is not None
        return out

    def features_and_logits(self, images: Tensor, logits: bool = True) -> tuple[Tensor, Tensor | None]:
        """Features and (if asked and available) logits from one forward pass."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The protocol facts recorded with every result: name, dim, weights hash, resize, logits."""
        return {
            "name": self.name,
            "dim": int(self.dim),
            "weights_sha256": self.weights_sha256,
            "input_size": self.input_size,
            "resize_method": self.resize_method,
            "logits_method": self.logits_method,
        }


def check_images(images: Tensor) -> Tensor:
    """Validate an NCHW image batch and return it as float32 in [-1,1] (uint8 is mapped from [0,255])."""
    if not isinstance(images, Tensor):
        raise GanforgeError(f"expected an image tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise GanforgeError(f"expected images shaped [N,C,H,W], got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0
    if not images.is_floating_point():
        raise GanforgeError(f"expected float images in [-1,1] or uint8, got dtype {images.dtype}")
    return images.float()


def register_extractor(name: str) -> Callable:
    """Decorator: register a factory (class or function returning a FeatureExtractor) under `name`."""

    return registrar(_EXTRACTORS, "feature extractor", name)


def _resolve(name: str) -> Callable[..., FeatureExtractor]:
    if name not in _EXTRACTORS and name in _LAZY_PROVIDERS:
        module = _LAZY_PROVIDERS[name]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name is not None and module.startswith(e.name):
                raise GanforgeError(
                    f"feature extractor {name!r} comes from {module}, which is not available in this install"
                ) from None
            raise
        if name not in _EXTRACTORS:
            raise GanforgeError(f"{module} was imported but did not register feature extractor {name!r}")
    if name not in _EXTRACTORS:
        raise GanforgeError(f"unknown feature extractor {name!r} (known: {', '.join(extractor_names())})")
    return _EXTRACTORS[name]


def get_extractor(name: str, **kwargs: Any) -> FeatureExtractor:
    """Build the feature extractor registered as `name` with the given keyword arguments."""
    factory = _resolve(name)
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    bad = sorted(k for k in kwargs if k not in params) if not takes_any else []
    if bad:
        raise GanforgeError(
            f"unknown argument(s) {', '.join(bad)} for feature extractor {name!r} (known: {', '.join(params)})"
        )
    return factory(**kwargs)


def extractor_names() -> list[str]:
    """Sorted names of registered extractors and of those whose module registers them on first use."""
    return sorted(set(_EXTRACTORS) | set(_LAZY_PROVIDERS))
