"""StyleGAN exploration tools (Python API): seeds, truncation, style mixing, walks, projection, directions."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.errors import GanforgeError
from ganforge.tools import animation
from ganforge.tools.directions import (Direction, edit, learn_direction, list_directions, load_direction,
                                       load_score_function, parse_strengths, read_labels, save_direction)
from ganforge.tools.interpolation import interpolate, lerp, slerp, walk
from ganforge.tools.projection import load_latent, load_target, noise_buffers, noise_maps, project, save_projection
from ganforge.tools.style import (level_resolutions, mix_styles, parse_seeds, seed_images, seed_latents, seed_ws,
                                  style_layers, style_mix_grid)
from ganforge.utils.images import to_uint8

# The tests pin the settings they were written for, so that tuning the demo presets does not move them.
V2 = ["model.config=cpu-tiny", "model.clusters=0", "recipe.g_lr=0.0025", "recipe.d_lr=0.0025", "recipe.r1_gamma=0.1",
      "model.channels=1", "model.channel_max=16", "model.z_dim=16", "model.w_dim=16",
      "train.batch_size=8", "train.steps=2", "train.progress=false", "train.ema=0.5", "train.sample_every=100",
      "train.ckpt_every=100"]
V1 = ["model.config=cpu-small", "recipe.phase_kimg=30", "recipe.fade_kimg=30", "recipe.ema_rampup=0",
      "model.channels=1", "model.fmap_base=64", "model.fmap_max=16", "model.z_dim=16",
      "model.w_dim=16", "model.mapping_layers=2", "train.batch_size=8", "train.steps=2", "train.progress=false",
      "train.ema=0.5", "train.sample_every=100", "train.ckpt_every=100"]


def quiet(*a, **k):
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("style-runs")
    return {"stylegan2": ganforge.train("stylegan2", overrides=V2, name="v2", runs_dir=str(root), echo=quiet),
            "stylegan": ganforge.train("stylegan", overrides=V1, name="v1", runs_dir=str(root), echo=quiet)}


@pytest.fixture(scope="module")
def g2(runs):
    return ganforge.load(runs["stylegan2"])


@pytest.fixture(params=["stylegan2", "stylegan"])
def gen(request, runs):
    return ganforge.load(runs[request.param])


def direct_ws(g, seed):
    """ws of a seed computed by hand: io.latents' z through the mapping network."""
    z, _ = g.io.latents(1, seed)
    with torch.no_grad():
        return g.net.mapping(z)


def direct_image(g, ws):
    with torch.no_grad():
        return g.net.synthesis(ws, noise_mode="const")


# ---- seeds and truncation ---------------------------------------------------------------------------------
def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds(" 4 ") == [4]
    for bad in ("3-1", "a", "-1", "", "1,,2", "1-2-3", "0-100000"):
        with pytest.raises(GanforgeError):
            parse_seeds(bad)


def test_seed_latents_are_io_latents_and_match_sample(g2):
    z, y = seed_latents(g2, [5, 9])
    assert y is None
    assert torch.equal(z[1], g2.io.latents(1, 9)[0][0])
    # seed s = the first image of `sample --seed s` (which clamps to [-1, 1], as an image file would)
    assert torch.equal(seed_images(g2, [5]).clamp(-1, 1), g2.sample(1, seed=5))


def test_truncation_psi_zero_gives_one_image(gen):
    imgs = seed_images(gen, [0, 1, 2, 3], psi=0.0)
    assert all(torch.equal(imgs[0], imgs[i]) for i in range(1, 4))
    # ... the image of the tracked mean w, on every layer
    w_avg = gen.net.mapping.w_avg[None, None].expand(1, gen.net.num_ws, -1)
    torch.testing.assert_close(imgs[:1], direct_image(gen, w_avg), rtol=0, atol=1e-5)
    free = seed_images(gen, [0, 1], psi=1.0)
    assert not torch.allclose(free[0], free[1])
    half = seed_images(gen, [0], psi=0.5)
    assert not torch.allclose(half, free[:1]) and not torch.allclose(half, imgs[:1])
    # sample(psi=...) agrees with seed_images for the first seed of a batch
    torch.testing.assert_close(gen.sample(2, seed=3, psi=0.5)[:1], seed_images(gen, [3], psi=0.5).clamp(-1, 1))
    with pytest.raises(GanforgeError, match=r"\[0, 2\]"):
        seed_images(gen, [0], psi=2.5)


