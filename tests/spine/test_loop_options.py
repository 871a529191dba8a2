"""Loop options: AMP on CPU (bfloat16), TensorBoard events, EMA, every loss through the config."""
import json

import pytest
import torch

import ganforge
from ganforge.losses import d_loss, g_loss
from ganforge.training.checkpoint import load_weights, resolve_checkpoint
from ganforge.training.ema import EMA


def _conv_output_dtypes(tmp_path, tiny, amp: bool, name: str) -> dict[str, set]:
    """Train 2 steps with a global forward hook recording the output dtype of every (transposed) conv."""
    seen: dict[str, set] = {"Conv2d": set(), "ConvTranspose2d": set()}

    def hook(module, args, output):
        kind = type(module).__name__
        if kind in seen and isinstance(output, torch.Tensor):
            seen[kind].add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        run = ganforge.train("dcgan", overrides=tiny + ["train.steps=2", f"train.amp={str(amp).lower()}"],
                             name=name, runs_dir=str(tmp_path))
    finally:
        handle.remove()  # a global hook must never leak into other tests
    rec = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert all(torch.isfinite(torch.tensor(rec[k])) for k in ("loss_D", "loss_G"))
    return seen


def test_amp_bf16_on_cpu_trains(tmp_path, tiny):
    # With AMP on, both D's convs and G's transposed convs must have run in bfloat16 during training ...
    seen = _conv_output_dtypes(tmp_path, tiny, True, "a")
    assert torch.bfloat16 in seen["Conv2d"], seen
    assert torch.bfloat16 in seen["ConvTranspose2d"], seen
    # ... and with AMP off nothing runs in bfloat16: the dtype really comes from the option.
    seen = _conv_output_dtypes(tmp_path, tiny, False, "b")
    assert seen["Conv2d"] == {torch.float32} and seen["ConvTranspose2d"] == {torch.float32}, seen


def test_tensorboard_events(tmp_path, tiny):
    pytest.importorskip("tensorboard")
    run = ganforge.train("dcgan", overrides=tiny + ["train.steps=2", "train.tensorboard=true"], name="t",
                         runs_dir=str(tmp_path))
    assert list((run / "tb").glob("events.out.tfevents.*"))


LOSSES = ["ns", "minimax", "lsgan", "hinge", "wasserstein"]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", ["gan", "dcgan"])
def test_every_architecture_with_every_loss(tmp_path, loss, model):
    # One step, logged on its own, so loss_D / loss_G are that step's values and D_real / D_fake the mean
    # D outputs they came from.
    ov = ["train.steps=1", "train.log_every=1", "train.batch_size=8", "train.progress=false",
          f"recipe.loss={loss}", f"model.name={model}"]
    margs = {}
    if model == "dcgan":
        margs = dict(ngf=8, ndf=8, image_size=28, channels=1)
    ov += [f"model.{k}={v}" for k, v in margs.items()]
    run = ganforge.train("gan", overrides=ov, name="x", runs_dir=str(tmp_path))
    rec = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert torch.isfinite(torch.tensor([rec["loss_D"], rec["loss_G"]])).all()
    # At initialisation D's outputs are near 0, where the five losses have distinct (D, G) signatures
    # (ns: 2 log 2, log 2; minimax: 2 log 2, -log 2; lsgan: 0.5, 0.5; hinge: 2, 0; wasserstein: 0, 0).
    # Evaluate every formula at the logged mean outputs: the configured loss must be the one that fits.
    r, f = torch.tensor(rec["D_real"]), torch.tensor(rec["D_fake"])
    assert abs(rec["D_real"]) < 0.2 and abs(rec["D_fake"]) < 0.2, rec  # the premise of the signatures
    expect = {k: (float(d_loss(r, f, k)), float(g_loss(f, k))) for k in LOSSES}
    dist = {k: abs(rec["loss_D"] - d) + abs(rec["loss_G"] - g) for k, (d, g) in expect.items()}
    assert min(dist, key=dist.get) == loss, (rec, expect)
    # D's loss is on the logged outputs themselves (exact for the losses linear there); G's is on a fresh
    # batch judged by the just-updated D, so it matches only approximately.
    assert rec["loss_D"] == pytest.approx(expect[loss][0], abs=0.03)
    assert rec["loss_G"] == pytest.approx(expect[loss][1], abs=0.1)
    if loss in ("hinge", "wasserstein"):
        assert rec["loss_D"] == pytest.approx(expect[loss][0], abs=1e-5)
    # and the architecture asked for is the one trained and saved
    assert type(ganforge.load(run).net) is type(ganforge.create_model(model, **margs).nets["G"])


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
