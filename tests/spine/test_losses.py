import math

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.losses import d_loss, g_loss, gradient_penalty
from ganforge.losses.penalties import r1_penalty


def _sig(x):
    return 1 / (1 + math.exp(-x))


R = torch.tensor([2.0, -1.0])
F = torch.tensor([0.5, -3.0])


def test_bce_losses_match_log_d_formulas():
    want_d = -sum(math.log(_sig(r)) for r in R.tolist()) / 2 - sum(math.log(1 - _sig(f)) for f in F.tolist()) / 2
    assert d_loss(R, F, "ns").item() == pytest.approx(want_d, rel=1e-6)
    assert d_loss(R, F, "minimax").item() == pytest.approx(want_d, rel=1e-6)
    assert g_loss(F, "ns").item() == pytest.approx(-sum(math.log(_sig(f)) for f in F.tolist()) / 2, rel=1e-6)
    assert g_loss(F, "minimax").item() == pytest.approx(sum(math.log(1 - _sig(f)) for f in F.tolist()) / 2, rel=1e-6)


def test_lsgan_hinge_wasserstein():
    assert d_loss(R, F, "lsgan").item() == pytest.approx(0.5 * (((R - 1) ** 2).mean() + (F ** 2).mean()).item())
    assert g_loss(F, "lsgan").item() == pytest.approx(0.5 * ((F - 1) ** 2).mean().item())
    # hinge: relu(1 - r) + relu(1 + f)
    assert d_loss(R, F, "hinge").item() == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert g_loss(F, "hinge").item() == pytest.approx(1.25)
    assert d_loss(R, F, "wasserstein").item() == pytest.approx(F.mean().item() - R.mean().item())
    assert g_loss(F, "wasserstein").item() == pytest.approx(-F.mean().item())


def test_unknown_loss_is_user_error():
    with pytest.raises(GanforgeError, match="unknown loss"):
        d_loss(R, F, "nope")


def test_gradient_penalty_of_linear_critic_is_analytic():
    # D(x) = <w, x>: grad = w everywhere, so GP = (||w|| - 1)^2 whatever the interpolation.
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 1, 2, 2)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5 - 1) ** 2)


def test_gradient_penalty_uses_one_coefficient_per_sample():
    # Quadratic critic: grad at x_hat = 2 x_hat, so the penalty depends on where each sample is interpolated.
    torch.manual_seed(0)
    real, fake = torch.ones(4, 1, 1, 1), torch.zeros(4, 1, 1, 1)
    critic = lambda x: (x ** 2).flatten(1).sum(1)  # noqa: E731
    torch.manual_seed(1)
    eps = torch.rand(4, 1, 1, 1)
    torch.manual_seed(1)
    got = gradient_penalty(critic, real, fake)
    assert got.item() == pytest.approx(((2 * eps.flatten()).abs() - 1).pow(2).mean().item(), rel=1e-6)


def test_gradient_penalty_is_differentiable_wrt_critic():
    # Linear critic D(x) = <w, x> + b: GP = (||w|| - 1)^2, so dGP/dw = 2 (||w|| - 1) w / ||w|| and dGP/db = 0.
    # Only a penalty built with create_graph=True carries this second-order gradient back to w.
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 1)
    gp = gradient_penalty(lambda x: lin(x.flatten(1)).squeeze(1), torch.randn(3, 4), torch.randn(3, 4))
    gp.backward()
    w = lin.weight.detach()
    norm = w.norm()
    assert gp.item() == pytest.approx(((norm - 1) ** 2).item(), rel=1e-5)
    assert torch.allclose(lin.weight.grad, 2 * (norm - 1) * w / norm, rtol=1e-4, atol=1e-6)
    assert lin.bias.grad is None or torch.all(lin.bias.grad == 0)


def test_r1_penalty():
    x = torch.randn(3, 2, requires_grad=True)
    out = (x ** 2).sum(1)
    assert r1_penalty(out, x).item() == pytest.approx((4 * x.detach() ** 2).sum(1).mean().item(), rel=1e-6)


def test_r1_penalty_is_differentiable_wrt_discriminator():
    # D(x) = <w, x>: grad_x D = w, so R1 = ||w||^2 and dR1/dw = 2 w (needs create_graph=True).
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 1, bias=False)
    x = torch.randn(4, 5, requires_grad=True)
    r1 = r1_penalty(lin(x).squeeze(1), x)
    assert r1.item() == pytest.approx(lin.weight.detach().pow(2).sum().item(), rel=1e-6)
    r1.backward()
    assert torch.allclose(lin.weight.grad, 2 * lin.weight.detach(), rtol=1e-5)


def test_one_sided_label_smoothing_is_bce_with_soft_target():
    t = 0.9
    want = torch.nn.functional.binary_cross_entropy_with_logits(R, torch.full_like(R, t)).item() + \
        torch.nn.functional.binary_cross_entropy_with_logits(F, torch.zeros_like(F)).item()
    assert d_loss(R, F, "ns", real_label=t).item() == pytest.approx(want, rel=1e-6)
    assert d_loss(R, F, "ns", real_label=1.0).item() == pytest.approx(d_loss(R, F, "ns").item())
