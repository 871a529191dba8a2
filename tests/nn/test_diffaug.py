import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.nn.diffaug import check_policy, cutout, diff_augment, translation


def test_translation_is_an_integer_shift_with_zero_fill():
    torch.manual_seed(0)
    x = torch.rand(16, 2, 8, 8) + 1  # strictly positive, so zeros mark the fill
    out = translation(x, 0.25)
    for i in range(16):
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                ref = torch.zeros_like(x[i])
                ys, yd = (slice(0, 8 - dy), slice(dy, 8)) if dy >= 0 else (slice(-dy, 8), slice(0, 8 + dy))
                xs, xd = (slice(0, 8 - dx), slice(dx, 8)) if dx >= 0 else (slice(-dx, 8), slice(0, 8 + dx))
                ref[:, yd, xd] = x[i][:, ys, xs]
                found |= torch.equal(out[i], ref)
        assert found, f"sample {i} is not a shift of its input"


def test_cutout_zeroes_one_square():
    torch.manual_seed(1)
    x = torch.ones(8, 1, 8, 8)
    out = cutout(x, 0.5)
    assert ((out == 0).flatten(1).sum(1) <= 16).all() and ((out == 0).flatten(1).sum(1) >= 4).all()


def test_gradients_flow_through_augmentation():
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    diff_augment(x, ["translation", "cutout", "color"]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_policy_check():
    assert check_policy("translation,cutout") == ["translation", "cutout"]
    assert check_policy("") == []
    with pytest.raises(GanforgeError, match="unknown diffaug"):
        check_policy("flip")
