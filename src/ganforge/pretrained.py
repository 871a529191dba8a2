"""Loading a trained generator from a run or checkpoint folder: safetensors + config.json, no pickle."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import GanforgeError
from .models.interface import ModelIO
from .registry import create_model
from .training.checkpoint import load_into, load_weights, read_config, resolve_checkpoint
from .training.device import pick_device
from .utils.images import save_grid


class LoadedGenerator:
    """A trained generator in eval mode, with the config that built it."""

    def __init__(self, net: nn.Module, io: ModelIO, config: dict[str, Any], path: Path, device: torch.device,
                 ema: bool):
        self.net, self.io, self.config, self.path, self.device, self.ema = net, io, config, path, device, ema
        self.task = io.kind

    @property
    def num_classes(self) -> int:
        """Number of classes of a conditional generator, 0 otherwise."""
        return self.io.num_classes

    @property
    def is_style(self) -> bool:
        """Whether this generator has a StyleGAN W space (mapping + synthesis): truncation, mixing, projection."""
        from .tools.style import is_style

        return is_style(self)

    @torch.no_grad()
    def sample(self, n: int = 64, seed: int = 0, labels: Tensor | int | None = None, batch_size: int = 256,
               psi: float = 1.0, threshold: float | None = None) -> Tensor:
        """n images in [-1, 1] from seeded latents (labels cycle through classes unless given).

        psi != 1 (StyleGAN runs only): the truncation trick towards the tracked mean w.
        threshold (any noise model; BigGAN's truncation trick): entries of z beyond +-threshold redrawn."""
        if self.task != "noise":
            what = "upscales" if self.task == "upscale" else "translates"
            raise GanforgeError(f"this {self.config['model']['name']} model {what} images; it does not sample noise "
                                f"(use `ganforge {what[:-1]}`)")
        if psi != 1.0:
            from .tools.style import check_psi, mapping, require_style, synthesize

            require_style(self, "truncation (psi)")
            psi = check_psi(psi)
        z, y = self.io.latents(n, seed, labels, threshold=threshold)
        if psi != 1.0:
            out = synthesize(self, mapping(self, z, y, psi=psi, batch_size=batch_size), batch_size=batch_size)
        else:
            out = self.io.generate(self.net, z=z, y=y, batch_size=batch_size)
        return out.clamp(-1, 1)  # StyleGAN outputs are not squashed: the images a file would hold

    @torch.no_grad()
    def __call__(self, image: Tensor) -> Tensor:
        """The translation or upscaling of an image batch in [-1, 1] (checked against the model's contract)."""
        return self.io.generate(self.net, image=image)

    def save_grid(self, path: str | Path, n: int = 64, seed: int = 0, labels: Tensor | int | None = None,
                  nrow: int | None = None, psi: float = 1.0, threshold: float | None = None) -> Path:
        """Sample n images (truncated by psi on StyleGAN runs, or z by a threshold) and save them as one grid."""
        imgs = self.sample(n, seed, labels, psi=psi, threshold=threshold)
        if nrow is None:
            nrow = self.num_classes if (self.num_classes and labels is None) else 8
        return save_grid(imgs, path, nrow=nrow)


def load(path: str | Path, ema: bool = True, device: str = "cpu", net: str | None = None,
         role: str | None = None) -> LoadedGenerator:
    """Load the generator of a run/checkpoint folder (its EMA weights when present and `ema`).

    `role` picks a generator by what it does (a translation direction, e.g. "BtoA"); `net` by its key."""
    ckpt = resolve_checkpoint(path)
    conf = read_config(ckpt)
    model = dict(conf.get("model") or {})
    name = model.pop("name", None)
    if name is None:
        raise GanforgeError(f"{ckpt / 'config.json'} names no model")
    models = create_model(name, **model)
    if net is not None:
        roles = [r for r, k in models.io.nets.items() if k == net]
        if not roles:
            raise GanforgeError(f"model {name!r} generates with {', '.join(models.io.nets.values())}, not {net!r}")
        role = roles[0]
    io = models.io.view(role)
    key = io.generator_key
    g = models.nets[key]
    use_ema = ema and (ckpt / f"{key}_ema.safetensors").is_file()
    load_into(g, load_weights(ckpt, f"{key}_ema" if use_ema else key), f"{name} weights in {ckpt} ({key})")
    dev = pick_device(device)
    g.to(dev).eval()
    return LoadedGenerator(g, io, conf, ckpt, dev, use_ema)
