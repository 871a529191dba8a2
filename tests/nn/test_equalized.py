import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.nn.equalized import (
    AdaIN,
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    ModulatedConv2d,
    NoiseInjection,
    PixelNorm,
    SynthesisLayer,
    ToRGB,
    bias_act,
    modulated_conv2d,
)
from ganforge.nn.upfirdn import setup_filter, upfirdn2d

F4 = setup_filter([1, 3, 3, 1])


@pytest.mark.parametrize("lr", [1.0, 0.01])
def test_equal_linear_scales_weights_by_lr_over_sqrt_fan_in_at_run_time(lr):
    torch.manual_seed(0)
    layer = EqualLinear(64, 32, bias_init=0.5, lr_multiplier=lr)
    # Stored N(0, 1/lr): Adam's steps are then the same size relative to the weights in every layer.
    assert abs(layer.weight.std().item() * lr - 1) < 0.05
    torch.testing.assert_close(layer.bias * lr, torch.full((32,), 0.5))  # bias_init is the effective bias
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
    x = torch.randn(5, 64)
    expected = x @ (layer.weight * lr / math.sqrt(64)).T + layer.bias * lr
    torch.testing.assert_close(layer(x), expected)


def test_lrelu_has_slope_0_2_and_gain_sqrt_2():
    x = torch.tensor([[-2.0, -0.5, 0.0, 1.5]])
    torch.testing.assert_close(bias_act(x, act="lrelu"), torch.tensor([[-0.4, -0.1, 0.0, 1.5]]) * math.sqrt(2))
    layer = EqualLinear(4, 4, activation="lrelu")
    with torch.no_grad():
        layer.weight.copy_(torch.eye(4) * 2)  # runtime gain 1/sqrt(4) makes this the identity
    torch.testing.assert_close(layer(x), bias_act(x, act="lrelu"))
    with pytest.raises(GanforgeError):
        EqualLinear(4, 4, activation="swish")


def test_equal_conv_is_a_conv_with_weight_over_sqrt_fan_in():
    torch.manual_seed(0)
    conv = EqualConv2d(4, 6, 3, activation="lrelu")
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 4, 8, 8)
    pre = F.conv2d(x, conv.weight / math.sqrt(4 * 9), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), F.leaky_relu(pre, 0.2) * math.sqrt(2))
    clamped = EqualConv2d(4, 6, 3, conv_clamp=0.1)
    assert clamped(x).abs().max() <= 0.1


def test_equal_conv_resampling_is_filter_then_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    up = EqualConv2d(4, 6, 3, up=2).double()
    down = EqualConv2d(4, 6, 3, down=2).double()
    w_up = up.weight / math.sqrt(36)
    w_down = down.weight / math.sqrt(36)
    # Upsampling: zero insertion, the [1,3,3,1] low-pass (gain 4), then the conv (applied, like the
    # reference's up layers, as a true convolution). Padding 1 + (5//2, 2//2) keeps exactly 2H.
    expected_up = F.conv2d(upfirdn2d(x, F4, up=2, padding=(3, 2, 3, 2), gain=4), w_up.flip([2, 3]))
    torch.testing.assert_close(up(x), expected_up)
    assert up(x).shape == (2, 6, 16, 16)
    # Downsampling: low-pass, then a stride-2 conv (cross-correlation).
    expected_down = F.conv2d(upfirdn2d(x, F4, padding=2), w_down, stride=2)
    torch.testing.assert_close(down(x), expected_down)
    assert down(x).shape == (2, 6, 4, 4)
    assert EqualConv2d(4, 6, 1, down=2)(x.float()).shape == (2, 6, 4, 4)


CONFIGS = [  # (up, down, kernel, demodulate, noise)
    (1, 1, 3, True, False),
    (1, 1, 3, False, True),
    (2, 1, 3, True, True),
    (2, 1, 1, False, False),
    (1, 2, 3, True, False),
    (1, 2, 1, True, True),
]


