"""Typed run configuration: YAML presets, `key=value` overrides, validation and the resolved dump.

A run config has four sections. `model` and `recipe` are open dicts whose keys are checked against the
registered factory's arguments and the recipe's config dataclass; `data` and `train` are dataclasses.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .errors import GanforgeError


@dataclass
class DataConfig:
    """Where images come from and how they are shaped."""

    source: str = "mnist"  # built-in name or a path (folder, zip, IDX folder, CIFAR folder)
    root: str | None = None  # folder for standard datasets read from local files
    split: str = "train"
    resize: str = "resize-crop"  # resize-crop | resize | pad | none
    num_workers: int = 0
    flip: bool = False  # random horizontal flips (deterministic per seed, epoch and index)


@dataclass
class TrainConfig:
    """The generic loop's settings."""

    steps: int = 3000
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: str = "off"  # off | auto | bf16 | fp16 (fp16 with a grad scaler per network; CUDA only). auto: bf16 where
    # the device computes it natively (CUDA compute capability >= 8.0, CPUs with AVX512-BF16/AMX), fp16 on older
    # CUDA GPUs, off elsewhere. true/false are read as auto/off
    channels_last: str = "auto"  # auto | on | off: NHWC memory format for conv nets and their inputs (auto: on for
    # nets with 4-D weights, measured faster on CPU and CUDA; benchmarks/RESULTS.md "Speed options")
    compile: str = "off"  # off | default | max-autotune: torch.compile of every network, in place (checkpoints
    # unchanged). Falls back to eager with one notice when unsupported. Not reduce-overhead (CUDA graphs): see config
    cuda_graphs: str = "auto"  # auto | on | off: replay whole training steps as CUDA graphs (training/graphs.py).
    # auto: on for CUDA runs of recipes that declare their steps capturable (gan, dcgan, cgan, wgan, wgan-gp,
    # stylegan2 without ADA), in one process, not compiled, without fp16's scaler; off elsewhere. Measured 4.7x at
    # DCGAN batch 64 on an H200, no loss at large batches (benchmarks/RESULTS.md "CUDA graphs on a GPU")
    threads: int = 0  # CPU threads for torch (0: torch's default, one per physical core)
    data_on_device: str = "auto"  # auto | on | off: hold an in-memory dataset on the GPU (auto: when it takes at most
    # a quarter of the free GPU memory); streamed datasets use pinned-memory loaders on CUDA
    ema: float = 0.0  # decay of the generator EMA; 0 disables it
    ema_start: int = 0  # steps before the EMA starts tracking
    log_every: int = 50
    sample_every: int = 500
    ckpt_every: int = 1000
    keep_ckpts: int = 3
    n_samples: int = 64
    tensorboard: bool = False
    progress: bool = True
    runs_dir: str = "runs"
    name: str | None = None  # run name; default: <preset>-<timestamp>
    max_nan_failures: int = 3
    nan_lr_factor: float = 0.5
    eval_every: int = 0  # evaluate every N steps (0: never) against the held-out split of the data
    eval_metric: str = "auto"  # keeps checkpoints/best. auto: fid (noise models), the recipe's own (psnr, cycle_psnr)
    # otherwise; fid | kid | is | precision | recall | density | coverage | psnr | ssim | l1 | cycle_psnr | ...
    eval_n: int = 2000
    eval_extractor: str = "auto"  # auto: mnist-judge for 1-channel data, inception otherwise
    init_from: str | None = None  # staged training: start from the weights of this run or checkpoint
    init_nets: str = ""  # with init_from: comma list of nets to take (empty: every net both models have)
    sync_bn: bool = False  # multi-process: SyncBatchNorm (CUDA; not with double-backward penalties)
    nan_rollback: bool = True  # keep a last-good copy (in CPU memory) to roll back to after a non-finite loss
    dist_timeout: int = 1800  # seconds a rank may wait for the others (longer than any evaluation) before it stops


