"""`ganforge bench`: training and sampling throughput of a model or preset, its FLOPs per image and the
model-FLOPs utilisation (MFU) against the device's peak.

The training step is the loop's own (`Trainer.train_step`: data stream, recipe step, EMA), with the
config's speed options (train.amp, train.channels_last, train.compile). Warm-up steps (compilation,
cuDNN autotuning, allocator growth) are excluded; each repeat is timed between device synchronisations
and the spread over repeats is reported. FLOPs are counted once by `torch.utils.flop_counter` on an
eager step (matmuls and convolutions, forward and backward, as MFU is defined in the PaLM paper).
"""
from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .config import config_for
from .errors import GanforgeError
from .training.speed import free_memory, is_out_of_memory, synchronize

# Dense peak TFLOP/s per GPU from the vendors' data sheets, by the name torch reports:
# (bf16/fp16 tensor cores, tf32 tensor cores, plain fp32). None: the GPU lacks that path.
PEAK_TFLOPS: list[tuple[tuple[str, ...], tuple[float | None, float | None, float]]] = [
    (("H200",), (989.4, 494.7, 66.9)),
    (("H100", "PCIe"), (756.5, 378.0, 51.2)),
    (("H100", "NVL"), (835.5, 417.8, 60.0)),
    (("H100",), (989.4, 494.7, 66.9)),  # SXM5 (reported as "H100 80GB HBM3")
    (("GH200",), (989.4, 494.7, 66.9)),
    (("A100",), (312.0, 156.0, 19.5)),
    (("L40S",), (362.1, 183.0, 91.6)),
    (("L4",), (121.0, 60.0, 30.3)),
    (("A10",), (125.0, 62.5, 31.2)),
    (("RTX 4090",), (165.2, 82.6, 82.6)),
    (("V100",), (125.0, None, 15.7)),  # fp16 only
    (("T4",), (65.0, None, 8.1)),  # fp16 only
]


def device_peak(device: torch.device, dtype: torch.dtype | None) -> tuple[float | None, str]:
    """(peak TFLOP/s, what it is) of `device` for the autocast dtype (None: float32); None when unknown."""
    if device.type != "cuda":
        return None, f"unknown for {device.type} (give --peak-tflops)"
    name = torch.cuda.get_device_name(device)
    for words, (half, tf32, fp32) in PEAK_TFLOPS:
        if all(w in name for w in words):
            if dtype in (torch.bfloat16, torch.float16):
                return half, f"{name}, dense {'bf16' if dtype == torch.bfloat16 else 'fp16'} tensor cores"
            if torch.backends.cudnn.allow_tf32 and tf32 is not None:
                return tf32, f"{name}, dense TF32 tensor cores (cuDNN convolutions use TF32 by default)"
            return fp32, f"{name}, fp32"
    return None, f"unknown for {name} (give --peak-tflops)"


def make_trainer(target: str, overrides: list[str] | tuple[str, ...] = (), batch_size: int | None = None,
                 device: str = "auto", run_dir: str | Path | None = None):
    """A Trainer of `target` (preset, model name or YAML) whose `train_step()` runs exactly what `ganforge train`
    runs, for benchmarks; nothing is written (no logs, snapshots or checkpoints)."""
    from .training.loop import Trainer

    ov = list(overrides) + ["train.progress=false", "train.eval_every=0", f"train.device={device}"]
    if batch_size is not None:
        ov.append(f"train.batch_size={batch_size}")
    cfg = config_for(target, ov)
    out = Path(run_dir) if run_dir is not None else Path(tempfile.gettempdir()) / "ganforge-bench"
    return Trainer(cfg, out, echo=lambda *a, **k: None)


