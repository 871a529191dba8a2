"""A NaN/Inf loss skips the update, restores the last good state and lowers the learning rate;
after max_nan_failures the run stops with its checkpoints intact."""
import math

import pytest
import torch

import ganforge
from ganforge.errors import TrainingDiverged
from ganforge.recipes.gan import GANRecipe
from ganforge.training.checkpoint import load_state, load_weights, resolve_checkpoint


def _poison_at(monkeypatch, calls):
    real_step = GANRecipe.step
    count = {"n": 0}

    def step(self, batches, ctx):
        count["n"] += 1
        if count["n"] in calls:
            with torch.no_grad():
                next(self.D.parameters()).fill_(float("nan"))
        return real_step(self, batches, ctx)

    monkeypatch.setattr(GANRecipe, "step", step)


def test_recovers_from_one_nan(tmp_path, tiny, monkeypatch, capsys):
    _poison_at(monkeypatch, {4})
    run = ganforge.train("dcgan", overrides=tiny + ["train.steps=6", "train.log_every=2"], name="n",
                         runs_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "1/3" in err
    ck = resolve_checkpoint(run)
    state = load_state(ck)
    assert state["step"] == 6 and state["failures"] == 1
    for net in ("G", "D"):
        assert all(torch.isfinite(t).all() for t in load_weights(ck, net).values())
    lr = state["recipe"]["optimizers"]["D"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(2e-4 * 0.5)


def test_stops_after_three_failures_with_checkpoints_intact(tmp_path, tiny, monkeypatch):
    # Losses are checked at check points (here every checkpoint, 2 steps), not every step: a failure is a checked
    # window with a non-finite loss, and the rollback goes to the last good copy (step 0). Calls 4, 6 and 8 are
    # then the second step of three windows in a row.
    _poison_at(monkeypatch, {4, 6, 8})
    with pytest.raises(TrainingDiverged, match="3 times"):
        ganforge.train("dcgan", overrides=tiny + ["train.steps=10", "train.ckpt_every=2"], name="n",
                       runs_dir=str(tmp_path))
    ck = resolve_checkpoint(tmp_path / "n")
    assert ck.name == "step-000002"
    assert all(torch.isfinite(t).all() for t in load_weights(ck, "D").values())
    assert math.isfinite(load_state(ck)["recipe"]["optimizers"]["D"]["param_groups"][0]["lr"])
