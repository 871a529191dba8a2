"""VGG19 with torchvision's layout and ImageNet weights from a local file, and its feature extractor.

The weights are torchvision's `vgg19-dcbb9e9d.pth` (state-dict keys `features.N.*`, `classifier.N.*`).
Its SHA-256 is pinned by PREFIX ONLY: torch.hub names files `<name>-<first 8 hex of SHA-256>.pth` and
its `check_hash` compares just those 8 digits; torchvision publishes nothing longer, and the full
digest could not be computed here (no copy of the file, no network). A 32-bit prefix catches a wrong,
truncated or corrupt file, not a deliberately forged one. Whoever has the file can replace the pin
with `sha256sum vgg19-dcbb9e9d.pth`; every check accepts a full digest as well as a prefix.

`VGG19Features` is the SRGAN content-loss network: the layers up to a named one (default relu5_4, the
"phi_5,4" of Ledig et al. 2017: 4th convolution, after its ReLU, before the 5th max-pool), frozen,
taking images in [-1, 1]. Nothing here touches the network unless `fetch_vgg19_weights` is called.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from ..errors import GanforgeError
from ..utils.download import download_verified, verify_sha256
from ..utils.paths import weights_dir

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILENAME
VGG19_SHA256_PREFIX = "dcbb9e9d"  # all torch.hub publishes; see the module docstring
VGG19_ENV = "GANFORGE_VGG19"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's configuration "E": output channels of each 3x3 convolution, "M" a 2x2 max-pool.
VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"
)

_HOW_TO_GET = (
    f"run `ganforge weights fetch vgg19` or set {VGG19_ENV}=/path/to/{VGG19_FILENAME}, "
    "or choose another content loss (recipe.content=mse or recipe.content=l1)"
)


def _layer_indices() -> dict[str, int]:
    names: dict[str, int] = {}
    block, conv, idx = 1, 0, 0
    for v in VGG19_CFG:
        if v == "M":
            names[f"pool{block}"] = idx
            block, conv, idx = block + 1, 0, idx + 1
        else:
            conv += 1
            names[f"conv{block}_{conv}"], names[f"relu{block}_{conv}"] = idx, idx + 1
            idx += 2
    return names


LAYER_INDEX: dict[str, int] = _layer_indices()  # conv1_1 -> 0, relu1_1 -> 1, ..., relu5_4 -> 35, pool5 -> 36


def layer_index(layer: str) -> int:
    """Index in torchvision's `features` of a named layer (conv1_1..relu5_4, pool1..pool5)."""
    if layer not in LAYER_INDEX:
        raise GanforgeError(f"unknown VGG19 layer {layer!r} (known: conv1_1..conv5_4, relu1_1..relu5_4, pool1..pool5)")
    return LAYER_INDEX[layer]


def make_vgg19_layers(upto: int | None = None) -> list[nn.Module]:
    """torchvision's vgg19 `features` modules, indices 0..upto (all 37 when None)."""
    layers: list[nn.Module] = []
    in_ch = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = int(v)
        if upto is not None and len(layers) > upto:
            break
    return layers if upto is None else layers[: upto + 1]


