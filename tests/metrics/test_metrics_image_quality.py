"""PSNR, SSIM and L1 against known values and skimage, on RGB and BT.601 Y."""
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from ganforge.errors import GanforgeError
from ganforge.metrics import l1, psnr, rgb_to_y, ssim


def pair(seed=0, n=2, c=3, h=32, w=28):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(n, c, h, w, generator=g, dtype=torch.float64) * 2 - 1
    pred = (target + 0.2 * torch.randn(n, c, h, w, generator=g, dtype=torch.float64)).clamp(-1, 1)
    return pred, target


def to01(x):
    return ((x + 1) / 2).numpy()


def numpy_y(img01):  # [C,H,W] RGB in [0,1] -> Y/255, BT.601 as in MATLAB rgb2ycbcr
    return (16 + 65.481 * img01[0] + 128.553 * img01[1] + 24.966 * img01[2]) / 255


def test_psnr_known_mse():
    target = torch.full((1, 3, 8, 8), -1.0, dtype=torch.float64)  # 0 on the [0,1] scale
    pred = target + 0.2  # 0.1 on the [0,1] scale: MSE 0.01 -> 20 dB
    assert psnr(pred, target).item() == pytest.approx(20.0, rel=1e-12)
    p, t = pair(1)
    mse = ((to01(p) - to01(t)) ** 2).reshape(2, -1).mean(1)
    assert torch.allclose(psnr(p, t), torch.from_numpy(10 * np.log10(1 / mse)))
    assert torch.isinf(psnr(t, t)).all()


def test_value_range_changes_only_the_mapping():
    p, t = pair(2)
    assert torch.allclose(psnr((p + 1) / 2, (t + 1) / 2, value_range=(0, 1)), psnr(p, t))
    assert torch.allclose(ssim((p + 1) * 127.5, (t + 1) * 127.5, value_range=(0, 255)), ssim(p, t))


def test_ssim_identical_is_one():
    _, t = pair(3)
    assert torch.allclose(ssim(t, t), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_ssim_matches_skimage_rgb_and_y():
    p, t = pair(4)
    got_rgb, got_y = ssim(p, t), ssim(p, t, y_channel=True)
    for i in range(2):
        a, b = to01(p[i]), to01(t[i])
        kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        want_rgb = structural_similarity(a, b, channel_axis=0, **kw)
        want_y = structural_similarity(numpy_y(a), numpy_y(b), **kw)
        assert got_rgb[i].item() == pytest.approx(want_rgb, abs=1e-10)
        assert got_y[i].item() == pytest.approx(want_y, abs=1e-10)


def test_y_channel_conversion_and_psnr():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 2, 2), 235 / 255))
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 2, 2), 16 / 255))
    p, t = pair(5)
    mse = np.array([((numpy_y(to01(p[i])) - numpy_y(to01(t[i]))) ** 2).mean() for i in range(2)])
    assert torch.allclose(psnr(p, t, y_channel=True), torch.from_numpy(10 * np.log10(1 / mse)))


def test_crop_border():
    p, t = pair(6)
    c = 4
    assert torch.allclose(psnr(p, t, crop_border=c), psnr(p[..., c:-c, c:-c], t[..., c:-c, c:-c]))
    assert torch.allclose(ssim(p, t, crop_border=c), ssim(p[..., c:-c, c:-c], t[..., c:-c, c:-c]))
    q = p.clone()
    q[..., :c, :] = 1.0  # changes only inside the cropped border
    assert torch.allclose(psnr(q, t, crop_border=c), psnr(p, t, crop_border=c))


def test_l1():
    t = torch.zeros(2, 3, 4, 4)
    p = t.clone()
    p[1] = 0.5
    assert torch.allclose(l1(p, t), torch.tensor([0.0, 0.5], dtype=torch.float64))


def test_bad_inputs():
    p, t = pair(7)
    with pytest.raises(GanforgeError):
        psnr(p, t[:, :, :-1])
    with pytest.raises(GanforgeError, match="RGB"):
        psnr(p[:, :1], t[:, :1], y_channel=True)
    with pytest.raises(GanforgeError, match="at least 11"):
        ssim(p[..., :8, :8], t[..., :8, :8])
    with pytest.raises(GanforgeError, match="crop_border"):
        psnr(p, t, crop_border=14)
