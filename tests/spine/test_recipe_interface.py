"""The recipe interface the coming families build on: step context, batch schedules through the sample
cursor, backward/step split, the EMA rule, the sampling hook, staged training, hyper-parameters applied on
resume, and the rollback copy."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

import ganforge
from ganforge.errors import GanforgeError, TrainingDiverged
from ganforge.recipes.context import StepContext
from ganforge.recipes.gan import GANRecipe
from ganforge.registry import register_recipe
from ganforge.training.checkpoint import load_state, load_weights, resolve_checkpoint

TINY = ["model.ngf=8", "model.ndf=8", "train.progress=false", "train.sample_every=100", "train.ckpt_every=100"]
CALLS: list = []


@register_recipe("test-schedule")
class ScheduledGAN(GANRecipe):
    """Batch 8 for two steps, then 16 with two D batches a step; a hook that records what it was given."""

    def batch_plan(self, ctx):
        return (8, 1) if ctx.step < 2 else (16, 2)

    def before_sampling(self, nets):
        CALLS.append(("before_sampling", sorted(nets), nets["G"].training))

    def ema_decay(self, ctx):
        return 0.5  # a family's own rule (StyleGAN2 ramps it up by images seen)


def _rec(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run):
    ck = resolve_checkpoint(run)
    return {n: load_weights(ck, n) for n in ("G", "D", "G_ema")}


def test_context_noise_is_the_global_batch_sharded_by_rank():
    one = StepContext(step=4, seed=1, world=1).randn(6, 3)
    shards = [StepContext(step=4, seed=1, rank=r, world=2).randn(3, 3) for r in (0, 1)]
    assert torch.equal(shards[0], one[0::2]) and torch.equal(shards[1], one[1::2])
    again = StepContext(step=4, seed=1)
    assert torch.equal(again.randn(6, 3), one) and not torch.equal(again.randn(6, 3), one)  # calls differ
    assert not torch.equal(StepContext(step=5, seed=1).randn(6, 3), one)
    assert not torch.equal(StepContext(step=4, seed=1, attempt=1).randn(6, 3), one)  # a retry draws anew


def test_a_batch_schedule_is_followed_resumed_and_counted(tmp_path):
    ov = TINY + ["recipe.name=test-schedule", "train.log_every=1", "train.ema=0.9"]
    full = ganforge.train("dcgan", overrides=ov + ["train.steps=5"], name="full", runs_dir=str(tmp_path))
    recs = _rec(full)
    assert [r["batch_size"] for r in recs] == [8, 8, 16, 16, 16]
    assert [r["images_seen"] for r in recs] == [8, 16, 48, 80, 112]  # 2 x 8, then 3 x 2 batches of 16
    part = ganforge.train("dcgan", overrides=ov + ["train.steps=3"], name="part", runs_dir=str(tmp_path))
    state = load_state(resolve_checkpoint(part))
    assert (state["step"], state["images_seen"], state["cursor"]) == (3, 48, 48)
    ganforge.train(resume=part, overrides=["train.steps=5"], runs_dir=str(tmp_path))
    a, b = _weights(full), _weights(part)
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"
    # the recipe's EMA rule (0.5 every step), not the loop's default
    ck = resolve_checkpoint(full)
    assert not torch.equal(load_weights(ck, "G_ema")["main.0.weight"], load_weights(ck, "G")["main.0.weight"])


def test_the_recipe_ema_rule_is_what_the_loop_applies(tmp_path, monkeypatch):
    seen = []
    real = ScheduledGAN.ema_decay
    monkeypatch.setattr(ScheduledGAN, "ema_decay", lambda self, ctx: seen.append(ctx.step) or real(self, ctx))
    ganforge.train("dcgan", overrides=TINY + ["recipe.name=test-schedule", "train.steps=3", "train.ema=0.9"],
                   name="e", runs_dir=str(tmp_path))
    assert seen == [0, 1, 2]


def test_default_ema_rule_warms_up():
    r = GANRecipe.__new__(GANRecipe)
    r.train_cfg = ganforge.config.TrainConfig(ema=0.999, ema_start=2)
    assert r.ema_decay(StepContext(step=0)) is None and r.ema_decay(StepContext(step=1)) is None
    assert r.ema_decay(StepContext(step=2)) == pytest.approx(2 / 11)
    assert r.ema_decay(StepContext(step=10_000)) == 0.999


def test_hook_runs_before_every_snapshot_and_checkpoint_on_the_sampled_nets(tmp_path):
    CALLS.clear()
    ganforge.train("dcgan", overrides=TINY + ["recipe.name=test-schedule", "train.steps=4", "train.sample_every=2",
                                              "train.ckpt_every=1000", "train.ema=0.9"], name="h", runs_dir=str(tmp_path))
    # the EMA G (eval mode): snapshots at steps 2 and 4, then the final checkpoint (the saved G is the one
    # sampling would use, e.g. with BigGAN's standing statistics)
    assert CALLS == [("before_sampling", ["D", "G"], False)] * 3


def test_lr_and_betas_given_when_resuming_take_effect(tmp_path):
    run = ganforge.train("dcgan", overrides=TINY + ["train.steps=2"], name="r", runs_dir=str(tmp_path))
    ganforge.train(resume=run, overrides=["train.steps=3", "recipe.g_lr=5e-5", "recipe.beta1=0.0"],
                   runs_dir=str(tmp_path))
    groups = load_state(resolve_checkpoint(run))["recipe"]["optimizers"]
    assert groups["G"]["param_groups"][0]["lr"] == 5e-5 and groups["G"]["param_groups"][0]["betas"][0] == 0.0
    assert groups["D"]["param_groups"][0]["lr"] == 2e-4 and groups["D"]["param_groups"][0]["betas"][0] == 0.0
    assert yaml.safe_load((run / "config.yaml").read_text())["recipe"]["g_lr"] == 5e-5
    assert _rec(run)[-1]["lr_G"] == 5e-5


def test_nan_reduction_survives_a_resume_with_a_new_lr(tmp_path, monkeypatch):
    real = GANRecipe.step
    n = {"calls": 0}

    def poisoned(self, batches, ctx):
        n["calls"] += 1
        out = real(self, batches, ctx)
        if n["calls"] == 2:
            out["loss_G"] = float("inf")
        return out

    monkeypatch.setattr(GANRecipe, "step", poisoned)
    run = ganforge.train("dcgan", overrides=TINY + ["train.steps=3", "train.log_every=1"], name="n",
                         runs_dir=str(tmp_path))
    monkeypatch.setattr(GANRecipe, "step", real)
    ganforge.train(resume=run, overrides=["train.steps=4", "recipe.d_lr=1e-4"], runs_dir=str(tmp_path))
    state = load_state(resolve_checkpoint(run))
    assert state["recipe"]["lr_scale"] == 0.5 and state["failures"] == 1
    assert state["recipe"]["optimizers"]["D"]["param_groups"][0]["lr"] == pytest.approx(1e-4 * 0.5)


def test_rollback_restores_counters_and_keeps_its_copy_in_cpu_memory(tmp_path, monkeypatch):
    from ganforge.training import loop

    real = GANRecipe.step
    seen = []

    def poisoned(self, batches, ctx):
        seen.append((ctx.step, ctx.attempt))
        out = real(self, batches, ctx)
        if len(seen) == 4:
            out["loss_D"] = float("nan")
        return out

    monkeypatch.setattr(GANRecipe, "step", poisoned)
    copies = []
    real_remember = loop.Trainer._remember_good

    def remember(self):
        real_remember(self)
        copies.append({t.device.type for sd in self._good["nets"].values() for t in sd.values()})

    monkeypatch.setattr(loop.Trainer, "_remember_good", remember)
    ganforge.train("dcgan", overrides=TINY + ["train.steps=5", "train.log_every=2"], name="rb", runs_dir=str(tmp_path))
    # step 3 (index 3) failed: rolled back to the copy taken at step 2, retried with fresh noise
    assert seen == [(0, 0), (1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (4, 1)]
    assert copies and all(c == {"cpu"} for c in copies)


def test_without_rollback_a_nonfinite_loss_stops_the_run(tmp_path, monkeypatch):
    real = GANRecipe.step

    def poisoned(self, batches, ctx):
        out = real(self, batches, ctx)
        out["loss_D"] = float("nan") if ctx.step == 1 else out["loss_D"]
        return out

    monkeypatch.setattr(GANRecipe, "step", poisoned)
    with pytest.raises(TrainingDiverged, match="nan_rollback is off"):
        ganforge.train("dcgan", overrides=TINY + ["train.steps=3", "train.nan_rollback=false"], name="x",
                       runs_dir=str(tmp_path))


def test_d_is_frozen_during_the_g_phase_without_wasted_gradients(monkeypatch):
    from ganforge.registry import create_model

    m = create_model("dcgan", image_size=28, channels=1, ngf=8, ndf=8)
    r = GANRecipe(m, GANRecipe.Config(), torch.device("cpu"))
    r.attach(ganforge.config.TrainConfig())
    r.zero_grad("D")
    r.g_phase(4, StepContext())
    assert all(p.grad is None for p in m["D"].parameters())  # G's backward left D untouched
    assert all(p.requires_grad for p in m["D"].parameters())  # and D trains again afterwards
    assert any(p.grad is not None for p in m["G"].parameters())


def test_gradient_norms_only_on_logged_steps():
    from ganforge.registry import create_model

    m = create_model("dcgan", image_size=28, channels=1, ngf=8, ndf=8)
    r = GANRecipe(m, GANRecipe.Config(), torch.device("cpu"))
    r.attach(ganforge.config.TrainConfig())
    batch = [{"image": torch.rand(4, 1, 28, 28) * 2 - 1, "label": torch.zeros(4, dtype=torch.long)}]
    assert "grad_norm_D" not in r.step(batch, StepContext(log=False))
    out = r.step(batch, StepContext(step=1, log=True))
    assert out["grad_norm_D"] > 0 and out["grad_norm_G"] > 0


def test_staged_training_takes_weights_only(tmp_path, capsys):
    src = ganforge.train("dcgan", overrides=TINY + ["train.steps=2"], name="src", runs_dir=str(tmp_path))
    dst = ganforge.train("dcgan", overrides=TINY + ["train.steps=0", f"train.init_from={src}", "train.init_nets=G"],
                         name="dst", runs_dir=str(tmp_path))
    a, b = _weights_of(src), _weights_of(dst)
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert not all(torch.equal(a["D"][k], b["D"][k]) for k in a["D"])  # D was not taken
    assert "initialised G from" in capsys.readouterr().err
    state = load_state(resolve_checkpoint(dst))
    assert state["recipe"]["optimizers"]["G"]["state"] == {}  # fresh optimizers
    with pytest.raises(GanforgeError, match="init_nets names X"):
        ganforge.train("dcgan", overrides=TINY + ["train.steps=0", f"train.init_from={src}", "train.init_nets=X"],
                       name="bad", runs_dir=str(tmp_path))
    with pytest.raises(GanforgeError, match="does not fit"):
        ganforge.train("dcgan", overrides=TINY + ["train.steps=0", f"train.init_from={src}", "model.ngf=16"],
                       name="bad2", runs_dir=str(tmp_path))


def _weights_of(run):
    ck = resolve_checkpoint(run)
    return {n: load_weights(ck, n) for n in ("G", "D")}


def test_no_sync_is_a_noop_for_one_process_and_enters_ddp_no_sync():
    from contextlib import contextmanager

    entered = []

    class FakeDDP(torch.nn.Module):
        @contextmanager
        def no_sync(self):
            entered.append(True)
            yield

    r = GANRecipe.__new__(GANRecipe)
    r.ddp = {"D": torch.nn.Linear(1, 1), "G": FakeDDP()}
    with r.no_sync("D", "G"):
        pass
    assert entered == [True]