class VGG19(nn.Module):
    """torchvision's vgg19 (no batch norm): same modules, same state-dict keys, 143,667,240 parameters."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(*make_vgg19_layers())
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """ImageNet-normalised [N,3,H,W] -> [N,num_classes] logits."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@functools.lru_cache(maxsize=1)
def vgg19_shapes() -> dict[str, tuple[int, ...]]:
    """Every parameter name of the full VGG19 and its shape (built on the meta device: no memory)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in VGG19().state_dict().items()}


class VGG19Features(nn.Module):
    """Frozen VGG19 `features` up to a named layer; takes [N,1|3,H,W] images in [-1, 1]."""

    def __init__(self, layer: str = "relu5_4") -> None:
        super().__init__()
        self.layer = layer
        self.features = nn.Sequential(*make_vgg19_layers(layer_index(layer)))
        # Not persistent: the state dict holds exactly torchvision's `features.*` keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":
        # A fixed loss network: a parent module's .train() must not change it.
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """[-1, 1] images -> [0, 1] -> ImageNet mean/std normalised -> features at `self.layer`."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise GanforgeError(f"VGG19 takes [N,1|3,H,W] images, got shape {tuple(images.shape)}")
        x = (images + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey: the same value in R, G and B
        return self.features((x - self.mean) / self.std)

    def load_vgg19_state(self, state: Mapping[str, object], source: str) -> "VGG19Features":
        """Load the needed `features.*` tensors from a (possibly full) VGG19 state dict, checking every key."""
        full, own = vgg19_shapes(), self.state_dict()
        problems = [f"{k} missing" for k in own if k not in state]
        for k, v in state.items():
            if k not in full:
                problems.append(f"unexpected key {k}")
            elif not isinstance(v, Tensor):
                problems.append(f"{k} is a {type(v).__name__}, not a tensor")
            elif tuple(v.shape) != full[k]:
                problems.append(f"{k} has shape {tuple(v.shape)}, expected {full[k]}")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise GanforgeError(
                f"VGG19 weights {source} do not fit torchvision's vgg19: {'; '.join(problems[:3])}{more}"
            )
        self.load_state_dict({k: state[k] for k in own}, strict=True)
        return self


def resolve_vgg19_weights(path: str | os.PathLike | None = None) -> Path:
    """The local VGG19 file: `path`, else $GANFORGE_VGG19, else the weights folder; error if it is not there."""
    origin = ""
    if path is None and os.environ.get(VGG19_ENV):
        path, origin = os.environ[VGG19_ENV], f" (from ${VGG19_ENV})"
    p = Path(path).expanduser() if path is not None else weights_dir() / VGG19_FILENAME
    if p.is_dir():
        p = p / VGG19_FILENAME
    if not p.is_file():
        raise GanforgeError(f"VGG19 weights not found at {p}{origin}: {_HOW_TO_GET}")
    return p


def fetch_vgg19_weights(
    to: str | os.PathLike | None = None, url: str | None = None, expected_sha256: str | None = None
) -> Path:
    """Download the VGG19 weights to `to` (folder or file; default the weights folder), verified; return the path."""
    dest = Path(to).expanduser() if to is not None else weights_dir()
    if dest.is_dir() or to is None or str(to).endswith(("/", os.sep)):
        dest = dest / VGG19_FILENAME
    return download_verified(url or VGG19_URL, dest, expected_sha256 or VGG19_SHA256_PREFIX)


def load_vgg19_state(path: str | os.PathLike, expected_sha256: str | None = None) -> dict:
    """Check the file against the pin, then load its state dict without pickle code execution."""
    verify_sha256(path, expected_sha256 or VGG19_SHA256_PREFIX)  # the global is read now: tests may repin
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a hash-matching file that fails to load means a broken torch: say which
        raise GanforgeError(f"could not load VGG19 weights {path}: {e}") from None
    if not isinstance(state, dict):
        raise GanforgeError(f"VGG19 weights {path} are not a state dict")
    return state


@functools.lru_cache(maxsize=4)
def _cached_features(path: str, layer: str, device: str, pin: str) -> VGG19Features:
    net = VGG19Features(layer).load_vgg19_state(load_vgg19_state(path, pin), path)
    return net.to(device)


def load_vgg19_features(
    layer: str = "relu5_4", weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> VGG19Features:
    """Frozen VGG19 features up to `layer`, pinned ImageNet weights; one shared instance per (file, layer, device)."""
    layer_index(layer)  # an unknown layer is reported before any file is read
    path = resolve_vgg19_weights(weights).resolve()
    # Cached because the file is 548 MB: a run asks once per step but should read and hash it once.
    # The instance is shared, so callers must not move or modify it; ask for another device instead.
    return _cached_features(str(path), layer, str(torch.device(device)), VGG19_SHA256_PREFIX)


clear_vgg19_cache = _cached_features.cache_clear
