"""Inception Score: closed-form cases and an independent per-split KL computation."""
import numpy as np
import pytest
import scipy.special
import scipy.stats

from ganforge.errors import GanforgeError
from ganforge.metrics import inception_score


def reference_is(logits, splits):
    p = scipy.special.softmax(logits, axis=1)
    n = len(p)
    scores = []
    for i in range(splits):  # split boundaries as in Salimans et al.'s code: i*n//splits
        chunk = p[i * n // splits:(i + 1) * n // splits]
        py = chunk.mean(axis=0)
        scores.append(np.exp(np.mean([scipy.stats.entropy(row, py) for row in chunk])))
    return np.mean(scores), np.std(scores)


def test_uniform_confident_predictions_score_number_of_classes():
    k, n = 10, 200
    probs = np.eye(k)[np.arange(n) % k]  # each split holds every class equally often
    out = inception_score(probs, splits=10, from_logits=False)
    assert out["is_mean"] == pytest.approx(10.0, rel=1e-12)
    assert out["is_std"] == pytest.approx(0.0, abs=1e-12)
    from_logits = inception_score(50.0 * probs, splits=5)  # near one-hot softmax
    assert from_logits["is_mean"] == pytest.approx(10.0, rel=1e-9)


def test_one_class_or_uniform_predictions_score_one():
    one_class = np.tile(np.eye(5)[2], (40, 1))
    assert inception_score(one_class, splits=4, from_logits=False)["is_mean"] == pytest.approx(1.0)
    assert inception_score(np.zeros((40, 7)), splits=4)["is_mean"] == pytest.approx(1.0)


def test_matches_independent_implementation():
    logits = np.random.default_rng(0).normal(size=(103, 12)) * 3
    mean, std = reference_is(logits, splits=10)
    out = inception_score(logits, splits=10)
    assert out["is_mean"] == pytest.approx(mean, rel=1e-10)
    assert out["is_std"] == pytest.approx(std, rel=1e-8)


def test_shuffle_only_reorders():
    logits = np.random.default_rng(1).normal(size=(50, 6))
    # With one split the order cannot matter.
    assert inception_score(logits, splits=1, seed=3)["is_mean"] == pytest.approx(
        inception_score(logits, splits=1)["is_mean"], rel=1e-12
    )
    assert inception_score(logits, splits=5, seed=3) == inception_score(logits, splits=5, seed=3)


def test_seed_really_shuffles_before_splitting():
    # Sorted by class, every consecutive split holds one class: each split scores exactly 1.
    k, per = 5, 40
    probs = np.eye(k)[np.repeat(np.arange(k), per)]
    assert inception_score(probs, splits=k, from_logits=False)["is_mean"] == pytest.approx(1.0)
    # A seeded shuffle mixes the classes into every split, so the score approaches k.
    shuffled = inception_score(probs, splits=k, from_logits=False, seed=0)
    assert shuffled["is_mean"] > 0.8 * k
    # ... and it is a permutation: some ordering of the same rows gives exactly that score.
    order = np.argsort(np.random.default_rng(7).random(len(probs)))
    assert inception_score(probs[order], splits=k, from_logits=False)["is_mean"] > 0.8 * k
    assert inception_score(probs, splits=k, from_logits=False, seed=1) != shuffled  # the seed matters


def test_bad_inputs():
    with pytest.raises(GanforgeError, match="per split"):
        inception_score(np.zeros((5, 3)), splits=10)
    with pytest.raises(GanforgeError, match="sum to 1"):
        inception_score(np.full((10, 3), 0.5), splits=2, from_logits=False)
