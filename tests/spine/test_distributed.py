"""Two processes (gloo on CPU, as torchrun starts them) train one model through DistributedDataParallel.

Every wait is bounded: processes are joined with a timeout and killed if they overstay, so a hang fails
the test instead of hanging CI; each worker tears its process group down."""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import socket
import sys
import traceback
from pathlib import Path

import pytest
import torch

TINY = ["model.ngf=8", "model.ndf=8", "train.progress=false", "train.device=cpu", "train.log_every=1",
        "train.sample_every=100", "train.ckpt_every=100"]
JOIN_TIMEOUT = 180  # seconds; a healthy 2-rank run here takes a few


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(fn_name: str, rank: int, world: int, port: int, out: str, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    result: dict = {}
    try:
        globals()[fn_name](rank, out, result, *args)
    except BaseException as e:  # report, never hang the parent
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()
    finally:
        from ganforge.training.distributed import broken, shutdown

        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
        sys.stdout.flush()
        sys.stderr.flush()
        if broken():  # as the CLI does: a broken process group is not torn down (that can abort)
            os._exit(0)
        shutdown()


def launch(fn_name: str, tmp_path: Path, *args, world: int = 2, expect_exit: dict | None = None) -> list[dict]:
    """Run top-level function `fn_name(rank, out, result, *args)` in `world` spawned processes; their results."""
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_entry, args=(fn_name, r, world, port, str(tmp_path), args)) for r in range(world)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(JOIN_TIMEOUT)
        hung = [r for r, p in enumerate(procs) if p.is_alive()]
        assert not hung, f"rank(s) {hung} still running after {JOIN_TIMEOUT} s"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(10)
    expect_exit = expect_exit or {}
    for r, p in enumerate(procs):
        assert p.exitcode == expect_exit.get(r, 0), f"rank {r} exited with {p.exitcode}"
    results = []
    for r in range(world):
        f = tmp_path / f"rank{r}.json"
        results.append(json.loads(f.read_text()) if f.is_file() else {"error": "no result (process died)"})
    return results


def _fingerprint(trainer) -> dict[str, list[float]]:
    """Every parameter and buffer (live nets and EMA) as exact float lists, by name."""
    out = {}
    mods = dict(trainer.models.nets)
    if trainer.ema is not None:
        mods.update({f"{k}_ema": v for k, v in trainer.ema.shadows.items()})
    for name, m in mods.items():
        for k, v in m.state_dict().items():
            out[f"{name}.{k}"] = v.detach().double().flatten().tolist()
    return out


def _train(out: str, name: str, overrides: list[str], resume: bool = False, patch=None, target: str = "dcgan"):
    """ganforge.train in this process, returning the Trainer (for its networks)."""
    from ganforge.api import plan_run
    from ganforge.training.loop import Trainer

    cfg, run_dir, ckpt = plan_run(target if not resume else None, None, overrides, name,
                                  resume=(Path(out) / name) if resume else None, runs_dir=out)
    trainer = Trainer(cfg, run_dir, resume=ckpt, echo=lambda *a, **k: None)
    if patch is not None:
        patch(trainer)
    trainer.run()
    return trainer


# ---- workers (top level, so that spawn can import them) ----------------------------------------------------
def w_bn_sync(rank, out, result, overrides):
    trainer = _train(out, "bn", overrides)
    result["fp"] = _fingerprint(trainer)


def w_style(rank, out, result, target, overrides):
    trainer = _train(out, target, overrides, target=target)
    result["fp"] = _fingerprint(trainer)
    result["p"] = float(trainer.recipe.pipe.p) if trainer.recipe.pipe is not None else None
    result["pl_mean"] = float(trainer.recipe.pl_mean)


def w_resume(rank, out, result, overrides, name, steps):
    trainer = _train(out, name, overrides + [f"train.steps={steps}"])
    result["fp"] = _fingerprint(trainer)


def w_resume_continue(rank, out, result, name):
    trainer = _train(out, name, ["train.steps=6"], resume=True)
    result["fp"] = _fingerprint(trainer)


def w_nan_one_rank(rank, out, result, overrides):
    def patch(trainer):
        real = trainer.recipe.step

        def step(batches, ctx):
            losses = real(batches, ctx)
            if rank == 1 and ctx.step == 2 and ctx.attempt == 0:
                losses["loss_D"] = float("nan")  # this rank alone sees a non-finite loss
            return losses

        trainer.recipe.step = step

    trainer = _train(out, "nan", overrides, patch=patch)
    result["fp"] = _fingerprint(trainer)
    result["failures"] = trainer.failures
    result["step"] = trainer.step


def w_rank_dies(rank, out, result, overrides):
    def patch(trainer):
        real = trainer.recipe.step

        def step(batches, ctx):
            if rank == 1 and ctx.step == 3:
                os._exit(17)  # killed mid-run, as by the OOM killer
            return real(batches, ctx)

        trainer.recipe.step = step

    _train(out, "dies", overrides, patch=patch)