@pytest.mark.parametrize("up,down,k,demod,noise", CONFIGS)
def test_fused_and_non_fused_modulated_conv_agree(up, down, k, demod, noise):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, 8, dtype=torch.float64)
    weight = torch.randn(7, 5, k, k, dtype=torch.float64)
    styles = torch.randn(3, 5, dtype=torch.float64)
    size = 8 * up // down
    nz = torch.randn(3, 1, size, size, dtype=torch.float64) if noise else None
    kw = dict(noise=nz, up=up, down=down, padding=k // 2, resample_filter=F4, demodulate=demod)
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kw)
    split = modulated_conv2d(x, weight, styles, fused_modconv=False, **kw)
    assert fused.shape == (3, 7, size, size)
    torch.testing.assert_close(fused, split, atol=1e-10, rtol=0)
    # Each sample really gets its own weights: sample 1 alone gives the same result as in the batch.
    alone = modulated_conv2d(x[1:2], weight, styles[1:2], **{**kw, "noise": None if nz is None else nz[1:2]})
    torch.testing.assert_close(alone[0], fused[1], atol=1e-10, rtol=0)


def test_modulation_matches_scaling_the_weights_per_sample():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    styles = torch.randn(2, 3, dtype=torch.float64)
    out = modulated_conv2d(x, weight, styles, padding=1)
    for i in range(2):
        wi = weight * styles[i].reshape(1, 3, 1, 1)
        wi = wi / wi.square().sum(dim=[1, 2, 3], keepdim=True).add(1e-8).sqrt()
        torch.testing.assert_close(out[i : i + 1], F.conv2d(x[i : i + 1], wi, padding=1))


def test_demodulation_gives_unit_variance_outputs():
    torch.manual_seed(0)
    x = torch.randn(4, 32, 24, 24)
    weight = torch.randn(16, 32, 3, 3)
    styles = torch.randn(4, 32) * 3 + 1  # far from unit scale: without demodulation std is far from 1
    out = modulated_conv2d(x, weight, styles, padding=0)
    std = out.std(dim=[2, 3])  # per sample and output channel
    assert std.shape == (4, 16)
    assert ((std - 1).abs() < 0.15).all(), std
    raw = modulated_conv2d(x, weight, styles, padding=0, demodulate=False).std(dim=[2, 3])
    assert ((raw - 1).abs() > 1).all()


def test_torgb_is_a_modulated_1x1_conv_without_demodulation():
    torch.manual_seed(0)
    rgb = ToRGB(8, 3, w_dim=10)
    with torch.no_grad():
        rgb.bias.normal_()
    x, w = torch.randn(2, 8, 5, 5), torch.randn(2, 10)
    out = rgb(x, w)
    assert out.shape == (2, 3, 5, 5)
    styles = rgb.conv.affine(w) / math.sqrt(8)  # weight gain 1/sqrt(in * 1 * 1)
    expected = torch.stack([F.conv2d(x[i : i + 1] * styles[i].reshape(1, 8, 1, 1), rgb.conv.weight)[0] for i in range(2)])
    torch.testing.assert_close(out, expected + rgb.bias.reshape(1, 3, 1, 1))
    torch.testing.assert_close(rgb(x, w, fused_modconv=False), out)
    # Styles start at 1 (affine bias init 1).
    torch.testing.assert_close(rgb.conv.affine.bias, torch.ones(8))


def test_synthesis_layer_shapes_noise_modes_and_fused_paths():
    torch.manual_seed(0)
    layer = SynthesisLayer(4, 6, w_dim=10, resolution=16, up=2)
    with torch.no_grad():
        layer.noise.strength.fill_(0.5)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 10)
    out = layer(x, w, noise_mode="const")
    assert out.shape == (2, 6, 16, 16)
    torch.testing.assert_close(layer(x, w, noise_mode="const", fused_modconv=False), out, atol=1e-5, rtol=0)
    assert not torch.allclose(layer(x, w, noise_mode="random"), layer(x, w, noise_mode="random"))
    assert not torch.allclose(layer(x, w, noise_mode="none"), out)
    with pytest.raises(GanforgeError):
        layer(x, w, noise_mode="sometimes")


