import numpy as np
import pytest
import scipy.signal
import torch

from ganforge.errors import GanforgeError
from ganforge.nn.upfirdn import conv2d_resample, downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

# An asymmetric filter, so a missing (or extra) flip changes the numbers.
TAPS = [1.0, 2.0, 5.0, -1.0]
CASES = [  # (up, down, (p0, p1))
    (1, 1, (0, 0)),
    (2, 1, (2, 1)),
    (3, 1, (0, 0)),
    (1, 2, (1, 2)),
    (2, 2, (3, 3)),
    (3, 2, (-1, 4)),
    (2, 3, (5, -2)),
    (1, 1, (-2, -1)),
]


def _scipy_1d(x: np.ndarray, h: np.ndarray, up: int, down: int, p0: int, p1: int) -> np.ndarray:
    """Our upfirdn along one axis, from scipy.signal.upfirdn (which is ours with padding (len(h)-1, len(h)-up))."""
    full = scipy.signal.upfirdn(h, x, up=up)
    # Our output index j is scipy's j + (fh-1-p0); outside scipy's range the footprint sees only zeros.
    lead, trail = len(h) - 1 - p0, len(h) - up - p1
    full = np.pad(full, (max(-lead, 0), max(-trail, 0)))
    full = full[max(lead, 0) : len(full) - max(trail, 0)]
    return full[::down]


def _zero_insert_pad(x: np.ndarray, up: int, p0: int, p1: int) -> np.ndarray:
    """A 1-D signal upsampled by zero insertion (up-1 zeros after each sample), then padded/cropped."""
    u = np.zeros(len(x) * up)
    u[::up] = x
    u = np.pad(u, (max(p0, 0), max(p1, 0)))
    return u[max(-p0, 0) : len(u) - max(-p1, 0)]


def test_setup_filter_is_a_normalised_outer_product_with_gain():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    expected = torch.tensor([1.0, 3, 3, 1]).outer(torch.tensor([1.0, 3, 3, 1])) / 64
    torch.testing.assert_close(f, expected)
    torch.testing.assert_close(setup_filter([1, 3, 3, 1], gain=4), expected * 4)
    sep = setup_filter([1, 3, 3, 1], separable=True, gain=4)
    torch.testing.assert_close(sep, torch.tensor([1.0, 3, 3, 1]) / 8 * 2)  # sqrt(gain) per axis
    torch.testing.assert_close(setup_filter([1, 2], flip=True, normalize=False), torch.tensor([[4.0, 2], [2, 1]]))
    assert setup_filter(list(range(1, 9))).ndim == 1  # long filters stay separable, as in the reference


@pytest.mark.parametrize("up,down,pad", CASES)
def test_matches_scipy_upfirdn_along_each_axis(up, down, pad):
    rng = np.random.default_rng(0)
    h = np.array(TAPS)
    sig = rng.standard_normal(9)
    expected = _scipy_1d(sig, h, up, down, *pad)
    f_row = torch.tensor([TAPS], dtype=torch.float64)  # 2-D filter of height 1: acts along x only
    x = torch.tensor(sig).reshape(1, 1, 1, -1)
    along_x = upfirdn2d(x, f_row, up=(up, 1), down=(down, 1), padding=(pad[0], pad[1], 0, 0))
    np.testing.assert_allclose(along_x.reshape(-1).numpy(), expected, atol=1e-12)
    along_y = upfirdn2d(x.transpose(2, 3), f_row.T, up=(1, up), down=(1, down), padding=(0, 0, pad[0], pad[1]))
    np.testing.assert_allclose(along_y.reshape(-1).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("up,down,pad", CASES)
def test_separable_2d_matches_scipy_rows_then_columns(up, down, pad):
    rng = np.random.default_rng(1)
    h = np.array(TAPS) / np.sum(TAPS)
    img = rng.standard_normal((9, 8))
    rows = np.stack([_scipy_1d(r, h, up, down, *pad) for r in img])
    expected = np.stack([_scipy_1d(col, h, up, down, *pad) for col in rows.T]).T * 3.0
    x = torch.tensor(img).reshape(1, 1, 9, 8).repeat(2, 3, 1, 1)  # every sample/channel filtered alike
    for sep in (False, True):
        f = setup_filter(TAPS, separable=sep, gain=3.0)
        out = upfirdn2d(x, f, up=up, down=down, padding=(pad[0], pad[1], pad[0], pad[1]))
        assert out.shape == (2, 3, *expected.shape)
        np.testing.assert_allclose(out[1, 2].numpy(), expected, atol=1e-6)  # filter is float32


def test_non_separable_2d_filter_is_a_true_convolution():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((3, 4))
    img = rng.standard_normal((5, 6))
    up, down, (px0, px1, py0, py1) = 2, 2, (2, 1, 3, -1)
    rows = np.stack([_zero_insert_pad(r, up, px0, px1) for r in img])
    padded = np.stack([_zero_insert_pad(c, up, py0, py1) for c in rows.T]).T
    expected = scipy.signal.convolve2d(padded, f, mode="valid")[::down, ::down]
    x = torch.tensor(img).reshape(1, 1, 5, 6)
    out = upfirdn2d(x, torch.tensor(f), up=up, down=down, padding=(px0, px1, py0, py1))
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-12)
    # flip_filter=True is cross-correlation instead.
    corr = upfirdn2d(x, torch.tensor(f), up=up, down=down, padding=(px0, px1, py0, py1), flip_filter=True)
    np.testing.assert_allclose(corr[0, 0].numpy(), scipy.signal.correlate2d(padded, f, mode="valid")[::down, ::down], atol=1e-12)


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 1]])
def test_resampling_helpers_give_exact_multiples_of_the_size(taps):
    f = setup_filter(taps)
    x = torch.randn(2, 3, 8, 6)
    assert upsample2d(x, f).shape == (2, 3, 16, 12)
    assert upsample2d(x, f, up=4).shape == (2, 3, 32, 24)
    assert downsample2d(x, f).shape == (2, 3, 4, 3)
    assert filter2d(x, f).shape == (2, 3, 8, 6)
    assert filter2d(x, f, padding=(1, 2, 0, -1)).shape == (2, 3, 7, 9)
    w = torch.randn(5, 3, 3, 3)
    assert conv2d_resample(x, w, f, up=2, padding=1).shape == (2, 5, 16, 12)
    assert conv2d_resample(x, w, f, down=2, padding=1).shape == (2, 5, 4, 3)
    assert conv2d_resample(x, w, f, padding=1).shape == (2, 5, 8, 6)


