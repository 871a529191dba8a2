"""Multi-process training on PyTorch's DistributedDataParallel, as `torchrun` starts it.

One DDP wrapper per network (the loop keeps the unwrapped networks for checkpoints and EMA, so saved
keys never carry `module.`). Buffers are not broadcast on every forward (`broadcast_buffers=False`):
each rank's BatchNorm computes its running statistics from its own data, and `agree` averages them across ranks
once a step, in the same single all-reduce that lets every rank skip a non-finite step together;
`sync_buffers` does it again before every checkpoint, snapshot and evaluation (a no-op change then). Every wait
is bounded by the process-group timeout, and a collective that fails because another rank died or hung
becomes one `DistributedError` line instead of a hang or an abort.
"""
from __future__ import annotations

import datetime
import inspect
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn

from ..errors import GanforgeError


class DistributedError(GanforgeError):
    """Another process of a multi-process run died, hung or disagreed; the run stopped on this rank."""

    def __init__(self, message: str):
        super().__init__(message)
        global _broken
        _broken = True  # the process group is unusable: tearing it down could block or abort


_broken = False


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: global rank, world size, rank on this node, processes on this node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world > 1


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise GanforgeError(f"environment variable {name}={os.environ[name]!r} is not an integer") from None


def env_info() -> DistInfo:
    """What torchrun's environment variables say (a single process when they are absent)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world:
        raise GanforgeError(f"RANK={rank} and WORLD_SIZE={world} are inconsistent")
    return DistInfo(rank, world, local, local_world)


def init_distributed(device_spec: str, timeout_s: int) -> DistInfo:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA); a no-op for one process."""
    info = env_info()
    if info.world == 1:
        return info
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), info.local_rank, info.local_world)
    use_cuda = device_spec.startswith("cuda") or (device_spec == "auto" and torch.cuda.is_available())
    if use_cuda:
        n = torch.cuda.device_count()
        if info.local_world > n:
            raise GanforgeError(f"torchrun started {info.local_world} processes on this node but it has {n} "
                                f"CUDA device(s): use --nproc_per_node={max(n, 1)} or fewer")
        torch.cuda.set_device(info.local_rank)
    backend = "nccl" if use_cuda else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except Exception as e:  # rendezvous failures surface as several exception types
        raise DistributedError(f"could not join the process group ({backend}): {first_line(e)}") from None
    return DistInfo(dist.get_rank(), dist.get_world_size(), info.local_rank, info.local_world)


def shutdown() -> None:
    """Leave the process group, if any (so no rank exits with a live communicator).

    After a lost peer the group is left alone: destroying it waits on, or aborts over, work that the
    dead peer will never finish. Such a process should leave with `os._exit` (the CLI does)."""
    if _broken:
        return
    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # already torn down by a failed peer: nothing left to release
            pass


def broken() -> bool:
    """Whether a collective of this process failed (see DistributedError)."""
    return _broken


def first_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (collective errors are many lines long)."""
    for line in str(e).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(e).__name__


def wrap(net: nn.Module, device: torch.device, find_unused: bool = False) -> nn.Module:
    """`net` in a DistributedDataParallel wrapper when it has trainable parameters and several processes train.

    find_unused: some parameters may get no gradient in a step (a progressive network's inactive layers)."""
    if not (dist.is_available() and dist.is_initialized()) or not any(p.requires_grad for p in net.parameters()):
        return net
    ids = [device.index] if device.type == "cuda" else None
    # Newer PyTorch renames broadcast_buffers=False to forward_sync_buffers=False (both still sync at init).
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    no_buffer_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return nn.parallel.DistributedDataParallel(net, device_ids=ids, gradient_as_bucket_view=True,
                                               find_unused_parameters=find_unused, **no_buffer_sync)


def convert_sync_bn(nets: dict[str, nn.Module]) -> int:
    """Replace BatchNorm layers by SyncBatchNorm in place; returns how many were converted."""
    count = 0
    for key, net in nets.items():
        count += sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        nets[key] = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return count


def sync_buffers(modules: Iterable[nn.Module]) -> None:
    """Average floating-point buffers (BatchNorm running statistics) across ranks, in one all-reduce.

    Integer buffers (BatchNorm's batch counters) count the same steps on every rank and need nothing."""
    agree([], modules)


def agree(flags: list[bool], modules: Iterable[nn.Module] = ()) -> list[bool]:
    """Each flag OR-ed across ranks, and the modules' floating-point buffers averaged, in ONE all-reduce.

    The loop calls it once a step: every rank skips a non-finite step and stops together, and BatchNorm
    running statistics stay identical on all ranks (averaged every step, so a resumed run continues
    bit for bit whichever step its checkpoint was taken at).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return flags
    dev = _collective_device()
    bufs = [b for m in modules for b in m.buffers() if b.is_floating_point()]
    parts = [torch.tensor([float(f) for f in flags], device=dev)] + [b.detach().reshape(-1).float().to(dev)
                                                                   for b in bufs]
    flat = torch.cat(parts)
    try:
        dist.all_reduce(flat)
    except RuntimeError as e:
        raise DistributedError(f"lost contact with the other processes: {first_line(e)}") from None
    offset = len(flags)
    world = dist.get_world_size()
    with torch.no_grad():
        for b in bufs:
            b.copy_((flat[offset:offset + b.numel()] / world).view_as(b))
            offset += b.numel()
    return [bool(v > 0) for v in flat[:len(flags)].tolist()]


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_objects(obj) -> list:
    """`obj` from every rank (rank order); [obj] for one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return [obj]
    out: list = [None] * dist.get_world_size()
    try:
        dist.all_gather_object(out, obj)
    except RuntimeError as e:
        raise DistributedError(f"lost contact with the other processes: {first_line(e)}") from None
    return out


def broadcast_object(obj):
    """Rank 0's `obj` on every rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return obj
    box = [obj]
    try:
        dist.broadcast_object_list(box, 0)
    except RuntimeError as e:
        raise DistributedError(f"lost contact with the other processes: {first_line(e)}") from None
    return box[0]


def barrier() -> None:
    """Wait for every rank (bounded by the process-group timeout)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        try:
            dist.barrier()
        except RuntimeError as e:
            raise DistributedError(f"lost contact with the other processes: {first_line(e)}") from None
