"""A checkpoint folder is untrusted input: `latest`, config.json and state.pt are validated before use."""
import json
import os

import pytest
import torch

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.training.checkpoint import load_state, read_config, resolve_checkpoint, save_checkpoint


class Payload:
    """Not a tensor, not a primitive: torch.load(weights_only=True) must refuse to rebuild it."""

    def __reduce__(self):
        return (os.getcwd, ())


def _checkpoint(root, step):
    return save_checkpoint(root, step, {"G": {"w": torch.zeros(2)}}, {"model": {"name": "dcgan"}}, {"step": step})


def _evil_folder(path):
    """A folder that looks like a checkpoint, outside the run."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model": {"name": "dcgan"}}))
    (path / "G.safetensors").write_bytes(b"")
    return path


@pytest.fixture
def run(tmp_path):
    r = tmp_path / "run"
    _checkpoint(r / "checkpoints", 1)
    _checkpoint(r / "checkpoints", 2)
    (r / "config.yaml").write_text("{}\n")
    return r


@pytest.mark.parametrize("content,why", [
    ("../outside\n", "not a checkpoint folder name"),
    ("ABS", "not a checkpoint folder name"),
    ("", "is empty"),
    ("  \n", "is empty"),
    ("step-000001\nstep-000002\n", "more than one line"),
    ("step-000009\n", "does not exist"),
    ("LINK", "a symbolic link"),
], ids=["parent", "absolute", "empty", "blank", "two-lines", "missing", "symlink-outside"])
def test_bad_latest_falls_back_to_newest_with_a_warning(run, tmp_path, capsys, content, why):
    root = run / "checkpoints"
    outside = _evil_folder(tmp_path / "run" / "outside")
    if content == "ABS":
        content = str(outside) + "\n"
    if content == "LINK":
        os.symlink(outside, root / "step-000007")
        content = "step-000007\n"
    (root / "latest").write_text(content)
    assert resolve_checkpoint(run) == root / "step-000002"
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ganforge: warning: {root / 'latest'}") and why in err and "step-000002" in err
    assert len(err.splitlines()) == 1


def test_latest_symlinked_outside_is_refused(run, tmp_path, capsys):
    root = run / "checkpoints"
    target = tmp_path / "elsewhere.txt"
    target.write_text("step-000001\n")
    (root / "latest").unlink()
    os.symlink(target, root / "latest")
    assert resolve_checkpoint(run) == root / "step-000002"
    assert "is not a plain file" in capsys.readouterr().err


def test_bad_latest_without_any_step_folder_is_an_error(tmp_path):
    root = tmp_path / "run" / "checkpoints"
    root.mkdir(parents=True)
    _evil_folder(tmp_path / "run" / "outside")
    (root / "latest").write_text("../outside\n")
    with pytest.raises(GanforgeError, match="holds no step-NNNNNN checkpoint folder"):
        resolve_checkpoint(tmp_path / "run")
    (root / "latest").write_text("")
    with pytest.raises(GanforgeError, match="is empty"):
        resolve_checkpoint(root)


def test_good_latest_and_best_are_followed(run, capsys):
    root = run / "checkpoints"
    (root / "latest").write_text("step-000001\n")
    assert resolve_checkpoint(run) == root / "step-000001"
    save_checkpoint(root, 2, {"G": {"w": torch.zeros(2)}}, {"model": {"name": "dcgan"}}, {"step": 2}, name="best")
    (root / "latest").write_text("best")
    assert resolve_checkpoint(run) == root / "best"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("conf,msg", [
    ("[1, 2]", "is not a JSON object"),
    ('"dcgan"', "is not a JSON object"),
    ("{}", "has no model section"),
    ('{"model": "dcgan"}', "has no model section"),
    ('{"model": ["dcgan"]}', "has no model section"),
    ('{"model": {"ngf": 8}}', "names no model"),
    ('{"model": {"name": 5}}', "names no model"),
    ('{"model": {"name": "dcgan"}, "run": []}', "'run' must be a JSON object"),
    ('{"model": {"name": "dcgan"}, "generator_key": 1}', "'generator_key' must be a JSON string"),
    ("{not json", "unreadable checkpoint config"),
])
def test_bad_config_json(run, tmp_path, capsys, conf, msg):
    ck = run / "checkpoints" / "step-000002"
    (ck / "config.json").write_text(conf)
    with pytest.raises(GanforgeError, match=msg):
        read_config(ck)
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2  # the command says the same
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_state_that_needs_unpickling_is_refused(run, capsys):
    ck = run / "checkpoints" / "step-000002"
    torch.save({"step": 2, "extra": Payload()}, ck / "state.pt")
    with pytest.raises(GanforgeError) as e:
        load_state(ck)
    assert str(e.value) == f"training state {ck / 'state.pt'} is not a plain tensor file (refused to unpickle it)"
    assert "weights_only" not in str(e.value)
    assert capsys.readouterr().err == ""  # nor any of PyTorch's warnings


@pytest.mark.parametrize("write,msg", [
    (lambda f: torch.save([1, 2], f), "is a list, not a dictionary"),
    (lambda f: f.write_bytes(b""), "unreadable training state"),
    (lambda f: f.write_bytes(b"PK\x03\x04 truncated"), "unreadable training state"),
    (lambda f: f.unlink(), "has no training state"),
], ids=["list", "empty", "truncated", "missing"])
def test_other_bad_states(run, write, msg):
    ck = run / "checkpoints" / "step-000002"
    write(ck / "state.pt")
    with pytest.raises(GanforgeError, match=msg):
        load_state(ck)
