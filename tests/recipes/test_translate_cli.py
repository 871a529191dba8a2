"""`ganforge translate`: any size and aspect ratio through tiles, the generator a direction picks, channel
conversion, folders, corrupt and missing inputs, and refusals as one line with exit code 2."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.tools.tiling import translate_tiled
from ganforge.translate import read_image

SMALL = ["model.image_size=32", "model.ngf=8", "model.ndf=8", "train.progress=false", "train.steps=2",
         "recipe.total_steps=2", "train.ckpt_every=100", "train.sample_every=100"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny Pix2Pix trained BtoA and a tiny CycleGAN, each two steps on demo data."""
    root = tmp_path_factory.mktemp("translate")
    mp = pytest.MonkeyPatch()
    mp.setenv("GANFORGE_CACHE", str(root / "cache"))
    try:
        p2p = ganforge.train("pix2pix", overrides=SMALL + ["train.batch_size=4", "recipe.direction=BtoA",
                                                           "data.source=demo:colorize,n_train=8,n_test=2"],
                             name="p2p", runs_dir=str(root / "runs"))
        cyc = ganforge.train("cyclegan", overrides=SMALL + ["train.batch_size=2", "model.n_blocks=1",
                                                            "data.source=demo:grass2gravel,n_train=4,n_test=2"],
                             name="cyc", runs_dir=str(root / "runs"))
    finally:
        mp.undo()
    return {"pix2pix": p2p, "cyclegan": cyc}


def _photo(path, w, h, mode="RGB"):
    rng = np.random.default_rng(w * 1000 + h)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    arr[: h // 2] //= 2  # some structure, so outputs are not flat
    img = Image.fromarray(arr).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _expected(run, net, path, channels):
    g = ganforge.load(run, net=net)
    out = translate_tiled(g.net, read_image(path, channels), 32, 8)[0]
    return ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_large_odd_image_keeps_its_size_and_direction_picks_the_generator(runs, tmp_path, capsys):
    src = _photo(tmp_path / "in" / "wide.jpg", 97, 45)  # larger than the 32 px training size, odd aspect
    for direction, net in (("AtoB", "G_AB"), ("BtoA", "G_BA")):
        out = tmp_path / direction
        assert main(["translate", str(runs["cyclegan"]), str(src), "--out", str(out), "--direction", direction]) == 0
        got = np.asarray(Image.open(out / "wide.png"))
        assert got.shape == (45, 97, 3)
        assert np.abs(got.astype(int) - _expected(runs["cyclegan"], net, src, 3).astype(int)).max() <= 1
    a, b = (np.asarray(Image.open(tmp_path / d / "wide.png")) for d in ("AtoB", "BtoA"))
    assert not np.array_equal(a, b)
    assert "translated 1 image(s)" in capsys.readouterr().out


def test_pix2pix_uses_its_training_direction_and_refuses_the_other(runs, tmp_path, capsys):
    src = _photo(tmp_path / "tall.png", 23, 70)  # narrower than a tile, taller than two
    assert main(["translate", str(runs["pix2pix"]), str(src), "--out", str(tmp_path / "o")]) == 0
    assert main(["translate", str(runs["pix2pix"]), str(src), "--out", str(tmp_path / "o2"), "--direction", "BtoA"]) == 0
    got = np.asarray(Image.open(tmp_path / "o" / "tall.png"))
    assert got.shape == (70, 23, 3) and np.array_equal(got, np.asarray(Image.open(tmp_path / "o2" / "tall.png")))
    assert np.abs(got.astype(int) - _expected(runs["pix2pix"], None, src, 3).astype(int)).max() <= 1
    capsys.readouterr()
    assert main(["translate", str(runs["pix2pix"]), str(src), "--out", str(tmp_path / "o3"), "--direction", "AtoB"]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained BtoA" in err and "cannot translate AtoB" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o3").exists()


def test_folders_modes_and_corrupt_files(runs, tmp_path, capsys):
    src = tmp_path / "in"
    _photo(src / "grey.png", 40, 33, mode="L")
    _photo(src / "alpha.png", 36, 36, mode="RGBA")
    _photo(src / "nested" / "deep.bmp", 64, 32)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["translate", str(runs["cyclegan"]), str(src), "--out", str(out), "--no-ema"]) == 0
    captured = capsys.readouterr()
    assert "translated 3 image(s)" in captured.out
    assert "skipped 1 unreadable image(s)" in captured.err and "broken.png" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert Image.open(out / "grey.png").size == (40, 33) and Image.open(out / "grey.png").mode == "RGB"
    assert Image.open(out / "alpha.png").size == (36, 36)
    assert Image.open(out / "nested" / "deep.png").size == (64, 32)
    # the grey file was converted to the generator's 3 channels by repeating it: same result as an RGB copy
    rgb = tmp_path / "rgb" / "grey.png"
    rgb.parent.mkdir()
    Image.open(src / "grey.png").convert("RGB").save(rgb)
    assert main(["translate", str(runs["cyclegan"]), str(rgb), "--out", str(tmp_path / "out2")]) == 0
    assert np.array_equal(np.asarray(Image.open(out / "grey.png")), np.asarray(Image.open(tmp_path / "out2" / "grey.png")))


@pytest.mark.parametrize("extra,msg", [
    (["/no/such/image.png"], "no such input"),
    (["--tile", "30"], "multiple of 4"),
    (["--tile", "32", "--overlap", "32"], "--overlap"),
    (["--direction", "sideways"], "AtoB, BtoA"),
])
def test_bad_input_is_one_line_exit_2(runs, tmp_path, capsys, extra, msg):
    img = str(_photo(tmp_path / "x.png", 40, 40))
    inputs = [e for e in extra if e.startswith("/")] or [img]
    opts = [e for e in extra if not e.startswith("/")]
    assert main(["translate", str(runs["cyclegan"]), *inputs, "--out", str(tmp_path / "o"), *opts]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_noise_models_and_empty_folders_are_refused(tmp_path, capsys):
    run = ganforge.train("dcgan", overrides=["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.steps=1",
                                             "train.progress=false"], name="d", runs_dir=str(tmp_path))
    img = str(_photo(tmp_path / "x.png", 40, 40))
    assert main(["translate", str(run), img, "--out", str(tmp_path / "o")]) == 2
    assert "does not translate images" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["translate", str(run), str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
