"""Runs started in the same second get different folders; a dry run or a failed start leaves none."""
import time

import pytest

import ganforge
from ganforge.api import plan_run
from ganforge.errors import GanforgeError


@pytest.fixture
def same_second(monkeypatch):
    """Every timestamp of the test is the same second."""
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20240101-120000")


def test_two_runs_in_the_same_second_get_two_folders(tmp_path, same_second):
    _, a, _ = plan_run("dcgan", runs_dir=str(tmp_path))
    cfg_b, b, _ = plan_run("dcgan", runs_dir=str(tmp_path))
    _, c, _ = plan_run("dcgan", runs_dir=str(tmp_path))
    assert [a.name, b.name, c.name] == ["dcgan-20240101-120000", "dcgan-20240101-120000-2", "dcgan-20240101-120000-3"]
    assert a.is_dir() and b.is_dir() and c.is_dir()  # reserved at once, so a third process sees them taken
    assert cfg_b.train.name == b.name  # the config written into the run names its real folder


def test_dry_run_reserves_nothing(tmp_path, same_second):
    _, a, _ = plan_run("dcgan", runs_dir=str(tmp_path), reserve=False)
    assert a.name == "dcgan-20240101-120000" and not any(tmp_path.iterdir())


def test_failed_start_leaves_no_folder(tmp_path):
    with pytest.raises(GanforgeError, match="no such path"):
        ganforge.train("dcgan", data=str(tmp_path / "missing"), runs_dir=str(tmp_path / "runs"))
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_torchrun_without_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(GanforgeError, match="--name"):
        plan_run("dcgan", runs_dir=str(tmp_path))
    assert plan_run("dcgan", runs_dir=str(tmp_path), name="x")[1] == tmp_path / "x"
