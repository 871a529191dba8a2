"""The JSON API of `ganforge serve`: listing, capabilities, and that every image it sends is exactly what the
Python API makes (sampling, classes, truncation, interpolation, mixing, edits, translation, upscaling)."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.utils.images import make_grid, to_uint8

from servehelp import DIRECTION, decode, photo, png_bytes


def grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    return to_uint8(make_grid(images.clamp(-1, 1), nrow=nrow))


def test_listing_names_every_run_with_family_resolution_step_and_thumbnail(client):
    r = client.get("/api/runs")
    assert r.status_code == 200
    runs = {x["name"]: x for x in r.json()["runs"]}
    assert set(runs) == {"dcgan", "cgan", "sg2", "p2p", "cyc", "sr", "group~nested"}
    assert runs["sg2"]["family"] == "stylegan2" and runs["sg2"]["resolution"] == 32 and runs["sg2"]["step"] == 1
    assert runs["cgan"]["num_classes"] == 10 and runs["cgan"]["resolution"] == 28
    assert runs["sr"]["kind"] == "upscale" and runs["sr"]["scale"] == 4
    assert runs["cyc"]["kind"] == "translate"
    for name, run in runs.items():
        t = client.get(run["thumbnail"])
        assert t.status_code == 200 and t.headers["content-type"] == "image/png", name
        assert decode(t.content).size > 0


def test_describe_says_what_each_model_can_do(client):
    sg2 = client.get("/api/runs/sg2").json()
    assert sg2["style"] and sg2["truncation"]["kind"] == "psi" and sg2["attribute_directions"] == [DIRECTION]
    assert set(sg2["operations"]) == {"sample", "interpolate", "mix", "edit"}
    cgan = client.get("/api/runs/cgan").json()
    assert cgan["num_classes"] == 10 and cgan["truncation"]["kind"] == "threshold" and "classes" in cgan["operations"]
    assert client.get("/api/runs/cyc").json()["directions"] == ["AtoB", "BtoA"]
    assert client.get("/api/runs/p2p").json()["directions"] == ["AtoB"]
    assert client.get("/api/runs/sr").json()["operations"] == ["upscale"]


def test_sample_grid_is_the_python_api_sample(client, runs_dir):
    g = ganforge.load(runs_dir / "cgan")
    r = client.get("/api/runs/cgan/sample.png", params={"seed": 5, "n": 4, "class": 3})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.array_equal(decode(r.content), grid(g.sample(4, seed=5, labels=3), 2))
    other = client.get("/api/runs/cgan/sample.png", params={"seed": 6, "n": 4, "class": 3}).content
    assert not np.array_equal(decode(other), decode(r.content))  # a new seed is a new grid
    cls7 = client.get("/api/runs/cgan/sample.png", params={"seed": 5, "n": 4, "class": 7}).content
    assert not np.array_equal(decode(cls7), decode(r.content))  # the class picker changes the images


def test_truncation_is_psi_on_stylegan_and_the_z_threshold_elsewhere(client, runs_dir):
    sg = ganforge.load(runs_dir / "sg2")
    r = client.get("/api/runs/sg2/sample.png", params={"seed": 2, "n": 4, "trunc": 0.3})
    assert np.array_equal(decode(r.content), grid(sg.sample(4, seed=2, psi=0.3), 2))
    plain = client.get("/api/runs/sg2/sample.png", params={"seed": 2, "n": 4}).content
    assert not np.array_equal(decode(plain), decode(r.content))
    dc = ganforge.load(runs_dir / "dcgan")
    r = client.get("/api/runs/dcgan/sample.png", params={"seed": 2, "n": 4, "trunc": 0.5})
    assert np.array_equal(decode(r.content), grid(dc.sample(4, seed=2, threshold=0.5), 2))
    # The threshold must take effect, not only agree with the Python API (which shares the latents' code).
    plain = client.get("/api/runs/dcgan/sample.png", params={"seed": 2, "n": 4}).content
    assert not np.array_equal(decode(plain), decode(r.content))


def test_interpolation_strip_walks_between_the_two_seeds(client, runs_dir):
    g = ganforge.load(runs_dir / "dcgan")
    r = client.get("/api/runs/dcgan/interpolate.png", params={"seed_a": 3, "seed_b": 9, "frames": 4})
    assert r.status_code == 200
    frames = int(r.headers["x-frames"])
    assert frames == 8  # a -> b -> a, 4 frames per segment
    strip = decode(r.content)
    assert strip.shape[1] == 28 * frames
    first, fifth = strip[:, :28], strip[:, 4 * 28:5 * 28]
    assert np.array_equal(first, to_uint8(g.sample(1, seed=3)[0]))
    assert np.array_equal(fifth, to_uint8(g.sample(1, seed=9)[0]))


def test_style_mixing_grid_and_attribute_edits(client, runs_dir):
    from ganforge.tools.directions import edit, load_direction
    from ganforge.tools.style import seed_ws, style_mix_grid

    g = ganforge.load(runs_dir / "sg2")
    r = client.get("/api/runs/sg2/mix.png", params={"rows": "0-1", "cols": "5,6,7", "levels": "coarse"})
    assert r.status_code == 200
    assert np.array_equal(decode(r.content), grid(style_mix_grid(g, [0, 1], [5, 6, 7], "coarse"), 4))
    base = client.get("/api/runs/sg2/edit.png", params={"seed": 4}).content
    moved = client.get("/api/runs/sg2/edit.png", params={"seed": 4, "strengths": f"{DIRECTION}:2"}).content
    assert np.array_equal(decode(base), to_uint8(g.sample(1, seed=4)[0]))
    want = edit(g, seed_ws(g, [4]), load_direction(g, DIRECTION), [2.0])[0].clamp(-1, 1)
    assert np.array_equal(decode(moved), to_uint8(want))
    assert not np.array_equal(decode(moved), decode(base))


def test_class_sheet_rows_are_classes(client, runs_dir):
    from ganforge.tools.conditional import class_sheet

    g = ganforge.load(runs_dir / "cgan")
    r = client.get("/api/runs/cgan/classes.png", params={"seed": 1, "per_class": 2, "trunc": 1.0})
    assert np.array_equal(decode(r.content), grid(class_sheet(g, None, 2, 1, 1.0), 2))


def _upload(client, run, op, data, **form):
    return client.post(f"/api/runs/{run}/{op}", files={"image": ("in.png", data, "image/png")}, data=form)


def test_translate_both_cyclegan_directions_and_pix2pix(client, runs_dir):
    from ganforge.tools.tiling import translate_tiled
    from ganforge.translate import load_translator

    arr = photo(40, 36)
    x = torch.from_numpy(arr.transpose(2, 0, 1).astype(np.float32)).div(127.5).sub(1)[None]
    outs = {}
    for run, direction in (("cyc", "AtoB"), ("cyc", "BtoA"), ("p2p", None)):
        r = _upload(client, run, "translate", png_bytes(arr), **({"direction": direction} if direction else {}))
        assert r.status_code == 200, r.text
        g, _ = load_translator(runs_dir / run, direction)
        with torch.no_grad():
            want = to_uint8(translate_tiled(g, x, 32, 8)[0].clamp(-1, 1))
        assert np.array_equal(decode(r.content), want)
        outs[(run, direction)] = decode(r.content)
    assert not np.array_equal(outs[("cyc", "AtoB")], outs[("cyc", "BtoA")])


def test_upscale_is_upscale_image_for_every_accepted_format(client, runs_dir):
    from ganforge.upscale import load_upscaler, upscale_image

    g = load_upscaler(runs_dir / "sr")
    arr = photo(12, 10)
    want = np.asarray(upscale_image(g, Image.fromarray(arr)))
    for fmt in ("PNG", "BMP", "WEBP"):
        data = png_bytes(arr, fmt) if fmt != "WEBP" else _lossless_webp(arr)
        r = _upload(client, "sr", "upscale", data)
        assert r.status_code == 200, (fmt, r.text)
        assert np.array_equal(decode(r.content), want), fmt
    r = _upload(client, "sr", "upscale", png_bytes(arr, "JPEG"))
    assert r.status_code == 200 and decode(r.content).shape == (40, 48, 3)


def _lossless_webp(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="WEBP", lossless=True)
    return buf.getvalue()


def test_page_loads_nothing_from_outside(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "https:" not in csp
    texts = [r.text] + [client.get(f"/static/{n}").text for n in ("app.js", "app.css")]
    for text in texts:
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), "an external URL in the page"
        assert "@import" not in text and "@font-face" not in text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_openapi_schema_lists_the_endpoints_and_run_names(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for p in ("/api/runs", "/api/runs/{run}/sample.png", "/api/runs/{run}/translate", "/api/runs/{run}/upscale",
              "/api/runs/{run}/mix.png", "/api/runs/{run}/edit.png", "/api/runs/{run}/interpolate.png"):
        assert p in paths
    run_param = next(p for p in paths["/api/runs/{run}/sample.png"]["get"]["parameters"] if p["name"] == "run")
    assert "sg2" in run_param["schema"]["enum"]


def test_a_model_is_loaded_once_and_the_cache_is_bounded(runs_dir):
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    app = create_app(runs_dir, cache_size=2)
    with TestClient(app) as c:
        engine = app.state.engine
        for _ in range(3):
            assert c.get("/api/runs/dcgan/sample.png", params={"n": 1}).status_code == 200
        assert engine.cache.loads == 1
        for run in ("cgan", "sg2", "dcgan"):
            c.get(f"/api/runs/{run}/sample.png", params={"n": 1})
        assert len(engine.cache) == 2 and engine.cache.loads == 4  # dcgan was evicted by cgan and sg2
