"""Projection: find the w (or per-layer w+) and noise maps whose image reconstructs a given one.

Follows stylegan2-ada-pytorch's projector.py: w starts at the mean of 10,000 mapped z (seed 123; its
spread w_std scales the exploration noise), Adam (betas 0.9, 0.999) at lr 0.1 with a linear ramp-up
over the first 5 % of the steps and a cosine ramp-down over the last 25 %, Gaussian noise added to w
with scale w_std * 0.05 * (1 - t / 0.75)^2 (t = step / steps), the const noise maps re-drawn and optimised too, regularised (weight 1e5) by their
autocorrelation at one pixel's shift over the pyramid of 2x average-pooled copies down to 8 x 8, and
renormalised to zero mean and unit variance after every step.

Loss (the deviation): the reference measures LPIPS (VGG16 features); ganforge ships no LPIPS
weights, so the distance is a multi-scale pixel MSE instead: the sum of the MSEs between the image and
the target at full size and 2x, 4x, 8x average-pooled (while at least 8 pixels wide). The pooled terms
weigh low frequencies (layout, shading) more than pixel MSE alone, which is what LPIPS helps with; it
will reconstruct fine texture less faithfully than LPIPS on a large model.

The model is not modified: a copy is optimised (noise buffers included). The result's noise maps
are kept with the latent, and `noise_maps(gen, maps)` puts them into a generator for a while.
"""
from __future__ import annotations

import copy
import json
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..data.convert import to_canonical, to_channels, to_chw
from ..data.resize import resize_image
from ..errors import GanforgeError
from ..utils.atomic import atomic_write, atomic_write_text
from ..utils.images import save_image
from .animation import write_animation
from .style import require_style, synthesize

SPACES = ("w", "w+")
NOISE_KEY = "noise_const"  # the buffer name of every synthesis layer's fixed noise map, in both models


@dataclass
class Projection:
    """The outcome of `project`: latents, noise maps, images and errors (MSE on the [0, 1] scale)."""

    ws: Tensor  # [1, num_ws, w_dim]
    space: str
    noise: dict[str, Tensor]  # buffer name (in the generator) -> optimised noise map
    target: Tensor  # [1, C, H, W] in [-1, 1]
    reconstruction: Tensor  # [1, C, H, W], clamped to [-1, 1]
    baseline: Tensor  # the w_avg image (the model's own noise), clamped
    mse: float
    psnr: float
    baseline_mse: float
    baseline_psnr: float
    steps: int
    losses: list[float] = field(default_factory=list)
    frames: list[Tensor] = field(default_factory=list)  # [C, H, 2W]: target | image, every few steps

    def latent_dict(self) -> dict[str, Tensor]:
        """What latent.pt holds: ws, w (space w only) and noise/<buffer name> maps; tensors only."""
        out = {"ws": self.ws.detach().cpu()}
        if self.space == "w":
            out["w"] = self.ws[:, 0].detach().cpu()
        out.update({f"noise/{k}": v.detach().cpu() for k, v in self.noise.items()})
        return out

    def metrics(self) -> dict[str, float | int | str]:
        """The final errors as a JSON-ready dict."""
        return {"space": self.space, "steps": self.steps, "mse": self.mse, "psnr": self.psnr,
                "baseline_mse": self.baseline_mse, "baseline_psnr": self.baseline_psnr,
                "mse_scale": "images mapped to [0, 1]; psnr = 10 log10(1 / mse)",
                "baseline": "the image of the mean w (start of the optimisation)",
                "loss": "multi-scale pixel MSE (no LPIPS)"}


