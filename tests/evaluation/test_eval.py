"""`ganforge eval` end to end: folders and runs, the protocol record, caching, paired metrics, the
training hook; the MNIST judge as a feature extractor."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.data import build_dataset
from ganforge.metrics import get_extractor
from ganforge.models.judge import WEIGHTS_SHA256, file_sha256, load_judge, weights_path


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))


def _write_digits(folder, images, start=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(images):
        arr = ((x[0].numpy() + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{start + i:04d}.png")


def test_shipped_judge_is_pinned_and_accurate():
    assert file_sha256(weights_path()) == WEIGHTS_SHA256
    x, y = build_dataset("mnist", split="test").as_tensor()  # never trained on
    with torch.no_grad():
        pred = load_judge()(x).argmax(1)
    assert (pred == y).float().mean() >= 0.97
    noise = torch.rand(200, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert (load_judge()(noise).argmax(1) == 10).float().mean() >= 0.9  # "not a digit"


def test_judge_extractor_protocol():
    ext = get_extractor("mnist-judge")
    d = ext.describe()
    assert d["weights_sha256"] == WEIGHTS_SHA256 and d["dim"] == 128
    f, lg = ext.features_and_logits(torch.zeros(3, 3, 64, 64))  # RGB and any size are brought to 1x28x28
    assert f.shape == (3, 128) and lg.shape == (3, 10)
    # the logits are the judge's ten digit classes, in order: they classify held-out digits
    x, y = build_dataset("mnist", split="test").as_tensor()
    x, y = x[::5], y[::5]
    ext.train()  # stays in eval mode: stored batch-norm statistics, so features do not depend on the batch
    assert not ext.training
    f, lg = ext.features_and_logits(x)
    assert (lg.argmax(1) == y).float().mean() >= 0.95
    f_one, _ = ext.features_and_logits(x[:1])
    assert torch.allclose(f_one, f[:1], atol=1e-5)
    assert torch.equal(ext.features(x[:7]), f[:7]) and torch.equal(ext.logits(x[:7]), lg[:7])
    # RGB is averaged to gray: (x, -1, +1) has the gray image x / 3
    rgb = torch.cat([x[:16], -torch.ones_like(x[:16]), torch.ones_like(x[:16])], 1)
    assert torch.allclose(ext.features(rgb), ext.features(x[:16] / 3), atol=1e-5)
    # a 2x larger copy is brought back to 28 px: nearly the same features, the same digits
    big = torch.nn.functional.interpolate(x[:64], scale_factor=2, mode="bilinear", align_corners=False)
    assert (ext.logits(big).argmax(1) == lg[:64].argmax(1)).float().mean() >= 0.9


def test_eval_identical_folders_and_shifted_folder(tmp_path, capsys):
    x, _ = build_dataset("mnist", split="test").as_tensor()
    _write_digits(tmp_path / "a", x[:300])
    assert main(["eval", str(tmp_path / "a"), "--ref", str(tmp_path / "a"), "--metrics", "fid,kid,pr",
                 "--json", str(tmp_path / "same.json")]) == 0
    same = json.loads((tmp_path / "same.json").read_text())
    assert abs(same["metrics"]["fid"]) < 1e-6
    assert same["metrics"]["precision"] == 1.0 and same["metrics"]["recall"] == 1.0
    assert same["extractor"] == "mnist-judge" and same["weights_sha256"] == WEIGHTS_SHA256
    assert same["n_real"] == same["n_generated"] == 300 and same["ganforge_version"] == ganforge.__version__
    # inverted digits are far from real ones
    _write_digits(tmp_path / "inv", -x[:300])
    assert main(["eval", str(tmp_path / "inv"), "--ref", str(tmp_path / "a"), "--metrics", "fid",
                 "--json", str(tmp_path / "inv.json")]) == 0
    assert json.loads((tmp_path / "inv.json").read_text())["metrics"]["fid"] > 100
    out = capsys.readouterr().out
    assert "fid" in out and "extractor mnist-judge" in out


def test_eval_run_writes_record_and_caches_reference(tmp_path, capsys, monkeypatch):
    run = ganforge.train("dcgan", overrides=["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.steps=2",
                                             "train.progress=false"], name="r", runs_dir=str(tmp_path))
    calls = {"n": 0}
    import ganforge.metrics.reference as ref

    real = ref.compute_features

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(ref, "compute_features", counting)
    for _ in range(2):
        assert main(["eval", str(run), "--ref", "mnist", "--metrics", "fid,kid,is,pr,dc", "--n", "200"]) == 0
    assert calls["n"] == 1  # the second evaluation reused the cached reference statistics
    rec = json.loads((run / "eval-mnist-judge.json").read_text())
    assert set(rec["metrics"]) >= {"fid", "kid_mean", "kid_std", "is_mean", "precision", "recall", "density", "coverage"}
    assert rec["options"]["quantized"] == "uint8" and rec["seed"] == 0 and rec["resize_method"]
    assert rec["n_generated"] == 200


def test_paired_metrics_between_folders(tmp_path, capsys):
    from ganforge.metrics import l1, psnr, ssim

    rng = np.random.default_rng(0)
    a, b = tmp_path / "pred", tmp_path / "target"
    a.mkdir(), b.mkdir()
    pairs = []
    for i in range(3):
        img = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
        Image.fromarray(img).save(b / f"{i}.png")
        noisy = np.clip(img.astype(int) + 10 * (i + 1), 0, 255).astype(np.uint8)  # a different error per image
        Image.fromarray(noisy).save(a / f"{i}.png")
        pairs.append(tuple(torch.from_numpy(v).permute(2, 0, 1)[None].double() / 127.5 - 1 for v in (noisy, img)))
    (a / "extra.png").write_bytes(b"not a png")  # no partner: unmatched
    Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(b / "9.png")
    (a / "9.png").write_bytes(b"not a png either")  # a partner that cannot be read: skipped, not averaged
    assert main(["eval", str(a), "--ref", str(b), "--metrics", "psnr,ssim,l1", "--json", str(tmp_path / "p.json")]) == 0
    rec = json.loads((tmp_path / "p.json").read_text())
    # the mean over the matched pairs of each metric (the metric functions themselves are tested against
    # skimage and closed forms in tests/metrics)
    for name, fn in (("psnr", psnr), ("ssim", ssim), ("l1", l1)):
        want = float(np.mean([float(fn(p, t)) for p, t in pairs]))
        assert rec["metrics"][name] == pytest.approx(want, rel=1e-5), name
    # every pixel of the first pair is off by 10/255 except where clipped: PSNR close to 20*log10(255/10)
    assert float(psnr(*pairs[0])) == pytest.approx(28.13, abs=0.6)
    assert rec["paired"]["n"] == 3 and rec["paired"]["unmatched"] == 1 and rec["paired"]["skipped"] == 1
    # --y-channel and --crop-border reach the metrics
    assert main(["eval", str(a), "--ref", str(b), "--metrics", "psnr,ssim", "--y-channel", "--crop-border", "4",
                 "--json", str(tmp_path / "y.json")]) == 0
    rec = json.loads((tmp_path / "y.json").read_text())
    for name, fn in (("psnr", psnr), ("ssim", ssim)):
        want = float(np.mean([float(fn(p, t, y_channel=True, crop_border=4)) for p, t in pairs]))
        assert rec["metrics"][name] == pytest.approx(want, rel=1e-5), name
    assert rec["paired"]["y_channel"] is True and rec["paired"]["crop_border"] == 4


def test_bad_eval_input(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope"), "--ref", "mnist"]) == 2
    assert main(["eval", str(tmp_path), "--ref", "mnist", "--metrics", "fid,bogus"]) == 2
    err = capsys.readouterr().err
    assert "no such run" in err and "unknown metric" in err and "Traceback" not in err


def test_training_hook_keeps_best_checkpoint(tmp_path):
    run = ganforge.train("dcgan", overrides=["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.steps=4",
                                             "train.progress=false", "train.eval_every=2", "train.eval_n=100",
                                             "train.eval_metric=fid"], name="e", runs_dir=str(tmp_path))
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    fids = [(r["step"], r["eval_fid"]) for r in recs if "eval_fid" in r]
    assert [s for s, _ in fids] == [2, 4]
    best_step = min(fids, key=lambda t: t[1])[0]
    best = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert best["step"] == best_step
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-000004"
