"""`ganforge eval` of a CycleGAN run: FID/KID of each direction against the other domain's held-out
images and of the identity mapping (the trivial baseline), with the extractor named in the record;
"auto" without Inception weights; families without held-out evaluation."""
from __future__ import annotations

import json
import math

import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.data.demo import demo_folder
from ganforge.data.paired import UnpairedDataset
from ganforge.metrics import fid_from_features, get_extractor, kid
from ganforge.metrics.photo_extractor import WEIGHTS_SHA256
from ganforge.metrics.reference import quantize
from ganforge.recipes.cyclegan import CycleGANRecipe

DEMO = "demo:grass2gravel,n_train=8,n_test=3"
CYC = ["model.image_size=32", "model.ngf=8", "model.ndf=8", "model.n_blocks=2", "train.batch_size=2",
       "train.progress=false", "train.n_samples=3", f"data.source={DEMO}", "train.sample_every=100"]
DIST_KEYS = {f"{p}{m}_{d}" for p in ("", "identity_") for m in ("fid", "kid_mean", "kid_std") for d in ("AtoB", "BtoA")}
pytestmark = pytest.mark.filterwarnings("ignore:FID from")  # 3 held-out images: rank-deficient, on purpose


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "gf-cache"))
        yield ganforge.train("cyclegan", overrides=CYC + ["train.steps=2"], name="c",
                             runs_dir=str(tmp_path_factory.mktemp("runs")))


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "gf-cache"))
    monkeypatch.delenv("GANFORGE_INCEPTION", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no Inception weights at the default location either


def _heldout(domain: str) -> torch.Tensor:
    ds = UnpairedDataset(demo_folder(DEMO, "unpaired", 32), split="test", image_size=32, load_size=32, flip=False,
                         serial=True, channels=(3, 3))
    return torch.stack([ds[i][domain] for i in range(3)])


def test_eval_gives_fid_kid_of_both_directions_and_the_identity_baseline(run, capsys):
    assert main(["eval", str(run), "--extractor", "ganforge-photo-v1"]) == 0
    out = capsys.readouterr().out
    rec = json.loads((run / "eval-ganforge-photo-v1.json").read_text())
    m = rec["metrics"]
    assert DIST_KEYS <= set(m) and {"cycle_psnr", "cycle_ssim", "cycle_l1"} <= set(m)
    assert all(math.isfinite(m[k]) for k in DIST_KEYS)
    assert rec["extractor"] == "ganforge-photo-v1" and rec["weights_sha256"] == WEIGHTS_SHA256
    assert rec["heldout"]["n_A"] == rec["heldout"]["n_B"] == 3
    assert "extractor ganforge-photo-v1" in out and "identity_fid_AtoB" in out
    # the baseline is what it says: FID/KID of held-out A against held-out B, recomputed here
    ext = get_extractor("ganforge-photo-v1")
    fa, fb = ext.features(_heldout("A")).numpy(), ext.features(_heldout("B")).numpy()
    assert m["identity_fid_AtoB"] == pytest.approx(fid_from_features(fb, fa), rel=1e-6)
    assert m["identity_fid_BtoA"] == pytest.approx(fid_from_features(fa, fb), rel=1e-6)
    assert m["identity_kid_mean_AtoB"] == pytest.approx(kid(fb, fa, subset_size=3)["kid_mean"], rel=1e-6)
    # and each direction is its generator's output against the other domain (not swapped, not the input)
    fake_b = quantize(ganforge.load(run, role="AtoB")(_heldout("A")))
    fake_a = quantize(ganforge.load(run, role="BtoA")(_heldout("B")))
    assert m["fid_AtoB"] == pytest.approx(fid_from_features(fb, ext.features(fake_b).numpy()), rel=1e-5)
    assert m["fid_BtoA"] == pytest.approx(fid_from_features(fa, ext.features(fake_a).numpy()), rel=1e-5)
    assert m["fid_AtoB"] != pytest.approx(m["identity_fid_AtoB"])


def test_only_the_distribution_metrics_when_asked(run, tmp_path):
    out = tmp_path / "r.json"
    assert main(["eval", str(run), "--metrics", "fid", "--extractor", "ganforge-photo-v1", "--json", str(out)]) == 0
    m = json.loads(out.read_text())["metrics"]
    assert set(m) == {"fid_AtoB", "fid_BtoA", "identity_fid_AtoB", "identity_fid_BtoA"}


def test_every_heldout_image_of_each_domain_counts_up_to_n(run, tmp_path):
    # Unequal held-out domains (3 A, 5 B): FID uses all of each, not only the 3 serial pairs.
    import shutil

    demo, folder = demo_folder(DEMO, "unpaired", 32), tmp_path / "data"
    for sub in ("trainA", "trainB", "testA", "testB"):
        shutil.copytree(demo / sub, folder / sub)
    for f in sorted((demo / "trainB").iterdir())[:2]:
        shutil.copy(f, folder / "testB" / f"extra-{f.name}")
    out = tmp_path / "r.json"
    args = ["eval", str(run), "--ref", str(folder), "--metrics", "fid,psnr", "--extractor", "ganforge-photo-v1"]
    assert main(args + ["--json", str(out)]) == 0
    h = json.loads(out.read_text())["heldout"]
    assert (h["n_A"], h["n_B"], h["n"]) == (3, 5, 3)
    assert main(args + ["--n", "2", "--json", str(out)]) == 0
    h = json.loads(out.read_text())["heldout"]
    assert (h["n_A"], h["n_B"], h["n"]) == (2, 2, 2)


def test_auto_without_inception_weights(run, capsys, tmp_path):
    # By default the pixel metrics are given and the missing FID/KID is said, with the offline way out.
    out = tmp_path / "r.json"
    assert main(["eval", str(run), "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert "cycle_psnr" in rec["metrics"] and not DIST_KEYS & set(rec["metrics"])
    assert "--extractor ganforge-photo-v1" in rec["heldout"]["skipped"]
    assert "fid, kid not computed" in capsys.readouterr().out
    # Asked for explicitly, it is an error, one line, naming both ways to get it; never a silent switch.
    assert main(["eval", str(run), "--metrics", "fid,kid"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ganforge weights fetch inception" in err and "--extractor ganforge-photo-v1" in err


def test_a_family_without_heldout_evaluation_says_so(run, capsys, monkeypatch):
    monkeypatch.delattr(CycleGANRecipe, "evaluate_heldout")  # falls back to the base class, which has none
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "cyclegan runs have no held-out evaluation" in err


def test_unknown_metrics_for_a_cyclegan_run(run, capsys):
    assert main(["eval", str(run), "--metrics", "fid,is", "--extractor", "ganforge-photo-v1"]) == 2
    assert "psnr, ssim, l1, fid, kid; not is" in capsys.readouterr().err