@dataclass
class BenchResult:
    """What `ganforge bench` measured."""

    target: str
    device: str
    batch: int
    amp: str
    compile: str
    channels_last: bool
    cuda_graphs: bool = False
    train_images_per_s: list[float] = field(default_factory=list)
    sample_images_per_s: list[float] = field(default_factory=list)
    train_flops_per_image: float = 0.0
    sample_flops_per_image: float = 0.0
    peak_tflops: float | None = None
    peak_source: str = ""
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def _mfu(rates: list[float], flops: float, peak: float | None) -> float | None:
        if not rates or peak is None or flops <= 0:
            return None
        return statistics.median(rates) * flops / (peak * 1e12)

    @property
    def train_mfu(self) -> float | None:
        """Model-FLOPs utilisation of the training step (median rate)."""
        return self._mfu(self.train_images_per_s, self.train_flops_per_image, self.peak_tflops)

    @property
    def sample_mfu(self) -> float | None:
        """Model-FLOPs utilisation of sampling (median rate)."""
        return self._mfu(self.sample_images_per_s, self.sample_flops_per_image, self.peak_tflops)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(train_mfu=self.train_mfu, sample_mfu=self.sample_mfu)
        return d

    def table(self) -> str:
        """The figures as a Markdown table."""
        def rate(v: list[float]) -> str:
            if not v:
                return "-"
            med = statistics.median(v)
            return f"{med:,.1f} ({min(v):,.1f}-{max(v):,.1f}, spread {100 * (max(v) - min(v)) / med:.0f}%)"

        def mfu(m: float | None) -> str:
            return "n/a" if m is None else f"{100 * m:.2f}%"

        head = (f"{self.target} on {self.device}, batch {self.batch}, amp {self.amp}, compile {self.compile}, "
                f"channels_last {'on' if self.channels_last else 'off'}, "
                f"cuda_graphs {'on' if self.cuda_graphs else 'off'}")
        rows = ["| | images/s, median (min-max over repeats) | GFLOP/image | TFLOP/s | MFU |", "|---|---|---|---|---|"]
        for what, v, f, m in (("train", self.train_images_per_s, self.train_flops_per_image, self.train_mfu),
                              ("sample", self.sample_images_per_s, self.sample_flops_per_image, self.sample_mfu)):
            if v:
                rows.append(f"| {what} | {rate(v)} | {f / 1e9:.3f} | {statistics.median(v) * f / 1e12:.3f} | {mfu(m)} |")
        peak = f"peak: {self.peak_tflops} TFLOP/s ({self.peak_source})" if self.peak_tflops else f"peak: {self.peak_source}"
        return "\n".join([head, "", *rows, "", peak, *self.notes])


