"""The noise-to-image GAN recipe: one step recomputed by hand from copies of G and D taken before it.

The random draws (latents, labels, GP interpolation points, augmentations) are read off the networks'
inputs with forward hooks, so the recomputation uses the very same draws without depending on which
random generator the recipe takes them from or in which order.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from ganforge.recipes.context import StepContext
import torch.nn.functional as F

from ganforge.registry import create_model, recipe_class

CPU = torch.device("cpu")
MODEL_ARGS = {
    "dcgan": dict(image_size=28, channels=1, ngf=8, ndf=8),  # BatchNorm in both nets: batch composition matters
    "cgan": dict(arch="dcgan", image_size=28, channels=1, ngf=8, ndf=8),
}


def _recipe(model: str, **rargs):
    rcls = recipe_class("gan")
    models = create_model(model, **MODEL_ARGS[model])
    return models, rcls(models, rcls.Config(**rargs), CPU)


def _step(recipe, batches):
    """One recipe step; the loop would hand it the step's context (index, ranks, noise)."""
    return recipe.step(batches, StepContext(batch_size=batches[0]["image"].shape[0]))


def _batch(model: str, n: int = 8):
    g = torch.Generator().manual_seed(11)
    batch = {"image": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1}
    if model == "cgan":
        batch["label"] = torch.randint(0, 10, (n,), generator=g)
    return batch


class Recorder:
    """Every call of G and D during a step, in order: ("G", inputs, output) or ("D", inputs)."""

    def __init__(self, models):
        self.calls: list[tuple] = []
        self.handles = [
            models["G"].register_forward_hook(self._g, with_kwargs=True),
            models["D"].register_forward_pre_hook(self._d, with_kwargs=True),
        ]

    @staticmethod
    def _inputs(args, kwargs):
        vals = list(args) + [kwargs[k] for k in ("y", "labels") if k in kwargs]
        x = vals[0].detach().clone()
        y = vals[1].detach().clone() if len(vals) > 1 and vals[1] is not None else None
        return x, y

    def _g(self, module, args, kwargs, output):
        self.calls.append(("G", self._inputs(args, kwargs), output.detach().clone()))

    def _d(self, module, args, kwargs):
        self.calls.append(("D", self._inputs(args, kwargs)))

    def remove(self):
        for h in self.handles:
            h.remove()

    def phases(self):
        """(G call of the D phase, D calls of the D phase, G call of the G phase, D calls of the G phase)."""
        g_idx = [i for i, c in enumerate(self.calls) if c[0] == "G"]
        assert len(g_idx) == 2, f"expected one G call per phase, got {len(g_idx)}"
        a, b = g_idx
        assert a == 0, "the D phase starts by sampling G"
        return self.calls[a], self.calls[a + 1:b], self.calls[b], self.calls[b + 1:]


def _same_rows(x, ref):
    """Index into ref of each row of x that equals a row of ref exactly (-1 where none does)."""
    eq = (x.flatten(1)[:, None, :] == ref.flatten(1)[None, :, :]).all(-1)
    return torch.where(eq.any(1), eq.float().argmax(1), torch.full((x.shape[0],), -1))


# The papers' objectives, written out on D's raw outputs (logits / critic values), in float64.
def _d_objective(r, f, loss, real_label=1.0):
    r, f = r.double(), f.double()
    if loss in ("ns", "minimax"):
        t = real_label  # one-sided label smoothing of the real target
        return -(t * torch.log(torch.sigmoid(r)) + (1 - t) * torch.log(1 - torch.sigmoid(r))).mean() \
            - torch.log(1 - torch.sigmoid(f)).mean()
    if loss == "lsgan":
        return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()
    if loss == "hinge":
        return torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean()
    return f.mean() - r.mean()  # wasserstein critic


