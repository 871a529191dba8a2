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


def check_amp(device: torch.device, warn: Callable[[str], None]) -> None:
    """Warn once when mixed precision will be slower than float32 on this device."""
    if device.type == "cpu" and not cpu_has_fast_bf16():
        warn("train.amp=true: this CPU has no native bfloat16 (AVX512-BF16/AMX), so bf16 autocast runs "
             "several times slower than float32 here; train.amp=false is faster")
    elif device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 7:
        warn("train.amp=true: this GPU has no tensor cores for float16 (compute capability < 7.0); "
             "mixed precision will not be faster")
