"""Settings that run but are almost surely a mistake get one warning line at start-up."""
import ganforge
from ganforge.training import device

TINY = ["model.ngf=8", "model.ndf=8", "train.batch_size=8", "train.progress=false", "train.steps=1"]


def test_slow_mixed_precision_warns_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: False)
    ganforge.train("dcgan", overrides=TINY + ["train.amp=bf16"], name="a", runs_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert err.count("warning: train.amp=bf16") == 1 and "slower than float32" in err
    # auto (and true) on such a CPU: float32, said once, no warning.
    ganforge.train("dcgan", overrides=TINY + ["train.amp=true"], name="a2", runs_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert "warning" not in err and err.count("train.amp=auto: this CPU has no native bfloat16") == 1
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: True)  # AVX512-BF16/AMX: no warning
    ganforge.train("dcgan", overrides=TINY + ["train.amp=bf16"], name="b", runs_dir=str(tmp_path))
    assert "train.amp" not in capsys.readouterr().err


def test_absurd_learning_rate_warns(tmp_path, capsys):
    ganforge.train("dcgan", overrides=TINY + ["recipe.g_lr=0.5"], name="c", runs_dir=str(tmp_path))
    err = capsys.readouterr().err
    assert err.count("recipe.g_lr=0.5 is far above") == 1 and "d_lr" not in err
    ganforge.train("pix2pix", overrides=["model.image_size=32", "model.ngf=8", "model.ndf=8", "train.batch_size=2",
                                         "train.progress=false", "train.steps=1", "recipe.lr=3",
                                         f"data.source=demo:colorize,n_train=4,n_test=2"], name="d",
                   runs_dir=str(tmp_path))
    assert "recipe.lr=3.0 is far above" in capsys.readouterr().err


def test_sync_bn_on_cpu_is_refused_before_work(tmp_path):
    import pytest

    from ganforge.errors import GanforgeError

    with pytest.raises(GanforgeError, match="sync_bn needs CUDA"):
        ganforge.train("dcgan", overrides=TINY + ["train.sync_bn=true", "train.device=cpu"], name="s",
                       runs_dir=str(tmp_path))
    assert not (tmp_path / "s" / "checkpoints").exists()
