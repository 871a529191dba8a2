"""The `ganforge-photo-v1` feature extractor: an offline stand-in for Inception on small colour images.

What it is: a 6-layer CNN (110k parameters; assets/ganforge_photo_v1.safetensors, 225 KB of float16,
pinned by SHA-256) trained by scripts/train_photo_extractor.py, on one CPU thread in about 8 minutes,
on two tasks at once: which of 18 photos bundled with scikit-image and scikit-learn (PHOTOS:
10 colour photos, 8 grey photos and textures) a random crop comes from, and which defect (DEFECTS:
none, noise, blur, colour cast, desaturation, 2x blockiness) it carries, so that the features respond
to the flaws of generated images rather than learning to ignore them. Crops come from the left 75 % of
each photo only (the right 25 % is held out, as in the translation demos: 90 % of held-out crops are
told apart), at 32 to 160 source pixels, shown at 32 or 64 px, randomly mirrored; there is no colour,
grey or rotation augmentation. Features: the mean and standard deviation over all positions of each of
the last block's 64 channels (128-d): colour and texture statistics of 43-pixel windows 8 pixels apart.
Any input is brought to 3x64x64 (grey repeated, bilinear resize with antialiasing).

What it is not: Inception. Its numbers are on another scale, it has seen 18 photos rather than a
million, it does not notice an image turned upside down, and it has not been checked against human
judgement. FID/KID with it are comparable only with other `ganforge-photo-v1` numbers (every record
names the protocol and the weights hash), never with published FIDs. It has no class logits: an
Inception Score over 18 photo classes would mean nothing.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from ..utils.hashing import sha256_file
from .extractor import FeatureExtractor, check_images, register_extractor

PROTOCOL = "ganforge-photo-v1"
WEIGHTS_NAME = "ganforge_photo_v1.safetensors"
# SHA-256 of the shipped weights; scripts/train_photo_extractor.py prints the new value when it retrains.
WEIGHTS_SHA256 = "fda9d12a6320ab449e89dca128dc116c192a569a6c019106d8960e62929e5bf3"
INPUT_SIZE = 64
RESIZE_METHOD = "bilinear-antialias-64 (1 channel repeated to 3)"
# The training classes, in the order of the head's outputs: skimage.data names (motorcycle: the left view
# of stereo_motorcycle) and scikit-learn's sample images china and flower.
PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "motorcycle", "immunohistochemistry", "hubble_deep_field",
    "retina", "china", "flower",  # colour
    "brick", "grass", "gravel", "camera", "moon", "coins", "cell", "page",  # grey
)
# The second training task: which defect, if any, a crop carries (scripts/train_photo_extractor.py).
DEFECTS = ("none", "noise", "blur", "colour-cast", "desaturated", "blocky")


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class PhotoNet(nn.Module):
    """3x64x64 images in [-1, 1] -> (18 photo logits, 6 defect logits); `features`: the 128-d statistics."""

    feature_dim = 128

    def __init__(self, num_classes: int = len(PHOTOS), num_defects: int = len(DEFECTS)):
        super().__init__()
        self.conv = nn.Sequential(
            *_block(3, 24, 2), *_block(24, 32, 1),  # 32x32
            *_block(32, 48, 2), *_block(48, 48, 1),  # 16x16
            *_block(48, 64, 2), *_block(64, 64, 1),  # 8x8
        )
        self.head = nn.Linear(self.feature_dim, num_classes)
        self.defect_head = nn.Linear(self.feature_dim, num_defects)

    @staticmethod
    def prepare(x: Tensor) -> Tensor:
        """Bring images to 3x64x64: grey repeated to RGB, resized with bilinear antialiasing."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise GanforgeError(f"{PROTOCOL} takes 1- or 3-channel images, got {x.shape[1]} channels")
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
        return x.contiguous()

    def features(self, x: Tensor) -> Tensor:
        """128-d features: mean and standard deviation of each of the last block's 64 channels."""
        h = self.conv(self.prepare(x)).flatten(2)
        # std, not just the mean: texture lives in the spread of responses, which average pooling drops.
        return torch.cat([h.mean(2), (h.var(2, unbiased=False) + 1e-6).sqrt()], 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return self.head(f), self.defect_head(f)


def weights_path() -> Path:
    """Where the shipped weights live inside the installed package."""
    return Path(str(resources.files("ganforge") / "assets" / WEIGHTS_NAME))


def load_photo_net(path: str | Path | None = None, expected_sha256: str | None = WEIGHTS_SHA256) -> PhotoNet:
    """The trained network in eval mode; the file must match `expected_sha256` (None: no check)."""
    from safetensors.torch import load_file

    p = Path(path) if path is not None else weights_path()
    if not p.is_file():
        raise GanforgeError(f"{PROTOCOL} weights not found at {p}; train them with: "
                            f"python scripts/train_photo_extractor.py")
    if expected_sha256 is not None:
        got = sha256_file(p)
        if got != expected_sha256:
            raise GanforgeError(f"{PROTOCOL} weights {p} have SHA-256 {got}, expected {expected_sha256} "
                                f"(a changed or corrupt file; reinstall ganforge)")
    net = PhotoNet()
    net.load_state_dict(load_file(str(p)))
    return net.eval()


@register_extractor(PROTOCOL)
class PhotoExtractor(FeatureExtractor):
    """ganforge-photo-v1: images -> 3x64x64 (antialiased bilinear) -> 128-d photo-CNN statistics, no logits."""

    name = PROTOCOL
    dim = PhotoNet.feature_dim
    input_size = INPUT_SIZE
    resize_method = RESIZE_METHOD
    logits_method = None
    weights_sha256 = WEIGHTS_SHA256

    def __init__(self, device: str | torch.device | None = None):
        super().__init__()
        self.net = load_photo_net()
        self.net.requires_grad_(False)
        if device is not None:
            self.to(device)

    def train(self, mode: bool = True) -> "PhotoExtractor":
        return super().train(False)  # always the stored batch-norm statistics: features never depend on the batch

    @torch.no_grad()
    def features_and_logits(self, images: Tensor, logits: bool = True) -> tuple[Tensor, Tensor | None]:
        """128-d features; never logits (this extractor has none)."""
        x = check_images(images.to(self.device) if isinstance(images, Tensor) else images)
        return self.net.features(x).float(), None