def test_noise_injection_is_zero_init_per_channel():
    x = torch.randn(2, 3, 4, 4)
    inj = NoiseInjection(3, resolution=4)
    torch.testing.assert_close(inj(x), x)  # zero init: identity until trained
    with torch.no_grad():
        inj.strength.copy_(torch.tensor([0.0, 1.0, 2.0]))
    noise = torch.randn(2, 1, 4, 4)
    out = inj(x, noise=noise)
    torch.testing.assert_close(out - x, noise * torch.tensor([0.0, 1.0, 2.0]).reshape(1, 3, 1, 1))
    torch.testing.assert_close(inj(x, noise_mode="const"), inj(x, noise_mode="const"))
    torch.testing.assert_close(inj(x, noise_mode="none"), x)
    with pytest.raises(GanforgeError):
        NoiseInjection(3)(x, noise_mode="const")


def test_adain_sets_per_channel_mean_and_std_from_the_style():
    torch.manual_seed(0)
    ada = AdaIN(3, w_dim=5)
    with torch.no_grad():
        ada.affine.weight.zero_()
        ada.affine.bias.copy_(torch.tensor([0.5, -0.5, 1.0, 2.0, 0.0, -1.0]))  # (ys, yb) per channel
    x = torch.randn(2, 3, 8, 8) * 4 + 3
    out = ada(x, torch.randn(2, 5))
    torch.testing.assert_close(out.mean(dim=[2, 3]), torch.tensor([[2.0, 0.0, -1.0]] * 2), atol=1e-5, rtol=0)
    std = out.var(dim=[2, 3], unbiased=False).sqrt()
    torch.testing.assert_close(std, torch.tensor([[1.5, 0.5, 2.0]] * 2), atol=1e-4, rtol=0)


def test_minibatch_stddev_on_a_hand_made_batch():
    # Group size 2 on a batch of 4: groups are samples {0, 2} and {1, 3} (i mod N/G, as the reference).
    x = torch.zeros(4, 2, 3, 3)
    x[0], x[2] = 0.0, 2.0  # population std 1
    x[1], x[3] = 1.0, 5.0  # population std 2
    out = MinibatchStdDev(group_size=2)(x)
    assert out.shape == (4, 3, 3, 3)
    torch.testing.assert_close(out[:, :2], x)
    for i, s in enumerate([1.0, 2.0, 1.0, 2.0]):
        torch.testing.assert_close(out[i, 2], torch.full((3, 3), s), atol=1e-6, rtol=0)
    # Two statistics channels: one per half of the channels.
    x[:, 1] *= 3
    two = MinibatchStdDev(group_size=2, num_channels=2)(x)
    assert two.shape == (4, 4, 3, 3)
    torch.testing.assert_close(two[0, 2:, 0, 0], torch.tensor([1.0, 3.0]), atol=1e-6, rtol=0)
    # The whole batch (group_size=None) as one group.
    torch.testing.assert_close(MinibatchStdDev(None)(x)[0, 2, 0, 0], x[:, :, 0, 0].std(dim=0, unbiased=False).mean())
    with pytest.raises(GanforgeError):
        MinibatchStdDev(group_size=4)(torch.zeros(6, 2, 3, 3))


def test_pixel_norm_gives_unit_mean_square_features():
    x = torch.randn(5, 16, 2, 2) * 7
    out = PixelNorm()(x)
    torch.testing.assert_close(out.square().mean(dim=1), torch.ones(5, 2, 2))


@pytest.mark.parametrize("fused", [True, False])
def test_second_derivatives_through_upsampling_modulated_conv(fused):
    torch.manual_seed(0)
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)

    def op(x, weight, styles):
        return modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=F4, fused_modconv=fused)

    assert torch.autograd.gradcheck(op, (x, weight, styles))
    assert torch.autograd.gradgradcheck(op, (x, weight, styles))


def test_modulated_conv_module_and_shape_errors():
    mod = ModulatedConv2d(4, 6, w_dim=10, kernel_size=3)
    assert mod(torch.randn(2, 4, 5, 5), torch.randn(2, 10)).shape == (2, 6, 5, 5)
    with pytest.raises(GanforgeError):
        modulated_conv2d(torch.randn(2, 4, 5, 5), torch.randn(6, 4, 3, 3), torch.randn(3, 4))
