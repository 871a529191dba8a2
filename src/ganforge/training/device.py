"""Device choice: cuda, then mps, then cpu, unless the user names one."""
from __future__ import annotations

import os

import torch

from ..errors import GanforgeError


def pick_device(spec: str = "auto") -> torch.device:
    """The torch.device for `spec` (auto | cpu | cuda | cuda:N | mps); a missing backend is an error."""
    if spec == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", 0))
            return torch.device("cuda", local)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise GanforgeError(f"unknown device {spec!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError("device 'cuda' was asked for but no CUDA GPU is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise GanforgeError("device 'mps' was asked for but MPS is not available")
    return dev
