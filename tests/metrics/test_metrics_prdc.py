"""Precision/recall and density/coverage against brute-force k-NN with scipy distances."""
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from ganforge.errors import GanforgeError
from ganforge.metrics import density_coverage, prdc, precision_recall
from ganforge.metrics.prdc import knn_radii


def brute_radius(x, k):
    d = cdist(x, x)
    return np.array([np.sort(np.delete(d[i], i))[k - 1] for i in range(len(x))])


def brute_prdc(real, fake, k_pr, k_dc):
    d = cdist(real, fake)  # [real, fake]
    r_real_pr, r_real_dc, r_fake = brute_radius(real, k_pr), brute_radius(real, k_dc), brute_radius(fake, k_pr)
    precision = np.mean([any(d[i, j] <= r_real_pr[i] for i in range(len(real))) for j in range(len(fake))])
    recall = np.mean([any(d[i, j] <= r_fake[j] for j in range(len(fake))) for i in range(len(real))])
    density = sum(d[i, j] < r_real_dc[i] for i in range(len(real)) for j in range(len(fake))) / (k_dc * len(fake))
    coverage = np.mean([d[i].min() < r_real_dc[i] for i in range(len(real))])
    return dict(precision=precision, recall=recall, density=density, coverage=coverage)


@pytest.mark.parametrize("block_size", [7, 1024])
def test_matches_brute_force(block_size):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 5))
    fake = rng.normal(size=(50, 5)) * 1.4 + 0.5
    got = prdc(real, fake, k_pr=3, k_dc=5, block_size=block_size)
    want = brute_prdc(real, fake, 3, 5)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1  # a non-trivial case


def test_wrappers_use_their_k():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 3)), rng.normal(size=(45, 3)) + 0.7
    want3, want5 = brute_prdc(real, fake, 3, 3), brute_prdc(real, fake, 5, 5)
    pr = precision_recall(real, fake)
    dc = density_coverage(real, fake)
    assert pr == pytest.approx({"precision": want3["precision"], "recall": want3["recall"]})
    assert dc == pytest.approx({"density": want5["density"], "coverage": want5["coverage"]})


def test_knn_radii_blocked_equals_full():
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(33, 4)))
    small, big = knn_radii(x, (3, 5), block_size=4), knn_radii(x, (3, 5), block_size=100)
    for k in (3, 5):
        assert torch.allclose(small[k], big[k])
        assert np.allclose(small[k].numpy(), brute_radius(x.numpy(), k))


def test_identical_and_disjoint_sets():
    x = np.random.default_rng(3).normal(size=(30, 4))
    same = prdc(x, x.copy())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(x, x + 1000.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_order_invariance():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(40, 3)), rng.normal(size=(35, 3)) + 0.3
    base = prdc(real, fake)
    assert prdc(real[rng.permutation(40)], fake[rng.permutation(35)]) == pytest.approx(base)


def test_ties_on_the_ball_boundary():
    # Integer points on a line: many distances equal a k-NN radius exactly. The papers' code counts a
    # sample on the boundary as inside for precision/recall (<=) and outside for density/coverage (<).
    real = np.array([4, 5, 6, 7, 9, 10, 17], dtype=np.float64)[:, None]
    fake = np.array([1, 3, 4, 10, 11, 12, 13, 14, 17], dtype=np.float64)[:, None]
    want = brute_prdc(real, fake, 3, 5)
    got = prdc(real, fake, k_pr=3, k_dc=5)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    # the ties are there and decide the values: strict P, non-strict D/C would give other numbers
    d = cdist(real, fake)
    r_pr, r_dc = brute_radius(real, 3), brute_radius(real, 5)
    assert got["precision"] != np.mean([(d[:, j] < r_pr).any() for j in range(len(fake))])
    assert got["density"] != (d <= r_dc[:, None]).sum() / (5 * len(fake))
    assert got["coverage"] != np.mean(d.min(1) <= r_dc)
    # recall is precision with the roles swapped, so the swapped call puts the same ties into recall
    swapped = prdc(fake, real, k_pr=3, k_dc=5)
    assert swapped["recall"] == pytest.approx(got["precision"], abs=1e-12)
    assert swapped["recall"] == pytest.approx(brute_prdc(fake, real, 3, 5)["recall"], abs=1e-12)


def test_too_few_samples():
    with pytest.raises(GanforgeError, match="at least 6"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)))
