"""Errors that say what is wrong: weights that do not fit, and Ctrl-C or bad input during start-up."""
import subprocess
import sys

import pytest
import torch
from torch import nn

import ganforge.cli as cli
from ganforge.errors import GanforgeError
from ganforge.training.checkpoint import describe_mismatch, load_into


def test_describe_mismatch_names_shapes_and_keys():
    small = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
    big = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 2, 1), nn.Linear(2, 2))
    sd = big.state_dict()
    del sd["1.running_var"]
    text = describe_mismatch(small, sd)
    assert text == ("0.weight has shape (8, 3, 3, 3) in the checkpoint but (4, 3, 3, 3) in the model (and 5 more); "
                    "missing keys: 1.running_var; unexpected keys: 3.weight, 3.bias")
    assert describe_mismatch(small, small.state_dict()) == ""


def test_load_into_raises_one_clear_error_and_leaves_the_module_alone():
    from ganforge.registry import create_model

    g = create_model("dcgan", ngf=8).nets["G"]
    other = create_model("dcgan", ngf=16).nets["G"]
    before = {k: v.clone() for k, v in g.state_dict().items()}
    with pytest.raises(GanforgeError) as e:
        load_into(g, other.state_dict(), "G of checkpoint runs/x/checkpoints/step-000012")
    msg = str(e.value)
    key = next(k for k, v in g.state_dict().items() if v.shape != other.state_dict()[k].shape)
    assert msg.startswith(f"G of checkpoint runs/x/checkpoints/step-000012 does not fit the model: {key} has shape "
                          f"{tuple(other.state_dict()[key].shape)} in the checkpoint but "
                          f"{tuple(g.state_dict()[key].shape)} in the model (and ")
    assert "\n" not in msg and "Error(s) in loading state_dict" not in msg
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())  # nothing half-loaded
    sd = {k: v + 1 for k, v in other.state_dict().items()}
    load_into(other, sd, "G")  # a fitting state dict loads
    assert all(torch.equal(sd[k], v) for k, v in other.state_dict().items())


def test_importing_the_cli_does_not_import_torch():
    code = "import ganforge.cli, sys; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr


def test_public_api_is_still_there():
    code = ("import ganforge, sys; assert 'torch' not in sys.modules; "
            "print(ganforge.train.__name__, ganforge.load.__name__, ganforge.sample.__name__); "
            "from ganforge import create_model, list_models; print(len(list_models()) > 3, callable(create_model))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["train", "load", "sample", "True", "True"], r.stderr
    import ganforge

    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        ganforge.nosuch  # noqa: B018


@pytest.mark.parametrize("where", ["parsing", "running"])
def test_ctrl_c_anywhere_is_exit_130_without_traceback(where, monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    if where == "parsing":
        monkeypatch.setattr(cli, "build_parser", interrupted)
    else:
        import ganforge.api

        monkeypatch.setattr(ganforge.api, "plan_run", interrupted)
    try:
        code = cli.main(["train", "dcgan", "--dry-run"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped ganforge.cli.main (a traceback for the user)")
    assert code == 130
    assert capsys.readouterr().err == "ganforge: interrupted\n"


def test_help_and_version_return_0(capsys):
    assert cli.main(["--version"]) == 0
    assert "ganforge" in capsys.readouterr().out
    assert cli.main(["train", "--help"]) == 0