def test_upsampling_a_constant_image_keeps_it_constant_in_the_interior():
    x = torch.full((1, 2, 6, 6), 0.7, dtype=torch.float64)
    for taps in ([1, 3, 3, 1], [1, 2, 1]):
        out = upsample2d(x, setup_filter(taps))
        assert out.shape == (1, 2, 12, 12)
        torch.testing.assert_close(out[:, :, 2:-2, 2:-2], torch.full_like(out[:, :, 2:-2, 2:-2], 0.7))
        assert out[0, 0, 0, 0] < 0.7  # the border sees zero padding: the interior check is not vacuous
    down = downsample2d(x, setup_filter([1, 3, 3, 1]))
    torch.testing.assert_close(down[:, :, 1:-1, 1:-1], torch.full_like(down[:, :, 1:-1, 1:-1], 0.7))


def test_upsampled_impulse_spreads_as_the_scaled_filter_centred():
    # One impulse upsampled by 2 with [1,3,3,1] spreads as the outer product of [1,3,3,1]/4, centred.
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[0, 0, 1, 1] = 1.0
    out = upsample2d(x, setup_filter([1, 3, 3, 1]))
    k = torch.tensor([1.0, 3, 3, 1], dtype=torch.float64) / 4
    expected = torch.zeros(8, 8, dtype=torch.float64)
    expected[1:5, 1:5] = k.outer(k)
    torch.testing.assert_close(out[0, 0], expected)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("k,groups", [(1, 1), (3, 1), (3, 2)])
@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample_equals_upsample_conv_downsample(up, down, k, groups, flip_weight):
    # The definition (the reference's generic path): upsample and pad once, convolve, then low-pass
    # and decimate. The fast paths (transposed conv, strided conv) must give the same numbers.
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, k, k, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    p = [k // 2] * 4
    if up > 1:
        p = [p[0] + (4 + up - 1) // 2, p[1] + (4 - up) // 2, p[2] + (4 + up - 1) // 2, p[3] + (4 - up) // 2]
    if down > 1:
        p = [p[0] + (4 - down + 1) // 2, p[1] + (4 - down) // 2, p[2] + (4 - down + 1) // 2, p[3] + (4 - down) // 2]
    y = upfirdn2d(x, f if up > 1 else None, up=up, padding=p, gain=up**2)
    y = torch.nn.functional.conv2d(y, w if flip_weight else w.flip([2, 3]), groups=groups)
    expected = upfirdn2d(y, f, down=down) if down > 1 else y
    out = conv2d_resample(x, w, f, up=up, down=down, padding=k // 2, groups=groups, flip_weight=flip_weight)
    assert out.shape == (2, 6, 6 * up // down, 6 * up // down)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("sep", [False, True])
def test_first_and_second_derivatives(sep):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 2, 4], separable=sep).double()

    def op(t):
        return upfirdn2d(t, f, up=2, down=(1, 2), padding=(2, -1, 1, 0), gain=2.0)

    assert torch.autograd.gradcheck(op, (x,))
    assert torch.autograd.gradgradcheck(op, (x,))
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    f4 = setup_filter([1, 3, 3, 1]).double()
    for up, down in [(2, 1), (1, 2)]:
        def conv(t, ww, up=up, down=down):
            return conv2d_resample(t, ww, f4, up=up, down=down, padding=1)

        assert torch.autograd.gradgradcheck(conv, (x, w))


def test_bad_arguments_are_one_line_errors():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(GanforgeError):
        upfirdn2d(x, setup_filter([1, 1]), up=0)
    with pytest.raises(GanforgeError):
        upfirdn2d(x, setup_filter([1, 1]), padding=(1, 2, 3))
    with pytest.raises(GanforgeError):
        upfirdn2d(x[0], setup_filter([1, 1]))
