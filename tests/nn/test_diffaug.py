import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.nn.diffaug import check_policy, color, cutout, diff_augment, translation


def _shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """img moved down by dy and right by dx, zero-filled."""
    _, h, w = img.shape
    ref = torch.zeros_like(img)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    ref[:, yd, xd] = img[:, ys, xs]
    return ref


def test_translation_is_an_integer_shift_with_zero_fill():
    torch.manual_seed(0)
    n = 32
    x = torch.rand(n, 2, 8, 8) + 1  # strictly positive and random, so zeros mark the fill and a shift is unique
    out = translation(x, 0.25)  # up to round(0.25 * 8) = 2 pixels each way
    assert out.shape == x.shape
    shifts = []
    for i in range(n):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(out[i], _shifted(x[i], dy, dx))]
        assert len(match) == 1, f"sample {i} is not a (zero-filled) shift of its input by at most 2 pixels"
        shifts.append(match[0])
    # The shift is random per sample and really happens: an identity "augmentation" fails here.
    moved = [s for s in shifts if s != (0, 0)]
    assert len(moved) >= n // 2, shifts
    assert len(set(shifts)) >= 8, shifts  # per-sample draws, not one shift for the batch
    dys, dxs = {s[0] for s in shifts}, {s[1] for s in shifts}
    assert dys == {-2, -1, 0, 1, 2} and dxs == {-2, -1, 0, 1, 2}, shifts  # both axes, both ways, full range
    # ratio sets the range: at 0.125 of 8 px the shift is at most 1 pixel
    torch.manual_seed(1)
    out = translation(x, 0.125)
    for i in range(n):
        assert any(torch.equal(out[i], _shifted(x[i], dy, dx)) for dy in range(-1, 2) for dx in range(-1, 2))


def test_cutout_zeroes_one_square():
    torch.manual_seed(1)
    n = 64
    x = torch.rand(n, 2, 8, 8) + 1
    out = cutout(x, 0.5)  # a 4x4 square, clipped where it hangs over the border
    full, corners = 0, set()
    for i in range(n):
        zero = out[i] == 0
        assert torch.equal(zero[0], zero[1]), "the same square in every channel"
        assert torch.equal(out[i][~zero], x[i][~zero]), "pixels outside the square are untouched"
        rows, cols = zero[0].any(1).nonzero().flatten(), zero[0].any(0).nonzero().flatten()
        assert len(rows) > 0, f"sample {i} has no cut-out square"
        # one axis-aligned rectangle: the zeros are exactly the product of a row range and a column range
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        box = torch.zeros(8, 8, dtype=torch.bool)
        box[r0:r1, c0:c1] = True
        assert torch.equal(zero[0], box), f"sample {i}: zeros are not one rectangle"
        h, w = r1 - r0, c1 - c0
        assert 2 <= h <= 4 and 2 <= w <= 4  # clipped by at most half its side
        assert (h == 4 or r0 == 0 or r1 == 8) and (w == 4 or c0 == 0 or c1 == 8), "only the border clips it"
        full += h == w == 4
        corners.add((r0, c0))
    assert 0 < full < n  # positions are random: some squares are whole, some clipped
    assert len({r for r, _ in corners}) >= 4 and len({c for _, c in corners}) >= 4, corners  # in both axes


def test_color_changes_brightness_saturation_and_contrast():
    torch.manual_seed(2)
    # a constant grey image: only brightness can change it (contrast and saturation keep a flat image flat)
    flat = torch.zeros(64, 1, 4, 4)
    out = color(flat)
    shift = out[:, 0, 0, 0]
    assert torch.allclose(out, shift[:, None, None, None].expand_as(out), atol=1e-6)
    assert shift.abs().max() <= 0.5 and shift.std() > 0.2  # U(-0.5, 0.5) per sample
    # contrast: a two-level grey image keeps its mean up to the brightness shift, its spread is scaled by 0.5..1.5
    torch.manual_seed(3)
    x = torch.zeros(64, 1, 4, 4)
    x[:, :, :2] = 0.5
    x[:, :, 2:] = -0.5
    out = color(x)
    spread = (out[:, 0, 0, 0] - out[:, 0, 3, 0])  # was 1.0
    assert ((spread >= 0.5 - 1e-6) & (spread <= 1.5 + 1e-6)).all() and spread.std() > 0.1
    # saturation: a grey RGB image stays grey, a coloured one has its channel spread scaled by 0..2 (times contrast)
    torch.manual_seed(4)
    grey = torch.rand(16, 1, 4, 4).expand(16, 3, 4, 4).clone() * 2 - 1
    out = color(grey)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-6) and torch.allclose(out[:, 1], out[:, 2], atol=1e-6)
    rgb = torch.rand(64, 3, 4, 4) * 2 - 1
    out = color(rgb)
    ratio = (out - out.mean(1, keepdim=True)).flatten(1).norm(dim=1) / (rgb - rgb.mean(1, keepdim=True)).flatten(1).norm(dim=1)
    # saturation x [0, 2) times contrast x [0.5, 1.5): beyond what contrast alone could do, both ways
    assert ratio.max() <= 2 * 1.5 + 1e-4 and ratio.min() < 0.5 and ratio.max() > 1.5, ratio
    assert not torch.allclose(out, rgb)


def test_diff_augment_applies_the_policy_in_order():
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    assert diff_augment(x, []) is x
    for policy in (["translation"], ["cutout"], ["color"], ["color", "translation", "cutout"]):
        torch.manual_seed(5)
        got = diff_augment(x, policy)
        torch.manual_seed(5)
        want = x
        for name in policy:
            want = {"translation": translation, "cutout": cutout, "color": color}[name](want)
        assert torch.equal(got, want), policy
        assert not torch.equal(got, x), policy


def test_gradients_flow_through_augmentation():
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    diff_augment(x, ["translation", "cutout", "color"]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_policy_check():
    assert check_policy("translation,cutout") == ["translation", "cutout"]
    assert check_policy("") == []
    with pytest.raises(GanforgeError, match="unknown diffaug"):
        check_policy("flip")
