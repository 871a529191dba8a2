"""Resize policies: shapes, and known pixel patterns landing where the policy says."""
import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import build_dataset
from ganforge.data.resize import resize_image
from ganforge.errors import GanforgeError


def one(folder, **kw):
    ds = build_dataset(str(folder), **kw)
    assert len(ds) == 1
    return ds[0][0]


def test_resize_crop_takes_the_centre(tmp_path, save, decode_mode):
    # 30x10: black | white | black thirds, and one gray marker pixel in the middle third
    arr = np.zeros((10, 30), np.uint8)
    arr[:, 10:20] = 255
    arr[2, 13] = 100
    save(Image.fromarray(arr), tmp_path / "a.png")
    x = one(tmp_path, image_size=10)  # default policy: resize-crop
    assert x.shape == (1, 10, 10)
    expected = torch.ones(10, 10)
    expected[2, 3] = 100 / 127.5 - 1  # marker moved by the crop offset (10 columns)
    assert torch.allclose(x[0], expected, atol=1e-6)


def test_resize_crop_tall_image(tmp_path, save):
    arr = np.zeros((40, 20), np.uint8)
    arr[10:30] = 255
    save(Image.fromarray(arr), tmp_path / "a.png")
    x = one(tmp_path, image_size=20)
    assert torch.allclose(x, torch.ones(1, 20, 20))


def test_resize_stretches(tmp_path, save, decode_mode):
    arr = np.zeros((10, 20), np.uint8)
    arr[:, 10:] = 255
    save(Image.fromarray(arr), tmp_path / "a.png")
    x = one(tmp_path, image_size=10, resize="resize")[0]
    assert x.shape == (10, 10)
    assert torch.all(x[:, :4] < -0.9) and torch.all(x[:, 6:] > 0.9)  # both halves kept, squeezed
    assert torch.allclose(x, x[:1].expand(10, 10))  # rows identical


def test_pad_letterboxes_on_black(tmp_path, save, decode_mode):
    save(Image.new("L", (20, 10), 255), tmp_path / "a.png")
    x = one(tmp_path, image_size=20, resize="pad")[0]
    assert x.shape == (20, 20)
    assert torch.all(x[:5] == -1) and torch.all(x[15:] == -1)
    assert torch.all(x[5:15] == 1)


def test_pad_with_downscale(tmp_path, save):
    save(Image.new("RGB", (40, 20), (255, 255, 255)), tmp_path / "a.png")
    x = one(tmp_path, image_size=20, resize="pad")
    assert x.shape == (3, 20, 20)
    assert torch.all(x[:, :5] == -1) and torch.all(x[:, 15:] == -1)
    assert torch.allclose(x[:, 5:15], torch.ones(3, 10, 20), atol=1e-2)


def test_none_requires_matching_size(tmp_path, save):
    save(Image.new("L", (8, 8), 0), tmp_path / "a.png")
    assert one(tmp_path, image_size=8, resize="none").shape == (1, 8, 8)
    with pytest.raises(GanforgeError, match="resize='none'"):
        build_dataset(str(tmp_path), image_size=16, resize="none")


def test_mixed_sizes_need_image_size(tmp_path, save):
    save(Image.new("L", (8, 8), 0), tmp_path / "a.png")
    save(Image.new("L", (16, 8), 0), tmp_path / "b.png")
    with pytest.raises(GanforgeError, match="different sizes"):
        build_dataset(str(tmp_path))
    ds = build_dataset(str(tmp_path), image_size=8)
    assert ds.image_size == (8, 8) and len(ds) == 2


def test_non_square_native_size_is_kept(tmp_path, save):
    save(Image.new("L", (12, 5), 0), tmp_path / "a.png")
    ds = build_dataset(str(tmp_path))
    assert ds.image_size == (5, 12) and ds[0][0].shape == (1, 5, 12)


@pytest.mark.parametrize("src,dst,filt", [(16, 40, Image.Resampling.BICUBIC), (40, 16, Image.Resampling.LANCZOS)])
def test_filters_bicubic_up_lanczos_down(src, dst, filt):
    img = Image.effect_noise((src, src), 60)
    ours = np.asarray(resize_image(img, dst, "resize"))
    assert np.array_equal(ours, np.asarray(img.resize((dst, dst), filt)))


def test_unknown_policy(tmp_path, save):
    save(Image.new("L", (8, 8), 0), tmp_path / "a.png")
    with pytest.raises(GanforgeError, match="unknown resize policy"):
        build_dataset(str(tmp_path), image_size=4, resize="squash")
