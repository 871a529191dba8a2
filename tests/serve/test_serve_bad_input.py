"""Bad requests to `ganforge serve`: each a 4xx with one JSON line saying what was wrong, and the server keeps
serving. Also: runs only from the configured folder, never unpickled, never through a link."""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from servehelp import decode, photo, png_bytes


def png_header_only(w: int, h: int) -> bytes:
    """A PNG claiming w x h grey pixels, with one tiny IDAT: a few hundred bytes, w*h pixels to a decoder."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * (w + 1) * 4)) + chunk(b"IEND", b""))


def png_bomb(w: int, h: int) -> bytes:
    """A complete, valid grey PNG of w x h zeros, compressed to a few kilobytes."""
    comp = zlib.compressobj(9)
    row = b"\0" * (w + 1)
    body = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def assert_error(r, status: int | tuple, words: str) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    message = body["error"]
    assert "\n" not in message and "Traceback" not in message and 'File "' not in message
    assert words.lower() in message.lower(), message
    return message


def still_serving(client) -> None:
    r = client.get("/api/runs/dcgan/sample.png", params={"n": 1})
    assert r.status_code == 200 and decode(r.content).shape == (32, 32)  # 28 px and the grid's border


def upload(client, run, op, data, name="in.png", **form):
    return client.post(f"/api/runs/{run}/{op}", files={"image": (name, data, "application/octet-stream")}, data=form)


GOOD = png_bytes(photo(24, 20))


@pytest.mark.parametrize("case", ["truncated", "oversized", "bomb-header", "bomb-pixels", "gif", "text", "empty",
                                  "animated"])
def test_bad_uploads_are_refused_with_one_clear_line(client, case):
    if case == "truncated":
        r = upload(client, "cyc", "translate", GOOD[: len(GOOD) // 2])
        assert_error(r, 400, "truncated")
    elif case == "oversized":  # over the 256 KiB cap of the test app: random pixels do not compress
        data = png_bytes(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))
        assert len(data) > 256 * 1024
        assert_error(upload(client, "cyc", "translate", data), 413, "larger than")
    elif case == "bomb-header":  # 1 gigapixel declared in 100 bytes: Pillow's own bomb check fires at open
        data = png_header_only(40000, 25000)
        assert len(data) < 1024
        assert_error(upload(client, "sr", "upscale", data), 413, "decompression bomb")
    elif case == "bomb-pixels":  # a real 4000x4000 PNG in ~16 KB: over the pixel cap, refused before decoding
        data = png_bomb(4000, 4000)
        assert len(data) < 64 * 1024
        assert_error(upload(client, "cyc", "translate", data), 413, "4000x4000")
    elif case == "gif":
        buf = io.BytesIO()
        Image.fromarray(photo(8, 8)).save(buf, format="GIF")
        assert_error(upload(client, "cyc", "translate", buf.getvalue()), 415, "PNG, JPEG, WebP or BMP")
    elif case == "text":
        assert_error(upload(client, "sr", "upscale", b"definitely not an image"), 415, "not a PNG")
    elif case == "empty":
        assert_error(upload(client, "sr", "upscale", b""), 400, "empty")
    elif case == "animated":
        frames = [Image.fromarray(photo(8, 8, seed=s)) for s in range(3)]
        buf = io.BytesIO()
        frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
        assert_error(upload(client, "sr", "upscale", buf.getvalue()), 400, "3 frames")
    still_serving(client)


def test_pillow_bomb_limit_fires_through_the_warning_too(client, monkeypatch):
    # Below Pillow's error threshold (2x MAX_IMAGE_PIXELS) it only warns: the warning must be an error here.
    with monkeypatch.context() as m:
        m.setattr(Image, "MAX_IMAGE_PIXELS", 100)
        assert_error(upload(client, "sr", "upscale", png_bytes(photo(15, 10))), 413, "decompression bomb")
    still_serving(client)


def test_chunked_body_over_the_cap_is_cut_off(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    r = client.post("/api/runs/sr/upscale", content=chunks(),
                    headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(r, 413, "larger than")
    still_serving(client)


@pytest.mark.parametrize("url, status, words", [
    ("/api/runs/nope/sample.png", 404, "no run named 'nope'"),
    ("/api/runs/a..b/sample.png", 400, "bad run name"),
    ("/api/runs/%2E%2E/sample.png", 400, "bad run name"),
    ("/api/runs/..%5Cetc/sample.png", 400, "bad run name"),
    ("/api/runs/%2E%2E%2Fdcgan/sample.png", 404, "no such page or endpoint"),  # a slash never reaches a handler
    ("/api/runs/cgan/sample.png?class=10", 400, "class labels must lie in 0..9"),
    ("/api/runs/cgan/sample.png?class=-1", 422, "class"),
    ("/api/runs/dcgan/sample.png?class=1", 400, "not class-conditional"),
    ("/api/runs/dcgan/sample.png?seed=abc", 422, "seed"),
    ("/api/runs/dcgan/sample.png?seed=1e3", 422, "seed"),
    ("/api/runs/dcgan/sample.png?n=1000", 422, "n:"),
    ("/api/runs/dcgan/sample.png?trunc=nan", 400, "threshold"),
    ("/api/runs/dcgan/sample.png?trunc=0.01", 400, "threshold"),
    ("/api/runs/sg2/sample.png?trunc=2.5", 400, "psi"),
    ("/api/runs/p2p/sample.png", 400, "translates images"),
    ("/api/runs/sr/interpolate.png", 400, "upscales images"),
    ("/api/runs/dcgan/mix.png", 400, "needs a StyleGAN run"),
    ("/api/runs/cgan/edit.png", 400, "needs a StyleGAN run"),
    ("/api/runs/sg2/edit.png?strengths=nope:1", 400, "no direction 'nope'"),
    ("/api/runs/sg2/edit.png?strengths=../../x:1", 400, "bad direction name"),
    ("/api/runs/sg2/edit.png?strengths=thick", 400, "NAME:STRENGTH"),
    ("/api/runs/sg2/mix.png?rows=0-100", 400, "at most 8"),
    ("/api/runs/sg2/mix.png?levels=everything", 400, "unknown style levels"),
    ("/api/runs/sg2/interpolate.png?space=q", 422, "space"),
    ("/api/runs/dcgan/interpolate.png?space=w", 400, "StyleGAN"),
    ("/api/runs/dcgan/classes.png", 400, "without classes"),
    ("/api/nothing", 404, "no such page or endpoint"),
    ("/static/../../etc/passwd", 404, ""),
])
def test_bad_parameters_are_4xx_with_one_clear_message(client, url, status, words):
    assert_error(client.get(url), status, words)
    still_serving(client)


def test_a_model_that_cannot_do_the_operation(client):
    assert_error(upload(client, "sr", "translate", GOOD), 400, "does not translate")
    assert_error(upload(client, "cyc", "upscale", GOOD), 400, "does not upscale")
    assert_error(upload(client, "dcgan", "translate", GOOD), 400, "does not translate")
    assert_error(upload(client, "p2p", "translate", GOOD, direction="BtoA"), 400, "translates AtoB")
    assert_error(client.post("/api/runs/sr/upscale"), 422, "image")
    assert_error(client.delete("/api/runs/sr/upscale"), 405, "not allowed")
    still_serving(client)


def test_runs_outside_the_folder_and_links_are_not_served(runs_dir, tmp_path):
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    root = tmp_path / "runs"
    root.mkdir()
    os.symlink(runs_dir / "dcgan", root / "linked")  # a link to a real run elsewhere
    os.symlink(runs_dir, root / "all")
    (root / "copy" / "checkpoints" / "step-000001").mkdir(parents=True)
    real = runs_dir / "dcgan" / "checkpoints" / "step-000001"
    for f in real.iterdir():  # a checkpoint whose files are links out of the folder
        os.symlink(f, root / "copy" / "checkpoints" / "step-000001" / f.name)
    (root / "copy" / "checkpoints" / "latest").write_text("step-000001\n")
    with TestClient(create_app(root)) as c:
        runs = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
        assert set(runs) == {"copy"} and "symbolic link" in runs["copy"]["error"]
        assert str(tmp_path) not in json.dumps(runs)  # no server paths in what clients see
        assert_error(c.get("/api/runs/linked/sample.png"), 404, "no run named")
        assert_error(c.get("/api/runs/copy/sample.png"), 400, "symbolic link")


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_run_weights_are_never_unpickled(runs_dir, tmp_path, monkeypatch):
    import shutil

    import torch
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    root = tmp_path / "runs"
    shutil.copytree(runs_dir / "dcgan", root / "evil")
    ckpt = root / "evil" / "checkpoints" / "step-000001"
    for name in ("G.safetensors", "G_ema.safetensors"):
        (ckpt / name).write_bytes(pickle.dumps(_Boom()))
    monkeypatch.chdir(tmp_path)

    def no_torch_load(*a, **k):
        raise AssertionError("torch.load was called while loading a run")

    monkeypatch.setattr(torch, "load", no_torch_load)
    with TestClient(create_app(root), raise_server_exceptions=False) as c:
        assert_error(c.get("/api/runs/evil/sample.png"), 400, "corrupt weight file")
        shutil.copytree(runs_dir / "dcgan", root / "fine")
        assert c.get("/api/runs/fine/sample.png", params={"n": 1}).status_code == 200  # loads without torch.load
    assert not (tmp_path / "PWNED").exists()


def test_foreign_host_headers_are_refused(runs_dir):
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    with TestClient(create_app(runs_dir, allowed_hosts=["127.0.0.1", "localhost"]),
                    base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/health").status_code == 200
        assert_error(c.get("/api/health", headers={"host": "attacker.example:8000"}), 400, "not served here")


def test_too_many_waiting_requests_get_429(runs_dir):
    import asyncio
    import threading

    import httpx

    from ganforge.serve import create_app

    app = create_app(runs_dir, max_waiting=2)
    gate = threading.Event()
    app.state.engine.submit(gate.wait)  # the worker is busy until the gate opens

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            tasks = [asyncio.create_task(c.get("/api/runs/dcgan/sample.png", params={"n": 1, "seed": i}))
                     for i in range(3)]
            while app.state.engine.waiting < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            done = [t for t in tasks if t.done()]
            assert len(done) == 1 and done[0].result().status_code == 429
            assert "busy" in done[0].result().json()["error"]
            gate.set()
            return [await t for t in tasks]

    try:
        codes = sorted(r.status_code for r in asyncio.run(go()))
    finally:
        gate.set()
        app.state.engine.close()
    assert codes == [200, 200, 429]