SECTIONS = ("model", "recipe", "data", "train")


def list_presets() -> list[str]:
    """Names of the YAML presets shipped in ganforge/configs."""
    files = resources.files("ganforge") / "configs"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """A preset by name (ganforge/configs/NAME.yaml) or a YAML file path, as a raw dict."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise GanforgeError(f"config file not found: {p}")
        text = p.read_text()
    else:
        f = resources.files("ganforge") / "configs" / f"{name_or_path}.yaml"
        if not f.is_file():
            return {}
        text = f.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise GanforgeError(f"cannot parse config {name_or_path}: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise GanforgeError(f"config {name_or_path} must be a mapping")
    return raw


def parse_value(text: str) -> Any:
    """A `key=value` value as YAML (so 1e-4, true, [0.5, 0.9] and null work); `key=` is the empty string."""
    if text == "":
        return ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _dataclass_fields(cls) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def section_keys(raw: dict[str, Any]) -> dict[str, set[str]]:
    """Which keys each section accepts, given the model and recipe the raw config names."""
    from .registry import factory_arguments, recipe_class

    keys = {"data": set(_dataclass_fields(DataConfig)), "train": set(_dataclass_fields(TrainConfig))}
    keys["model"] = {"name"} | set(factory_arguments(raw.get("model", {}).get("name", "dcgan")))
    rc = recipe_class(raw.get("recipe", {}).get("name", "gan"))
    keys["recipe"] = {"name"} | set(_dataclass_fields(rc.Config))
    return keys


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` (or unambiguous bare `key=value`) overrides to a raw config."""
    raw = copy.deepcopy(raw)
    for sec in SECTIONS:
        raw.setdefault(sec, {})
    # Names first: they decide which keys the other overrides may use.
    ordered = sorted(overrides, key=lambda o: 0 if o.split("=", 1)[0] in ("model.name", "recipe.name") else 1)
    for item in ordered:
        if "=" not in item:
            raise GanforgeError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        if "." in key:
            sec, name = key.split(".", 1)
            if sec not in SECTIONS:
                raise GanforgeError(f"unknown config section {sec!r} in {item!r} (sections: {', '.join(SECTIONS)})")
        else:
            owners = [s for s, ks in section_keys(raw).items() if key in ks and key != "name"]
            if not owners:
                raise GanforgeError(f"unknown config key {key!r}")
            if len(owners) > 1:
                raise GanforgeError(f"config key {key!r} is ambiguous: write {' or '.join(o + '.' + key for o in owners)}")
            sec, name = owners[0], key
        value = parse_value(value)
        if sec in ("model", "recipe") and name == "name" and value != raw[sec].get("name"):
            # Another model/recipe than the preset's: keep only the preset keys the new one accepts.
            before = raw[sec]
            raw[sec] = {"name": value}
            accepted = section_keys(raw)[sec]
            raw[sec].update({k: v for k, v in before.items() if k in accepted and k != "name"})
        raw[sec][name] = value
    return raw


