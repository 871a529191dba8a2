"""Bad numbers in options and config keys are one line and exit code 2 before any work is done."""
import pytest

import ganforge
from ganforge.cli import main
from ganforge.config import config_for
from ganforge.errors import GanforgeError

TINY = ["model.ngf=8", "model.ndf=8", "train.batch_size=16", "train.progress=false"]

BAD_TRAIN = [
    ("train.steps=-1", "train.steps must be >= 0"),
    ("train.steps=abc", "wrong type"),
    ("train.steps=.inf", "wrong type"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("train.log_every=0", "train.log_every must be >= 1"),
    ("train.sample_every=0", "train.sample_every must be >= 1"),
    ("train.ckpt_every=-5", "train.ckpt_every must be >= 1"),
    ("train.keep_ckpts=-1", "train.keep_ckpts must be >= 0"),
    ("train.n_samples=0", "train.n_samples must be >= 1"),
    ("train.max_nan_failures=0", "train.max_nan_failures must be >= 1"),
    ("train.nan_lr_factor=0", "train.nan_lr_factor must be in (0, 1]"),
    ("train.nan_lr_factor=1.5", "train.nan_lr_factor must be in (0, 1]"),
    ("train.eval_every=-1", "train.eval_every must be >= 0"),
    ("train.eval_n=1", "train.eval_n must be >= 2"),
    ("train.ema=1", "train.ema must be in [0, 1)"),
    ("train.ema=-0.1", "train.ema must be in [0, 1)"),
    ("train.ema=.nan", "train.ema must be in [0, 1)"),
    ("train.ema_start=-1", "train.ema_start must be >= 0"),
    ("train.dist_timeout=0", "train.dist_timeout must be >= 1"),
    ("train.seed=-1", "train.seed must be in [0, 2**63)"),
    ("data.num_workers=-1", "data.num_workers must be >= 0"),
    ("model.ngf=0", "model.ngf must be >= 1"),
    ("model.z_dim=-3", "model.z_dim must be >= 1"),
    ("model.ngf=abc", "model.ngf='abc' has the wrong type (expected int)"),
    ("model.image_size=1.5", "model.image_size=1.5 has the wrong type (expected int)"),
    ("model.ngf=true", "wrong type"),
    ("model.num_classes=-1", "model.num_classes must be >= 0"),
    ("model.d_norm=[1, 2]", "model.d_norm=[1, 2] has the wrong type (expected str)"),
    ("recipe.g_lr=0", "recipe.g_lr must be a finite number > 0"),
    ("recipe.d_lr=-1e-4", "recipe.d_lr must be a finite number > 0"),
    ("recipe.beta1=1", "recipe.beta1 must be in [0, 1)"),
    ("recipe.beta2=-0.5", "recipe.beta2 must be in [0, 1)"),
]


def _one_error_line(capsys, expect: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("ganforge: error:") and expect in err, err
    return err


@pytest.mark.parametrize("bad,expect", BAD_TRAIN, ids=[b for b, _ in BAD_TRAIN])
def test_bad_config_values_refused_before_training(bad, expect, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "dcgan", f"train.runs_dir={runs}", "train.steps=1", *TINY, bad]) == 2  # the last wins
    _one_error_line(capsys, expect)
    assert not runs.exists()  # no run folder, no checkpoint, nothing


OTHER_MODELS = [
    (["pix2pix", "recipe.lr=0"], "recipe.lr must be a finite number > 0"),
    (["cyclegan", "model.n_blocks=-2"], "model.n_blocks must be >= 0"),
    (["cyclegan", "model.n_blocks=x"], "model.n_blocks='x' has the wrong type (expected int)"),
    (["pix2pix", "model.dropout=3"], "model.dropout=3 has the wrong type (expected bool)"),
    (["cgan", "model.arch=null"], "model.arch must not be null"),
]


@pytest.mark.parametrize("bad,expect", OTHER_MODELS, ids=[" ".join(a) for a, _ in OTHER_MODELS])
def test_bad_values_of_other_models(bad, expect, tmp_path, capsys):
    assert main(["train", *bad, f"train.runs_dir={tmp_path / 'runs'}"]) == 2
    _one_error_line(capsys, expect)
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained DCGAN run for the commands that read one."""
    out = tmp_path_factory.mktemp("runs")
    return ganforge.train("dcgan", overrides=TINY + ["train.steps=1"], name="r", runs_dir=str(out),
                          echo=lambda *a, **k: None)


OPTION_CASES = [
    (["sample", "RUN", "-n", "0"], "argument -n: must be >= 1, got 0"),
    (["sample", "RUN", "-n", "-4"], "argument -n: must be >= 1"),
    (["sample", "RUN", "-n", "many"], "argument -n: 'many' is not an integer"),
    (["sample", "RUN", "--nrow", "0"], "argument --nrow: must be >= 1"),
    (["sample", "RUN", "--seed", "-1"], "argument --seed: must be in [0, 2**63)"),
    (["sample", "RUN", "--seed", "1.5"], "argument --seed: '1.5' is not an integer"),
    (["eval", "RUN", "--ref", "digits", "--n", "1"], "argument --n: must be >= 2"),
    (["eval", "RUN", "--ref", "digits", "--batch-size", "0"], "argument --batch-size: must be >= 1"),
    (["eval", "RUN", "--ref", "digits", "--seed", "-3"], "argument --seed: must be in [0, 2**63)"),
    (["translate", "RUN", "RUN", "--out", "o", "--tile", "0"], "argument --tile: must be >= 1"),
    (["translate", "RUN", "RUN", "--out", "o", "--overlap", "-1"], "argument --overlap: must be >= 0"),
    (["translate", "RUN", "RUN", "--out", "o", "--tile", "x"], "argument --tile: 'x' is not an integer"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    (["train", "dcgan", "--nosuch-option"], "unrecognized arguments: --nosuch-option"),
    (["sample"], "the following arguments are required: path"),
    (["data"], "the following arguments are required: data_cmd"),
]


@pytest.mark.parametrize("argv,expect", OPTION_CASES, ids=[" ".join(a) for a, _ in OPTION_CASES])
def test_bad_options_are_one_line_exit_2(argv, expect, run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # whatever a command would write by default lands here
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    assert main([str(run) if a == "RUN" else a for a in argv]) == 2
    _one_error_line(capsys, expect)
    assert not any(tmp_path.iterdir())
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_python_api_refuses_bad_model_arguments():
    with pytest.raises(GanforgeError, match="ngf must be >= 1, got 0"):
        ganforge.create_model("dcgan", ngf=0)
    with pytest.raises(GanforgeError, match="wrong type"):
        config_for("dcgan", ["model.image_size=1.5"])
    m = ganforge.create_model("dcgan", ngf=8.0, image_size=32)  # an integral float is the int it spells
    assert m.args["ngf"] == 8 and type(m.args["ngf"]) is int


def test_presets_still_resolve_with_their_values():
    for preset in ("dcgan", "wgan", "wgan-gp", "cgan", "gan", "pix2pix", "cyclegan"):
        cfg = config_for(preset)
        assert cfg.train.batch_size >= 1 and cfg.model["name"]