def w_rank_hangs(rank, out, result, overrides):
    import time

    def patch(trainer):
        real = trainer.recipe.step

        def step(batches, ctx):
            if rank == 1 and ctx.step == 2:
                time.sleep(15)  # stuck (a deadlock, a dead filesystem) for longer than the timeout
            return real(batches, ctx)

        trainer.recipe.step = step

    started = time.monotonic()
    try:
        _train(out, "hangs", overrides, patch=patch)
    finally:
        result["seconds"] = time.monotonic() - started


def w_translation(rank, out, result, overrides, name, target="pix2pix"):
    from ganforge.api import plan_run
    from ganforge.training.loop import Trainer

    cfg, run_dir, _ = plan_run(target, None, overrides, name, runs_dir=out)
    trainer = Trainer(cfg, run_dir, echo=lambda *a, **k: None)
    trainer.run()
    result["fp"] = _fingerprint(trainer)


# ---- tests -------------------------------------------------------------------------------------------------
def _assert_same(a: dict, b: dict, atol: float = 0.0, what: str = "") -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = torch.tensor(a[k]), torch.tensor(b[k])
        assert torch.allclose(x, y, atol=atol, rtol=0), f"{what}{k} differs by {(x - y).abs().max():.3g}"


def test_parameters_and_buffers_identical_across_ranks(tmp_path):
    """DCGAN (BatchNorm in G and D) with EMA and 2 D steps per G step: ranks hold identical parameters AND
    buffers at the end, and the saved checkpoint holds exactly them."""
    from ganforge.training.checkpoint import load_weights, resolve_checkpoint

    ov = TINY + ["train.batch_size=8", "train.steps=4", "train.ema=0.9", "recipe.n_critic=2"]
    r0, r1 = launch("w_bn_sync", tmp_path, ov)
    assert "error" not in r0 and "error" not in r1, (r0.get("traceback"), r1.get("traceback"))
    _assert_same(r0["fp"], r1["fp"], what="rank 1 vs rank 0: ")
    bn = [k for k in r0["fp"] if k.startswith("G.") and "running_mean" in k]
    assert bn and any(any(v != 0 for v in r0["fp"][k]) for k in bn)  # BatchNorm statistics really moved
    ck = resolve_checkpoint(tmp_path / "bn")
    saved = load_weights(ck, "G")
    assert not any(k.startswith("module.") for k in saved)  # unwrapped nets are saved
    for k, v in saved.items():
        assert v.double().flatten().tolist() == r0["fp"][f"G.{k}"]
    lines = (tmp_path / "bn" / "metrics.jsonl").read_text().splitlines()
    rec = json.loads(lines[-1])
    assert len(lines) == 4 and rec["batch_size"] == 16 and rec["images_seen"] == 4 * 2 * 16  # global figures