# ---- style mixing ------------------------------------------------------------------------------------------
def test_levels_by_resolution(g2):
    assert style_layers(g2, "coarse") == [0, 1, 2, 3]  # 4-8 px at 32 px
    assert style_layers(g2, "middle") == [4, 5]  # 16 px
    assert style_layers(g2, "fine") == [6, 7]  # 32 px
    assert style_layers(g2, "2-5") == [2, 3, 4, 5] and style_layers(g2, "7") == [7]
    # the papers' bands from 64 px up
    assert level_resolutions(1024) == {"coarse": [4, 8], "middle": [16, 32], "fine": [64, 128, 256, 512, 1024]}
    assert level_resolutions(64) == {"coarse": [4, 8], "middle": [16, 32], "fine": [64]}
    assert level_resolutions(8) == {"coarse": [4], "middle": [], "fine": [8]}
    for bad in ("ultra", "5-2", "0-8", "-1-3", "a-b"):
        with pytest.raises(GanforgeError):
            style_layers(g2, bad)


def test_mix_grid_cells_equal_direct_computation(gen):
    rows, cols = [1, 2], [3, 4, 5]
    grid = style_mix_grid(gen, rows, cols, "middle")
    assert grid.shape == (3 * 4, 1, 32, 32)
    assert torch.equal(grid[0], torch.ones_like(grid[0]))  # the blank top-left cell
    for j, c in enumerate(cols):  # top row: the column seeds
        torch.testing.assert_close(grid[1 + j], direct_image(gen, direct_ws(gen, c))[0], rtol=0, atol=1e-5)
    for i, r in enumerate(rows):
        row_ws = direct_ws(gen, r)
        torch.testing.assert_close(grid[(i + 1) * 4], direct_image(gen, row_ws)[0], rtol=0, atol=1e-5)
        for j, c in enumerate(cols):
            mixed = row_ws.clone()
            mixed[:, 4:6] = direct_ws(gen, c)[:, 4:6]  # middle = layers 4-5 from the column seed
            cell = grid[(i + 1) * 4 + 1 + j]
            torch.testing.assert_close(cell, direct_image(gen, mixed)[0], rtol=0, atol=1e-5)
    # explicit layer ranges go through the same path
    grid2 = style_mix_grid(gen, [1], [3], "0-1")
    mixed = direct_ws(gen, 1).clone()
    mixed[:, 0:2] = direct_ws(gen, 3)[:, 0:2]
    torch.testing.assert_close(grid2[3], direct_image(gen, mixed)[0], rtol=0, atol=1e-5)


def test_mix_styles_replaces_only_the_layers():
    a, b = torch.zeros(2, 6, 3), torch.ones(1, 6, 3)
    m = mix_styles(a, b, [1, 4])
    assert m[:, [1, 4]].eq(1).all() and m[:, [0, 2, 3, 5]].eq(0).all() and a.eq(0).all()


