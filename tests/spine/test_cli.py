"""The command line: every command as a user runs it, and bad input as one line with exit code 2."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from ganforge.cli import main

TINY = ["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.progress=false"]


def test_models_and_summary(capsys):
    assert main(["models", "--params"]) == 0
    out = capsys.readouterr().out
    assert "dcgan  G=3,576,704, D=2,765,568" in out and "wgan-gp" in out and "hinge" in out
    # every named config of the style families, and the SR networks at the paper's sizes
    assert "config=ffhq1024: G=26,219,627, D=23,087,249" in out and "config=f1024: G=30,370,060" in out
    assert "srgan  G=1,549,462, D=23,565,505" in out
    assert main(["summary", "dcgan", "model.image_size=64", "model.channels=3", "model.clusters=0"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 3,576,704" in out and "(N, 512, 4, 4)" in out and "(N, 3, 64, 64)" in out


def test_dry_run_prints_resolved_config(capsys, tmp_path):
    assert main(["train", "wgan-gp", "--dry-run", "steps=9", f"train.runs_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "gp_weight: 10.0" in out and "steps: 9" in out and "beta2: 0.9" in out
    assert not any(tmp_path.iterdir())  # nothing trained or written


def test_train_sample_resume(tmp_path, capsys):
    import numpy as np

    import ganforge
    from ganforge.utils.images import make_grid, to_uint8

    runs = f"train.runs_dir={tmp_path}"
    assert main(["train", "cgan", "--name", "c", runs, "steps=2", *TINY]) == 0
    run = tmp_path / "c"
    out = tmp_path / "grid.png"
    assert main(["sample", str(run), "-n", "20", "--out", str(out), "--class", "3", "--seed", "1"]) == 0
    im = Image.open(out)
    assert im.size == (8 * 30 + 2, 3 * 30 + 2)  # 8 per row, 28 px + 2 px padding
    # the grid is exactly the API's samples for that class and seed ...
    want = to_uint8(make_grid(ganforge.sample(run, n=20, seed=1, labels=3), nrow=8))
    assert np.array_equal(np.asarray(im), want)
    # ... and --class and --seed really change what is drawn
    for flags, name in ((["--class", "4", "--seed", "1"], "c4.png"), (["--class", "3", "--seed", "2"], "s2.png")):
        assert main(["sample", str(run), "-n", "20", "--out", str(tmp_path / name), *flags]) == 0
        assert not np.array_equal(np.asarray(Image.open(tmp_path / name)), want), flags
    a, b = ganforge.sample(run, n=4, seed=1, labels=3), ganforge.sample(run, n=4, seed=1, labels=4)
    assert not torch.allclose(a, b)  # the label reaches the generator
    assert torch.equal(a, ganforge.sample(run, n=4, seed=1, labels=3))  # seeded: reproducible
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "steps=3"]) == 0
    assert (run / "checkpoints" / "step-000003").is_dir()


@pytest.mark.parametrize("argv,msg", [
    (["train", "nosuchgan"], "unknown model or preset"),
    (["train", "dcgan", "--data", "/no/such/folder"], "/no/such/folder"),
    (["train", "dcgan", "nosuch.key=1"], "unknown config section"),
    (["train", "dcgan", "train.bogus=1"], "unknown config key"),
    (["sample", "/no/such/run"], "no such run"),
    (["summary", "nosuch"], "unknown model or preset"),
    (["data", "check", "/no/such/dir"], "/no/such/dir"),
])
def test_bad_input_is_one_line_exit_2(argv, msg, capsys, tmp_path):
    assert main(argv + [f"train.runs_dir={tmp_path}"] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_empty_folder_is_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "dcgan", "--data", str(tmp_path / "empty"), f"train.runs_dir={tmp_path}"]) == 2
    assert "ganforge: error:" in capsys.readouterr().err


def test_class_flag_on_unconditional_model(tmp_path, capsys):
    assert main(["train", "dcgan", "--name", "u", f"train.runs_dir={tmp_path}", "steps=1", *TINY]) == 0
    assert main(["sample", str(tmp_path / "u"), "--class", "3", "--out", str(tmp_path / "x.png")]) == 2
    assert "not class-conditional" in capsys.readouterr().err


def test_sigterm_checkpoints_and_resumes(tmp_path):
    """An interrupted run loses at most the steps since its last checkpoint (here: none)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ganforge", "train", "dcgan", "--name", "s", f"train.runs_dir={tmp_path}",
           "steps=100000", "log_every=1", "ckpt_every=100000", "sample_every=100000", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = tmp_path / "s" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "--resume" in err
    latest = (tmp_path / "s" / "checkpoints" / "latest").read_text().strip()
    step = int(latest.split("-")[1])
    logged = len(metrics.read_text().splitlines())
    assert step >= 3 and step >= logged  # the checkpoint holds every logged step
    assert main(["train", "--resume", str(tmp_path / "s"), f"steps={step + 1}"]) == 0


def test_no_traceback_from_subprocess(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ganforge", "train", "dcgan", "--data", str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
