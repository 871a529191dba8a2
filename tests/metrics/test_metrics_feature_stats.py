"""Streaming FeatureStats and compute_features: exact moments, bounded sample, merging, round trips."""
import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import FeatureExtractor, FeatureStats, compute_features


class ChannelMeans(FeatureExtractor):
    """A tiny stand-in extractor: per-channel means and maxima (dim 6), 'logits' = the same values."""

    name = "channel-means"
    dim = 6
    resize_method = "none"
    logits_method = "identity"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def features_and_logits(self, images, logits=True):
        self.calls += 1
        f = torch.cat([images.mean(dim=(2, 3)), images.amax(dim=(2, 3))], dim=1)
        return f, (f.clone() if logits else None)


def test_streamed_moments_match_numpy_with_large_offset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5)) * np.array([1, 2, 0.5, 3, 1e-3]) + 1e4  # cancellation-prone
    stats = FeatureStats(5)
    for chunk in np.array_split(x, 7):
        stats.update(chunk)
    assert stats.count == 1000
    assert np.allclose(stats.mean(), x.mean(0), rtol=0, atol=1e-9)
    assert np.allclose(stats.cov(), np.cov(x, rowvar=False), rtol=1e-7, atol=1e-12)


def test_reservoir_keeps_a_bounded_uniform_sample():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    stats = FeatureStats(3, keep=50, seed=0)
    for chunk in np.array_split(x, 9):
        stats.update(chunk)
    kept = stats.features()
    assert kept.shape == (50, 3)
    rows = {tuple(r) for r in x.astype(np.float32)}
    assert all(tuple(r) in rows for r in kept)  # a subset of the input rows
    assert len({tuple(r) for r in kept}) == 50

    # Every item is kept with probability keep/N: count inclusions over many seeds.
    n, keep, runs = 20, 5, 2000
    ids = np.arange(n, dtype=np.float64)[:, None]
    hits = np.zeros(n)
    for seed in range(runs):
        s = FeatureStats(1, keep=keep, seed=seed)
        s.update(ids[:7])
        s.update(ids[7:])
        hits[s.features()[:, 0].astype(int)] += 1
    assert np.all(np.abs(hits / runs - keep / n) < 0.045)


def test_keep_all_when_under_cap_and_errors_when_not_kept():
    x = np.arange(12.0).reshape(4, 3)
    s = FeatureStats(3, keep=10)
    s.update(x)
    assert np.array_equal(s.features(), x.astype(np.float32))
    with pytest.raises(GanforgeError, match="not kept"):
        FeatureStats(3).features()
    with pytest.raises(GanforgeError, match="at least 2"):
        s1 = FeatureStats(3)
        s1.update(x[:1])
        s1.cov()


def test_merge_equals_single_stream():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 4)) + 5, rng.normal(size=(200, 4)) * 3 - 2
    sa, sb = FeatureStats(4, keep=100, seed=1), FeatureStats(4, keep=100, seed=2)
    sa.update(a)
    sb.update(b)
    sa.merge(sb)
    both = np.concatenate([a, b])
    assert sa.count == 500
    assert np.allclose(sa.mean(), both.mean(0))
    assert np.allclose(sa.cov(), np.cov(both, rowvar=False))
    kept = sa.features()
    assert kept.shape == (100, 4)
    rows = {tuple(r) for r in both.astype(np.float32)}
    assert all(tuple(r) in rows for r in kept)


def test_round_trip_through_arrays():
    rng = np.random.default_rng(3)
    s = FeatureStats(3, keep=5, keep_logits=True)
    s.update(rng.normal(size=(8, 3)), logits=rng.normal(size=(8, 2)))
    r = FeatureStats.from_arrays(s.to_arrays())
    assert r.count == 8 and r.dim == 3
    assert np.array_equal(r.mean(), s.mean()) and np.array_equal(r.cov(), s.cov())
    assert np.array_equal(r.features(), s.features()) and np.array_equal(r.logits(), s.logits())


def test_compute_features_streams_and_truncates():
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(4, 3, 8, 8, generator=g) * 2 - 1, torch.zeros(4)) for _ in range(5)]
    ext = ChannelMeans()
    stats = compute_features(ext, batches, max_samples=10, keep=100, keep_logits=True)
    assert stats.count == 10
    assert ext.calls == 3  # stopped after the batch that reached 10
    all_images = torch.cat([b[0] for b in batches])[:10]
    want = torch.cat([all_images.mean(dim=(2, 3)), all_images.amax(dim=(2, 3))], 1).double().numpy()
    assert np.allclose(stats.mean(), want.mean(0))
    assert np.allclose(stats.cov(), np.cov(want, rowvar=False))
    assert np.allclose(stats.logits(), want)
    with pytest.raises(GanforgeError, match="ran out"):
        compute_features(ChannelMeans(), batches, max_samples=100)
    with pytest.raises(GanforgeError, match="no images"):
        compute_features(ChannelMeans(), [])
