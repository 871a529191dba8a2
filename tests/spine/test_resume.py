"""Checkpoints and resume: N steps in one go == k steps + resume + N-k steps, bit for bit on CPU."""
import json

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.errors import GanforgeError
from ganforge.training.checkpoint import load_state, resolve_checkpoint


def _weights(run):
    ck = resolve_checkpoint(run)
    return {f.stem: load_file(str(f)) for f in sorted(ck.glob("*.safetensors"))}


@pytest.mark.parametrize("preset,extra", [
    ("dcgan", ["train.ema=0.9"]),
    ("wgan-gp", []),  # n_critic 5, gradient penalty: several batches and RNG draws per step
])
def test_resume_is_bit_identical(tmp_path, tiny, preset, extra):
    ov = tiny + extra + ["train.log_every=2", "train.sample_every=100", "train.ckpt_every=100"]
    full = ganforge.train(preset, overrides=ov + ["train.steps=6"], name="full", runs_dir=str(tmp_path))
    part = ganforge.train(preset, overrides=ov + ["train.steps=3"], name="part", runs_dir=str(tmp_path))
    assert load_state(resolve_checkpoint(part))["step"] == 3
    ganforge.train(resume=part, overrides=["train.steps=6"], runs_dir=str(tmp_path))
    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys() and len(a) >= 2
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    sa, sb = load_state(resolve_checkpoint(full)), load_state(resolve_checkpoint(part))
    assert torch.equal(sa["rng"][0]["torch"], sb["rng"][0]["torch"])
    # metrics.jsonl of the resumed run holds each step once, in order
    steps = [json.loads(l)["step"] for l in (part / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 3, 4, 6]  # 3: the last step of the first leg is always logged


def test_resume_changes_without_state_restore(tmp_path, tiny):
    """Control: continuing from the weights alone (fresh optimizer and RNG) does NOT reproduce the run,
    so the test above really depends on the saved training state."""
    ov = tiny + ["train.sample_every=100", "train.ckpt_every=100"]
    full = ganforge.train("dcgan", overrides=ov + ["train.steps=4"], name="full", runs_dir=str(tmp_path))
    part = ganforge.train("dcgan", overrides=ov + ["train.steps=2"], name="part", runs_dir=str(tmp_path))
    state_file = resolve_checkpoint(part) / "state.pt"
    state = torch.load(state_file, weights_only=True)
    state["rng"][0]["torch"] = torch.manual_seed(123).get_state()
    torch.save(state, state_file)
    ganforge.train(resume=part, overrides=["train.steps=4"], runs_dir=str(tmp_path))
    assert not torch.equal(_weights(full)["G"]["main.0.weight"], _weights(part)["G"]["main.0.weight"])


def test_checkpoint_layout_is_pickle_free(tmp_path, tiny):
    run = ganforge.train("cgan", overrides=tiny + ["train.steps=2", "train.ema=0.5"], name="r", runs_dir=str(tmp_path))
    ck = resolve_checkpoint(run)
    assert (run / "checkpoints" / "latest").read_text().strip() == ck.name == "step-000002"
    names = sorted(p.name for p in ck.iterdir())
    assert names == ["D.safetensors", "G.safetensors", "G_ema.safetensors", "config.json", "state.pt"]
    conf = json.loads((ck / "config.json").read_text())
    assert conf["model"]["name"] == "cgan" and conf["model"]["num_classes"] == 10
    state = torch.load(ck / "state.pt", weights_only=True)  # no arbitrary unpickling needed
    assert set(state["recipe"]["optimizers"]) == {"G", "D"}
    assert (run / "config.yaml").is_file() and (run / "samples" / "step-000002.png").is_file()
    assert (run / "losses.png").is_file()


def test_pruning_keeps_newest(tmp_path, tiny):
    run = ganforge.train("dcgan", overrides=tiny + ["train.steps=5", "train.ckpt_every=1", "train.keep_ckpts=2"],
                         name="p", runs_dir=str(tmp_path))
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir()) == ["step-000004", "step-000005"]
    assert not list((run / "checkpoints").glob(".step-*"))  # no temporary folders left behind


def test_existing_run_is_not_overwritten(tmp_path, tiny):
    ganforge.train("dcgan", overrides=tiny + ["train.steps=1"], name="x", runs_dir=str(tmp_path))
    with pytest.raises(GanforgeError, match="--resume"):
        ganforge.train("dcgan", overrides=tiny + ["train.steps=1"], name="x", runs_dir=str(tmp_path))


def test_checkpoint_of_another_model_is_refused(tmp_path, tiny):
    run = ganforge.train("gan", overrides=["train.steps=1", "train.batch_size=16", "progress=false"], name="x",
                         runs_dir=str(tmp_path))
    with pytest.raises(GanforgeError, match="of model 'gan', not 'dcgan'"):
        ganforge.train("wgan", resume=run, runs_dir=str(tmp_path))
    # and weights that do not fit the network are refused with one clear error, not a traceback
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("z_dim: 100", "z_dim: 64"))
    with pytest.raises(GanforgeError, match="does not fit"):
        ganforge.train(resume=run, runs_dir=str(tmp_path))
