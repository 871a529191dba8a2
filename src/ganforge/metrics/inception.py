"""The `inception` feature extractor: FID Inception pool3 features (2048-d) and 1008-way logits.

Protocol, matching pytorch-fid: images in [-1,1] are resized to 299x299 by bilinear interpolation
(`F.interpolate`, align_corners=False, no antialiasing) and fed as-is (the network expects [-1,1]);
one-channel images are repeated to three. Logits for the Inception Score are `pool3 @ fc.weight.T`
without the fc bias, as in Salimans et al.'s original code and torch-fidelity's default.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import GanforgeError
from .extractor import FeatureExtractor, check_images, register_extractor
from .inception_net import FEATURE_DIM, FIDInceptionV3
from .inception_weights import INCEPTION_SHA256, resolve_inception_weights, verify_sha256

INPUT_SIZE = 299
RESIZE_METHOD = "bilinear-299 (pytorch-fid)"


def load_inception_state(path: str | os.PathLike, expected_sha256: str = INCEPTION_SHA256) -> tuple[dict, str]:
    """Check the file's SHA-256 against the pin, then load its state dict without pickle code execution."""
    actual = verify_sha256(path, expected_sha256)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a hash-matching file that fails to load means a broken torch, say which
        raise GanforgeError(f"could not load Inception weights {path}: {e}") from None
    if not isinstance(state, dict):
        raise GanforgeError(f"Inception weights {path} are not a state dict")
    return state, actual


@register_extractor("inception")
class InceptionExtractor(FeatureExtractor):
    """FID Inception-v3 (TF 2015-12-05 graph, pytorch-fid port): 2048-d pool3 features, 1008 logits."""

    name = "inception"
    dim = FEATURE_DIM
    input_size = INPUT_SIZE
    resize_method = RESIZE_METHOD

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        expected_sha256: str = INCEPTION_SHA256,
        logits_bias: bool = False,
    ) -> None:
        super().__init__()
        path = resolve_inception_weights(weights)
        state, self.weights_sha256 = load_inception_state(path, expected_sha256)
        self.net = FIDInceptionV3()
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
            raise GanforgeError(f"Inception weights {path} do not fit the FID Inception network: {first}") from None
        self.logits_bias = logits_bias
        self.net.requires_grad_(False)
        self.eval()
        if device is not None:
            self.to(device)

    @property
    def logits_method(self) -> str:
        """How the IS logits are taken (recorded with results)."""
        return "fc with bias" if self.logits_bias else "fc without bias (Salimans et al. 2016, torch-fidelity)"

    def train(self, mode: bool = True) -> "InceptionExtractor":
        # Batch norm must use the stored statistics; training mode would silently change features.
        return super().train(False)

    def prepare(self, images: Tensor) -> Tensor:
        """[N,1|3,H,W] in [-1,1] -> [N,3,299,299] network input on the extractor's device."""
        # Move before converting: uint8 batches then cross to the GPU at a quarter of the size.
        x = check_images(images.to(self.device) if isinstance(images, Tensor) else images)
        if x.shape[1] not in (1, 3):
            raise GanforgeError(f"Inception takes 1- or 3-channel images, got {x.shape[1]} channels")
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous()

    @torch.no_grad()
    def features_and_logits(self, images: Tensor, logits: bool = True) -> tuple[Tensor, Tensor | None]:
        """Pool3 features [N,2048] and, if asked, logits [N,1008], from one forward pass."""
        pool3 = self.net.pool3(self.prepare(images))
        out = self.net.classify(pool3, bias=self.logits_bias) if logits else None
        return pool3, out
