"""Scoring generated digits with the MNIST judge: confident share, class histogram, class accuracy."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..models.judge import load_judge


@dataclass
class JudgeScore:
    """How the judge sees a set of generated digits."""

    n: int
    confident: float  # share classified as one digit with probability >= threshold
    threshold: float
    histogram: list[int]  # argmax class counts
    max_class_share: float
    classes_present: int  # classes predicted for at least one sample
    class_accuracy: float | None = None  # conditional models: share classified as the requested class
    mean_confidence: float = 0.0
    not_digit: float = 0.0  # share the judge calls "not a digit" (its eleventh class)
    extra: dict = field(default_factory=dict)

    def format(self) -> str:
        """Human-readable lines."""
        lines = [
            f"samples: {self.n}",
            f"confident (p >= {self.threshold}): {self.confident:.1%}  mean max-probability: {self.mean_confidence:.3f}"
            f"  not a digit: {self.not_digit:.1%}",
            f"class histogram: {self.histogram}  (classes present: {self.classes_present}/10, largest share {self.max_class_share:.1%})",
        ]
        if self.class_accuracy is not None:
            lines.append(f"classified as the requested class: {self.class_accuracy:.1%}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return {k: v for k, v in self.__dict__.items() if k != "extra"} | self.extra


@torch.no_grad()
def judge_images(images: Tensor, requested: Tensor | None = None, threshold: float = 0.9,
                 batch_size: int = 500) -> JudgeScore:
    """Score images in [-1, 1] ([N,1|3,H,W]); `requested` labels give the conditional accuracy."""
    judge = load_judge()
    probs = torch.cat([judge(images[i:i + batch_size].float()).softmax(1) for i in range(0, len(images), batch_size)])
    not_digit = float((probs.argmax(1) == judge.reject_class).float().mean())
    conf, pred = probs[:, :judge.num_digits].max(1)  # a digit's probability, out of all eleven classes
    hist = torch.bincount(pred, minlength=10)
    acc = float((pred == requested.cpu()).float().mean()) if requested is not None else None
    return JudgeScore(n=len(images), confident=float((conf >= threshold).float().mean()), threshold=threshold,
                      histogram=hist.tolist(), max_class_share=float(hist.max()) / len(images),
                      classes_present=int((hist > 0).sum()), class_accuracy=acc, mean_confidence=float(conf.mean()),
                      not_digit=not_digit)
