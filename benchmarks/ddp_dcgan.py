"""DCGAN training with 1 and 2 processes (gloo on CPU, as torchrun runs it): images/s and the number of
collective calls per training step.

Collectives are counted in every rank-0 process: Python-level calls (all_reduce, broadcast, barrier,
all_gather_object, ...) by wrapping torch.distributed's functions, and DDP's bucketed gradient all-reduces
through a counting communication hook. `--src DIR` imports ganforge from another source tree, e.g. a
checkout of an older commit, so the hand-written all-reduce it replaced can be measured the same way:

    git worktree add /tmp/gf-old <commit> && python benchmarks/ddp_dcgan.py --src /tmp/gf-old/src --no-write

Throughput runs carry no counting hooks. The machine is shared and noisy: compare figures of one run.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

COUNTED = ("all_reduce", "broadcast", "barrier", "all_gather_object", "broadcast_object_list", "all_gather")


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, src: str | None, out: str, steps: int, batch: int, threads: int,
            count: bool, result_file: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    if world == 1:
        for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
            os.environ.pop(k)
    if src:
        sys.path.insert(0, src)
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    from ganforge.api import plan_run
    from ganforge.training.loop import Trainer

    counts = {k: 0 for k in COUNTED}
    in_hook: list[bool] = []
    counts["ddp_bucket_allreduce"] = 0
    if count:
        for name in COUNTED:
            real = getattr(dist, name)

            def wrapped(*a, _real=real, _name=name, **k):
                if not in_hook:
                    counts[_name] += 1
                return _real(*a, **k)

            setattr(dist, name, wrapped)
    ov = ["train.progress=false", f"train.steps={steps}", f"train.batch_size={batch}", "train.log_every=10",
          "train.sample_every=100000", "train.ckpt_every=100000", "train.device=cpu"]
    cfg, run_dir, _ = plan_run("dcgan", None, ov, f"w{world}-{time.time_ns()}", runs_dir=out)
    trainer = Trainer(cfg, run_dir, echo=lambda *a, **k: None)
    if count:
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        def hook(state, bucket):
            counts["ddp_bucket_allreduce"] += 1
            in_hook.append(True)  # the hook's own all_reduce is this bucket's, counted once
            try:
                return default_hooks.allreduce_hook(None, bucket)
            finally:
                in_hook.pop()

        for m in getattr(trainer.recipe, "ddp", {}).values():
            if isinstance(m, torch.nn.parallel.DistributedDataParallel):
                m.register_comm_hook(None, hook)
    before = dict(counts)  # what set-up cost (DDP's initial broadcast, process-group checks)
    trainer.run()
    if rank == 0:
        recs = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
        rates = [r["images_per_s"] for r in recs[1:]]  # the first window holds the warm-up
        res = {"images_per_s": sum(rates) / len(rates) if rates else None}
        if count:
            # Set-up is excluded; the final checkpoint's few collectives are included (one per run).
            res["counts"] = {k: v - before.get(k, 0) for k, v in counts.items()}
        Path(result_file).write_text(json.dumps(res))
    if dist.is_initialized():
        dist.destroy_process_group()


def run(world: int, src: str | None, steps: int, batch: int, threads: int, count: bool) -> dict:
    """One training run in `world` fresh processes; rank 0's figures."""
    ctx = multiprocessing.get_context("spawn")
    port = _port()
    with tempfile.TemporaryDirectory() as out:
        res = Path(out) / "result.json"
        procs = [ctx.Process(target=_worker, args=(r, world, port, src, out, steps, batch, threads, count, str(res)))
                 for r in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(900)
            if p.is_alive():
                p.kill()
                raise SystemExit("a benchmark process hung")
            if p.exitcode:
                raise SystemExit(f"a benchmark process failed ({p.exitcode})")
        return json.loads(res.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=None, help="import ganforge from this source folder")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--count-steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64, help="global batch (split across processes)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--baseline-src", default=None, help="also measure 2 processes of the ganforge in this "
                    "source folder (e.g. the commit before DDP), interleaved with the others")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update benchmarks/RESULTS.md")
    a = ap.parse_args()
    cases = [("1 process x 2 threads", 1, 2, a.src), ("1 process x 1 thread", 1, 1, a.src),
             ("2 processes x 1 thread", 2, 1, a.src)]
    if a.baseline_src:
        cases.append(("baseline: 2 processes x 1", 2, 1, a.baseline_src))
    rates: dict[str, list[float]] = {c[0]: [] for c in cases}
    for _ in range(a.repeats):  # interleaved: the machine is shared
        for label, world, threads, src in cases:
            rates[label].append(run(world, src, a.steps, a.batch // world, threads, count=False)["images_per_s"])
    lines = [f"DCGAN 28 px (MNIST preset), global batch {a.batch}, {a.steps} steps, {cpu_name()}, "
             f"{os.cpu_count()} cores, torch CPU, gloo:"]
    for label, vals in rates.items():
        lines.append(f"  {label:<26} {sum(vals) / len(vals):8.1f} images/s  (runs: {', '.join(f'{v:.0f}' for v in vals)})")
    for label, src in [("this tree", a.src)] + ([("baseline", a.baseline_src)] if a.baseline_src else []):
        # Marginal count per step: (calls in 2n steps - calls in n steps) / n, so set-up and the final
        # checkpoint (which both runs have once) cancel out.
        short = run(2, src, a.count_steps, a.batch // 2, 1, count=True)["counts"]
        long = run(2, src, 2 * a.count_steps, a.batch // 2, 1, count=True)["counts"]
        per_step = {k: (long[k] - short.get(k, 0)) / a.count_steps for k in long if long[k] - short.get(k, 0)}
        lines.append(f"  collective calls per step, 2 processes, {label}: "
                     + ", ".join(f"{k}={v:g}" for k, v in sorted(per_step.items())) + f"; total {sum(per_step.values()):g}")
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        cmd = "python benchmarks/ddp_dcgan.py " + " ".join(sys.argv[1:])
        write_section(Path(__file__).with_name("RESULTS.md"), "## Multi-process DCGAN (benchmarks/ddp_dcgan.py)",
                      f"_{time.strftime('%Y-%m-%d %H:%M')}_, `{cmd}`; the baseline is the commit before DDP "
                      f"(hand-written all-reduce of every gradient tensor after backward).\n\n```\n{text}\n```\n")


def write_section(results: Path, marker: str, content: str) -> None:
    """Replace (or append) the section that starts with `marker` in RESULTS.md, leaving the others alone."""
    body = results.read_text() if results.is_file() else "# Benchmark results\n"
    if marker in body:
        head, rest = body.split(marker, 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt >= 0 else ""
    else:
        head, tail = body.rstrip() + "\n\n", ""
    results.write_text(f"{head}{marker}\n\n{content}{tail}")


if __name__ == "__main__":
    main()