def _coerce(value: Any, typ: Any, where: str) -> Any:
    text = str(typ)
    if value is None:
        if "None" in text:
            return None
        raise GanforgeError(f"{where} must not be null")
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if typ is int or text.startswith("int"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if typ is float:
            return float(value)
        if typ is str or text.startswith("str"):
            return str(value)
        if "tuple" in text or "list" in text:
            return tuple(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(.inf)
        raise GanforgeError(f"{where}={value!r} has the wrong type (expected {getattr(typ, '__name__', text)})") from None
    return value


def build_dataclass(cls, values: dict[str, Any], section: str):
    """Instantiate a config dataclass from a dict, refusing unknown keys and wrong types."""
    fields_ = _dataclass_fields(cls)
    unknown = sorted(set(values) - set(fields_))
    if unknown:
        raise GanforgeError(f"unknown config key(s) {', '.join(section + '.' + u for u in unknown)}")
    kwargs = {k: _coerce(v, fields_[k], f"{section}.{k}") for k, v in values.items()}
    return cls(**kwargs)


@dataclass
class RunConfig:
    """A fully resolved run: model and recipe arguments plus data and loop settings."""

    model: dict[str, Any]
    recipe: dict[str, Any]
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for YAML/JSON."""
        return {
            "preset": self.preset,
            "model": dict(self.model),
            "recipe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.recipe.items()},
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    def to_yaml(self) -> str:
        """The resolved config as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SEED_LIMIT = 2**63  # torch.manual_seed takes 64 bits; the loop adds the rank to the seed

# Allowed ranges of numeric settings, as (low, high, low_open, high_open); None: unbounded. Checked
# before any work, so a bad value is one line rather than a traceback (some only after training began).
TRAIN_BOUNDS: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "steps": (0, None, False, False),
    "batch_size": (1, None, False, False),
    "seed": (0, SEED_LIMIT, False, True),
    "ema": (0, 1, False, True),
    "ema_start": (0, None, False, False),
    "log_every": (1, None, False, False),
    "sample_every": (1, None, False, False),
    "ckpt_every": (1, None, False, False),
    "keep_ckpts": (0, None, False, False),
    "n_samples": (1, None, False, False),
    "max_nan_failures": (1, None, False, False),
    "nan_lr_factor": (0, 1, True, False),
    "eval_every": (0, None, False, False),
    "eval_n": (2, None, False, False),
    "dist_timeout": (1, None, False, False),
    "threads": (0, None, False, False),
}
# Allowed words of string settings; booleans map to the first two (true/false) where listed in BOOL_WORDS.
TRAIN_CHOICES: dict[str, tuple[str, ...]] = {
    "amp": ("off", "auto", "bf16", "fp16"),
    "channels_last": ("auto", "on", "off"),
    "compile": ("off", "default", "max-autotune"),
    "cuda_graphs": ("auto", "on", "off"),
    "data_on_device": ("auto", "on", "off"),
}
# Words a user may expect that are refused, with the reason (tried, see benchmarks/RESULTS.md, issue 14).
TRAIN_REFUSED: dict[tuple[str, str], str] = {
    ("compile", "reduce-overhead"): "torch.compile's CUDA graph trees overwrite a compiled net's outputs at its "
    "next replay while the step still reads G's fakes after D's graphs ran; use train.cuda_graphs=on, which "
    "replays whole steps as CUDA graphs, or train.compile=default",
}
BOOL_WORDS: dict[str, tuple[str, str]] = {"amp": ("auto", "off"), "channels_last": ("on", "off"),
                                          "compile": ("default", "off"), "cuda_graphs": ("on", "off"),
                                          "data_on_device": ("on", "off")}


def normalise_choices(values: dict[str, Any]) -> dict[str, Any]:
    """The train section with true/false (YAML booleans, or the strings a str field got) read as words."""
    values = dict(values)
    for key, (yes, no) in BOOL_WORDS.items():
        v = values.get(key)
        if isinstance(v, bool) or (isinstance(v, str) and v.lower() in ("true", "false", "yes", "no", "on", "off")):
            truth = v if isinstance(v, bool) else v.lower() in ("true", "yes", "on")
            if not (isinstance(v, str) and v.lower() in TRAIN_CHOICES[key]):
                values[key] = yes if truth else no
    return values


def check_choices(obj: Any, section: str, choices: dict[str, tuple[str, ...]]) -> None:
    """Refuse a string setting outside its allowed words."""
    for key, allowed in choices.items():
        value = getattr(obj, key)
        if (key, value) in TRAIN_REFUSED:
            raise GanforgeError(f"{section}.{key}={value}: {TRAIN_REFUSED[key, value]}")
        if value not in allowed:
            raise GanforgeError(f"{section}.{key} must be one of {', '.join(allowed)}, got {value!r}")
DATA_BOUNDS: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "num_workers": (0, None, False, False),
}


