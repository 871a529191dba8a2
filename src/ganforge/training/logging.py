"""Run logging: metrics.jsonl (one JSON object per log step), optional TensorBoard, loss plot."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends one JSON line per log step; on resume drops lines newer than the resumed step."""

    def __init__(self, path: Path, resume_step: int | None = None, tensorboard_dir: Path | None = None):
        self.path = path
        self.history: list[dict[str, Any]] = []
        if resume_step is not None and path.is_file():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
                if rec.get("step", 0) <= resume_step:
                    kept.append(rec)
            self.history = kept
            path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        elif path.exists():
            path.unlink()
        self._f = open(path, "a")
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise RuntimeError("train.tensorboard=true needs the tensorboard package: pip install tensorboard") from None
            self._tb = SummaryWriter(str(tensorboard_dir))

    def log(self, record: dict[str, Any]) -> None:
        """Write one record."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self.history.append(clean)
        self._f.write(json.dumps(clean) + "\n")
        self._f.flush()
        if self._tb is not None:
            for k, v in clean.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        """Flush and close."""
        self._f.close()
        if self._tb is not None:
            self._tb.close()


def plot_losses(history: list[dict[str, Any]], path: Path) -> None:
    """Draw every loss_* series (and the Wasserstein estimate) against step into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..utils.atomic import atomic_write

    keys = sorted({k for r in history for k in r if k.startswith("loss_") or k in ("wasserstein_estimate", "gp")})
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for k in keys:
        pts = [(r["step"], r[k]) for r in history if r.get(k) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=k, linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
