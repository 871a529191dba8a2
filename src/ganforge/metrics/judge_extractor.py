"""The `mnist-judge` feature extractor: the shipped MNIST classifier's 128-d penultimate features and
its 10 class logits, for FID/KID/precision-recall/IS on digit data (where Inception features are a poor
fit and no download is needed). Numbers are comparable only with other mnist-judge numbers."""
from __future__ import annotations

import torch
from torch import Tensor

from ..models.judge import WEIGHTS_SHA256, load_judge
from .extractor import FeatureExtractor, check_images, register_extractor


@register_extractor("mnist-judge")
class JudgeExtractor(FeatureExtractor):
    """MNIST judge: images -> 1x28x28 (gray average, antialiased bilinear) -> 128-d features, 10 logits."""

    name = "mnist-judge"
    dim = 128
    input_size = 28
    resize_method = "gray-mean, bilinear-antialias-28"
    logits_method = "judge head, 10 digit classes (not-a-digit logit dropped)"
    weights_sha256 = WEIGHTS_SHA256

    def __init__(self, device: str | torch.device | None = None):
        super().__init__()
        self.net = load_judge()
        self.net.requires_grad_(False)
        if device is not None:
            self.to(device)

    def train(self, mode: bool = True) -> "JudgeExtractor":
        return super().train(False)  # always the stored batch-norm statistics

    @torch.no_grad()
    def features_and_logits(self, images: Tensor, logits: bool = True) -> tuple[Tensor, Tensor | None]:
        """Features and (if asked) class logits from one forward pass."""
        x = check_images(images).to(self.device)
        f = self.net.features(x)
        return f.float(), (self.net.head(f)[:, :10].float() if logits else None)
