"""The MNIST judge: a small CNN digit classifier that scores generated digits.

It is trained by scripts/train_judge.py on the built-in training split only (4,500 digits) and its
weights ship in the package (assets/mnist_judge.safetensors, pinned by SHA-256). Besides the ten digits
it has an eleventh "not a digit" class, trained on uniform noise, smooth random blobs and digits cut
into shuffled 7x7 patches: a plain 10-way classifier calls uniform noise an "8" with probability 1.0, which would make the
"confident digits" score meaningless for a GAN that has not learned yet.

Scores divide the logits by a temperature fitted on held-out digits (scripts/calibrate_judge.py); the
features and raw logits that FID/KID/IS use are not tempered.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from ..utils.hashing import sha256_file as file_sha256

WEIGHTS_NAME = "mnist_judge.safetensors"
# SHA-256 of the shipped weights; scripts/train_judge.py prints the new value when it retrains.
WEIGHTS_SHA256 = "79d5c2f32e718b4689ccb2aaa60de3c8300899dba762ac04f0c9ecac27567832"
# Softmax temperature for scoring only (metrics/judge_score.judge_images), fitted by scripts/calibrate_judge.py
# (which prints it with the figures and rewrites both lines) on the calibration half of the held-out digits.
# It belongs to the weights named on the second line: retraining changes WEIGHTS_SHA256 and judge_temperature()
# then refuses to score until the judge is recalibrated, instead of silently tempering new weights with an old T.
JUDGE_TEMPERATURE = 1.521596
JUDGE_TEMPERATURE_WEIGHTS_SHA256 = "79d5c2f32e718b4689ccb2aaa60de3c8300899dba762ac04f0c9ecac27567832"


class MNISTJudge(nn.Module):
    """28x28 grayscale digits in [-1, 1] -> 10 class logits; `features` gives the 128-d penultimate layer."""

    feature_dim = 128
    num_digits = 10
    reject_class = 10

    def __init__(self):
        super().__init__()
        # No batch norm: batches mix digits and non-digits, and running statistics then drift from both.
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(True))
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(128, 11)  # ten digits + not-a-digit

    @staticmethod
    def prepare(x: Tensor) -> Tensor:
        """Bring images to 1x28x28: average RGB to gray, resize with bilinear antialiasing."""
        if x.shape[1] == 3:
            x = x.mean(1, keepdim=True)
        elif x.shape[1] != 1:
            raise GanforgeError(f"the MNIST judge takes 1 or 3 channels, not {x.shape[1]}")
        if x.shape[-2:] != (28, 28):
            x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
        return x

    def features(self, x: Tensor) -> Tensor:
        """128-d penultimate features."""
        return self.fc(self.conv(self.prepare(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.drop(self.features(x)))


def judge_temperature() -> float:
    """The shipped scoring temperature; an error if it was fitted for other weights than the shipped ones."""
    if JUDGE_TEMPERATURE_WEIGHTS_SHA256 != WEIGHTS_SHA256:
        raise GanforgeError(f"the MNIST judge temperature was fitted for weights {JUDGE_TEMPERATURE_WEIGHTS_SHA256[:12] or '(none)'}"
                            f", not the shipped {WEIGHTS_SHA256[:12]}; recalibrate with: python scripts/calibrate_judge.py")
    return JUDGE_TEMPERATURE


def non_digits(digits: Tensor, n: int, g: torch.Generator) -> Tensor:
    """n images that are not digits: uniform noise, smooth random blobs, `digits` cut into shuffled 7x7 patches.

    The judge's "not a digit" class was trained on these (scripts/train_judge.py); the calibration reuses
    them so the temperature is fitted on what that class means. (Two digits overlaid were tried too: they
    pushed real thick digits into "not a digit".)
    """
    kind = torch.randint(0, 3, (n,), generator=g)
    out = torch.empty(n, 1, 28, 28)
    for i in range(n):
        k = int(kind[i])
        if k == 0:
            out[i] = torch.rand(1, 28, 28, generator=g) * 2 - 1
        elif k == 1:
            r = int(torch.randint(1, 4, (1,), generator=g)) * 2 + 1
            blob = F.avg_pool2d((torch.rand(1, 1, 28, 28, generator=g) * 2 - 1), r, 1, r // 2)
            out[i] = (blob[0] * (2 + 4 * torch.rand(1, generator=g))).clamp(-1, 1)
        else:
            p = digits[int(torch.randint(0, len(digits), (1,), generator=g))].reshape(1, 4, 7, 4, 7).permute(1, 3, 0, 2, 4)
            p = p.reshape(16, 1, 7, 7)[torch.randperm(16, generator=g)]
            out[i] = p.reshape(4, 4, 1, 7, 7).permute(2, 0, 3, 1, 4).reshape(1, 28, 28)
    return out


def weights_path() -> Path:
    """Where the shipped judge weights live inside the installed package."""
    return Path(str(resources.files("ganforge") / "assets" / WEIGHTS_NAME))


def load_judge(path: str | Path | None = None, device: str | torch.device = "cpu") -> MNISTJudge:
    """The trained judge in eval mode; its weight file is checked against the pinned SHA-256."""
    from safetensors.torch import load_file

    p = Path(path) if path is not None else weights_path()
    if not p.is_file():
        raise GanforgeError(f"MNIST judge weights not found at {p}; train them with: python scripts/train_judge.py")
    if path is None:
        got = file_sha256(p)
        if got != WEIGHTS_SHA256:
            raise GanforgeError(f"MNIST judge weights {p} have SHA-256 {got}, expected {WEIGHTS_SHA256}")
    net = MNISTJudge()
    net.load_state_dict(load_file(str(p)))
    return net.to(device).eval()
