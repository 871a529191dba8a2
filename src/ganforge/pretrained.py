"""Loading a trained generator from a run or checkpoint folder: safetensors + config.json, no pickle."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import GanforgeError
from .models.base import make_latents
from .registry import create_model
from .training.checkpoint import load_weights, read_config, resolve_checkpoint
from .training.device import pick_device
from .utils.images import save_grid


class LoadedGenerator:
    """A trained generator in eval mode, with the config that built it."""

    def __init__(self, net: nn.Module, config: dict[str, Any], path: Path, device: torch.device, ema: bool):
        self.net, self.config, self.path, self.device, self.ema = net, config, path, device, ema
        self.task = config.get("task", "noise")

    @property
    def num_classes(self) -> int:
        """Number of classes of a conditional generator, 0 otherwise."""
        return int(getattr(self.net, "num_classes", 0) or 0)

    @torch.no_grad()
    def sample(self, n: int = 64, seed: int = 0, labels: Tensor | int | None = None, batch_size: int = 256) -> Tensor:
        """n images in [-1, 1] from seeded latents (labels cycle through classes unless given)."""
        if self.task != "noise":
            raise GanforgeError(f"this {self.config['model']['name']} model translates images; it does not sample noise")
        if isinstance(labels, int) and self.num_classes and not 0 <= labels < self.num_classes:
            raise GanforgeError(f"--class must lie in 0..{self.num_classes - 1}")
        if labels is not None and not self.num_classes:
            raise GanforgeError("this model is not class-conditional: --class does not apply")
        z, y = make_latents(self.net, n, seed, labels)
        out = []
        for i in range(0, n, batch_size):
            zb = z[i:i + batch_size].to(self.device)
            yb = y[i:i + batch_size].to(self.device) if y is not None else None
            out.append(self.net(zb, yb).float().cpu())
        return torch.cat(out)

    def save_grid(self, path: str | Path, n: int = 64, seed: int = 0, labels: Tensor | int | None = None,
                  nrow: int | None = None) -> Path:
        """Sample n images and save them as one grid."""
        imgs = self.sample(n, seed, labels)
        if nrow is None:
            nrow = self.num_classes if (self.num_classes and labels is None) else 8
        return save_grid(imgs, path, nrow=nrow)


def load(path: str | Path, ema: bool = True, device: str = "cpu", net: str | None = None) -> LoadedGenerator:
    """Load the generator of a run/checkpoint folder (its EMA weights when present and `ema`)."""
    ckpt = resolve_checkpoint(path)
    conf = read_config(ckpt)
    model = dict(conf.get("model") or {})
    name = model.pop("name", None)
    if name is None:
        raise GanforgeError(f"{ckpt / 'config.json'} names no model")
    models = create_model(name, **model)
    key = net or conf.get("generator_key", models.generator_key)
    if key not in models.nets:
        raise GanforgeError(f"model {name!r} has no net {key!r} (nets: {', '.join(models.nets)})")
    g = models.nets[key]
    use_ema = ema and (ckpt / f"{key}_ema.safetensors").is_file()
    try:
        g.load_state_dict(load_weights(ckpt, f"{key}_ema" if use_ema else key))
    except RuntimeError as e:
        raise GanforgeError(f"weights in {ckpt} do not fit {name}: {str(e).splitlines()[0]}") from None
    dev = pick_device(device)
    g.to(dev).eval()
    return LoadedGenerator(g, conf, ckpt, dev, use_ema)
