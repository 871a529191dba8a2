"""Sampling a BigGAN run: truncation by resampling, `sample --class --trunc`, class sheets, class walks and
truncation sweeps, and their bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

import ganforge
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.models.interface import check_threshold, truncated_randn
from ganforge.tools.conditional import class_sheet, class_walk, truncation_sweep

TINY = ["model.ch=4", "model.shared_dim=8", "train.batch_size=8", "train.progress=false", "train.steps=2",
        "train.sample_every=1000", "recipe.standing_stats=2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ganforge.train("biggan", overrides=TINY, runs_dir=str(tmp_path_factory.mktemp("runs")), name="bg")


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory):
    return ganforge.train("dcgan", overrides=["model.ngf=8", "model.ndf=8", "train.batch_size=8", "train.steps=1",
                                              "train.progress=false"],
                          runs_dir=str(tmp_path_factory.mktemp("runs")), name="dc")


def test_truncated_normal_resamples_to_the_truncated_distribution():
    z = truncated_randn(2000, 50, 1.0, torch.Generator().manual_seed(0))
    assert z.abs().max() <= 1.0
    # scipy's truncated normal on [-1, 1] is the reference
    ks = stats.kstest(z.flatten().numpy(), stats.truncnorm(-1, 1).cdf)
    assert ks.pvalue > 0.01
    assert abs(float(z.std()) - stats.truncnorm(-1, 1).std()) < 0.005
    plain = torch.randn(2000, 50, generator=torch.Generator().manual_seed(0))
    inside = plain.abs() <= 1.0
    assert torch.equal(z[inside], plain[inside])  # entries within the threshold are the plain draw's
    assert torch.equal(truncated_randn(20, 5, 100.0, torch.Generator().manual_seed(3)),
                       torch.randn(20, 5, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("bad", [0.0, 0.01, -1, float("nan"), float("inf"), "x"])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(GanforgeError, match="threshold"):
        check_threshold(bad)


def test_sample_with_a_threshold_is_the_generator_on_truncated_latents(run):
    g = ganforge.load(run)
    imgs = g.sample(6, seed=4, labels=2, threshold=0.5)
    z = truncated_randn(6, g.io.z_dim, 0.5, torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = g.net(z, torch.full((6,), 2)).clamp(-1, 1)
    assert torch.allclose(imgs, want, atol=1e-6)
    assert not g.net.training


def test_class_sheet_rows_are_classes_and_columns_share_seeds(run):
    g = ganforge.load(run)
    sheet = class_sheet(g, [3, 1], per_class=4, seed=7, threshold=1.0)
    assert sheet.shape == (8, 1, 32, 32)
    for row, c in enumerate([3, 1]):
        for j in range(4):
            one = g.sample(1, seed=7 + j, labels=c, threshold=1.0)
            assert torch.allclose(sheet[row * 4 + j], one[0], atol=1e-5)
    assert not torch.allclose(sheet[0], sheet[4])  # the class changes the image


def test_class_walk_ends_at_both_classes(run):
    g = ganforge.load(run)
    walk = class_walk(g, 0, 5, seeds=[2, 9], steps=5)
    assert walk.shape == (2, 5, 1, 32, 32)
    for i, s in enumerate([2, 9]):
        assert torch.allclose(walk[i, 0], g.sample(1, seed=s, labels=0)[0], atol=1e-5)
        assert torch.allclose(walk[i, -1], g.sample(1, seed=s, labels=5)[0], atol=1e-5)
    assert not torch.allclose(walk[0, 2], walk[0, 0]) and not torch.allclose(walk[0, 2], walk[0, -1])


def test_truncation_sweep_rows(run):
    g = ganforge.load(run)
    sweep = truncation_sweep(g, [None, 0.5], n=3, seed=1, label=4)
    # one batch against one sample at a time: equal up to float summation order
    assert torch.allclose(sweep[:3], torch.cat([g.sample(1, seed=1 + j, labels=4) for j in range(3)]), atol=1e-5)
    assert torch.allclose(sweep[3:], torch.cat([g.sample(1, seed=1 + j, labels=4, threshold=0.5)
                                                for j in range(3)]), atol=1e-5)


def test_cli_sample_class_and_trunc(run, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["sample", str(run), "--class", "3", "--trunc", "0.5", "-n", "4", "--nrow", "4", "--out", str(out)]) == 0
    msg = capsys.readouterr().out
    assert "z truncated at 0.5 (resampled)" in msg and "class 3" in msg
    grid = np.asarray(Image.open(out))
    g = ganforge.load(run)
    from ganforge.utils.images import make_grid

    want = make_grid(g.sample(4, seed=0, labels=3, threshold=0.5), nrow=4)
    want = ((want[0] + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    assert np.abs(grid.astype(int) - want.astype(int)).max() <= 1


def test_cli_sheets(run, tmp_path, capsys):
    assert main(["classes", str(run), "--per-class", "3", "--trunc", "1", "--out", str(tmp_path / "c.png")]) == 0
    h, w = np.asarray(Image.open(tmp_path / "c.png")).shape[:2]
    assert h == 10 * 34 + 2 and w == 3 * 34 + 2  # 10 classes x 3 seeds of 32 px, 2 px padding
    assert main(["truncation", str(run), "--values", "none,1,0.25", "-n", "4", "--class", "2",
                 "--out", str(tmp_path / "t.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "t.png")).shape[:2] == (3 * 34 + 2, 4 * 34 + 2)
    assert main(["interpolate", str(run), "--classes", "1,7", "--seeds", "0-2", "--frames", "6",
                 "--out", str(tmp_path / "w.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "w.png")).shape[:2] == (3 * 34 + 2, 6 * 34 + 2)
    assert main(["interpolate", str(run), "--classes", "1,7", "--seeds", "0,1", "--frames", "4",
                 "--out", str(tmp_path / "w.gif")]) == 0
    assert Image.open(tmp_path / "w.gif").n_frames == 4
    out = capsys.readouterr().out
    assert "class sheet" in out and "truncation sweep" in out and "from class 1 to 7" in out


@pytest.mark.parametrize("argv,msg", [
    (["sample", "{run}", "--class", "10"], "class labels must lie in 0..9"),
    (["sample", "{run}", "--trunc", "0.01"], "threshold must be a finite number >= 0.04"),
    (["sample", "{run}", "--trunc", "-1"], "--trunc must be a finite number >= 0"),
    (["classes", "{run}", "--classes", "3,12"], "class labels must lie in 0..9"),
    (["classes", "{run}", "--classes", "a"], "bad classes"),
    (["classes", "{dcgan}"], "needs a class-conditional noise model"),
    (["truncation", "{run}", "--values", "1,zero"], "threshold"),
    (["truncation", "{run}", "--class", "11"], "0..9"),
    (["interpolate", "{run}", "--classes", "1", "--seeds", "0"], "two classes"),
    (["interpolate", "{run}", "--classes", "1,2", "--seeds", "0", "--out", "x.jpg"], ".png"),
    (["interpolate", "{run}", "--classes", "1,2", "--seeds", "0", "--space", "w"], "takes no --class"),
    (["interpolate", "{dcgan}", "--classes", "1,2", "--seeds", "0"], "class-conditional"),
    (["interpolate", "{run}", "--seeds", "0,1", "--trunc-z", "0.5"], "--trunc-z applies"),
])
def test_bad_sampling_input_is_one_line_exit_2(run, dcgan, tmp_path, capsys, argv, msg):
    argv = [a.format(run=run, dcgan=dcgan) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()
