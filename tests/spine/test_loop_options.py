"""Loop options: AMP on CPU (bfloat16), TensorBoard events, EMA, every loss through the config."""
import json

import pytest
import torch

import ganforge
from ganforge.training.checkpoint import load_weights, resolve_checkpoint
from ganforge.training.ema import EMA


def test_amp_bf16_on_cpu_trains(tmp_path, tiny):
    run = ganforge.train("dcgan", overrides=tiny + ["train.steps=2", "train.amp=true"], name="a", runs_dir=str(tmp_path))
    rec = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert all(torch.isfinite(torch.tensor(rec[k])) for k in ("loss_D", "loss_G"))


def test_tensorboard_events(tmp_path, tiny):
    pytest.importorskip("tensorboard")
    run = ganforge.train("dcgan", overrides=tiny + ["train.steps=2", "train.tensorboard=true"], name="t",
                         runs_dir=str(tmp_path))
    assert list((run / "tb").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("loss", ["ns", "minimax", "lsgan", "hinge", "wasserstein"])
@pytest.mark.parametrize("model", ["gan", "dcgan"])
def test_every_architecture_with_every_loss(tmp_path, loss, model):
    ov = ["train.steps=2", "train.batch_size=8", "train.progress=false", f"recipe.loss={loss}", f"model.name={model}"]
    if model == "dcgan":
        ov += ["model.ngf=8", "model.ndf=8", "model.image_size=28", "model.channels=1"]
    run = ganforge.train("gan", overrides=ov, name="x", runs_dir=str(tmp_path))
    rec = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert torch.isfinite(torch.tensor([rec["loss_D"], rec["loss_G"]])).all()


def test_ema_update_math():
    live = torch.nn.Linear(2, 1)
    ema = EMA({"G": live}, decay=0.9)
    before = ema.shadows["G"].weight.detach().clone()
    with torch.no_grad():
        live.weight.add_(1.0)
    ema.update({"G": live})
    assert torch.allclose(ema.shadows["G"].weight, 0.9 * before + 0.1 * live.weight)


def test_weight_clipping_bounds_critic(tmp_path, tiny):
    run = ganforge.train("wgan", overrides=tiny + ["train.steps=2"], name="w", runs_dir=str(tmp_path))
    d = load_weights(resolve_checkpoint(run), "D")
    assert max(float(v.abs().max()) for k, v in d.items() if "running" not in k and "num_batches" not in k) <= 0.01 + 1e-7
