import re

import pytest

from ganforge.config import apply_overrides, config_for, list_presets, resolve
from ganforge.errors import GanforgeError


def test_presets_resolve_fully():
    for p in list_presets():
        cfg = config_for(p)
        assert cfg.model["name"] and cfg.recipe["name"]
        assert "steps" in cfg.to_dict()["train"]


def test_wgan_presets_follow_papers():
    w = config_for("wgan").recipe
    assert (w["loss"], w["n_critic"], w["clip"], w["optimizer"], w["d_lr"]) == ("wasserstein", 5, 0.01, "rmsprop", 5e-5)
    gp = config_for("wgan-gp").recipe
    assert (gp["gp_weight"], gp["n_critic"], gp["beta1"], gp["beta2"]) == (10.0, 5, 0.5, 0.9)


def test_overrides_qualified_and_bare():
    cfg = config_for("dcgan", ["train.steps=7", "ngf=16", "recipe.loss=hinge", "beta2=0.9", "train.amp=true"])
    assert cfg.train.steps == 7 and cfg.model["ngf"] == 16 and cfg.recipe["loss"] == "hinge"
    assert cfg.recipe["beta2"] == 0.9 and cfg.train.amp == "auto"  # true reads as auto


@pytest.mark.parametrize("given,key,value", [
    ("train.amp=false", "amp", "off"), ("train.amp=bf16", "amp", "bf16"), ("train.amp=fp16", "amp", "fp16"),
    ("train.compile=true", "compile", "default"), ("train.compile=false", "compile", "off"),
    ("train.compile=max-autotune", "compile", "max-autotune"), ("train.channels_last=false", "channels_last", "off"),
    ("train.channels_last=on", "channels_last", "on"), ("train.data_on_device=true", "data_on_device", "on"),
    ("train.cuda_graphs=false", "cuda_graphs", "off"), ("train.cuda_graphs=true", "cuda_graphs", "on"),
])
def test_speed_options_read_booleans_and_words(given, key, value):
    assert getattr(config_for("dcgan", [given]).train, key) == value


@pytest.mark.parametrize("bad,msg", [
    ("train.amp=fp8", "train.amp must be one of off, auto, bf16, fp16, got 'fp8'"),
    ("train.compile=fast", "train.compile must be one of off, default, max-autotune"),
    ("train.compile=reduce-overhead", "train.compile=reduce-overhead: torch.compile's CUDA graph trees overwrite"),
    ("train.cuda_graphs=always", "train.cuda_graphs must be one of auto, on, off, got 'always'"),
    ("train.channels_last=maybe", "train.channels_last must be one of auto, on, off"),
    ("train.data_on_device=2", "train.data_on_device must be one of auto, on, off"),
    ("train.threads=-1", "train.threads must be >= 0"),
])
def test_bad_speed_options_are_one_line(bad, msg):
    with pytest.raises(GanforgeError, match=re.escape(msg)):
        config_for("dcgan", [bad])


def test_model_name_override_changes_allowed_keys():
    cfg = config_for("dcgan", ["model.name=gan", "model.image_size=28"])
    assert cfg.model["name"] == "gan" and "ngf" not in cfg.model


@pytest.mark.parametrize("bad,msg", [
    (["train.stepz=3"], "unknown config key"),
    (["nosuchkey=1"], "unknown config key"),
    (["model.nfg=3"], "unknown config key"),
    (["bogus.x=1"], "unknown config section"),
    (["train.steps=abc"], "wrong type"),
    (["steps"], "key=value"),
    (["image_size=28"], "ambiguous"),  # it is not: only model has it
])
def test_bad_overrides(bad, msg):
    if msg == "ambiguous":
        assert config_for("dcgan", bad).model["image_size"] == 28
        return
    with pytest.raises(GanforgeError, match=msg):
        config_for("dcgan", bad)


def test_unknown_target():
    with pytest.raises(GanforgeError, match="unknown model or preset"):
        config_for("nosuchgan")


def test_model_name_without_preset_uses_factory_defaults():
    cfg = config_for("gan")  # a preset exists; a bare model name without preset works too
    assert cfg.model["image_size"] == 28
    raw = apply_overrides({"model": {"name": "dcgan"}}, [])
    assert resolve(raw).model["image_size"] == 64


def test_yaml_roundtrip(tmp_path):
    cfg = config_for("wgan-gp", ["steps=11"])
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    again = config_for(str(p))
    assert again.to_dict() | {"preset": ""} == cfg.to_dict() | {"preset": ""}
