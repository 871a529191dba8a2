"""50 concurrent generate requests to a live server: all answer with the right image, the model is loaded once,
and the server answers other requests while the model worker is busy (torch work is off the event loop)."""
from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np

import ganforge
from ganforge.utils.images import make_grid, to_uint8
from servehelp import LiveServer, decode

BURST = 50


def test_a_burst_of_50_generate_requests_all_answer_correctly_and_the_server_stays_responsive(app, runs_dir):
    engine = app.state.engine
    loads_before = engine.cache.loads
    gate = threading.Event()
    with LiveServer(app) as server:
        async def go():
            limits = httpx.Limits(max_connections=BURST + 10)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as c:
                engine.submit(gate.wait)  # hold the model worker: every generate request must queue behind it
                tasks = [asyncio.create_task(c.get("/api/runs/group~nested/sample.png",
                                                   params={"seed": i, "n": 4, **({"trunc": 1.5} if i % 2 else {})}))
                         for i in range(BURST)]
                while engine.waiting < BURST:  # all 50 reached the server and wait for the worker
                    await asyncio.sleep(0.02)
                    assert not any(t.done() for t in tasks), [t.result().text for t in tasks if t.done()][:1]
                # The event loop is free while the worker is busy: other requests are answered meanwhile.
                health = await c.get("/api/health")
                assert health.status_code == 200 and health.json()["waiting"] == BURST
                assert (await c.get("/api/runs")).status_code == 200
                assert (await c.get("/")).status_code == 200
                assert not any(t.done() for t in tasks)
                gate.set()
                return await asyncio.gather(*tasks)

        try:
            responses = asyncio.run(go())
        finally:
            gate.set()
    g = ganforge.load(runs_dir / "group" / "nested")
    for i, r in enumerate(responses):
        assert r.status_code == 200, r.text
        want = g.sample(4, seed=i, threshold=1.5 if i % 2 else None)
        assert np.array_equal(decode(r.content), to_uint8(make_grid(want, nrow=2))), f"seed {i}"
    assert engine.cache.loads - loads_before == 1  # loaded once, by the first request, shared by the rest
    assert engine.waiting == 0