def _g_objective(f, loss):
    f = f.double()
    if loss == "ns":
        return -torch.log(torch.sigmoid(f)).mean()
    if loss == "minimax":
        return torch.log(1 - torch.sigmoid(f)).mean()
    if loss == "lsgan":
        return 0.5 * ((f - 1) ** 2).mean()
    return -f.mean()  # hinge and wasserstein


CASES = [
    ("dcgan", dict(loss="ns")),
    ("dcgan", dict(loss="minimax")),
    ("dcgan", dict(loss="lsgan")),
    ("dcgan", dict(loss="hinge")),
    ("dcgan", dict(loss="wasserstein")),
    ("dcgan", dict(loss="wasserstein", gp_weight=10.0)),  # WGAN-GP
    ("dcgan", dict(loss="ns", real_label=0.9)),
    ("cgan", dict(loss="hinge")),  # labels: the data's in the D phase, drawn ones in the G phase
]


@pytest.mark.parametrize("model,rargs", CASES, ids=[f"{m}-{'-'.join(f'{k}={v}' for k, v in a.items())}"
                                                    for m, a in CASES])
def test_gan_step_is_the_papers_objective(model, rargs):
    torch.manual_seed(0)
    models, r = _recipe(model, **rargs)
    loss, gp_weight, real_label = rargs["loss"], rargs.get("gp_weight", 0.0), rargs.get("real_label", 1.0)
    batch = _batch(model)
    real = batch["image"]
    g0, d0 = copy.deepcopy(models["G"]), copy.deepcopy(models["D"])
    rec = Recorder(models)
    try:
        out = _step(r, [batch])
    finally:
        rec.remove()
    assert all(math.isfinite(v) for v in out.values())
    (_, (z1, y1), fake1), d_calls, (_, (z2, y2), fake2), g_calls = rec.phases()

    # ---- D phase: D(real) against D(G(z)) with G frozen, plus the gradient penalty on interpolates
    assert z1.shape == (8, 100) and z2.shape == (8, 100)
    if model == "cgan":
        assert torch.equal(y1, batch["label"])  # the data's labels condition G and D in the D phase
        assert y2 is not None and y2.shape == (8,) and ((0 <= y2) & (y2 < 10)).all()
    with torch.no_grad():
        assert torch.allclose(g0(z1, y1), fake1, atol=1e-6)  # G's weights before the step
    d_real, d_fake, gp_terms = [], [], []
    for _, (x, y) in d_calls:
        which_real, which_fake = _same_rows(x, real), _same_rows(x, fake1)
        with torch.no_grad():
            o = d0(x, y)
        if (which_real >= 0).all():
            assert torch.equal(which_real, torch.arange(8)) and (y is None or torch.equal(y, batch["label"]))
            d_real.append(o)
        elif (which_fake >= 0).all():
            assert torch.equal(which_fake, torch.arange(8))
            d_fake.append(o)
        else:
            # WGAN-GP: x_hat = eps * real + (1 - eps) * fake, one eps in [0, 1] per sample
            diff = (real - fake1).flatten(1)
            eps = ((x - fake1).flatten(1) * diff).sum(1) / (diff * diff).sum(1)
            assert ((eps >= -1e-5) & (eps <= 1 + 1e-5)).all() and eps.max() - eps.min() > 0.05
            assert torch.allclose(x, eps.view(-1, 1, 1, 1) * real + (1 - eps.view(-1, 1, 1, 1)) * fake1, atol=1e-5)
            xh = x.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(d0(xh, y).sum(), xh)
            gp_terms.append(((grad.flatten(1).norm(dim=1) - 1) ** 2).mean())
    assert len(d_real) == 1 and len(d_fake) == 1, "D sees the real batch and the fake batch once each"
    assert len(gp_terms) == (1 if gp_weight > 0 else 0)
    want_d = _d_objective(d_real[0], d_fake[0], loss, real_label)
    if gp_weight > 0:
        assert out["gp"] == pytest.approx(float(gp_terms[0]), rel=1e-4)
        want_d = want_d + gp_weight * gp_terms[0].double()
    assert out["loss_D"] == pytest.approx(float(want_d), rel=1e-5, abs=1e-6)
    assert out["D_real"] == pytest.approx(float(d_real[0].mean()), rel=1e-5, abs=1e-6)
    assert out["D_fake"] == pytest.approx(float(d_fake[0].mean()), rel=1e-5, abs=1e-6)
    for other in ("ns", "minimax", "lsgan", "hinge", "wasserstein"):
        if other != loss and not {other, loss} <= {"ns", "minimax"} and gp_weight == 0:  # ns/minimax share D's loss
            assert out["loss_D"] != pytest.approx(float(_d_objective(d_real[0], d_fake[0], other, real_label)),
                                                   rel=1e-3), f"D loss is also {other}'s"

    # ---- G phase: fresh samples of the not-yet-updated G, judged by the D just updated
    with torch.no_grad():
        assert torch.allclose(g0(z2, y2), fake2, atol=1e-6)
    assert len(g_calls) == 1
    (_, (x, y)) = g_calls[0]
    assert torch.equal(x, fake2) and (y is None or torch.equal(y, y2))
    d1 = copy.deepcopy(models["D"])
    with torch.no_grad():
        new, stale = _g_objective(d1(x, y), loss), _g_objective(d0(x, y), loss)
    assert out["loss_G"] == pytest.approx(float(new), rel=1e-5, abs=1e-6)
    assert out["loss_G"] != pytest.approx(float(stale), rel=1e-4, abs=1e-6), "G was judged by the stale D"
    for other in ("ns", "minimax", "lsgan", "hinge"):
        if other != loss and {other, loss} != {"hinge", "wasserstein"}:  # hinge and wasserstein share G's loss
            with torch.no_grad():
                assert out["loss_G"] != pytest.approx(float(_g_objective(d1(x, y), other)), rel=1e-3)

    # both nets were updated by the step
    for k, before in (("G", g0), ("D", d0)):
        assert any(not torch.equal(p, q) for p, q in zip(before.parameters(), models[k].parameters())), k