# ---- interpolation -----------------------------------------------------------------------------------------
def test_slerp_and_lerp():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    torch.testing.assert_close(slerp(a, b, 0.5), torch.tensor([math.sqrt(0.5)] * 2))  # on the circle, not the chord
    torch.testing.assert_close(slerp(a, b, 0.25), torch.tensor([math.cos(math.pi / 8), math.sin(math.pi / 8)]))
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(64, generator=g), torch.randn(64, generator=g)
    z2 = z2 * z1.norm() / z2.norm()
    for t in (0.1, 0.5, 0.9):  # equal norms stay equal along the arc
        assert abs(float(slerp(z1, z2, t).norm()) - float(z1.norm())) < 1e-4
    assert float(lerp(z1, z2, 0.5).norm()) < float(z1.norm()) - 0.5  # the chord cuts inside
    torch.testing.assert_close(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: a straight line


def test_walk_frame_counts_and_linearity():
    pts = torch.randn(3, 4, 5)
    assert walk(pts, 4).shape[0] == 2 * 4 + 1
    loop = walk(pts, 4, loop=True, space="w")
    assert loop.shape[0] == 3 * 4
    torch.testing.assert_close(loop[-1], lerp(pts[2], pts[0], 0.75))
    seg = walk(pts, 5, space="w")[:6]
    torch.testing.assert_close(seg[2:] - seg[1:-1], seg[1:-1] - seg[:-2])  # straight, evenly spaced
    with pytest.raises(GanforgeError):
        walk(pts, 1)


def test_interpolate_slerps_in_z_and_lerps_in_w(g2):
    frames = interpolate(g2, [1, 2, 3], "z", frames=4)
    assert frames.shape == (9, 1, 32, 32)
    for k, s in ((0, 1), (4, 2), (8, 3)):
        torch.testing.assert_close(frames[k:k + 1], seed_images(g2, [s]), rtol=0, atol=1e-5)
    z1, z2 = g2.io.latents(1, 1)[0], g2.io.latents(1, 2)[0]
    with torch.no_grad():  # t = 1/4 (at 1/2 the chord has the arc's direction, and the mapping normalises z)
        want = g2.net(slerp(z1, z2, 0.25))
        chord = g2.net(lerp(z1, z2, 0.25))
    torch.testing.assert_close(frames[1:2], want, rtol=0, atol=1e-5)
    assert not torch.allclose(frames[1:2], chord, atol=1e-3)
    wf = interpolate(g2, [1, 2], "w", frames=4, loop=True)
    assert wf.shape[0] == 8
    ws1, ws2 = direct_ws(g2, 1), direct_ws(g2, 2)
    torch.testing.assert_close(wf[2:3], direct_image(g2, lerp(ws1, ws2, 0.5)), rtol=0, atol=1e-5)
    torch.testing.assert_close(wf[5:6], direct_image(g2, lerp(ws2, ws1, 0.25)), rtol=0, atol=1e-5)


def test_gif_has_every_frame(tmp_path):
    frames = torch.linspace(-1, 1, 7)[:, None, None, None].expand(7, 1, 8, 8)
    path = animation.write_animation(frames, tmp_path / "a.gif", fps=10, size=24)
    with Image.open(path) as im:
        assert im.n_frames == 7 and im.size == (24, 24) and im.info["duration"] == 100
    with pytest.raises(GanforgeError, match="gif"):
        animation.write_animation(frames, tmp_path / "a.avi")


def test_mp4_without_encoder_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(animation, "ffmpeg_exe", lambda: None)
    with pytest.raises(GanforgeError, match=r"ffmpeg.*\.gif"):
        animation.check_animation_path(tmp_path / "a.mp4")


# ---- projection --------------------------------------------------------------------------------------------
def test_projection_reconstructs_generated_images(g2, tmp_path):
    before = {k: v.clone() for k, v in noise_buffers(g2.net).items()}
    # Projection is a local search, and can stall in a poor optimum (about 1 seed in 10 on this tiny
    # model): the typical result, the median over four seeds' images, must beat the mean-w start 4x.
    results = [project(g2, seed_images(g2, [s]), "w", steps=100, w_avg_samples=2000) for s in range(4)]
    ratios = sorted(r.mse / r.baseline_mse for r in results)
    assert (ratios[1] + ratios[2]) / 2 < 0.25 and ratios[-1] < 0.75, ratios
    res = results[0]
    assert res.ws.shape == (1, 8, 16) and torch.equal(res.ws[:, 0], res.ws[:, 7])  # one w for every layer
    assert all(torch.equal(v, noise_buffers(g2.net)[k]) for k, v in before.items())  # the model is untouched
    assert set(res.noise) == set(before)
    for m in res.noise.values():  # normalised after every step
        assert abs(float(m.mean())) < 1e-4 and abs(float(m.square().mean()) - 1) < 1e-3
    # the saved latent and noise reproduce the reconstruction
    paths = save_projection(res, tmp_path / "p")
    ws, noise = load_latent(paths["latent"])
    with noise_maps(g2, noise):
        again = direct_image(g2, ws).clamp(-1, 1)
    torch.testing.assert_close(again, res.reconstruction, rtol=0, atol=1e-5)
    assert all(torch.equal(v, noise_buffers(g2.net)[k]) for k, v in before.items())  # restored afterwards
    assert np.array_equal(np.asarray(Image.open(paths["reconstruction"])), to_uint8(res.reconstruction[0]))
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics["mse"] == pytest.approx(res.mse) and metrics["baseline_mse"] == pytest.approx(res.baseline_mse)
    assert metrics["psnr"] == pytest.approx(10 * math.log10(1 / res.mse))
    with Image.open(paths["progress"]) as im:
        assert im.size == (64, 32) and im.n_frames > 10
    data = torch.load(paths["latent"], weights_only=True)
    assert set(data) == {"ws", "w"} | {f"noise/{k}" for k in before}


def test_projection_in_w_plus_optimises_each_layer(g2):
    res = project(g2, seed_images(g2, [8]), "w+", steps=30, w_avg_samples=500)
    assert res.ws.shape == (1, 8, 16) and not torch.equal(res.ws[:, 0], res.ws[:, 7])
    assert res.mse < res.baseline_mse
    with pytest.raises(GanforgeError, match=r"\[1, 1, 32, 32\]"):
        project(g2, torch.zeros(1, 3, 32, 32), steps=2)


def test_load_target_converts_with_notes(tmp_path):
    rgba = np.zeros((40, 50, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x, notes = load_target(tmp_path / "a.png", 1, 32)
    assert x.shape == (1, 1, 32, 32)
    text = " | ".join(notes)
    assert "RGBA" in text and "grayscale" in text and "50x40 to 32x32" in text
    assert abs(float(x.mean()) - (round(0.299 * 200) / 127.5 - 1)) < 0.02  # luma of the red
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "g.png")
    assert load_target(tmp_path / "g.png", 1, 32)[1] == []
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(GanforgeError, match="cannot read image"):
        load_target(tmp_path / "bad.png", 1, 32)
    with pytest.raises(GanforgeError, match="no such image"):
        load_target(tmp_path / "none.png", 1, 32)


# ---- directions and edits ----------------------------------------------------------------------------------
def brightness(images):
    return images.mean(dim=(1, 2, 3))


def test_direction_from_a_score_function_moves_the_score(g2, tmp_path):
    d = learn_direction(g2, brightness, n=300)
    assert d.kind == "regression" and d.metric == "correlation" and d.value > 0.5, d.describe()
    assert d.n_train + d.n_test == 300 and abs(float(d.direction.norm()) - 1) < 1e-5 and d.std > 0
    strengths = parse_strengths("-3:3:7")
    strip = edit(g2, seed_ws(g2, [3]), d, strengths)
    assert strip.shape == (7, 1, 32, 32)
    scores = brightness(strip.clamp(-1, 1))
    assert (scores[1:] > scores[:-1]).all(), scores  # brighter from left to right
    torch.testing.assert_close(strip[3:4], seed_images(g2, [3]), rtol=0, atol=1e-5)  # strength 0: the seed
    # strengths are in standard deviations along the direction
    ws = seed_ws(g2, [3])
    torch.testing.assert_close(strip[6:7], direct_image(g2, ws + 3 * d.std * d.direction), rtol=0, atol=1e-5)


def test_direction_from_binary_labels_is_a_classifier(g2, tmp_path):
    seeds = list(range(200))
    score = brightness(seed_images(g2, seeds).clamp(-1, 1))
    median = score.median()
    csv = tmp_path / "labels.csv"
    csv.write_text("seed,label\n" + "".join(f"{s},{int(v > median)}\n" for s, v in zip(seeds, score)))
    d = learn_direction(g2, labels=csv)
    assert d.kind == "classification" and d.metric == "accuracy" and d.value >= 0.75, d.describe()
    reg = learn_direction(g2, brightness, n=200)
    assert float(d.direction @ reg.direction) > 0.5  # both point towards brighter images


def test_direction_files(g2, runs):
    d = Direction(torch.tensor([1.0] + [0.0] * 15), 2.0, 0.1, "regression", "correlation", 0.9, 8, 2, "test")
    path = save_direction(g2, d, "t-1")
    assert path == runs["stylegan2"] / "directions" / "t-1.pt"
    loaded = load_direction(g2, "t-1")
    assert torch.equal(loaded.direction, d.direction) and loaded.std == 2.0 and "t-1" in list_directions(g2)
    with pytest.raises(GanforgeError, match=r"unknown direction 'nope'.*known: .*t-1"):
        load_direction(g2, "nope")
    with pytest.raises(GanforgeError, match="bad direction name"):
        save_direction(g2, d, "../x")
    # a plain direction tensor moves by strength x 1
    ws = seed_ws(g2, [4])
    img = edit(g2, ws, d.direction, [2.0])
    torch.testing.assert_close(img, direct_image(g2, ws + 2 * d.direction), rtol=0, atol=1e-5)


def test_parse_strengths_labels_and_score_modules(tmp_path):
    assert parse_strengths("-3:3:7") == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert parse_strengths("1:5:1") == [1.0] and parse_strengths("-2,0,2") == [-2.0, 0.0, 2.0]
    for bad in ("1:2", "a:b:3", "0:1:0", "0:1:1000", "1:2:3:4", "nan,1", ""):
        with pytest.raises(GanforgeError):
            parse_strengths(bad)
    (tmp_path / "l.csv").write_text("seed,label\n3,1.5\n4,-2\n")
    assert read_labels(tmp_path / "l.csv") == {3: 1.5, 4: -2.0}
    (tmp_path / "bad.csv").write_text("3,1\nx,2\n")
    with pytest.raises(GanforgeError, match="line 2"):
        read_labels(tmp_path / "bad.csv")
    (tmp_path / "sc.py").write_text("def score(images):\n    return images.mean(dim=(1, 2, 3))\n")
    fn = load_score_function(f"{tmp_path / 'sc.py'}:score")
    assert fn(torch.ones(2, 1, 4, 4)).tolist() == [1.0, 1.0]
    assert load_score_function("math:sqrt")(4.0) == 2.0  # an importable module
    for bad, msg in (("sc.py", "MODULE:FUNCTION"), (f"{tmp_path / 'sc.py'}:nope", "no function 'nope'"),
                     ("no_such_module_xyz:f", "importing"), (f"{tmp_path / 'none.py'}:f", "no such score module")):
        with pytest.raises(GanforgeError, match=msg):
            load_score_function(bad)


def test_score_function_must_return_one_score_per_image(g2):
    with pytest.raises(GanforgeError, match="finite scores"):
        learn_direction(g2, lambda x: x.mean(), n=20)
