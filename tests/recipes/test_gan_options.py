"""Options of the noise-to-image recipe beyond the papers' base objectives: lazy R1, top-k training, a linear
learning-rate decay, spectral norm in the DCGAN discriminator. Each is recomputed by hand."""
from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.recipes.context import StepContext
from ganforge.registry import create_model, recipe_class

from test_gan_recipe import Recorder, _batch, _same_rows  # noqa: E402 (tests/recipes is on sys.path)

CPU = torch.device("cpu")
ARGS = dict(image_size=28, channels=1, ngf=8, ndf=8)
TINY = ["model.ngf=8", "model.ndf=8", "train.batch_size=8", "train.progress=false", "train.log_every=1",
        "train.ckpt_every=100", "train.sample_every=100", "train.n_samples=4", "train.ema=0"]


def _recipe(**rargs):
    rcls = recipe_class("gan")
    models = create_model("dcgan", **ARGS)
    return models, rcls(models, rcls.Config(**rargs), CPU)


def test_lazy_r1_is_gamma_half_interval_times_the_squared_gradient_on_reals():
    torch.manual_seed(0)
    models, r = _recipe(loss="ns", r1_gamma=3.0, r1_every=2)
    batch = _batch("dcgan")
    d0 = copy.deepcopy(models["D"])
    rec = Recorder(models)
    try:
        out = r.step([batch], StepContext(batch_size=8))
    finally:
        rec.remove()
    d_calls = [c for c in rec.calls if c[0] == "D"]
    reals = [x for _, (x, _) in d_calls if (_same_rows(x, batch["image"]) >= 0).all()]
    assert len(reals) == 2  # D(real) for the loss, then the R1 forward
    x = reals[1].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d0(x).sum(), x)
    want_r1 = grad.flatten(1).pow(2).sum(1).mean()
    assert out["r1"] == pytest.approx(float(want_r1), rel=1e-4)
    with torch.no_grad():
        fakes = [x for _, (x, _) in d_calls if not (_same_rows(x, batch["image"]) >= 0).all()]
        base = F.softplus(-d0(reals[0])).mean() + F.softplus(d0(fakes[0])).mean()
    assert out["loss_D"] == pytest.approx(float(base + 3.0 / 2 * 2 * want_r1), rel=1e-4)
    out2 = r.step([batch], StepContext(step=1, batch_size=8))
    assert "r1" not in out2  # lazy: every second D update only
    assert "r1" in r.step([batch], StepContext(step=2, batch_size=8))
    assert r.training_state()["d_updates"] == 3


def test_top_k_training_learns_from_the_fakes_d_rates_most_real():
    torch.manual_seed(0)
    models, r = _recipe(loss="ns", topk=0.5, topk_gamma=0.5)
    r.dataset_size = 8
    assert r.kept_fakes(8, 0) == 8 and r.kept_fakes(8, 8) == 4 and r.kept_fakes(8, 800) == 4
    r2 = _recipe(loss="ns", topk=0.25, topk_gamma=0.5)[1]
    r2.dataset_size = 8
    assert [r2.kept_fakes(8, 8 * e) for e in range(4)] == [8, 4, 2, 2]
    batch = _batch("dcgan")
    rec = Recorder(models)
    try:
        out = r.step([batch], StepContext(batch_size=8, images_seen=80))
    finally:
        rec.remove()
    assert out["topk"] == 4
    (_, (x, y)) = [c for c in rec.calls if c[0] == "D"][-1]
    with torch.no_grad():
        scores = models["D"](x, y)  # the D just updated, as the G phase used it
    want = F.softplus(-scores.topk(4).values).mean()
    assert out["loss_G"] == pytest.approx(float(want), rel=1e-5)
    assert out["loss_G"] != pytest.approx(float(F.softplus(-scores).mean()), rel=1e-4)
    r_off = _recipe(loss="ns")[1]
    assert r_off.kept_fakes(8, 10**6) == 8


