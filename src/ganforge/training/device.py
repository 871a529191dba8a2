"""Device choice: cuda, then mps, then cpu, unless the user names one; and warnings for slow settings."""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import GanforgeError


def pick_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch.device for `spec` (auto | cpu | cuda | cuda:N | mps); a missing backend is an error.

    Under torchrun, `auto` and a bare `cuda` mean this process's GPU (LOCAL_RANK)."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise GanforgeError(f"unknown device {spec!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GanforgeError("device 'cuda' was asked for but no CUDA GPU is available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        if dev.index >= torch.cuda.device_count():
            raise GanforgeError(f"device {spec!r} does not exist ({torch.cuda.device_count()} CUDA device(s))")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise GanforgeError("device 'mps' was asked for but MPS is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise GanforgeError(f"unsupported device {spec!r} (use auto, cpu, cuda, cuda:N or mps)")
    return dev


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated, slowly."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(w in flags for w in (" avx512_bf16", " amx_bf16"))


def cuda_has_bf16(device: torch.device) -> bool:
    """Whether a CUDA GPU computes bfloat16 on tensor cores (compute capability 8.0 and up)."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def resolve_amp(device: torch.device, mode: str, warn: Callable[[str], None],
                note: Callable[[str], None] | None = None) -> torch.dtype | None:
    """The autocast dtype for train.amp on `device` (None: float32); refuses what the device cannot do.

    auto picks bf16 where the device computes it natively, fp16 (with grad scalers) on CUDA GPUs without
    bf16, and float32 elsewhere, saying so; an explicit dtype the device runs only slowly gets a warning."""
    if mode == "off":
        return None
    kind = device.type
    if mode == "auto":
        if kind == "cuda":
            return torch.bfloat16 if cuda_has_bf16(device) else torch.float16
        if kind == "cpu" and cpu_has_fast_bf16():
            return torch.bfloat16
        if note is not None:
            why = "this CPU has no native bfloat16 (AVX512-BF16/AMX)" if kind == "cpu" else f"{kind} autocast is not used"
            note(f"train.amp=auto: {why}, so training runs in float32")
        return None
    if mode == "fp16":
        if kind != "cuda":
            raise GanforgeError(f"train.amp=fp16 needs a CUDA GPU (float16 autocast with grad scalers); on {kind} "
                                f"use train.amp=bf16 or off")
        if torch.cuda.get_device_capability(device)[0] < 7:
            warn("train.amp=fp16: this GPU has no tensor cores for float16 (compute capability < 7.0); "
                 "mixed precision will not be faster")
        return torch.float16
    if mode == "bf16":
        if kind == "cuda" and not cuda_has_bf16(device):
            cc = ".".join(map(str, torch.cuda.get_device_capability(device)))
            raise GanforgeError(f"train.amp=bf16: this GPU (compute capability {cc}) has no bfloat16 tensor cores; "
                                f"use train.amp=fp16")
        if kind == "mps":
            raise GanforgeError("train.amp=bf16 is not supported on mps; use train.amp=off")
        if kind == "cpu" and not cpu_has_fast_bf16():
            warn("train.amp=bf16: this CPU has no native bfloat16 (AVX512-BF16/AMX), so bf16 autocast runs "
                 "several times slower than float32 here; train.amp=off is faster")
        return torch.bfloat16
    raise GanforgeError(f"train.amp must be one of off, auto, bf16, fp16, got {mode!r}")
