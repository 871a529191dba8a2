"""k-means (one implementation for label maps and self-conditioning) against scikit-learn's."""
import numpy as np
import pytest
import torch

from ganforge.data.clusters import cluster_labels, kmeans, nearest, pixel_features
from ganforge.errors import GanforgeError


def _blobs(seed=0, per=150, dim=12, k=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(k, dim))
    pts = np.concatenate([rng.normal(c, 1.0, size=(per, dim)) for c in centres])
    return pts, np.repeat(np.arange(k), per)


def test_kmeans_matches_sklearn_inertia_and_recovers_blobs():
    from sklearn.cluster import KMeans

    pts, truth = _blobs()
    ours = kmeans(pts, 5, np.random.default_rng(0), n_init=4)
    ref = KMeans(5, n_init=10, random_state=0).fit(pts)

    def inertia(c):
        return ((pts[:, None] - c[None]) ** 2).sum(2).min(1).sum()

    assert inertia(ours) <= inertia(ref.cluster_centers_) * 1.01
    lab = nearest(pts, ours)
    # every blob is one cluster and every cluster one blob
    assert all(len(set(lab[truth == b])) == 1 for b in range(5))
    assert len(set(lab)) == 5


def test_kmeans_is_deterministic_for_a_seed():
    pts, _ = _blobs(1)
    a = kmeans(pts, 7, np.random.default_rng(3))
    b = kmeans(pts, 7, np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_cluster_labels_group_images_by_content_and_features_are_downsampled():
    g = torch.Generator().manual_seed(0)
    dark = -0.8 + 0.05 * torch.randn(30, 1, 64, 64, generator=g)
    light = 0.8 + 0.05 * torch.randn(30, 1, 64, 64, generator=g)
    images = torch.cat([dark, light])
    lab = cluster_labels(images, 2)
    assert lab.dtype == np.int64 and lab.shape == (60,)
    assert len(set(lab[:30])) == 1 and len(set(lab[30:])) == 1 and lab[0] != lab[30]
    assert pixel_features(images).shape == (60, 32 * 32)  # 64 px seen at 32 px
    assert pixel_features(images[:, :, :28, :28]).shape == (60, 28 * 28)


@pytest.mark.parametrize("k,msg", [(1, "2.."), (5000, "2.."), (61, "cannot form")])
def test_bad_cluster_counts_are_one_clear_error(k, msg):
    with pytest.raises(GanforgeError, match=msg):
        cluster_labels(torch.zeros(60, 1, 8, 8), k)
