"""Pix2Pix and CycleGAN recipes: the papers' objectives recomputed independently, the image pool, the LR
schedule, bit-identical resume, held-out snapshots and data errors."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import ganforge
from ganforge.cli import main
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.data.demo import parse_demo
from ganforge.recipes._translation import lr_factor, reference_load_size
from ganforge.recipes.context import StepContext
from ganforge.recipes.image_pool import ImagePool
from ganforge.registry import create_model, recipe_class
from ganforge.training.checkpoint import load_state, resolve_checkpoint

CPU = torch.device("cpu")
P2P = ["model.image_size=32", "model.ngf=8", "model.ndf=8", "train.batch_size=4", "train.progress=false",
       "train.n_samples=4", "data.source=demo:colorize,n_train=16,n_test=4"]
CYC = ["model.image_size=32", "model.ngf=8", "model.ndf=8", "model.n_blocks=2", "train.batch_size=2",
       "train.progress=false", "train.n_samples=3", "data.source=demo:grass2gravel,n_train=8,n_test=3"]


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ganforge-cache")


@pytest.fixture(autouse=True)
def _cache(demo_cache, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(demo_cache))  # demo data made once per session, not in ~/.cache


def _recipe(model: str, margs: dict, **rargs):
    rcls = recipe_class(model)
    return rcls(create_model(model, **margs), rcls.Config(**{"total_steps": 100, **rargs}), CPU)


def _bce(logits, real: bool):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


def _mse(pred, real: bool):
    return ((pred - (1.0 if real else 0.0)) ** 2).mean()


# ---- Pix2Pix: D = 0.5 (real + fake), G = GAN + 100 L1, with dropout as the only noise ---------------------
@pytest.mark.parametrize("loss,crit", [("vanilla", _bce), ("lsgan", _mse)])
def test_pix2pix_step_is_the_papers_objective(loss, crit):
    torch.manual_seed(0)
    # 64 px: the U-Net has a dropout level, so the recomputation below must replay the same dropout masks
    r = _recipe("pix2pix", dict(image_size=64, ngf=8, ndf=8), loss=loss)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    g0, d0 = copy.deepcopy(r.G), copy.deepcopy(r.D)
    rng = torch.get_rng_state()
    out = r.step([{"A": a, "B": b}], StepContext())
    torch.set_rng_state(rng)
    with torch.no_grad():
        fake = g0(a)  # train mode: the same dropout draws as inside the step
        d_real, d_fake = d0(torch.cat([a, b], 1)), d0(torch.cat([a, fake], 1))
        loss_d = 0.5 * (crit(d_real, True) + crit(d_fake, False))
        d1 = r.D  # G is judged by the discriminator updated first in the same step
        gan = crit(d1(torch.cat([a, fake], 1)), True)
        l1 = (fake - b).abs().mean()
        stale = crit(d0(torch.cat([a, fake], 1)), True)
    assert all(math.isfinite(v) for v in out.values())
    assert out["loss_D"] == pytest.approx(float(loss_d), rel=1e-5)
    assert out["loss_D"] != pytest.approx(float(2 * loss_d), rel=1e-3)  # halved, not the plain sum
    assert out["loss_G_L1"] == pytest.approx(float(l1), rel=1e-5)
    assert out["loss_G_GAN"] == pytest.approx(float(gan), rel=1e-5)
    assert out["loss_G_GAN"] != pytest.approx(float(stale), rel=1e-4)  # the D update came first
    assert out["loss_G"] == pytest.approx(float(gan + 100 * l1), rel=1e-5)
    # both nets moved; G kept its train mode (dropout) after the step
    assert not torch.equal(g0.model.down[0].weight, r.G.model.down[0].weight)
    assert r.G.training


def test_pix2pix_without_dropout_replay_fails_control():
    """Control for the test above: without replaying the RNG the dropout masks differ, so the L1 does too."""
    torch.manual_seed(0)
    r = _recipe("pix2pix", dict(image_size=64, ngf=8, ndf=8))
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    g0 = copy.deepcopy(r.G)
    out = r.step([{"A": a, "B": b}], StepContext())
    with torch.no_grad():
        l1 = (g0(a) - b).abs().mean()
    assert out["loss_G_L1"] != pytest.approx(float(l1), rel=1e-6)


# ---- CycleGAN: G first (D frozen), cycle x10, identity x5, then D halved on pooled fakes ----------------
def test_cyclegan_step_is_the_papers_objective():
    torch.manual_seed(1)
    r = _recipe("cyclegan", dict(image_size=32, ngf=8, ndf=8, n_blocks=2))
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    gab, gba, da, db = (copy.deepcopy(r.nets[k]) for k in ("G_AB", "G_BA", "D_A", "D_B"))
    out = r.step([{"A": a, "B": b}], StepContext())
    with torch.no_grad():
        fake_b, fake_a = gab(a), gba(b)
        cyc_a, cyc_b = 10 * (gba(fake_b) - a).abs().mean(), 10 * (gab(fake_a) - b).abs().mean()
        idt_a, idt_b = 10 * 0.5 * (gba(a) - a).abs().mean(), 10 * 0.5 * (gab(b) - b).abs().mean()
        adv_ab, adv_ba = _mse(db(fake_b), True), _mse(da(fake_a), True)
        # D's update uses the pre-update fakes; the pool is not full yet, so they pass through unchanged
        loss_da = 0.5 * (_mse(da(a), True) + _mse(da(fake_a), False))
        loss_db = 0.5 * (_mse(db(b), True) + _mse(db(fake_b), False))
    assert all(math.isfinite(v) for v in out.values())
    assert out["loss_cycle_A"] == pytest.approx(float(cyc_a), rel=1e-5)
    assert out["loss_cycle_B"] == pytest.approx(float(cyc_b), rel=1e-5)
    assert out["loss_idt_A"] == pytest.approx(float(idt_a), rel=1e-5)
    assert out["loss_idt_B"] == pytest.approx(float(idt_b), rel=1e-5)
    assert out["loss_G_AB"] == pytest.approx(float(adv_ab), rel=1e-5)
    assert out["loss_G_BA"] == pytest.approx(float(adv_ba), rel=1e-5)
    assert out["loss_G"] == pytest.approx(float(adv_ab + adv_ba + cyc_a + cyc_b + idt_a + idt_b), rel=1e-5)
    assert out["loss_D_A"] == pytest.approx(float(loss_da), rel=1e-5)
    assert out["loss_D_B"] == pytest.approx(float(loss_db), rel=1e-5)
    assert len(r.pool_a) == len(r.pool_b) == 2
    assert torch.equal(r.pool_b.images[:2], fake_b) and torch.equal(r.pool_a.images[:2], fake_a)
    for k, before in (("G_AB", gab), ("D_A", da)):
        assert not torch.equal(next(before.parameters()), next(r.nets[k].parameters())), f"{k} was not updated"


def test_cyclegan_identity_off_and_channel_mismatch():
    r = _recipe("cyclegan", dict(image_size=32, ngf=8, ndf=8, n_blocks=1), lambda_identity=0.0)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    out = {k: float(v) for k, v in r.step([{"A": a, "B": b}], StepContext()).items()}
    assert "loss_idt_A" not in out
    assert out["loss_G"] == pytest.approx(
        out["loss_G_AB"] + out["loss_G_BA"] + out["loss_cycle_A"] + out["loss_cycle_B"], rel=1e-5)
    with pytest.raises(GanforgeError, match="lambda_identity=0"):
        _recipe("cyclegan", dict(image_size=32, ngf=8, ndf=8, n_blocks=1, channels_a=1))
    _recipe("cyclegan", dict(image_size=32, ngf=8, ndf=8, n_blocks=1, channels_a=1), lambda_identity=0.0)
    with pytest.raises(GanforgeError, match="unknown loss"):
        _recipe("cyclegan", dict(image_size=32, ngf=8, ndf=8, n_blocks=1), loss="hinge")
    p2p = recipe_class("pix2pix")
    with pytest.raises(GanforgeError, match="trains the pix2pix model"):
        p2p(create_model("cyclegan", image_size=32, ngf=8, ndf=8, n_blocks=1), p2p.Config(total_steps=1), CPU)


# ---- the image pool -------------------------------------------------------------------------------------
def _distinct(n: int, start: int) -> torch.Tensor:
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()


def test_image_pool_fills_then_swaps_half():
    pool = ImagePool(50)
    first = _distinct(50, 0)
    assert torch.equal(pool.query(first[:30]), first[:30]) and torch.equal(pool.query(first[30:]), first[30:])
    assert len(pool) == 50
    torch.manual_seed(0)
    new = _distinct(400, 1000)
    before = sorted(pool.images[:, 0, 0, 0].tolist())
    got = pool.query(new)
    vals, new_vals = got[:, 0, 0, 0].tolist(), new[:, 0, 0, 0].tolist()
    returned_old = [v for v, n in zip(vals, new_vals) if v != n]
    # every output is the new image at that position or a stored one; about half are stored ones
    assert 150 < len(returned_old) < 250
    assert all(v < 1000 or v in new_vals[:i] for i, v in enumerate(vals) if v != new_vals[i])
    # nothing is lost or duplicated: pool + outputs == old pool + inputs, as multisets
    after = pool.images[:, 0, 0, 0].tolist()
    assert sorted(after + vals) == sorted(before + new_vals)
    assert any(v < 50 for v in returned_old)  # images from the first fill came back out


def test_image_pool_state_round_trip_continues_identically():
    pool = ImagePool(5)
    pool.query(_distinct(7, 0))
    state = copy.deepcopy(pool.state_dict())
    assert state["count"] == 5 and state["images"].shape == (5, 1, 2, 2)
    torch.manual_seed(3)
    want = pool.query(_distinct(20, 100))
    other = ImagePool(5)
    other.load_state_dict(state)
    torch.manual_seed(3)
    assert torch.equal(other.query(_distinct(20, 100)), want)
    assert torch.equal(other.images, pool.images)
    assert torch.equal(ImagePool(0).query(_distinct(3, 0)), _distinct(3, 0))
    with pytest.raises(GanforgeError, match="pool_size"):
        ImagePool(4).load_state_dict(state)


# ---- learning-rate schedule -------------------------------------------------------------------------------
def test_lr_factor_constant_then_linear_to_zero():
    f = [lr_factor(s, 4, 10) for s in range(11)]
    assert f[:5] == [1.0] * 5
    assert f[4:] == pytest.approx([6 / 6, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0])
    assert lr_factor(12, 4, 10) == 0.0 and lr_factor(3, 10, 10) == 1.0  # decay_start >= total: constant


def test_lr_schedule_in_training_and_nan_scale(tmp_path):
    run = ganforge.train("pix2pix", overrides=P2P + ["train.steps=6", "recipe.total_steps=8", "recipe.decay_start=4",
                                                     "train.log_every=1", "train.ckpt_every=100",
                                                     "train.sample_every=100"], name="lr", runs_dir=str(tmp_path))
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # logged after step k: the rate of the next step (0-based index k)
    assert [r["lr_G"] for r in recs] == pytest.approx([2e-4 * lr_factor(k, 4, 8) for k in range(1, 7)])
    assert [r["lr_D"] for r in recs] == [r["lr_G"] for r in recs]
    r = _recipe("pix2pix", dict(image_size=32, ngf=8, ndf=8), total_steps=None, decay_start=None)
    with pytest.raises(GanforgeError, match="total_steps"):
        r.step([{"A": torch.zeros(1, 3, 32, 32), "B": torch.zeros(1, 3, 32, 32)}], StepContext())
    r.attach(TrainConfig(steps=10, seed=5))
    assert r.schedule == (5, 10) and r.seed == 5
    r.scale_lr(0.5)  # NaN recovery: the reduction survives later schedule updates
    r.end_of_step(StepContext(step=6))
    assert r.optimizers["G"].param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5 * 3 / 5)


def test_total_steps_defaults_to_train_steps(tmp_path):
    """Needs the loop to hand train.steps to the recipe (Recipe.attach) before building the dataset."""
    run = ganforge.train("pix2pix", overrides=P2P + ["train.steps=4", "train.log_every=1", "train.ckpt_every=100",
                                                     "train.sample_every=100"], name="d", runs_dir=str(tmp_path))
    lrs = [json.loads(line)["lr_G"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([2e-4 * lr_factor(k, 2, 4) for k in range(1, 5)]) and lrs[-1] == 0.0


# ---- resume -------------------------------------------------------------------------------------------------
def _weights(run):
    ck = resolve_checkpoint(run)
    return {f.stem: load_file(str(f)) for f in sorted(ck.glob("*.safetensors"))}


@pytest.mark.parametrize("preset,extra", [
    ("pix2pix", P2P + ["recipe.total_steps=6", "recipe.decay_start=2"]),
    # a pool of 3 is full after two steps, so the resumed leg swaps images drawn before the interruption
    ("cyclegan", CYC + ["recipe.total_steps=6", "recipe.decay_start=2", "recipe.pool_size=3"]),
])
def test_resume_is_bit_identical(tmp_path, preset, extra):
    ov = extra + ["train.log_every=1", "train.sample_every=100", "train.ckpt_every=100"]
    full = ganforge.train(preset, overrides=ov + ["train.steps=6"], name="full", runs_dir=str(tmp_path))
    part = ganforge.train(preset, overrides=ov + ["train.steps=3"], name="part", runs_dir=str(tmp_path))
    ganforge.train(resume=part, overrides=["train.steps=6"], runs_dir=str(tmp_path))
    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys() and len(a) in (2, 4)
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    sa, sb = load_state(resolve_checkpoint(full))["recipe"], load_state(resolve_checkpoint(part))["recipe"]
    assert load_state(resolve_checkpoint(part))["step"] == 6
    assert sa["optimizers"]["G"]["param_groups"][0]["lr"] == sb["optimizers"]["G"]["param_groups"][0]["lr"] == 0.0
    if preset == "cyclegan":
        for d in "AB":
            assert sa["pools"][d]["count"] == 3
            assert torch.equal(sa["pools"][d]["images"], sb["pools"][d]["images"])
    la = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss_G"] for r in la] == [r["loss_G"] for r in lb]


# ---- data, snapshots and errors -------------------------------------------------------------------------------
def test_snapshots_use_held_out_pairs(tmp_path, demo_cache):
    run = ganforge.train("pix2pix", overrides=P2P + ["train.steps=1", "recipe.total_steps=1"], name="s",
                         runs_dir=str(tmp_path))
    sheet = Image.open(run / "samples" / "step-000001.png")
    assert sheet.size == (3 * 34 + 2, 4 * 34 + 2)  # 4 held-out pairs as rows of input | output | target
    target = np.asarray(sheet)[2:34, 2 * 34 + 2:3 * 34]  # row 1, column 3
    folder = next(p for p in (demo_cache / "demo").iterdir() if p.name.startswith("colorize-32px"))
    test_b = np.asarray(Image.open(folder / "test" / "B" / "0000.png"))
    train_b = np.asarray(Image.open(folder / "train" / "B" / "0000.png"))
    assert np.array_equal(target, test_b) and not np.array_equal(target, train_b)


def _png(path, size=(32, 32), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value // 2, 255 - value)).save(path)


def test_unpaired_files_are_listed_and_training_goes_on(tmp_path, capsys):
    data = tmp_path / "pairs"
    for i in range(4):
        _png(data / "train" / "A" / f"{i}.png", value=40 * i)
        _png(data / "train" / "B" / f"{i}.png", value=40 * i + 20)
    _png(data / "train" / "A" / "lonely.png")
    argv = ["train", "pix2pix", "--data", str(data), "--name", "u", f"train.runs_dir={tmp_path / 'runs'}",
            "steps=1", "recipe.total_steps=1", *[o for o in P2P if not o.startswith("data.")]]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "1 file(s) without a partner skipped" in err and "lonely.png" in err
    assert "4 pairs" in err and "1 without a partner" in err
    assert "no held-out split" in err  # snapshots fall back to training pairs, and say so


def test_empty_domain_folder_is_exit_2(tmp_path, capsys):
    data = tmp_path / "unpaired"
    for i in range(3):
        _png(data / "trainA" / f"{i}.png")
    (data / "trainB").mkdir()
    argv = ["train", "cyclegan", "--data", str(data), f"train.runs_dir={tmp_path / 'runs'}", *CYC[:-1]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "no images in" in err and "trainB" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("target,source,msg", [
    ("pix2pix", "demo:grass2gravel", "unpaired data; this recipe needs paired"),
    ("cyclegan", "demo:colorize", "paired data; this recipe needs unpaired"),
    ("pix2pix", "demo:nosuch", "unknown demo"),
    ("pix2pix", "demo:colorize,n_train=x", "must be an int"),
    ("pix2pix", "demo:colorize,bogus=1", "bad demo option"),
    ("pix2pix", "/no/such/pairs", "does not exist"),
])
def test_bad_sources_are_exit_2(tmp_path, capsys, target, source, msg):
    argv = ["train", target, "--data", source, f"train.runs_dir={tmp_path}", "recipe.total_steps=1", "steps=1",
            "model.image_size=32", "train.progress=false"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_demo_parsing_and_load_size():
    assert parse_demo("demo:colorize,n_train=5,holdout=photos") == ("colorize", {"n_train": 5, "holdout": "photos"})
    assert parse_demo("some/folder") is None
    assert reference_load_size(256) == 286 and reference_load_size(64) == 72 and reference_load_size(32) == 36
    with pytest.raises(GanforgeError, match="load_size"):
        r = _recipe("pix2pix", dict(image_size=32, ngf=8, ndf=8), load_size=16)
        r.load_size(32)