def load_target(path: str | Path, channels: int, size: int) -> tuple[Tensor, list[str]]:
    """An image file as [1, channels, size, size] in [-1, 1], and a note for every conversion made."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no such image file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()
                mode, (w, h) = img.mode, img.size
                canon = to_canonical(img)
    except GanforgeError as e:
        raise GanforgeError(f"cannot read image {path}: {e}") from None
    except Exception as e:  # PIL raises many types for bad files; all mean "unreadable"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise GanforgeError(f"cannot read image {path}: {reason}") from None
    notes = []
    if mode not in ("L", "RGB"):
        notes.append(f"converted mode {mode} to {canon.mode}" + (" (alpha composited onto black)"
                                                                 if "A" in mode or mode == "P" else ""))
    native = 3 if canon.mode == "RGB" else 1
    if native != channels:
        notes.append("converted colour to grayscale (ITU-R 601 luma)" if channels == 1 else
                     "repeated the grayscale channel to RGB")
    canon = to_channels(canon, channels)
    if (w, h) != (size, size):
        how = "scaled" if w == h else "scaled the shorter side and centre-cropped"
        notes.append(f"resized {w}x{h} to {size}x{size} ({how})")
        canon = resize_image(canon, size, "resize-crop")
    arr = to_chw(canon, channels).astype(np.float32)
    return (torch.from_numpy(arr) / 127.5 - 1.0).clamp(-1.0, 1.0)[None], notes


def noise_buffers(net: torch.nn.Module) -> dict[str, Tensor]:
    """The fixed noise maps (noise_mode='const') of a StyleGAN generator, by buffer name."""
    return {name: buf for name, buf in net.named_buffers() if name.rsplit(".", 1)[-1] == NOISE_KEY}


@contextmanager
def noise_maps(gen, maps: dict[str, Tensor] | None) -> Iterator[None]:
    """Use `maps` (buffer name -> map) as the generator's const noise inside the block, then restore."""
    if not maps:
        yield
        return
    bufs = noise_buffers(gen.net)
    for name, t in maps.items():
        if name not in bufs or tuple(bufs[name].shape) != tuple(t.shape):
            raise GanforgeError(f"noise map {name!r} {list(t.shape)} does not fit this generator")
    saved = {name: bufs[name].detach().clone() for name in maps}
    try:
        with torch.no_grad():
            for name, t in maps.items():
                bufs[name].copy_(t)
        yield
    finally:
        with torch.no_grad():
            for name, t in saved.items():
                bufs[name].copy_(t)


def _distance(img: Tensor, target: Tensor) -> Tensor:
    """Sum of pixel MSEs at full size and 2x, 4x, 8x average-pooled (while >= 8 px)."""
    loss = F.mse_loss(img, target)
    for _ in range(3):
        if img.shape[-1] < 16:
            break
        img, target = F.avg_pool2d(img, 2), F.avg_pool2d(target, 2)
        loss = loss + F.mse_loss(img, target)
    return loss


def _noise_regularizer(bufs: list[Tensor]) -> Tensor:
    """The reference's: squared autocorrelation at a one-pixel shift, over each map's pyramid down to 8x8."""
    reg = torch.zeros(())
    for noise in bufs:
        noise = noise[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, 1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, 1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, 2)
    return reg


def _errors(img: Tensor, target: Tensor) -> tuple[float, float]:
    """(MSE, PSNR) on the [0, 1] scale."""
    mse = float(((img.double().clamp(-1, 1) - target.double()) / 2).square().mean())
    return mse, (10 * math.log10(1 / mse) if mse > 0 else math.inf)