@pytest.mark.parametrize("n_critic", [1, 2])
def test_reuse_fakes_trains_g_on_the_last_d_updates_fakes(n_critic):
    torch.manual_seed(0)
    models, r = _recipe(loss="ns", reuse_fakes=True, n_critic=n_critic)
    batches = [_batch("dcgan") for _ in range(n_critic)]
    rec = Recorder(models)
    try:
        out = r.step(batches, StepContext(batch_size=8, batches=n_critic))
    finally:
        rec.remove()
    g_calls = [c for c in rec.calls if c[0] == "G"]
    d_inputs = [x for c in rec.calls if c[0] == "D" for x in [c[1][0]]]
    assert len(g_calls) == n_critic  # one G forward per D update, none more for the G update
    last_fake = g_calls[-1][2]
    assert torch.equal(d_inputs[-1], last_fake) and torch.equal(d_inputs[-2], last_fake)  # D phase, then G phase
    with torch.no_grad():
        want = F.softplus(-models["D"](last_fake)).mean()  # the D just updated, as the G phase used it
    assert out["loss_G"] == pytest.approx(float(want), rel=1e-5)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in models["G"].parameters() if p.dim() > 1)
    assert r._kept is None  # the graph is not held past the step

    torch.manual_seed(0)
    models, r = _recipe(loss="ns")
    rec = Recorder(models)
    try:
        r.step([batches[0]], StepContext(batch_size=8))
    finally:
        rec.remove()
    g_calls = [c for c in rec.calls if c[0] == "G"]
    d_inputs = [x for c in rec.calls if c[0] == "D" for x in [c[1][0]]]
    assert len(g_calls) == 2 and not torch.equal(d_inputs[-1], g_calls[0][2])  # fresh noise for the G update


def test_lr_decay_is_linear_to_zero_over_the_last_fraction(tmp_path):
    run = ganforge.train("dcgan", overrides=TINY + ["train.steps=8", "recipe.lr_decay=0.5"], name="lr",
                         runs_dir=str(tmp_path))
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # logged after step k: the rate of the next step (0-based index k); decay from step 4 to 0 at step 8
    want = [2e-4 * (1.0 if k < 4 else (8 - k) / 4) for k in range(1, 9)]
    assert [rec["lr_G"] for rec in recs] == pytest.approx(want)
    assert [rec["lr_D"] for rec in recs] == pytest.approx(want)
    _, r = _recipe(lr_decay=0.25)
    r.attach(TrainConfig(steps=100))
    assert r.lr_factor(74) == 1.0 and r.lr_factor(75) == 1.0 and r.lr_factor(90) == pytest.approx(0.4)


def test_spectral_norm_discriminator_has_unit_spectral_norm():
    torch.manual_seed(0)
    m = create_model("dcgan", **ARGS, d_spectral=True, d_norm="none")
    d = m["D"]
    x = torch.randn(4, 1, 28, 28)
    for _ in range(30):  # power iterations run in train mode
        d(x)
    convs = [mod for mod in d.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") for c in convs)
    for c in convs:
        w = c.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2) == pytest.approx(1.0, abs=1e-3)
    plain = create_model("dcgan", **ARGS)["D"]
    assert not any(hasattr(c, "parametrizations") for c in plain.modules() if isinstance(c, torch.nn.Conv2d))


@pytest.mark.parametrize("override,msg", [
    ("recipe.r1_gamma=-1", "r1_gamma must be >= 0"), ("recipe.r1_every=0", "r1_every must be >= 1"),
    ("recipe.topk=0", "topk and recipe.topk_gamma"), ("recipe.topk=1.5", "topk and recipe.topk_gamma"),
    ("recipe.lr_decay=2", "lr_decay is a fraction"),
])
def test_bad_options_are_refused_before_training(tmp_path, override, msg):
    with pytest.raises(GanforgeError, match=msg):
        ganforge.train("dcgan", overrides=TINY + ["train.steps=1", override], name="bad", runs_dir=str(tmp_path))
