"""Learning-rate schedules shared by the recipes."""
from __future__ import annotations


def lr_factor(step: int, decay_start: int, total_steps: int) -> float:
    """Learning-rate multiplier for 0-based `step`: 1 until decay_start, then linear to 0 at total_steps."""
    if step < decay_start or total_steps <= decay_start:
        return 1.0
    return max(0.0, (total_steps - step) / (total_steps - decay_start))