def test_gan_step_augments_every_d_input():
    """DiffAugment: D only ever sees translated images, real and fake, in both phases (and G's
    gradient goes through the augmentation, so G still trains)."""
    torch.manual_seed(1)
    models, r = _recipe("dcgan", loss="ns", diffaug="translation")
    batch = _batch("dcgan")
    g0 = copy.deepcopy(models["G"])
    rec = Recorder(models)
    try:
        out = _step(r, [batch])
    finally:
        rec.remove()
    assert all(math.isfinite(v) for v in out.values())
    (_, _, fake1), d_calls, (_, _, fake2), g_calls = rec.phases()

    def shift(img, dy, dx):
        ref = torch.zeros_like(img)
        h, w = img.shape[-2:]
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        ref[:, yd, xd] = img[:, ys, xs]
        return ref

    def shifts(seen, source):
        """The (dy, dx) that maps each source image to what D saw; fails if one is not a shift."""
        found = []
        for i in range(source.shape[0]):
            m = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if torch.equal(seen[i], shift(source[i], dy, dx))]
            assert m, f"D's input {i} is not a translation of its source image"
            found.append(m[0])
        return found

    assert len(d_calls) == 2 and len(g_calls) == 1
    real_shifts = shifts(d_calls[0][1][0], batch["image"])
    fake_shifts = shifts(d_calls[1][1][0], fake1)
    g_shifts = shifts(g_calls[0][1][0], fake2)
    for s in (real_shifts, fake_shifts, g_shifts):
        assert sum(v != (0, 0) for v in s) >= 4, s  # really augmented, not passed through
    assert real_shifts != fake_shifts  # independent draws for real and fake
    assert any(not torch.equal(p, q) for p, q in zip(g0.parameters(), models["G"].parameters()))
