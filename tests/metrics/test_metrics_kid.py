"""KID against an explicit double loop, unbiasedness, seeding and subset handling."""
import numpy as np
import pytest

from ganforge.errors import GanforgeError
from ganforge.metrics import kid, mmd2_unbiased


def loop_mmd2_unbiased(x, y):
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def loop_mmd2_biased(x, y):
    d = x.shape[1]
    kxx = ((x @ x.T) / d + 1) ** 3
    kyy = ((y @ y.T) / d + 1) ** 3
    kxy = ((x @ y.T) / d + 1) ** 3
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


def test_mmd2_matches_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(9, 4)) + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(loop_mmd2_unbiased(x, y), rel=1e-12)


def test_kid_single_full_subset_equals_double_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(15, 5)), rng.normal(size=(15, 5)) * 1.3
    # One subset of all samples is a permutation of the full sets; MMD is permutation invariant.
    out = kid(x, y, subsets=1, subset_size=15)
    assert out["kid_mean"] == pytest.approx(loop_mmd2_unbiased(x, y), rel=1e-12)
    assert out["kid_std"] == 0.0
    assert out["kid_subset_size"] == 15


def test_unbiased_for_identical_distributions():
    # E[MMD²_u] = 0 when both samples come from one distribution; the biased estimator is > 0.
    rng = np.random.default_rng(2)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
        unbiased.append(mmd2_unbiased(x, y))
        biased.append(loop_mmd2_biased(x, y))
    unbiased, biased = np.array(unbiased), np.array(biased)
    sem = unbiased.std() / np.sqrt(len(unbiased))
    assert abs(unbiased.mean()) < 4 * sem
    assert biased.mean() > 10 * sem  # the test can tell a biased estimator apart


def test_identical_sets_near_zero_and_different_sets_positive():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 16))
    same = kid(x, rng.normal(size=(400, 16)), subsets=20, subset_size=200, seed=0)
    diff = kid(x, rng.normal(size=(400, 16)) + 0.5, subsets=20, subset_size=200, seed=0)
    assert abs(same["kid_mean"]) < 3 * max(same["kid_std"], 1e-12)
    assert diff["kid_mean"] > 10 * diff["kid_std"] > 0


def test_seeded_and_capped():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(60, 4)), rng.normal(size=(50, 4)) + 0.2
    a = kid(x, y, subsets=10, subset_size=20, seed=7)
    assert a == kid(x, y, subsets=10, subset_size=20, seed=7)
    assert a["kid_mean"] != kid(x, y, subsets=10, subset_size=20, seed=8)["kid_mean"]
    capped = kid(x, y, subsets=3, subset_size=1000, seed=0)  # default size larger than the sets
    assert capped["kid_subset_size"] == 50


def test_mean_and_std_are_over_subsets_drawn_without_replacement(monkeypatch):
    import importlib

    kid_module = importlib.import_module("ganforge.metrics.kid")  # the module (the package re-exports kid())
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.4
    rows_x, rows_y = {tuple(r) for r in x}, {tuple(r) for r in y}
    seen = []
    real_mmd = kid_module.mmd2_unbiased

    def spy(a, b):
        seen.append((a.copy(), b.copy()))
        return real_mmd(a, b)

    monkeypatch.setattr(kid_module, "mmd2_unbiased", spy)
    out = kid(x, y, subsets=12, subset_size=10, seed=3)
    assert len(seen) == 12
    for a, b in seen:
        assert a.shape == b.shape == (10, 3)
        assert len({tuple(r) for r in a}) == 10 and len({tuple(r) for r in b}) == 10  # no repeats
        assert {tuple(r) for r in a} <= rows_x and {tuple(r) for r in b} <= rows_y  # x from real, y from generated
    values = np.array([loop_mmd2_unbiased(a, b) for a, b in seen])
    assert len({round(v, 12) for v in values}) > 1  # different subsets
    assert out["kid_mean"] == pytest.approx(values.mean(), rel=1e-10)
    assert out["kid_std"] == pytest.approx(values.std(), rel=1e-10)  # ddof 0, as documented
    assert out["kid_subsets"] == 12 and out["kid_subset_size"] == 10


def test_bad_arguments():
    x = np.zeros((10, 3))
    with pytest.raises(GanforgeError):
        kid(x, np.zeros((10, 4)))
    with pytest.raises(GanforgeError):
        kid(x, x, subsets=0)
