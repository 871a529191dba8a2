"""FID against scipy's sqrtm formula, closed forms, order invariance and rank-deficient covariances."""
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import FeatureStats, fid_from_features, fid_from_stats, frechet_distance


def reference_fid(x, y):
    """FID exactly as written in Heusel et al., with scipy's general matrix square root."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def test_matches_scipy_sqrtm_on_full_rank_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    y = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) + 0.5
    assert fid_from_features(x, y) == pytest.approx(reference_fid(x, y), rel=1e-9)


def test_accepts_torch_tensors():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(100, 4)), rng.normal(size=(120, 4)) + 1
    assert fid_from_features(torch.from_numpy(x).float(), torch.from_numpy(y)) == pytest.approx(
        reference_fid(x.astype(np.float32).astype(np.float64), y), rel=1e-6
    )


def test_identical_sets_give_zero():
    x = np.random.default_rng(2).normal(size=(200, 16))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(3)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 4, size=d), rng.uniform(0.1, 4, size=d)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # Same spectra in a shared rotated basis: the distance is rotation invariant.
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    got = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)


def test_singular_covariances_closed_form():
    # N(0, diag(1, 0)) vs N(0, diag(0, 1)): S1 S2 = 0, so FID = Tr S1 + Tr S2 = 2.
    assert frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.zeros(2), np.diag([0.0, 1.0])) == pytest.approx(2.0)
    # Zero covariance on both sides: only the means remain.
    assert frechet_distance(np.ones(3), np.zeros((3, 3)), np.zeros(3), np.zeros((3, 3))) == pytest.approx(3.0)


def test_invariant_to_sample_order():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(150, 10)), rng.normal(size=(170, 10)) * 1.5
    base = fid_from_features(x, y)
    assert fid_from_features(x[rng.permutation(150)], y[rng.permutation(170)]) == pytest.approx(base, rel=1e-10)


def test_fewer_samples_than_dims_warns_and_matches_nuclear_norm_formula():
    rng = np.random.default_rng(5)
    n1, n2, d = 30, 40, 64
    x = rng.normal(size=(n1, d))
    y = rng.normal(size=(n2, d)) * 0.7 + 0.2
    with pytest.warns(UserWarning, match="rank-deficient"):
        got = fid_from_features(x, y)
    # Tr((S1 S2)^1/2) = sum of singular values of Xc Yc^T / sqrt((n1-1)(n2-1)), exact for any rank.
    xc, yc = x - x.mean(0), y - y.mean(0)
    tr_sqrt = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(np.cov(x, rowvar=False)) + np.trace(
        np.cov(y, rowvar=False)
    ) - 2 * tr_sqrt
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-9)


def test_low_rank_features_embedded_in_high_dims_match_low_dim_fid():
    rng = np.random.default_rng(6)
    x5, y5 = rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) * 2 + 1
    q, _ = np.linalg.qr(rng.normal(size=(50, 5)))  # orthonormal columns: 5-D subspace of 50-D
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 200 >= 50: no warning expected
        got = fid_from_features(x5 @ q.T, y5 @ q.T)
    assert got == pytest.approx(reference_fid(x5, y5), rel=1e-8)


def test_stats_path_equals_feature_path():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(90, 6)) + 3, rng.normal(size=(110, 6))
    sx, sy = FeatureStats(6), FeatureStats(6)
    for chunk in np.array_split(x, 4):
        sx.update(chunk)
    for chunk in np.array_split(y, 3):
        sy.update(chunk)
    assert fid_from_stats(sx, sy) == pytest.approx(fid_from_features(x, y), rel=1e-10)


def test_bad_inputs_are_user_errors():
    with pytest.raises(GanforgeError, match="dimensions differ"):
        fid_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(GanforgeError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(GanforgeError, match="NaN"):
        fid_from_features(np.full((5, 2), np.nan), np.zeros((5, 2)))
