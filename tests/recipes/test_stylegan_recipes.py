"""The StyleGAN2 and StyleGAN training games: lazy regularisation, path length, EMA half-life, style mixing,
ADA, progressive growing; resume exact, also in the middle of a fade."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.errors import GanforgeError
from ganforge.recipes.context import StepContext
from ganforge.recipes.stylegan import parse_by_res, progressive_lod
from ganforge.registry import create_model, recipe_class
from ganforge.training.checkpoint import load_state, resolve_checkpoint

CPU = torch.device("cpu")
TINY2 = ["model.config=cpu-tiny", "model.channels=1", "model.channel_max=16", "model.z_dim=16", "model.w_dim=16",
         "train.batch_size=8", "train.progress=false", "train.sample_every=100", "train.ckpt_every=100",
         "train.n_samples=4"]


def _sg2(**rargs):
    models = create_model("stylegan2", config="cpu-tiny", channels=1, channel_max=16, z_dim=16, w_dim=16)
    rcls = recipe_class("stylegan2")
    return models, rcls(models, rcls.Config(**rargs), CPU)


def _batch(n=8):
    return {"image": torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1}


def test_progressive_schedule_trains_then_fades_each_resolution():
    # 32 px from 8 px: lod 2 for 10 kimg, fade to 1 over 10 kimg, lod 1 for 10 kimg, fade to 0, then 0.
    f = lambda n: progressive_lod(n, 32, 8, 10, 10)  # noqa: E731
    assert f(0) == 2 and f(9_999) == 2
    assert f(15_000) == pytest.approx(1.5)
    assert f(20_000) == 1 and f(29_000) == 1
    assert f(32_500) == pytest.approx(0.75)
    assert f(40_000) == 0 and f(10**7) == 0
    assert progressive_lod(5_000, 32, 64, 10, 10) == 0  # a start above the image size: full resolution
    assert parse_by_res("8:128, 16:64", int, "k") == {8: 128, 16: 64}
    with pytest.raises(GanforgeError, match="power-of-two"):
        parse_by_res("12:3", int, "recipe.batch_by_res")


def test_lazy_intervals_rescale_adam_like_the_reference():
    _, r = _sg2(r1_every=16, pl_every=4, g_lr=0.002, d_lr=0.003)
    g, d = r.optimizers["G"].param_groups[0], r.optimizers["D"].param_groups[0]
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and d["lr"] == pytest.approx(0.003 * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5)))
    assert d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    _, r = _sg2(r1_gamma=0, pl_weight=0)
    assert r.optimizers["G"].param_groups[0]["lr"] == pytest.approx(0.0025)  # no regulariser, no rescale


def test_r1_and_path_length_run_on_their_intervals_and_the_pl_mean_is_a_running_mean():
    torch.manual_seed(0)
    _, r = _sg2(r1_every=2, pl_every=3, augment="none", pl_decay=0.25)
    seen = []
    for step in range(6):
        out = r.step([_batch()], StepContext(step=step, batch_size=8))
        seen.append(("r1" in out, "pl_penalty" in out))
        if "pl_penalty" in out:
            pl = out["pl_mean"]
    assert seen == [(True, True), (False, False), (True, False), (False, True), (True, False), (False, False)]
    assert r.training_state()["d_steps"] == 6 and r.training_state()["g_steps"] == 6
    assert float(r.pl_mean) == pytest.approx(pl)
    # one more PL pass: mean <- mean + 0.25 * (batch mean - mean)
    before = float(r.pl_mean)
    lengths = []
    orig = ganforge.recipes.stylegan.path_lengths

    def spy(*a):
        out = orig(*a)
        lengths.append(out.detach())
        return out

    ganforge.recipes.stylegan.path_lengths = spy
    try:
        r.g_reg(8, StepContext(step=7, batch_size=8))
    finally:
        ganforge.recipes.stylegan.path_lengths = orig
    assert lengths[0].shape == (4,)  # pl_batch_shrink 2
    assert float(r.pl_mean) == pytest.approx(before + 0.25 * (float(lengths[0].mean()) - before), rel=1e-5)


def test_g_phase_tracks_mean_w_and_d_phase_does_not():
    models, r = _sg2(augment="none", pl_weight=0, r1_gamma=0)
    w0 = models["G"].mapping.w_avg.clone()
    r.d_main(_batch(), StepContext(batch_size=8))
    assert torch.equal(models["G"].mapping.w_avg, w0)
    r.g_main(8, StepContext(batch_size=8))
    assert not torch.equal(models["G"].mapping.w_avg, w0)


def test_style_mixing_draws_a_second_latent_after_the_crossover():
    models, r = _sg2(style_mixing=1.0)
    ws = r._ws(torch.randn(4, 16), None, StepContext(step=5, batch_size=4), update_w_avg=False)
    num_ws = ws.shape[1]
    same = [(ws[:, i] == ws[:, 0]).all().item() for i in range(num_ws)]
    cut = same.index(False)
    assert 1 <= cut < num_ws and all(same[:cut]) and not any(same[cut:])
    _, r0 = _sg2(style_mixing=0.0)
    ws = r0._ws(torch.randn(4, 16), None, StepContext(batch_size=4), update_w_avg=False)
    assert all((ws[:, i] == ws[:, 0]).all() for i in range(num_ws))


def test_ema_half_life_ramps_up_like_the_reference():
    _, r = _sg2(ema_kimg=10, ema_rampup=0.05)
    r.attach(type("T", (), {"ema": 0.999, "batch_size": 8})())
    ctx = StepContext(step=0, images_seen=0, batch_size=8)
    assert r.ema_decay(ctx) == pytest.approx(0.5 ** (8 / (8 * 0.05)))
    ctx = StepContext(step=10**4, images_seen=10**6, batch_size=8)
    assert r.ema_decay(ctx) == pytest.approx(0.5 ** (8 / 10_000))


def test_ada_raises_p_while_d_is_sure_of_the_reals():
    models, r = _sg2(augment="ada", ada_kimg=0.1, ada_interval=1, ada_target=0.6)
    with torch.no_grad():  # a D that calls everything real
        models["D"].b4.out.bias.fill_(100.0)
    out = r.step([_batch()], StepContext(batch_size=8))
    assert out["augment_p"] == pytest.approx(8 / 100)


@pytest.mark.parametrize("preset,extra", [
    ("stylegan2", ["recipe.augment=ada", "recipe.ada_kimg=0.5", "recipe.ada_interval=1", "recipe.augment_p=0.5",
                   "recipe.r1_every=2", "recipe.pl_every=2",
                   "train.ema=0.5"]),
    ("stylegan", ["model.config=cpu-small", "model.fmap_max=16", "model.z_dim=16", "model.w_dim=16",
                  "recipe.phase_kimg=0.008", "recipe.fade_kimg=0.032", "recipe.batch_by_res=8:8,16:4",
                  "train.ema=0.5"]),
])
def test_resume_is_exact_with_augmentation_and_in_the_middle_of_a_fade(tmp_path, preset, extra):
    ov = (TINY2 if preset == "stylegan2" else TINY2[5:]) + extra + [f"recipe.name={preset}", "model.channels=1",
                                                                     "data.source=mnist"]
    full = ganforge.train(preset if preset == "stylegan2" else "stylegan", overrides=ov + ["train.steps=6"],
                          name="full", runs_dir=str(tmp_path))
    part = ganforge.train(preset if preset == "stylegan2" else "stylegan", overrides=ov + ["train.steps=3"],
                          name="part", runs_dir=str(tmp_path))
    state = load_state(resolve_checkpoint(part))
    if preset == "stylegan":  # the third step saw 16 images: 8 into the 32-image fade from 8 to 16 px
        g = load_file(str(resolve_checkpoint(part) / "G.safetensors"))
        assert 1 < float(g["synthesis.lod"]) < 2
    else:
        assert float(state["recipe"]["augment_p"]) not in (0.0, 0.5)  # p moved, and is saved
    ganforge.train(resume=part, overrides=["train.steps=6"], runs_dir=str(tmp_path))
    for net in ("G", "D", "G_ema"):
        a = load_file(str(resolve_checkpoint(full) / f"{net}.safetensors"))
        b = load_file(str(resolve_checkpoint(part) / f"{net}.safetensors"))
        for k in a:
            assert torch.equal(a[k], b[k]), f"{net}.{k} differs after resume"
    sa, sb = load_state(resolve_checkpoint(full)), load_state(resolve_checkpoint(part))
    assert sa["recipe"]["g_steps"] == sb["recipe"]["g_steps"] == 6
    assert torch.equal(torch.as_tensor(sa["recipe"]["pl_mean"]), torch.as_tensor(sb["recipe"]["pl_mean"]))


@pytest.mark.parametrize("override,msg", [
    ("recipe.augment=magic", "recipe.augment"),
    ("recipe.r1_every=0", "r1_every"),
    ("recipe.style_mixing=1.5", "style_mixing"),
    ("recipe.ada_ops=bogus", "bogus"),
])
def test_bad_stylegan2_options_are_refused_before_training(tmp_path, override, msg):
    with pytest.raises(GanforgeError, match=msg):
        ganforge.train("stylegan2", overrides=TINY2 + ["recipe.name=stylegan2", "train.steps=1", override],
                       name="bad", runs_dir=str(tmp_path))
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_stylegan_recipe_refuses_other_models():
    rcls = recipe_class("stylegan")
    with pytest.raises(GanforgeError, match="progressive"):
        rcls(create_model("stylegan2", config="cpu-tiny"), rcls.Config(), CPU)
    with pytest.raises(GanforgeError, match="style-based"):
        recipe_class("stylegan2")(create_model("dcgan"), rcls.Config(), CPU)
    assert math.isclose(0.5 ** 0, 1)


def test_self_conditioned_stylegan2_trains_on_clusters_and_samples_without_labels(tmp_path):
    run = ganforge.train("stylegan2", overrides=TINY2 + ["recipe.name=stylegan2", "train.steps=2",
                                                         "model.clusters=6", "train.ema=0.5"],
                         name="sc", runs_dir=str(tmp_path))
    g = ganforge.load(run)
    prior = g.net.mapping.cluster_prior.prior
    assert prior.shape == (6,) and not torch.allclose(prior, torch.full((6,), 1 / 6))  # the clusters' sizes
    assert g.io.num_classes == 0
    assert g.sample(3, seed=0).shape == (3, 1, 32, 32)
    z = torch.randn(5, 16)
    G = g.net
    assert torch.equal(G.mapping(z), G.mapping(z, G.mapping.cluster_prior(z)))


def test_self_conditioned_stylegan_v1_trains_on_clusters_and_samples_without_labels(tmp_path):
    """StyleGAN (2019) self-conditions as StyleGAN2 does: the mapping draws the cluster from z, D reads it."""
    run = ganforge.train("stylegan", overrides=TINY2[5:] + ["model.config=cpu-small", "model.fmap_max=16",
                                                            "model.z_dim=16", "model.w_dim=16", "model.channels=1",
                                                            "model.clusters=5", "model.mbstd_group=2",
                                                            "recipe.start_res=32", "train.steps=2"],
                         name="v1sc", runs_dir=str(tmp_path))
    g = ganforge.load(run)
    G = g.net
    prior = G.cluster_prior.prior
    assert prior.shape == (5,) and not torch.allclose(prior, torch.full((5,), 0.2))  # the clusters' sizes
    assert g.io.num_classes == 0 and g.sample(3, seed=0).shape == (3, 1, 32, 32)
    z = torch.randn(6, 16)
    torch.testing.assert_close(G.mapping(z), G.mapping(z, G.cluster_prior(z)))
    assert not torch.allclose(G.mapping(z, torch.zeros(6, dtype=torch.long)), G.mapping(z, torch.full((6,), 4)))
    m = create_model("stylegan", **{k: v for k, v in g.config["model"].items() if k != "name"})
    assert m["D"].num_classes == 5 and m["D"].mbstd.group_size == 2
    with pytest.raises(GanforgeError, match="replaces class labels"):
        create_model("stylegan", num_classes=10, clusters=10)
    with pytest.raises(GanforgeError, match="mbstd_group"):
        create_model("stylegan", mbstd_group=0)


def test_the_classic_game_trains_a_self_conditioned_stylegan2_too(tmp_path):
    """Any noise recipe drives any noise model: the gan recipe finds the cluster prior in the mapping."""
    run = ganforge.train("stylegan2", overrides=TINY2 + ["recipe.name=gan", "train.steps=2", "model.clusters=4",
                                                         "recipe.r1_gamma=1"],
                         name="g", runs_dir=str(tmp_path))
    g = ganforge.load(run)
    assert not torch.allclose(g.net.cluster_prior.prior, torch.full((4,), 0.25))
