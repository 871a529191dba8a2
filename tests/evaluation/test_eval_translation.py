"""`ganforge eval` and evaluation during training for image-to-image runs: held-out pixel metrics from
the recipe, with the trivial baseline beside them."""
from __future__ import annotations

import json

import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.metrics import psnr

P2P = ["model.image_size=32", "model.ngf=8", "model.ndf=8", "train.batch_size=4", "train.progress=false",
       "train.n_samples=4", "data.source=demo:colorize,n_train=16,n_test=6", "train.sample_every=100"]
CYC = ["model.image_size=32", "model.ngf=8", "model.ndf=8", "model.n_blocks=2", "train.batch_size=2",
       "train.progress=false", "train.n_samples=3", "data.source=demo:grass2gravel,n_train=8,n_test=3",
       "train.sample_every=100"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "gf-cache"))


def test_eval_of_a_pix2pix_run_reports_heldout_metrics_and_the_baseline(tmp_path, capsys):
    run = ganforge.train("pix2pix", overrides=P2P + ["train.steps=2"], name="p", runs_dir=str(tmp_path))
    assert main(["eval", str(run), "--n", "6"]) == 0
    out = capsys.readouterr().out
    rec = json.loads((run / "eval-heldout.json").read_text())
    m = rec["metrics"]
    assert {"psnr", "ssim", "l1", "baseline_psnr", "baseline_ssim", "baseline_l1"} <= set(m)
    assert rec["heldout"]["n"] == 6 and rec["heldout"]["split"] == "test"
    assert "psnr" in out and "baseline_*" in out
    # the baseline is what it says: the input (grey) against the target, recomputed here
    from ganforge.data.demo import demo_folder
    from ganforge.data.paired import PairedDataset

    ds = PairedDataset(demo_folder("demo:colorize,n_train=16,n_test=6", "paired", 32), split="test", image_size=32,
                       load_size=32, jitter=False, flip=False, channels=(3, 3))
    a = torch.stack([ds[i]["A"] for i in range(6)])
    b = torch.stack([ds[i]["B"] for i in range(6)])
    assert m["baseline_psnr"] == pytest.approx(float(psnr(a, b).clamp(max=100).mean()), rel=1e-5)
    assert m["psnr"] != pytest.approx(m["baseline_psnr"])
    # the second baseline: the per-pixel mean of the 16 training targets (unaugmented), 8-bit rounded
    tr = PairedDataset(demo_folder("demo:colorize,n_train=16,n_test=6", "paired", 32), split="train", image_size=32,
                       load_size=32, jitter=False, flip=False, channels=(3, 3))
    mean = torch.stack([tr[i]["B"] for i in range(16)]).double().mean(0).float()
    mean = ((mean.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
    assert m["mean_target_l1"] == pytest.approx(float((mean - b).abs().mean()), rel=1e-5)
    assert m["mean_target_psnr"] == pytest.approx(float(psnr(mean.expand_as(b), b).mean()), rel=1e-5)
    assert "mean_target_ssim" in m
    # only the paired metrics apply; anything else is one clear line
    assert main(["eval", str(run), "--metrics", "fid"]) == 2
    assert "psnr, ssim, l1" in capsys.readouterr().err


def test_eval_of_a_cyclegan_run_measures_cycle_consistency(tmp_path, capsys):
    run = ganforge.train("cyclegan", overrides=CYC + ["train.steps=1"], name="c", runs_dir=str(tmp_path))
    assert main(["eval", str(run), "--metrics", "psnr,ssim"]) == 0
    m = json.loads((run / "eval-heldout.json").read_text())["metrics"]
    assert {"cycle_psnr", "cycle_psnr_A", "cycle_psnr_B", "cycle_ssim"} <= set(m) and "cycle_l1" not in m
    assert m["cycle_psnr"] == pytest.approx((m["cycle_psnr_A"] + m["cycle_psnr_B"]) / 2)


def test_evaluation_during_translation_training_keeps_the_best(tmp_path, capsys):
    run = ganforge.train("pix2pix", overrides=P2P + ["train.steps=4", "train.eval_every=2", "train.eval_n=4"],
                         name="e", runs_dir=str(tmp_path))
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in recs if "eval_psnr" in r]
    assert [r["step"] for r in evals] == [2, 4] and all("eval_baseline_psnr" in r for r in evals)
    assert (run / "checkpoints" / "best").is_dir()
    with pytest.raises(ganforge.errors.GanforgeError, match="does not apply to pix2pix"):
        ganforge.train("pix2pix", overrides=P2P + ["train.steps=2", "train.eval_every=1", "train.eval_metric=fid"],
                       name="bad", runs_dir=str(tmp_path))
