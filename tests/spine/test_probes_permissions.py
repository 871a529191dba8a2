"""Everything in a run folder gets the modes the user's umask asks for, like any other tool's output."""
import os
import stat

import pytest

import ganforge
from ganforge.utils.atomic import atomic_write_text, current_umask, make_temp_dir

TINY = ["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.progress=false", "train.steps=2"]


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def _mode(p) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_run_folder_follows_umask(tmp_path, umask, mask):
    umask(mask)
    run = ganforge.train("dcgan", overrides=TINY, name="u", runs_dir=str(tmp_path), echo=lambda *a, **k: None)
    ckpt = run / "checkpoints" / "step-000002"
    expected = [run / "config.yaml", run / "metrics.jsonl", run / "losses.png", run / "checkpoints" / "latest",
                run / "samples" / "step-000002.png", ckpt / "G.safetensors", ckpt / "D.safetensors",
                ckpt / "config.json", ckpt / "state.pt"]
    assert all(f.is_file() for f in expected)
    everything = [run, *run.rglob("*")]  # and whatever else the run writes (its lock, TensorBoard, ...)
    want_file, want_dir = 0o666 & ~mask, 0o777 & ~mask
    got = {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in everything}
    want = {str(p.relative_to(tmp_path)): oct(want_dir if p.is_dir() else want_file) for p in everything}
    assert got == want


def test_atomic_helpers_follow_umask(tmp_path, umask):
    umask(0o027)
    assert current_umask() == 0o027
    assert _mode(atomic_write_text(tmp_path / "a.txt", "x")) == 0o640
    assert _mode(make_temp_dir(tmp_path, prefix=".t.")) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".t.")) == ["a.txt"]  # no leftovers