def describe_range(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """A range as the error messages write it: ">= 1", "in [0, 1)", "> 0"."""
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    high_text = "2**63" if high == SEED_LIMIT else str(high)
    return f"in {'(' if low_open else '['}{low}, {high_text}{')' if high_open else ']'}"


def in_range(value: float, low: float | None, high: float | None, low_open: bool = False,
             high_open: bool = False) -> bool:
    """Whether value lies in the range (NaN never does)."""
    if value != value:
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    if high is not None and (value >= high if high_open else value > high):
        return False
    return True


def check_ranges(obj: Any, section: str, bounds: dict[str, tuple[float | None, float | None, bool, bool]]) -> None:
    """Refuse a dataclass field of obj outside its range in `bounds`."""
    for key, rng in bounds.items():
        value = getattr(obj, key)
        if not in_range(value, *rng):
            raise GanforgeError(f"{section}.{key} must be {describe_range(*rng)}, got {value!r}")


def check_recipe_values(recipe: dict[str, Any]) -> None:
    """Refuse learning rates (keys ending in `lr`) that are not > 0 and Adam betas outside [0, 1)."""
    for key, value in recipe.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key.endswith("lr") and not (in_range(value, 0, None, low_open=True) and value != float("inf")):
            raise GanforgeError(f"recipe.{key} must be a finite number > 0, got {value!r}")
        if key in ("beta1", "beta2") and not in_range(value, 0, 1, high_open=True):
            raise GanforgeError(f"recipe.{key} must be in [0, 1), got {value!r}")


def resolve(raw: dict[str, Any], preset: str = "") -> RunConfig:
    """Validate a raw config and fill every default so the run is fully described."""
    from .registry import check_model_arguments, factory_arguments, recipe_class

    raw = copy.deepcopy(raw)
    unknown = sorted(set(raw) - set(SECTIONS) - {"preset", "description"})
    if unknown:
        raise GanforgeError(f"unknown config section(s) {', '.join(unknown)}")
    model = dict(raw.get("model") or {})
    name = model.pop("name", "dcgan")
    allowed = factory_arguments(name)
    bad = sorted(set(model) - set(allowed))
    if bad:
        raise GanforgeError(f"unknown config key(s) {', '.join('model.' + b for b in bad)} for model {name!r}")
    model = {"name": name, **check_model_arguments(name, {k: model.get(k, v) for k, v in allowed.items()})}

    rec = dict(raw.get("recipe") or {})
    rname = rec.pop("name", "gan")
    rcls = recipe_class(rname)
    rcfg = build_dataclass(rcls.Config, rec, "recipe")
    recipe = {"name": rname, **dataclasses.asdict(rcfg)}
    check_recipe_values(recipe)

    data = build_dataclass(DataConfig, raw.get("data") or {}, "data")
    train = build_dataclass(TrainConfig, normalise_choices(raw.get("train") or {}), "train")
    check_ranges(data, "data", DATA_BOUNDS)
    check_ranges(train, "train", TRAIN_BOUNDS)
    check_choices(train, "train", TRAIN_CHOICES)
    return RunConfig(model=model, recipe=recipe, data=data, train=train, preset=raw.get("preset", preset) or preset)


def config_for(target: str, overrides: list[str] | None = None, data: str | None = None) -> RunConfig:
    """Resolved config for a preset name, YAML path or model name, with overrides applied."""
    from .registry import model_names

    raw = load_preset(target)
    if not raw:
        if target not in model_names():
            raise GanforgeError(
                f"unknown model or preset {target!r} (models: {', '.join(model_names())}; presets: {', '.join(list_presets())})"
            )
        raw = {"model": {"name": target}}
    raw = copy.deepcopy(raw)
    if data is not None:
        raw.setdefault("data", {})["source"] = data
    raw = apply_overrides(raw, list(overrides or []))
    return resolve(raw, preset=Path(target).stem)
