"""`ganforge sample --seeds/--trunc`, mix, interpolate, project, direction, edit: as a user runs them, and bad
input as one line with exit code 2, checked before any work."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.tools import animation
from ganforge.tools.interpolation import interpolate
from ganforge.tools.projection import project
from ganforge.tools.directions import learn_direction
from ganforge.tools.style import seed_images, style_mix_grid
from ganforge.utils.images import make_grid, to_uint8

# The tests pin the settings they were written for, so that tuning the demo presets does not move them.
V2 = ["model.config=cpu-tiny", "model.clusters=0", "recipe.g_lr=0.0025", "recipe.d_lr=0.0025", "recipe.r1_gamma=0.1",
      "model.channels=1", "model.channel_max=16", "model.z_dim=16", "model.w_dim=16",
      "train.batch_size=8", "train.steps=2", "train.progress=false", "train.ema=0.5", "train.sample_every=100",
      "train.ckpt_every=100"]
DCGAN = ["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.steps=1", "train.progress=false"]


def quiet(*a, **k):
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-style")
    return {"style": ganforge.train("stylegan2", overrides=V2, name="s", runs_dir=str(root), echo=quiet),
            "dcgan": ganforge.train("dcgan", overrides=DCGAN, name="d", runs_dir=str(root), echo=quiet)}


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ganforge: error: "), err
    for n in needles:
        assert n in err, err
    return err


def test_sample_seeds_and_truncation(runs, tmp_path, capsys):
    run = str(runs["style"])
    g = ganforge.load(run)
    out = tmp_path / "s.png"
    assert main(["sample", run, "--seeds", "2,5,7-8", "--out", str(out), "--nrow", "2"]) == 0
    assert np.array_equal(pixels(out), to_uint8(make_grid(seed_images(g, [2, 5, 7, 8]), nrow=2)))
    assert "4 samples (one per seed)" in capsys.readouterr().out
    # --trunc 0: every seed gives the mean-w image
    assert main(["sample", run, "--seeds", "0-3", "--trunc", "0", "--out", str(out), "--nrow", "4"]) == 0
    cells = [pixels(out)[2:34, 2 + 34 * k:34 + 34 * k] for k in range(4)]
    assert all(np.array_equal(cells[0], c) for c in cells[1:])
    # -n/--seed sampling keeps its behaviour, and takes --trunc too
    assert main(["sample", run, "-n", "3", "--seed", "4", "--trunc", "0.5", "--out", str(out)]) == 0
    assert np.array_equal(pixels(out), to_uint8(make_grid(g.sample(3, seed=4, psi=0.5), nrow=8)))
    # a DCGAN samples by seeds; its --trunc is BigGAN's z threshold (no W space), where psi 0.01 is no threshold
    dc = str(runs["dcgan"])
    assert main(["sample", dc, "--seeds", "1,2", "--out", str(tmp_path / "d.png")]) == 0
    capsys.readouterr()
    assert main(["sample", dc, "--trunc", "0.7", "--out", str(tmp_path / "d2.png")]) == 0
    assert "z truncated at 0.7 (resampled)" in capsys.readouterr().out
    assert main(["sample", dc, "--trunc", "0.01", "--out", str(tmp_path / "d3.png")]) == 2
    one_error_line(capsys, "threshold must be a finite number >= 0.04")
    assert not (tmp_path / "d3.png").exists()


def test_mix_grid_file(runs, tmp_path, capsys):
    run = str(runs["style"])
    out = tmp_path / "mix.png"
    assert main(["mix", run, "--rows", "1-3", "--cols", "4,5", "--levels", "fine", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layers 6-7" in text and "coarse = layers 0-3 (4-8 px)" in text
    g = ganforge.load(run)
    assert pixels(out).shape == (4 * 34 + 2, 3 * 34 + 2)
    assert np.array_equal(pixels(out), to_uint8(make_grid(style_mix_grid(g, [1, 2, 3], [4, 5], [6, 7]), nrow=3)))


def test_interpolate_gif(runs, tmp_path, capsys):
    run = str(runs["style"])
    out = tmp_path / "walk.gif"
    assert main(["interpolate", run, "--seeds", "1,2,3", "--space", "w", "--frames", "5", "--out", str(out),
                 "--size", "64"]) == 0
    assert "11 frames" in capsys.readouterr().out
    g = ganforge.load(run)
    want = interpolate(g, [1, 2, 3], "w", 5)
    with Image.open(out) as im:
        assert im.n_frames == 11 and im.size == (64, 64)
        im.seek(3)
        frame = np.asarray(im.convert("L"))
    assert np.array_equal(frame, np.asarray(Image.fromarray(to_uint8(want[3])).resize((64, 64), Image.NEAREST)))
    assert main(["interpolate", run, "--seeds", "1,2", "--loop", "--frames", "4", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 8


def test_project_direction_edit(runs, tmp_path, capsys):
    run = runs["style"]
    g = ganforge.load(run)
    # a colour, non-square image for a 1-channel 32 px model: converted, with a note
    img = to_uint8(seed_images(g, [3])[0])
    rgb = np.repeat(np.asarray(Image.fromarray(img).resize((48, 48)))[:, :, None], 3, axis=2)
    Image.fromarray(np.concatenate([rgb, rgb[:, :16]], axis=1)).save(tmp_path / "face.png")
    out = tmp_path / "proj"
    assert main(["project", str(run), str(tmp_path / "face.png"), "--steps", "40", "--out", str(out)]) == 0
    io = capsys.readouterr()
    assert "note:" in io.err and "grayscale" in io.err and "64x48 to 32x32" in io.err
    assert "reconstruction MSE" in io.out
    for name in ("latent.pt", "reconstruction.png", "target.png", "progress.gif", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mse"] < metrics["baseline_mse"] and metrics["space"] == "w"
    assert f"{metrics['mse']:.5f}" in io.out
    assert torch.load(out / "latent.pt", weights_only=True)["ws"].shape == (1, 8, 16)

    (tmp_path / "bright.py").write_text("def score(images):\n    return images.mean(dim=(1, 2, 3))\n")
    assert main(["direction", str(run), "--name", "bright", "--score", f"{tmp_path / 'bright.py'}:score",
                 "--samples", "200"]) == 0
    text = capsys.readouterr().out
    assert "held-out correlation" in text and (run / "directions" / "bright.pt").is_file()
    d = torch.load(run / "directions" / "bright.pt", weights_only=True)
    assert d["direction"].shape == (16,) and d["kind"] == "regression" and d["value"] > 0.5

    strip = tmp_path / "strip.png"
    assert main(["edit", str(run), "--seed", "3", "--direction", "bright", "--strengths", "-3:3:7",
                 "--out", str(strip)]) == 0
    px = pixels(strip)
    assert px.shape == (34 + 2, 7 * 34 + 2)
    means = [px[2:34, 2 + 34 * k:34 + 34 * k].mean() for k in range(7)]
    assert all(b > a for a, b in zip(means, means[1:])), means  # in order: darkest to brightest
    assert np.array_equal(px[2:34, 2 + 34 * 3:34 + 34 * 3], to_uint8(seed_images(g, [3])[0]))  # strength 0
    assert main(["edit", str(run), "--latent", str(out / "latent.pt"), "--direction", "bright",
                 "--strengths", "0:0:1", "--out", str(strip)]) == 0
    assert np.array_equal(pixels(strip)[2:34, 2:34], pixels(out / "reconstruction.png"))  # noise maps kept

    labels = tmp_path / "labels.csv"
    labels.write_text("seed,label\n" + "".join(f"{s},{s % 2}\n" for s in range(40)))
    assert main(["direction", str(run), "--name", "odd", "--labels", str(labels)]) == 0
    assert "held-out accuracy" in capsys.readouterr().out


BAD = [
    (["sample", "{s}", "--seeds", "5-1"], "runs backwards"),
    (["sample", "{s}", "--seeds", "1,x"], "bad seeds"),
    (["sample", "{s}", "--seeds", "1", "-n", "4"], "not both"),
    (["sample", "{s}", "--trunc", "3"], "[0, 2]"),
    (["mix", "{s}", "--rows", "1", "--cols", "2", "--levels", "ultra"], "unknown style levels 'ultra'"),
    (["mix", "{s}", "--rows", "1", "--cols", "2", "--levels", "0-8"], "0 <= A <= B <= 7"),
    (["mix", "{s}", "--rows", "1", "--cols", "2", "--trunc", "-1"], "[0, 2]"),
    (["mix", "{d}", "--rows", "1", "--cols", "2"], "style mixing (`ganforge mix`) needs a StyleGAN run"),
    (["interpolate", "{s}", "--seeds", "1,2", "--frames", "1"], "argument --frames: must be >= 2"),
    (["interpolate", "{s}", "--seeds", "1"], "at least 2 seeds"),
    (["interpolate", "{s}", "--seeds", "1,2", "--out", "{t}/w.avi"], ".gif or .mp4"),
    (["interpolate", "{d}", "--seeds", "1,2", "--space", "w"], "interpolation in W (--space w) needs a StyleGAN"),
    (["project", "{s}", "{t}/none.png", "--out", "{t}/p"], "no such image file"),
    (["project", "{s}", "{t}/junk.png", "--out", "{t}/p"], "cannot read image"),
    (["project", "{d}", "{t}/ok.png", "--out", "{t}/p"], "projection (`ganforge project`) needs a StyleGAN"),
    (["direction", "{s}", "--name", "x", "--score", "no_such_mod_q:f"], "importing score module"),
    (["direction", "{s}", "--name", "x", "--score", "{t}/sc.py:nope"], "no function 'nope'"),
    (["direction", "{s}", "--name", "../x", "--score", "{t}/sc.py:score"], "bad direction name"),
    (["direction", "{s}", "--name", "x", "--labels", "{t}/none.csv"], "no such labels file"),
    (["direction", "{s}", "--name", "x", "--labels", "a", "--score", "b:c"], "not allowed with argument"),
    (["direction", "{s}", "--name", "x", "--score", "{t}/sc.py:score", "--samples", "5"], "must be >= 10"),
    (["direction", "{d}", "--name", "x", "--score", "{t}/sc.py:score"], "needs a StyleGAN run"),
    (["edit", "{s}", "--seed", "1", "--direction", "nope"], "unknown direction 'nope'"),
    (["edit", "{s}", "--seed", "1", "--direction", "x", "--strengths", "-3:3"], "bad strengths"),
    (["edit", "{s}", "--seed", "1", "--direction", "x", "--strengths", "0:1:0"], "1..100"),
    (["edit", "{s}", "--latent", "{t}/none.pt", "--direction", "x"], "no such latent file"),
    (["edit", "{s}", "--direction", "x"], "one of the arguments --seed --latent is required"),
    (["edit", "{d}", "--seed", "1", "--direction", "x"], "editing (`ganforge edit`) needs a StyleGAN run"),
]


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a[:1] + a[2:4]) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_before_any_work(argv, needle, runs, tmp_path, capsys, monkeypatch):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG but not really")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "sc.py").write_text("def score(images):\n    return images.mean(dim=(1, 2, 3))\n")

    def no_work(*a, **k):
        raise AssertionError("work started before the input was checked")

    for mod in ("style", "interpolation", "projection", "directions"):  # every way to an image
        monkeypatch.setattr(f"ganforge.tools.{mod}.synthesize", no_work)
    monkeypatch.setattr("ganforge.tools.projection.project", no_work)
    monkeypatch.setattr("ganforge.tools.directions.learn_direction", no_work)
    monkeypatch.setattr("ganforge.models.interface.ModelIO.generate", no_work)
    args = [a.format(s=runs["style"], d=runs["dcgan"], t=tmp_path) for a in argv]
    out = tmp_path / ("out.gif" if args[0] == "interpolate" else "out.png")
    if args[0] != "direction" and "--out" not in args:
        args += ["--out", str(out)]
    assert main(args) == 2
    one_error_line(capsys, needle)
    assert not out.exists() and not (tmp_path / "p").exists()


def test_mp4_without_an_encoder_suggests_gif(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(animation, "ffmpeg_exe", lambda: None)
    assert main(["interpolate", str(runs["style"]), "--seeds", "1,2", "--out", str(tmp_path / "w.mp4")]) == 2
    one_error_line(capsys, "ffmpeg", "write a .gif instead")


def test_mp4_with_an_encoder(runs, tmp_path):
    if animation.ffmpeg_exe() is None:
        pytest.skip("no ffmpeg here (imageio-ffmpeg or a binary on PATH)")
    out = tmp_path / "w.mp4"
    assert main(["interpolate", str(runs["style"]), "--seeds", "1,2", "--frames", "3", "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and out.read_bytes()[4:8] == b"ftyp"


def test_api_refuses_non_stylegan_runs(runs):
    g = ganforge.load(runs["dcgan"])
    assert not g.is_style
    for call in (lambda: style_mix_grid(g, [1], [2], "coarse"), lambda: project(g, torch.zeros(1, 1, 28, 28)),
                 lambda: learn_direction(g, lambda x: x.mean((1, 2, 3)), n=20),
                 lambda: interpolate(g, [1, 2], "w", 3), lambda: g.sample(2, psi=0.5)):
        with pytest.raises(GanforgeError, match="needs a StyleGAN run.*dcgan"):
            call()
    assert interpolate(g, [1, 2], "z", 3).shape[0] == 4  # a walk in Z works for any noise model
