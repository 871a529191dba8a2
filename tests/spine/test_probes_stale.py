"""A run folder is locked while it trains, and the leftovers of killed checkpoint writes are cleaned."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.training.checkpoint import (clean_stale, lock_run, resolve_checkpoint, save_checkpoint,
                                          verify_checkpoint)

TRY_LOCK = textwrap.dedent("""
    import sys
    from ganforge.errors import GanforgeError
    from ganforge.training.checkpoint import lock_run
    try:
        lock_run(sys.argv[1])
    except GanforgeError as e:
        print(e)
        sys.exit(2)
    print("locked")
""")


def _try_lock_elsewhere(run):
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(run)], capture_output=True, text=True, timeout=120)


def test_second_lock_from_another_process_fails(tmp_path):
    run = tmp_path / "r"
    lock = lock_run(run)
    assert (run / ".lock").read_text().strip() == str(os.getpid())
    r = _try_lock_elsewhere(run)
    assert r.returncode == 2, r.stderr
    assert r.stdout.strip() == f"run {run} is being trained by another process (pid {os.getpid()})"
    with pytest.raises(GanforgeError, match="being trained by another process"):
        lock_run(run)  # a second lock in the same process is refused too
    lock.release()
    r = _try_lock_elsewhere(run)
    assert (r.returncode, r.stdout.strip()) == (0, "locked"), r.stderr  # free again once released


def _checkpoint(root, step, name=None):
    weights = {"G": {"w": torch.full((3,), float(step))}}
    return save_checkpoint(root, step, weights, {"model": {"name": "dcgan"}}, {"step": step}, keep=5, name=name)


def test_clean_stale_removes_leftovers_and_keeps_checkpoints(tmp_path):
    run = tmp_path / "r"
    root = run / "checkpoints"
    _checkpoint(root, 2)
    _checkpoint(root, 2, name="best")
    # What `kill -9` during save_checkpoint leaves behind:
    partial = root / ".step-000004.3f9a0c1d"  # a half-written new checkpoint
    partial.mkdir()
    (partial / "G.safetensors").write_bytes(b"\0" * 100)
    (root / ".step-000003.k_9x2q1z").mkdir()  # a temporary folder named by tempfile.mkdtemp (older versions)
    (root / ".step-000002.old").mkdir()  # the previous copy moved aside (step-000002 itself is intact)
    (root / ".step-000002.old" / "G.safetensors").write_bytes(b"old")
    (root / ".latest.0a1b2c3d.tmp").write_text("step-000004\n")
    # A crash between moving `best` aside and moving its replacement in: the aside copy is the only one.
    os.replace(root / "best", root / ".best.old")
    # Not ours: must stay.
    (root / "notes.txt").write_text("mine")
    (root / ".my-folder").mkdir()
    (root / ".latest.tmp").write_text("x")

    with pytest.raises(RuntimeError, match="lock_run"):
        clean_stale(root)  # without the lock a live writer's folder looks exactly like a dead one's
    with lock_run(run):
        removed = clean_stale(root)
    assert sorted(p.name for p in removed) == [".latest.0a1b2c3d.tmp", ".step-000002.old", ".step-000003.k_9x2q1z",
                                               ".step-000004.3f9a0c1d"]
    assert sorted(p.name for p in root.iterdir()) == [".latest.tmp", ".my-folder", "best", "latest", "notes.txt",
                                                      "step-000002"]
    verify_checkpoint(root / "step-000002")
    verify_checkpoint(root / "best")  # restored, not deleted
    assert resolve_checkpoint(run) == root / "step-000002"