def count_flops(fn: Callable[[], Any]) -> float:
    """FLOPs of one call of fn (matmuls and convolutions, forward and backward), by torch.utils.flop_counter's
    formulas. Its FlopCounterMode is not used as is: its module hooks break autograd.grad on an input
    (R1, gradient penalty), so this mode counts the ops alone."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            packet = func._overloadpacket
            if packet not in flop_registry and not isinstance(func, torch._ops.HigherOrderOperator):
                with self:  # composite ops count through their parts
                    out = func.decompose(*args, **kwargs)
                if out is not NotImplemented:
                    return out
            out = func(*args, **kwargs)
            if packet in flop_registry:
                Counter.total += flop_registry[packet](*args, **kwargs, out_val=out)
            return out

    with Counter():
        fn()
    return float(Counter.total)


def _sampler(trainer, batch: int, compile_mode: str):
    """A function generating one batch with the generator sampling uses (EMA when kept), eval mode, no grad."""
    from .recipes.base import eval_mode
    from .training import speed

    nets = trainer._sample_nets()
    io = trainer.models.io
    g = nets[io.generator_key]
    dev = trainer.device
    gen = torch.Generator(device="cpu").manual_seed(0)
    if io.kind == "noise":
        z = torch.randn(batch, io.z_dim, generator=gen).to(dev)
        y = torch.randint(0, io.num_classes, (batch,), generator=gen).to(dev) if io.num_classes else None
        args: tuple = (z, y)
    else:
        size = io.image_size // (io.scale if io.kind == "upscale" else 1)
        x = (torch.rand(batch, io.in_channels, size, size, generator=gen) * 2 - 1).to(dev)
        if trainer.channels_last:
            x = speed.channels_last_input(x)
        args = (x,)
    if compile_mode != "off":
        g.compile(**({} if compile_mode == "default" else {"mode": compile_mode}))

    def run():
        with torch.no_grad(), eval_mode(g), trainer.recipe.autocast():
            return g(*args)

    return run


def _time(fn: Callable[[], Any], device: torch.device, steps: int, images: int) -> float:
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(device)
    return images * steps / (time.perf_counter() - t0)


def largest_batch(target: str, overrides: list[str], device: str, start: int, dev: torch.device) -> int | None:
    """The largest batch size below `start` whose training step fits in memory on `dev` (the resolved `device`),
    found by halving, then bisecting; None when not even 1 fits. A batch the model refuses (StyleGAN2's minibatch
    standard deviation needs a multiple of its group) counts as not fitting, so the answer is always one it takes."""
    def fits(b: int) -> bool:
        tr = None
        try:
            tr = make_trainer(target, overrides + ["train.compile=off"], batch_size=b, device=device)
            tr.train_step()
            synchronize(tr.device)
            return True
        except GanforgeError:  # this batch size is refused (found on an H200: batch 28 for StyleGAN2's group of 8)
            return False
        except Exception as e:  # noqa: BLE001 - anything else than memory is re-raised
            if not is_out_of_memory(e):
                raise
            return False
        finally:
            del tr
            free_memory(dev)

    hi, lo = start, None
    b = start // 2
    while b >= 1:
        if fits(b):
            lo = b
            break
        hi, b = b, b // 2
    if lo is None:
        return None
    while hi - lo > 1:  # bisect between the last fit and the first failure
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def run_bench(target: str, overrides: list[str] | None = None, batch: int | None = None, device: str = "auto",
              amp: str | None = None, compile_mode: str | None = None, channels_last: str | None = None,
              cuda_graphs: str | None = None, steps: int = 20, warmup: int = 5, repeats: int = 5,
              sample: bool = True,
              peak_tflops: float | None = None, echo: Callable[[str], None] = lambda s: None) -> BenchResult:
    """Measure training (and sampling) images/s, FLOPs per image and MFU of `target`."""
    from .training import speed

    ov = list(overrides or [])
    for key, value in (("amp", amp), ("channels_last", channels_last), ("compile", compile_mode),
                       ("cuda_graphs", cuda_graphs)):
        if value is not None:
            ov.append(f"train.{key}={value}")
    # Resolved once here to validate every setting (and find the device) before any work.
    cfg = config_for(target, ov + ([f"train.batch_size={batch}"] if batch else []) + [f"train.device={device}"])
    mode = cfg.train.compile
    from .training.device import pick_device

    dev = pick_device(cfg.train.device)
    if mode != "off" and (problem := speed.compile_problem(dev)) is not None:
        raise GanforgeError(f"--compile {mode}: {problem}")
    b = cfg.train.batch_size
    # The trainer is built eager: FLOPs are counted on an eager step, then the nets are compiled in place.
    if mode != "off":  # the layout a compiled training run uses (see speed.use_channels_last); no CUDA graphs
        ov += ["train.channels_last=off", "train.cuda_graphs=off"]
    tr = make_trainer(target, ov + ["train.compile=off"], batch_size=b, device=device)
    res = BenchResult(target=target, device=str(tr.device) + (f" ({torch.cuda.get_device_name(tr.device)})"
                                                             if tr.device.type == "cuda" else ""),
                      batch=b, amp=str(tr.amp_dtype).replace("torch.", "") if tr.amp_dtype else "off",
                      compile=mode, channels_last=tr.channels_last, cuda_graphs=tr.graphs is not None)
    imgs = tr.images_per_step
    if peak_tflops is not None:
        res.peak_tflops, res.peak_source = peak_tflops, "--peak-tflops"
    else:
        res.peak_tflops, res.peak_source = device_peak(tr.device, tr.amp_dtype)
    try:
        echo(f"counting FLOPs on one eager step (batch {b})")
        res.train_flops_per_image = count_flops(tr.train_step) / imgs
        if mode != "off":
            speed.compile_nets(tr.recipe.compile_targets(), mode, tr.device, note=res.notes.append)
        echo(f"warm-up: {warmup} step(s){' (compiling)' if mode != 'off' else ''}")
        for _ in range(warmup):
            tr.train_step()
        synchronize(tr.device)
        for r in range(repeats):
            res.train_images_per_s.append(_time(tr.train_step, tr.device, steps, imgs))
            echo(f"train repeat {r + 1}/{repeats}: {res.train_images_per_s[-1]:,.1f} images/s")
        if sample:
            fn = _sampler(tr, b, "off")
            res.sample_flops_per_image = count_flops(fn) / b
            fn = _sampler(tr, b, mode)
            for _ in range(max(warmup, 1)):
                fn()
            for r in range(repeats):
                res.sample_images_per_s.append(_time(fn, tr.device, steps, b))
                echo(f"sample repeat {r + 1}/{repeats}: {res.sample_images_per_s[-1]:,.1f} images/s")
    except Exception as e:  # noqa: BLE001
        if not is_out_of_memory(e):
            raise
        dev_name = str(tr.device)
        tr = None  # let the failed step's tensors go before the search
        free_memory(dev)
        fit = largest_batch(target, ov, device, b, dev)
        total = ""
        if dev.type == "cuda":
            total = f" ({torch.cuda.get_device_properties(dev).total_memory / 2**30:.0f} GiB)"
        hint = f"; the largest that fits is {fit}" if fit else "; not even a batch of 1 fits"
        raise GanforgeError(f"batch {b} does not fit in the memory of {dev_name}{total}{hint}") from None
    res.notes.append(f"{steps} timed steps x {repeats} repeats after {warmup} warm-up step(s); "
                     f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    return res


def check_positive_finite(name: str, value: float | None) -> None:
    """Refuse a non-finite or non-positive number."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise GanforgeError(f"{name} must be a finite number > 0, got {value}")


def print_result(res: BenchResult, out=None) -> None:
    """The result table on stdout."""
    print(res.table(), file=out or sys.stdout)
