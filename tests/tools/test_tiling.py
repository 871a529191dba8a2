"""Tiled inference: exact for local functions, seamless for non-local ones, any size or aspect ratio."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.models.pix2pix import UnetGenerator
from ganforge.tools.tiling import ramp, reflect_pad_to, tile_starts, translate_tiled


def pointwise(t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(2.0 * t[:, :2] - t[:, 2:3]) * 3.0 + 0.5


@pytest.mark.parametrize("h,w", [(64, 64), (37, 101), (7, 11), (1, 1), (33, 32), (150, 17)])
def test_pointwise_function_is_reproduced_exactly(h, w):
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    y = translate_tiled(pointwise, x, tile=32, overlap=12)
    assert y.shape == (1, 2, h, w)
    torch.testing.assert_close(y, pointwise(x), rtol=0, atol=1e-6)


def test_conv_inside_margin_is_exact_everywhere():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 5, padding=2)  # radius 2 <= margin 12 // 4 = 3
    x = torch.randn(1, 3, 70, 93)
    with torch.no_grad():
        full = conv(x)
    n_tiles = len(tile_starts(70, 32, 12)) * len(tile_starts(93, 32, 12))
    for bs in (1, 5, 64):
        sizes = []

        def counted(t):
            sizes.append(t.shape[0])
            return conv(t)

        torch.testing.assert_close(translate_tiled(counted, x, 32, 12, batch_size=bs), full, rtol=0, atol=1e-5)
        # batch_size bounds the memory: every tile exactly once, at most bs tiles per call
        assert sum(sizes) == n_tiles and max(sizes) == min(bs, n_tiles), (bs, sizes)
        assert len(sizes) == -(-n_tiles // bs)


def test_conv_wider_than_margin_is_not_exact():
    # Guards the test above: a receptive field beyond the zero margin must show at tile seams.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 9, padding=4)
    x = torch.randn(1, 3, 70, 93)
    with torch.no_grad():
        err = (translate_tiled(conv, x, 32, 12) - conv(x)).abs().max()
    assert err > 1e-3


def test_smaller_than_tile_is_reflect_padded():
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    x = torch.randn(1, 1, 10, 13)
    with torch.no_grad():
        full = conv(x)
        y = translate_tiled(conv, x, tile=24, overlap=8)
    assert y.shape == (1, 1, 10, 13)
    # Exact away from the bottom/right padding; the last row/column saw reflected pixels instead of zeros.
    torch.testing.assert_close(y[..., :-1, :-1], full[..., :-1, :-1], rtol=0, atol=1e-6)
    assert not torch.allclose(y[..., -1, :], full[..., -1, :])
    p = reflect_pad_to(torch.arange(3.0).view(1, 1, 1, 3), 1, 9)
    assert p.flatten().tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0]


def test_scale_factor_for_super_resolution():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(3, 3, 5, padding=2)

    def sr(t):
        # receptive-field radius 2 input pixels = the margin 8 // 4: exact only if the window's zero margin
        # is measured in input pixels (2 * scale output pixels), not in output pixels
        return F.interpolate(conv(t), scale_factor=2, mode="nearest")

    x = torch.randn(1, 3, 45, 70)
    with torch.no_grad():
        y = translate_tiled(sr, x, 16, 8, scale=2)
        assert y.shape == (1, 3, 90, 140)
        torch.testing.assert_close(y, sr(x), rtol=0, atol=1e-5)


def test_seams_are_blended_smoothly():
    # Each tile answers with its own mean: a maximally non-local function. A hard stitch would jump by
    # the full difference of neighbouring tile means at one pixel; blending spreads it over the ramp.
    x = torch.linspace(-1, 1, 200).view(1, 1, 1, 200).expand(1, 1, 40, 200).contiguous()

    def tile_mean(t):
        return t.mean(dim=(1, 2, 3), keepdim=True).expand_as(t)

    y = translate_tiled(tile_mean, x, tile=40, overlap=16)
    starts = tile_starts(200, 40, 16)
    means = [float(x[..., s:s + 40].mean()) for s in starts]
    jump = max(b - a for a, b in zip(means, means[1:]))
    steps = y[0, 0, 0, 1:] - y[0, 0, 0, :-1]
    assert bool((steps >= -1e-6).all())  # monotone: no overshoot at seams
    assert steps.max() < 0.3 * jump
    torch.testing.assert_close(y[0, 0], y[0, 0, :1].expand(40, 200))  # rows identical (no horizontal seam)


def test_window_partition_of_unity_and_tile_layout():
    o, m = 12, 3
    rise = ramp(32, o, m, rise=True, fall=False)
    fall = ramp(32, o, m, rise=False, fall=True)
    torch.testing.assert_close(fall[-o:] + rise[:o], torch.ones(o, dtype=torch.float64))
    assert rise[:m].abs().max() == 0 and rise[o - m:].min() == 1
    # the documented raised-cosine ramp across the o - 2m pixels between the margins (pixel centres)
    t = (torch.arange(o - 2 * m, dtype=torch.float64) + 0.5) / (o - 2 * m)
    torch.testing.assert_close(rise[m:o - m], torch.sin(0.5 * torch.pi * t) ** 2)
    torch.testing.assert_close(fall, rise.flip(0))
    assert torch.equal(ramp(32, o, m, rise=False, fall=False), torch.ones(32, dtype=torch.float64))
    for length in (32, 33, 70, 93, 257):
        s = tile_starts(length, 32, 12)
        assert s[0] == 0 and s[-1] == max(0, length - 32)
        assert all(32 - (b - a) >= 12 for a, b in zip(s, s[1:]))  # overlap never below the request


def test_unet_generator_runs_tiled():
    torch.manual_seed(3)
    g = UnetGenerator(3, 3, num_downs=5, ngf=4).eval()
    x = torch.rand(1, 3, 50, 90) * 2 - 1
    y = translate_tiled(g, x, tile=32, overlap=16, batch_size=3)
    assert y.shape == (1, 3, 50, 90) and torch.isfinite(y).all() and y.abs().max() <= 1


def test_bad_arguments_are_user_errors():
    x = torch.randn(1, 3, 20, 20)
    with pytest.raises(GanforgeError):
        translate_tiled(pointwise, x, tile=16, overlap=16)
    with pytest.raises(GanforgeError):
        translate_tiled(pointwise, torch.randn(2, 3, 20, 20), tile=16, overlap=4)
    with pytest.raises(GanforgeError):
        translate_tiled(lambda t: t[..., :-1], x, tile=16, overlap=4)
    with pytest.raises(GanforgeError):
        translate_tiled(pointwise, x, tile=16, overlap=4, margin=3)
