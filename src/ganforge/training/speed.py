"""The loop's speed options: channels_last, torch.compile, CPU threads and where the data lives.

None of them changes a checkpoint: channels_last only reorders a tensor's memory (weights are saved
contiguous), and `nn.Module.compile` compiles a module in place, so its state_dict keys stay the same.
A run trained with them resumes without them and the other way round.
"""
from __future__ import annotations

import shutil
from typing import Callable, Iterable

import torch
from torch import nn

from ..errors import GanforgeError


def has_conv_weights(net: nn.Module) -> bool:
    """Whether a network has 4-D weights (convolutions), which channels_last can speed up."""
    return any(p.dim() == 4 for p in net.parameters())


def use_channels_last(mode: str, nets: Iterable[nn.Module], compile_mode: str = "off",
                      note: Callable[[str], None] | None = None) -> bool:
    """Whether train.channels_last (auto | on | off) applies to these networks.

    auto: on when any network has convolutions (measured faster in float32 and bf16 on CPU with oneDNN,
    benchmarks/RESULTS.md "Speed options (issue 14)"), unless the nets are compiled: inductor then chooses
    the layout of its convolutions itself, and NHWC weights made inductor's convolution backward fail a
    stride check on CUDA (torch 2.11), so compiled runs keep NCHW even when asked for channels_last."""
    if mode == "off":
        return False
    if compile_mode != "off":
        if mode == "on" and note is not None:
            note("train.channels_last=on is left off under train.compile: inductor lays out the convolutions "
                 "itself")
        return False
    return mode == "on" or any(has_conv_weights(n) for n in nets)


def to_channels_last(nets: Iterable[nn.Module]) -> None:
    """Store every 4-D parameter and buffer of the nets in NHWC order (in place)."""
    for n in nets:
        n.to(memory_format=torch.channels_last)


def channels_last_input(x: torch.Tensor) -> torch.Tensor:
    """A 4-D image batch in NHWC order; other tensors unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run on `device` here (None: it can)."""
    try:
        import torch._dynamo as dynamo
    except Exception as e:  # pragma: no cover - a torch build without dynamo
        return f"torch.compile is unavailable in this PyTorch ({type(e).__name__})"
    if not dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python version"
    if device.type == "cpu":
        from torch._inductor import config as inductor_config

        cxx = inductor_config.cpp.cxx[-1] if isinstance(inductor_config.cpp.cxx, tuple) else inductor_config.cpp.cxx
        if not any(shutil.which(c) for c in (cxx, "g++", "c++", "clang++") if c):
            return "torch.compile on CPU needs a C++ compiler (g++ or clang++), and none is on PATH"
    elif device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return "torch.compile on CUDA needs Triton, which is not installed"
        if torch.cuda.get_device_capability(device)[0] < 7:
            return "torch.compile's Triton kernels need a GPU of compute capability 7.0 or newer"
    elif device.type == "mps":
        return "torch.compile is not supported on mps by this toolkit"
    return None


def compile_nets(nets: Iterable[nn.Module], mode: str, device: torch.device,
                 note: Callable[[str], None]) -> bool:
    """Compile the networks in place with torch.compile (mode: default | max-autotune).

    Returns False, after one notice, when the device cannot compile: the run goes on eagerly."""
    if mode == "off":
        return False
    problem = compile_problem(device)
    if problem is not None:
        note(f"train.compile={mode}: {problem}; training runs eagerly")
        return False
    import torch._dynamo as dynamo

    # A graph that fails to compile later (an unsupported op) runs eagerly instead of stopping the run;
    # dynamo logs that once per frame.
    dynamo.config.suppress_errors = True
    # Every phase (D step, G step, sampling, penalties) has its own graphs; leave room for them.
    dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 32)
    if device.type == "cuda":
        # Inductor's layout optimisation (NHWC convolutions inside compiled graphs) failed a stride assertion in
        # DCGAN's convolution backward on an H200 with torch 2.11 (benchmarks/RESULTS.md, issue 14).
        from torch._inductor import config as inductor_config

        inductor_config.layout_optimization = False
    kwargs = {} if mode == "default" else {"mode": mode}
    for n in nets:
        n.compile(**kwargs)
    return True


def set_threads(threads: int) -> None:
    """torch's CPU threads (0 leaves torch's default, one per physical core; train.threads is checked >= 0)."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


DEVICE_DATA_FRACTION = 0.25  # auto keeps a dataset on the GPU when it takes at most this share of free memory


def data_on_device(mode: str, device: torch.device, nbytes: int) -> bool:
    """Whether an in-memory dataset of `nbytes` is kept on `device` (train.data_on_device)."""
    if mode == "off" or device.type == "cpu":
        return False
    if device.type != "cuda":
        return mode == "on"
    free, _ = torch.cuda.mem_get_info(device)
    if mode == "on":
        if nbytes > free:
            raise GanforgeError(f"train.data_on_device=on: the dataset takes {nbytes / 2**30:.2f} GiB, more than the "
                                f"{free / 2**30:.2f} GiB free on {device}; use train.data_on_device=auto")
        return True
    return nbytes <= DEVICE_DATA_FRACTION * free


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def is_out_of_memory(e: BaseException) -> bool:
    """Whether an exception is an allocation failure (CUDA, MPS or CPU)."""
    if isinstance(e, torch.OutOfMemoryError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(w in text for w in (
        "out of memory", "DefaultCPUAllocator: can't allocate memory", "not enough memory", "MPS backend out of memory"))


def free_memory(device: torch.device) -> None:
    """Give cached allocator memory back after an allocation failure."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
