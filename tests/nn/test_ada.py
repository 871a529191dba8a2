"""Adaptive discriminator augmentation: the pipeline's transforms, probabilities, gradients and the p
controller's heuristic and checkpointing."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.nn.ada import AdaController, AugmentPipe, check_ops, grid_sample_reflect


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 16, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=gen(seed)) * 2 - 1


def test_check_ops_expands_presets_in_pipeline_order_and_rejects_unknown_names():
    assert check_ops("bgc") == ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
                                "brightness", "contrast", "lumaflip", "hue", "saturation")
    assert check_ops("hue,xflip,blit") == ("xflip", "rotate90", "xint", "hue")
    with pytest.raises(GanforgeError, match="noise"):
        check_ops("bgc,noise")


@pytest.mark.parametrize("c", [1, 3])
def test_p_zero_is_exactly_the_identity(c):
    x = images(c=c)
    assert torch.equal(AugmentPipe("bgc", p=0.0)(x, generator=gen()), x)


def test_p_one_changes_every_image_and_p_is_a_saved_buffer():
    pipe = AugmentPipe("bgc", p=1.0)
    x = images()
    y = pipe(x, generator=gen())
    assert y.shape == x.shape
    assert ((y - x).flatten(1).abs().amax(1) > 1e-3).all()  # colour ops alone touch every image at p=1
    state = pipe.state_dict()
    assert torch.equal(state["p"], torch.tensor(1.0))
    other = AugmentPipe("bgc")
    other.load_state_dict(state)
    assert float(other.p) == 1.0


def test_same_generator_seed_gives_the_same_output():
    pipe, x = AugmentPipe("bgc", p=0.7), images()
    a, b = pipe(x, generator=gen(3)), pipe(x, generator=gen(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, pipe(x, generator=gen(4)))


def test_xflip_at_p_one_is_a_fair_coin_between_identity_and_torch_flip():
    x = images(n=64)
    y = AugmentPipe("xflip", p=1.0)(x, generator=gen())
    same = [torch.equal(y[i], x[i]) for i in range(64)]
    flipped = [torch.allclose(y[i], torch.flip(x[i], dims=[2]), atol=1e-6) for i in range(64)]
    assert all(s != f for s, f in zip(same, flipped))  # every image is exactly one of the two
    assert 16 <= sum(flipped) <= 48  # the reference flips half of the images it augments


def test_rotate90_at_p_one_gives_exact_quarter_turns():
    x = images(n=64)
    y = AugmentPipe("rotate90", p=1.0)(x, generator=gen())
    ks = []
    for i in range(64):
        match = [k for k in range(4) if torch.allclose(y[i], torch.rot90(x[i], k, dims=(1, 2)), atol=1e-6)]
        assert len(match) == 1
        ks.append(match[0])
    assert set(ks) == {0, 1, 2, 3}


def test_blitting_only_moves_whole_pixels():
    x = images(n=16, h=16, w=16)
    y = AugmentPipe("blit", p=1.0)(x, generator=gen())
    assert y.shape == x.shape
    moved = 0
    for i in range(16):
        # Each output value is one of the input's values (no interpolation), channel by channel.
        dist = (y[i].flatten(1)[:, :, None] - x[i].flatten(1)[:, None, :]).abs().amin(2)
        assert dist.max() < 1e-5
        moved += not torch.equal(y[i], x[i])
    assert moved >= 8


def test_geometric_at_p_one_interpolates_within_the_input_range():
    x = images(n=32)
    y = AugmentPipe("geom", p=1.0)(x, generator=gen())
    assert y.shape == x.shape
    # Bilinear weights are convex and reflection padding invents no values.
    lo, hi = x.flatten(1).amin(1), x.flatten(1).amax(1)
    assert (y.flatten(1).amin(1) >= lo - 1e-5).all() and (y.flatten(1).amax(1) <= hi + 1e-5).all()
    assert ((y - x).flatten(1).abs().amax(1) > 1e-3).all()


@pytest.mark.parametrize("c", [1, 3])
def test_colour_at_p_one_is_an_affine_map_of_each_pixel_colour(c):
    x = images(n=32, c=c)
    y = AugmentPipe("color", p=1.0)(x, generator=gen())
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert y.abs().max() < 8  # brightness/contrast/saturation draws stay within a few stds
    for i in range(32):
        # Fit y = A x + b over the 64 pixels: an exact fit proves no spatial mixing happened.
        feats = torch.cat([x[i].flatten(1), torch.ones(1, 64)]).T.double()
        coef = torch.linalg.lstsq(feats, y[i].flatten(1).T.double()).solution
        assert (feats @ coef - y[i].flatten(1).T).abs().max() < 1e-4
    assert ((y - x).flatten(1).abs().amax(1) > 1e-3).float().mean() > 0.9


def test_hue_rotates_around_the_grey_axis_and_lumaflip_mirrors_through_grey():
    x = images(n=32)
    y = AugmentPipe("hue", p=1.0)(x, generator=gen())
    grey_x, grey_y = x.mean(1, keepdim=True), y.mean(1, keepdim=True)
    assert torch.allclose(grey_y, grey_x, atol=1e-5)  # the grey component is kept...
    chroma_x, chroma_y = (x - grey_x).norm(dim=1), (y - grey_y).norm(dim=1)
    assert torch.allclose(chroma_y, chroma_x, atol=1e-5)  # ...and the colour keeps its length
    assert ((y - x).flatten(1).abs().amax(1) > 1e-3).float().mean() > 0.9
    y = AugmentPipe("lumaflip", p=1.0)(x, generator=gen())
    for i in range(32):  # a fair coin between identity and (r, g, b) -> colour minus grey component
        assert torch.equal(y[i], x[i]) or torch.allclose(y[i], x[i] - 2 * x[i].mean(0), atol=1e-5)


def test_colour_rejects_other_channel_counts():
    with pytest.raises(GanforgeError, match="1 or 3 channels"):
        AugmentPipe("color", p=1.0)(images(c=2))
    assert AugmentPipe("bg", p=1.0)(images(c=2)).shape == (16, 2, 8, 8)  # geometry is channel-agnostic


def test_probability_p_sets_the_fraction_of_augmented_images():
    x = images(n=2000, c=1, h=4, w=4)
    y = AugmentPipe("xflip", p=0.5)(x, generator=gen(1))
    flipped = (y - torch.flip(x, dims=[3])).flatten(1).abs().amax(1) < 1e-6
    # Augmented with probability p, and then flipped by a fair coin: p / 2 of the images.
    assert abs(flipped.float().mean().item() - 0.25) < 0.05
    y = AugmentPipe("rotate", p=0.5)(x, generator=gen(2))
    # Two rotations, each with probability 1 - sqrt(1 - p), rotate an image at all with probability p.
    rotated = ~(y == x).flatten(1).all(1)
    assert abs(rotated.float().mean().item() - 0.5) < 0.05


def test_gradients_reach_the_input():
    x = images().requires_grad_()
    y = AugmentPipe("bgc", p=1.0)(x, generator=gen())
    (grad,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x)
    assert torch.isfinite(grad).all() and (grad.flatten(1).abs().sum(1) > 0).all()


def test_double_backward_for_r1_through_the_pipeline():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.Flatten(), nn.LazyLinear(1))
    x = images().requires_grad_()
    d(x)  # materialise the lazy layer
    pipe = AugmentPipe("bgc", p=1.0)
    out = d(pipe(x, generator=gen()))
    (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    r1 = gx.square().flatten(1).sum(1).mean()
    grads = torch.autograd.grad(r1, [d[0].weight, d[0].bias, d[3].weight])  # the last bias has no say in R1
    assert all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_sampling_first_and_second_derivatives_match_finite_differences():
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    pipe = AugmentPipe("bgc", p=1.0)
    assert torch.autograd.gradcheck(lambda t: pipe(t, generator=gen(3)), (x,))
    assert torch.autograd.gradgradcheck(lambda t: pipe(t, generator=gen(3)), (x,))
    grid = torch.rand(2, 4, 3, 2, dtype=torch.float64) * 2.4 - 1.2  # also outside, to hit reflection
    assert torch.autograd.gradgradcheck(lambda t: grid_sample_reflect(t, grid), (x,))


def test_controller_raises_p_by_the_exact_step_when_d_calls_all_reals_real():
    pipe = AugmentPipe("bgc")
    ctrl = AdaController(target=0.6, interval=4, kimg=1.0, pipe=pipe)
    for i in range(4):
        ctrl.accumulate(torch.full((8, 1), 2.0))
        p = ctrl.step(batch_size=8)
        if i < 3:
            assert p == 0.0  # no adjustment before `interval` minibatches
    assert p == pytest.approx(8 * 4 / 1000) and ctrl.rt == 1.0
    assert float(pipe.p) == pytest.approx(p)  # the controller writes the pipe's buffer
    for _ in range(4):
        ctrl.accumulate(torch.full((8, 1), 0.5))
        ctrl.step(batch_size=8)
    assert ctrl.p == pytest.approx(2 * 0.032)


def test_controller_lowers_p_but_not_below_zero_and_clamps_at_one():
    ctrl = AdaController(target=0.6, interval=1, kimg=1.0, p=0.05)
    ctrl.accumulate(-torch.ones(10))
    assert ctrl.step(batch_size=20) == pytest.approx(0.03)
    ctrl.accumulate(-torch.ones(10))
    assert ctrl.step(batch_size=20) == pytest.approx(0.01)
    ctrl.accumulate(-torch.ones(10))
    assert ctrl.step(batch_size=20) == 0.0
    # r_t = 0.5 (< target 0.6) lowers p too: the rule compares with the target, not with zero.
    ctrl = AdaController(target=0.6, interval=1, kimg=1.0, p=0.5)
    ctrl.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0]))
    assert ctrl.step(batch_size=100) == pytest.approx(0.4)
    ctrl = AdaController(interval=1, kimg=1.0, p=0.99)
    ctrl.accumulate(torch.ones(4))
    assert ctrl.step(batch_size=100) == 1.0


def test_controller_reduce_function_sees_and_replaces_the_sums():
    ctrl = AdaController(target=0.6, interval=1, kimg=1.0)
    ctrl.accumulate(-torch.ones(4))  # this rank alone would lower p
    seen = []

    def reduce(t: torch.Tensor) -> torch.Tensor:
        seen.append(t.clone())
        return t + torch.tensor([36.0, 36.0])  # other ranks: 36 outputs, all positive

    assert ctrl.step(batch_size=10, reduce=reduce) == pytest.approx(0.01)
    assert torch.equal(seen[0], torch.tensor([-4.0, 4.0])) and ctrl.rt == pytest.approx(32 / 40)


def test_controller_state_round_trips_through_weights_only_load(tmp_path):
    ctrl = AdaController(target=0.6, interval=4, kimg=1.0)
    for _ in range(5):  # one update, then one pending minibatch
        ctrl.accumulate(torch.tensor([1.0, 1.0, 1.0]))
        ctrl.step(batch_size=8)
    torch.save(ctrl.state_dict(), tmp_path / "ada.pt")
    pipe = AugmentPipe("bgc")
    back = AdaController(target=0.6, interval=4, kimg=1.0, pipe=pipe)
    back.load_state_dict(torch.load(tmp_path / "ada.pt", weights_only=True))
    assert back.p == ctrl.p == pytest.approx(0.032) and float(pipe.p) == pytest.approx(0.032)
    assert (back.batches, back.images, back.updates) == (1, 8, 1)
    assert torch.equal(back.acc, torch.tensor([3.0, 3.0])) and back.rt == ctrl.rt == 1.0
    # Both continue identically.
    for c in (ctrl, back):
        for _ in range(3):
            c.accumulate(torch.tensor([-1.0, -1.0, 1.0]))
            c.step(batch_size=8)
    # The pending minibatch counts: 4 minibatches, 3 - 3 = 0 over 12 outputs, so r_t = 0 and p drops.
    assert back.p == ctrl.p == 0.0 and back.rt == ctrl.rt == 0.0 and back.updates == 2
