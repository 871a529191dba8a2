"""API latency of `ganforge serve` on this machine: a 64-image sample grid and a 512x512 upscale.

    python benchmarks/serve_latency.py --runs runs/demo-style --grid sg2-preset-s0 \\
        --sr-runs runs/demo-sr --sr srgan-s1 [--repeats 5] [--record SECTION]

Requests go through the whole app (middleware, validation, the model worker thread, PNG encoding) with
starlette's in-process TestClient, so the figures exclude only the TCP round trip. The first request of each
kind (which loads the model) is timed apart; the rest give the median and the spread. The upscale request
sends a 512x512 PNG (a crop of skimage's astronaut) and gets 2048x2048 back; a 128x128 one (512x512 out) is
timed too.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _results import record  # noqa: E402


def png(side: int) -> bytes:
    from skimage import data

    img = Image.fromarray(data.astronaut()[:side, :side])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return first, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True, help="runs folder holding the noise run")
    ap.add_argument("--grid", required=True, help="name of a noise run under --runs")
    ap.add_argument("--sr-runs", required=True, help="runs folder holding the super-resolution run")
    ap.add_argument("--sr", required=True, help="name of an srresnet/srgan run under --sr-runs")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--record", default=None)
    a = ap.parse_args()
    import torch
    from fastapi.testclient import TestClient

    from ganforge.serve import create_app

    torch.set_num_threads(2)
    rows = []
    with TestClient(create_app(a.runs)) as c:
        def grid():
            r = c.get(f"/api/runs/{a.grid}/sample.png", params={"n": 64, "seed": 1})
            assert r.status_code == 200, r.text
            assert Image.open(io.BytesIO(r.content)).size[0] > 0
        rows.append(("64-image sample grid", a.grid, *timed(grid, a.repeats)))
    with TestClient(create_app(a.sr_runs)) as c:
        for side in (128, 512):
            body = png(side)

            def up():
                r = c.post(f"/api/runs/{a.sr}/upscale", files={"image": ("in.png", body, "image/png")})
                assert r.status_code == 200, r.text
                assert Image.open(io.BytesIO(r.content)).size == (4 * side, 4 * side)
            rows.append((f"upscale {side}x{side} -> {4 * side}x{4 * side}", a.sr, *timed(up, a.repeats)))
    lines = [f"| request | run | first (loads the model) | median of {a.repeats} | min-max |", "|---|---|---|---|---|"]
    for what, run, first, ts in rows:
        lines.append(f"| {what} | {run} | {first:.2f} s | {statistics.median(ts):.2f} s | "
                     f"{min(ts):.2f}-{max(ts):.2f} s |")
    body = "\n".join(lines)
    print(body)
    if a.record:
        record(a.record, f"`python benchmarks/serve_latency.py --runs {a.runs} --grid {a.grid} --sr-runs "
                         f"{a.sr_runs} --sr {a.sr} --repeats {a.repeats}` (in-process TestClient, 2 threads)\n\n{body}")


if __name__ == "__main__":
    main()
