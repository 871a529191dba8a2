"""What the loop tells a recipe about the step it is running.

Counters live in the loop and are checkpointed and rolled back with the networks, so a recipe needs no
private counter for lazy regularisation every N steps, ADA's update interval or a fade-in alpha.

`randn`/`rand`/`randint` draw the noise of the GLOBAL batch (all ranks together) from a generator seeded
by (seed, step, attempt, call) and hand this rank its rows (rank, rank + world, ...), the same rows the
data stream gives it. So N processes at batch B see the same latents as one process at batch N*B, which
is what makes multi-process training equal to single-process training on the same global batch, and a
resumed run draw what an uninterrupted one would, without relying on the global RNG's state.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class StepContext:
    """One training step as the loop sees it; `step` and `images_seen` count what came before it."""

    step: int = 0  # 0-based index of this step = steps completed before it
    images_seen: int = 0  # real images consumed by completed steps, all ranks together
    rank: int = 0
    world: int = 1
    batch_size: int = 64  # per-rank batch of this step
    batches: int = 1  # batches this step consumes
    total_steps: int = 0  # train.steps
    log: bool = True  # this step's values are logged: compute extra figures (gradient norms) only then
    seed: int = 0
    attempt: int = 0  # retries after non-finite losses: a retried step draws fresh noise
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _calls: int = 0

    def _generator(self) -> torch.Generator:
        self._calls += 1
        g = torch.Generator(device=self.device)
        g.manual_seed((self.seed * 1_000_003 + self.step * 7_919 + self.attempt * 104_729 + self._calls * 31)
                      % (2**63 - 1))
        return g

    def _shard(self, full: Tensor) -> Tensor:
        return full[self.rank::self.world] if self.world > 1 else full

    def randn(self, n: int, *shape: int) -> Tensor:
        """This rank's n rows of a global [n * world, *shape] standard normal draw."""
        return self._shard(torch.randn(n * self.world, *shape, generator=self._generator(), device=self.device))

    def rand(self, n: int, *shape: int) -> Tensor:
        """This rank's n rows of a global uniform [0, 1) draw."""
        return self._shard(torch.rand(n * self.world, *shape, generator=self._generator(), device=self.device))

    def randint(self, high: int, n: int) -> Tensor:
        """This rank's n values of a global draw of integers in [0, high)."""
        return self._shard(torch.randint(0, high, (n * self.world,), generator=self._generator(), device=self.device))