def project(gen, image: Tensor, space: str = "w", steps: int = 1000, seed: int = 0, lr: float = 0.1,
            noise_weight: float = 1e5, w_avg_samples: int = 10000, frame_every: int | None = None,
            class_label: int | None = None, echo: Callable[[str], None] | None = None) -> Projection:
    """Optimise w (space 'w') or per-layer ws ('w+') and the noise maps to reconstruct image [1 or -, C, H, W]."""
    require_style(gen, "projection")
    if space not in SPACES:
        raise GanforgeError(f"unknown projection space {space!r} (choose from {', '.join(SPACES)})")
    if steps < 1:
        raise GanforgeError(f"projection needs steps >= 1, got {steps}")
    gen.io.check_labels(class_label)
    c, s = gen.io.out_channels, gen.io.image_size
    target = torch.as_tensor(image).float()
    if target.dim() == 3:
        target = target[None]
    if tuple(target.shape) != (1, c, s, s):
        raise GanforgeError(f"the target must be one image [1, {c}, {s}, {s}] in [-1, 1] for this model, got "
                            f"{list(target.shape)} (load_target converts files)")
    dev = gen.device
    target = target.to(dev)
    g = copy.deepcopy(gen.net).eval().requires_grad_(False)  # the caller's generator stays as it is
    num_ws = g.num_ws
    rng = torch.Generator().manual_seed(int(seed))

    with torch.no_grad():  # the reference's statistics of W
        z = torch.from_numpy(np.random.RandomState(123).randn(w_avg_samples, g.z_dim)).float()
        y = None
        if gen.io.num_classes:
            y = torch.full((w_avg_samples,), 0 if class_label is None else int(class_label), dtype=torch.long)
        w_samples = torch.cat([g.mapping(z[i:i + 1000].to(dev), None if y is None else y[i:i + 1000].to(dev))[:, 0]
                               for i in range(0, w_avg_samples, 1000)]).float()
        w_avg = w_samples.mean(0, keepdim=True)  # [1, w_dim]
        w_std = float((w_samples - w_avg).square().sum() / w_avg_samples) ** 0.5

    bufs = noise_buffers(g)
    for buf in bufs.values():
        with torch.no_grad():
            buf.copy_(torch.randn(buf.shape, generator=rng).to(dev))
        buf.requires_grad_(True)
    w_opt = (w_avg[:, None] if space == "w" else w_avg[:, None].repeat(1, num_ws, 1)).clone().requires_grad_(True)
    opt = torch.optim.Adam([w_opt, *bufs.values()], betas=(0.9, 0.999), lr=lr)
    every = frame_every or max(1, steps // 50)
    losses, frames = [], []
    report = max(1, steps // 10)

    for step in range(steps):
        t = step / steps
        w_noise_scale = w_std * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
        ramp = min(1.0, (1.0 - t) / 0.25)
        ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / 0.05)
        for group in opt.param_groups:
            group["lr"] = lr * ramp
        w_noise = torch.randn(w_opt.shape, generator=rng).to(dev) * w_noise_scale
        ws = (w_opt + w_noise).expand(-1, num_ws, -1)
        img = g.synthesis(ws, noise_mode="const")
        dist = _distance(img, target)
        loss = dist + noise_weight * _noise_regularizer(list(bufs.values())).to(dev)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(dist.item())
        with torch.no_grad():  # the reference's renormalisation: zero mean, unit variance
            for buf in bufs.values():
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        if step % every == 0 or step == steps - 1:
            frames.append(torch.cat([target[0], img[0].detach().clamp(-1, 1)], dim=-1).cpu())
        if echo is not None and ((step + 1) % report == 0 or step == steps - 1):
            echo(f"step {step + 1}/{steps}  distance {losses[-1]:.5f}")

    with torch.no_grad():
        final_ws = w_opt.detach().expand(-1, num_ws, -1).clone()
        recon = g.synthesis(final_ws, noise_mode="const").float().clamp(-1, 1).cpu()
        baseline = synthesize(gen, w_avg.cpu()[:, None].expand(-1, num_ws, -1)).clamp(-1, 1)
    target = target.cpu()
    mse, psnr = _errors(recon, target)
    b_mse, b_psnr = _errors(baseline, target)
    noise = {name: buf.detach().cpu().clone() for name, buf in bufs.items()}
    return Projection(final_ws.cpu(), space, noise, target, recon, baseline, mse, psnr, b_mse, b_psnr, steps,
                      losses, frames)


def save_projection(result: Projection, out_dir: str | Path, size: int | None = None) -> dict[str, Path]:
    """Write latent.pt, target.png, reconstruction.png, progress.gif and metrics.json into out_dir."""
    out = Path(out_dir)
    paths = {"latent": out / "latent.pt", "target": out / "target.png", "reconstruction": out / "reconstruction.png",
             "progress": out / "progress.gif", "metrics": out / "metrics.json"}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(paths["latent"], lambda tmp: torch.save(result.latent_dict(), tmp))
    save_image(result.target[0], paths["target"])
    save_image(result.reconstruction[0], paths["reconstruction"])
    write_animation(torch.stack(result.frames), paths["progress"], fps=10, size=size)
    atomic_write_text(paths["metrics"], json.dumps(result.metrics(), indent=2) + "\n")
    return paths


def load_latent(path: str | Path) -> tuple[Tensor, dict[str, Tensor]]:
    """ws [N, num_ws, w_dim] (or w [N, w_dim]) and noise maps from a latent file written by `project`."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no such latent file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise GanforgeError(f"cannot read latent file {path}: {reason}") from None
    if isinstance(data, Tensor):
        return data.float(), {}
    if not isinstance(data, dict) or not isinstance(data.get("ws", data.get("w")), Tensor):
        raise GanforgeError(f"{path} holds no 'ws' or 'w' tensor (write one with `ganforge project`)")
    ws = data["ws"] if isinstance(data.get("ws"), Tensor) else data["w"]
    noise = {k.split("/", 1)[1]: v for k, v in data.items() if k.startswith("noise/") and isinstance(v, Tensor)}
    return ws.float(), noise