def test_two_processes_equal_one_on_the_same_global_batch(tmp_path, monkeypatch):
    """Pix2Pix without normalisation layers or dropout (no BatchNorm, no noise): 2 ranks x batch 2 train the
    same weights as 1 process x batch 4, to float tolerance (only the summation order differs)."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))  # inherited by the spawned ranks
    ov = ["model.image_size=32", "model.ngf=8", "model.ndf=8", "model.norm=none", "model.dropout=false",
          "train.progress=false", "train.device=cpu", "train.steps=3", "train.sample_every=100",
          "train.ckpt_every=100", "train.n_samples=2", "data.source=demo:colorize,n_train=16,n_test=2",
          "recipe.total_steps=3"]
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    two = launch("w_translation", tmp_path / "two", ov + ["train.batch_size=2"], "t2")
    one = launch("w_translation", tmp_path / "one", ov + ["train.batch_size=4"], "t1", world=1)
    assert all("error" not in r for r in two + one), [r.get("traceback") for r in two + one]
    _assert_same(two[0]["fp"], two[1]["fp"], what="rank 1 vs rank 0: ")
    _assert_same(one[0]["fp"], two[0]["fp"], atol=2e-5, what="1 process vs 2: ")
    # and the comparison is not vacuous: the weights moved away from their initial values
    g = [k for k in one[0]["fp"] if k.startswith("G.") and k.endswith("weight")][0]
    assert max(abs(v) for v in one[0]["fp"][g]) > 0


def test_nonfinite_loss_on_one_rank_is_skipped_by_both(tmp_path):
    ov = TINY + ["train.batch_size=8", "train.steps=5", "train.log_every=1"]
    r0, r1 = launch("w_nan_one_rank", tmp_path, ov)
    assert "error" not in r0 and "error" not in r1, (r0.get("traceback"), r1.get("traceback"))
    assert r0["failures"] == r1["failures"] == 1 and r0["step"] == r1["step"] == 5  # skipped together, went on
    _assert_same(r0["fp"], r1["fp"], what="rank 1 vs rank 0: ")
    assert all(math.isfinite(v) for vals in r0["fp"].values() for v in vals)


def test_resume_under_two_processes_continues_exactly(tmp_path):
    ov = TINY + ["train.batch_size=8", "data.flip=true"]
    full = launch("w_resume", tmp_path, ov, "full", 6)
    part = launch("w_resume", tmp_path, ov, "part", 3)
    assert all("error" not in r for r in full + part), [r.get("traceback") for r in full + part]
    cont = launch("w_resume_continue", tmp_path, "part")
    assert all("error" not in r for r in cont), [r.get("traceback") for r in cont]
    _assert_same(full[0]["fp"], cont[0]["fp"], what="resumed vs uninterrupted: ")
    _assert_same(cont[0]["fp"], cont[1]["fp"], what="rank 1 vs rank 0: ")


def test_a_rank_that_dies_stops_the_others_with_one_line_and_the_run_resumes(tmp_path):
    ov = TINY + ["train.batch_size=8", "train.steps=6", "train.ckpt_every=2", "train.dist_timeout=60"]
    r0, r1 = launch("w_rank_dies", tmp_path, ov, expect_exit={1: 17})
    err = r0.get("error", "")
    assert err.startswith("DistributedError: rank 0 lost contact with the other processes at step 4"), r0
    assert "\n" not in err and "--resume" in err
    from ganforge.training.checkpoint import load_state, resolve_checkpoint

    assert load_state(resolve_checkpoint(tmp_path / "dies"))["step"] == 2  # the last checkpoint is intact
    cont = launch("w_resume_continue", tmp_path, "dies")
    assert all("error" not in r for r in cont), [r.get("traceback") for r in cont]
    assert load_state(resolve_checkpoint(tmp_path / "dies"))["step"] == 6


def test_a_rank_that_hangs_stops_the_others_within_the_timeout(tmp_path):
    ov = TINY + ["train.batch_size=8", "train.steps=6", "train.dist_timeout=3"]
    r0, r1 = launch("w_rank_hangs", tmp_path, ov)
    err = r0.get("error", "")
    assert err.startswith("DistributedError: rank 0 lost contact with the other processes at step 3"), r0
    assert r0["seconds"] < 14  # rank 0 gave up after the 3 s timeout, not after rank 1 woke up at 15 s
    assert r1.get("error", "").startswith("DistributedError: rank 1 lost contact"), r1


@pytest.mark.parametrize("target,overrides", [
    # two generators and two discriminators, several forwards per DDP module before one backward
    ("cyclegan", ["model.image_size=32", "model.ngf=8", "model.ndf=8", "model.n_blocks=1", "train.batch_size=1",
                  "data.source=demo:grass2gravel,n_train=4,n_test=2", "train.n_samples=2"]),
    # the gradient penalty's double backward through the unwrapped critic, 5 critic steps a step
    ("wgan-gp", ["model.ngf=8", "model.ndf=8", "train.batch_size=4"]),
])
def test_every_game_trains_in_step_across_ranks(tmp_path, monkeypatch, target, overrides):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    ov = overrides + ["train.progress=false", "train.device=cpu", "train.steps=2", "train.sample_every=100",
                      "train.ckpt_every=100"]
    r0, r1 = launch("w_translation", tmp_path, ov, "g", target)
    assert "error" not in r0 and "error" not in r1, (r0.get("traceback"), r1.get("traceback"))
    _assert_same(r0["fp"], r1["fp"], what="rank 1 vs rank 0: ")


@pytest.mark.parametrize("target,extra", [
    # lazy R1 and path length on their intervals, ADA's p from both ranks' D outputs, style mixing
    # (pinned here: the CPU demo preset turns path length and augmentation off)
    ("stylegan2", ["recipe.augment=ada", "recipe.pl_weight=2", "recipe.r1_every=2", "recipe.pl_every=2",
                   "recipe.ada_interval=1", "recipe.ada_kimg=0.1", "recipe.augment_p=0.5"]),
    # progressive: the inactive high-resolution layers get no gradient while 8 px trains, then 16 px fades in
    ("stylegan", ["model.fmap_max=16", "recipe.phase_kimg=0.016", "recipe.fade_kimg=0.032", "recipe.batch_by_res=8:4,16:4"]),
])
def test_style_based_recipes_train_under_two_processes(tmp_path, target, extra):
    """Mapping and synthesis in separate DDP wrappers (the path-length pass differentiates through ws),
    unused parameters tolerated while growing: ranks end with identical parameters, buffers and ADA p."""
    ov = ["train.progress=false", "train.device=cpu", "train.log_every=1", "train.sample_every=100",
          "train.ckpt_every=100", "train.batch_size=4", "train.steps=4", "train.ema=0.5", "model.channels=1",
          "model.z_dim=16", "model.w_dim=16"] + (["model.config=cpu-tiny", "model.channel_max=16"]
                                                 if target == "stylegan2" else [])
    r0, r1 = launch("w_style", tmp_path, target, ov + extra)
    assert "error" not in r0 and "error" not in r1, (r0.get("traceback"), r1.get("traceback"))
    _assert_same(r0["fp"], r1["fp"], what="rank 1 vs rank 0: ")
    assert r0["p"] == r1["p"]
    if target == "stylegan2":
        assert r0["p"] is not None and r0["p"] != 0.5  # p moved, by the same amount on both ranks
        # the path-length pass ran on both ranks (its running mean is per process, as in the reference)
        assert r0["pl_mean"] > 0 and r1["pl_mean"] > 0
