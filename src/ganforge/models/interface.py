"""What a model takes and gives at inference time, and how to generate from it.

Every registered model declares one `ModelIO`. Sampling, translation, evaluation, the Python API (and
the web page and export after them) go through it, and the argument checks live here rather than inside
`forward`, so the networks stay plain tensor functions that trace and export.

kinds:
  noise      z [N, z_dim] (and class labels [N] when num_classes > 0) -> images [N, C, H, W]
  translate  images [N, in_channels, H, W] -> images [N, out_channels, H, W]; H, W multiples of size_multiple
  upscale    images [N, in_channels, h, w] -> images [N, out_channels, h * scale, w * scale]
`nets` maps a role to the network that plays it: {"generate": "G"} for one generator, or one entry per
translation direction ({"AtoB": "G_AB", "BtoA": "G_BA"}).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import GanforgeError

KINDS = ("noise", "translate", "upscale")


@dataclass(frozen=True)
class ModelIO:
    """The inference contract of one model."""

    kind: str
    image_size: int  # training resolution (the output size for noise models, the tile size otherwise)
    out_channels: int
    z_dim: int = 0
    num_classes: int = 0
    in_channels: int = 0
    scale: int = 1
    size_multiple: int = 1
    nets: dict[str, str] = field(default_factory=lambda: {"generate": "G"})
    # Per-role (in_channels, out_channels) where roles differ (CycleGAN between a 1- and a 3-channel domain).
    role_channels: dict[str, tuple[int, int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific capabilities (truncation, mixing, ...)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}")

    @property
    def generator_key(self) -> str:
        """The net used when no role is named."""
        return next(iter(self.nets.values()))

    @property
    def roles(self) -> list[str]:
        """Named roles (translation directions), in declaration order."""
        return list(self.nets)

    def net_for(self, role: str | None = None) -> str:
        """The network key that plays `role` (None: the first one)."""
        if role is None:
            return self.generator_key
        if role not in self.nets:
            raise GanforgeError(f"unknown direction {role!r} (this model has: {', '.join(self.nets)})")
        return self.nets[role]

    def view(self, role: str | None = None) -> "ModelIO":
        """The contract of one role alone (its net, and its channels where roles differ)."""
        key = self.net_for(role)
        role = role or self.roles[0]
        cin, cout = self.role_channels.get(role, (self.in_channels, self.out_channels))
        return replace(self, nets={role: key}, in_channels=cin, out_channels=cout, role_channels={})

    # ---- noise models -------------------------------------------------------------------------------
    def check_labels(self, labels: Tensor | int | None, n: int | None = None) -> None:
        """Raise one clear error for labels a noise model cannot take."""
        if self.num_classes <= 0:
            if labels is not None:
                raise GanforgeError("this model is not class-conditional: a class does not apply")
            return
        if labels is None:
            return
        values = torch.as_tensor(labels)
        if values.is_floating_point():
            raise GanforgeError("class labels must be integers")
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= self.num_classes):
            raise GanforgeError(f"class labels must lie in 0..{self.num_classes - 1}")
        if n is not None and values.dim() == 1 and len(values) != n:
            raise GanforgeError(f"{len(values)} labels given for {n} samples")

    def latents(self, n: int, seed: int, labels: Tensor | int | None = None,
                threshold: float | None = None) -> tuple[Tensor, Tensor | None]:
        """Seeded z ~ N(0, I) and labels (cycling 0..K-1 unless given) for n samples.

        threshold: BigGAN's truncation trick, every entry of z with |z| > threshold redrawn (truncated_randn)."""
        if self.kind != "noise":
            raise GanforgeError(f"a {self.kind} model takes images, not noise")
        if n < 1:
            raise GanforgeError(f"the number of samples must be >= 1, got {n}")
        self.check_labels(labels, n)
        g = torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, self.z_dim, generator=g) if threshold is None else \
            truncated_randn(n, self.z_dim, threshold, g)
        if self.num_classes <= 0:
            return z, None
        if labels is None:
            y = torch.arange(n) % self.num_classes
        elif isinstance(labels, int) or torch.as_tensor(labels).dim() == 0:
            y = torch.full((n,), int(labels), dtype=torch.long)
        else:
            y = torch.as_tensor(labels).long()
        return z, y

    def check_latents(self, z: Tensor, y: Tensor | None) -> None:
        """Raise one clear error for latents of the wrong shape."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise GanforgeError(f"latents must have shape [N, {self.z_dim}], got {list(z.shape)}")
        self.check_labels(y, z.shape[0])
        if self.num_classes > 0 and y is None:
            raise GanforgeError(f"this model is class-conditional ({self.num_classes} classes): give labels")

    # ---- image-to-image models ----------------------------------------------------------------------
    def check_image(self, x: Tensor) -> None:
        """Raise one clear error for an input image batch this model cannot take."""
        if self.kind == "noise":
            raise GanforgeError("a noise model takes latents, not images")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise GanforgeError(f"input must have shape [N, {self.in_channels}, H, W], got {list(x.shape)}")
        m = self.size_multiple
        if x.shape[2] % m or x.shape[3] % m:
            raise GanforgeError(f"input height and width must be multiples of {m}, got {x.shape[2]}x{x.shape[3]}")

    # ---- generation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, net: nn.Module, *, z: Tensor | None = None, y: Tensor | None = None,
                 image: Tensor | None = None, batch_size: int = 256) -> Tensor:
        """Outputs in [-1, 1] (float32, on the CPU) of `net` for latents or images, in batches, checked first."""
        dev = next(net.parameters()).device
        if self.kind == "noise":
            if z is None:
                raise GanforgeError("a noise model needs latents z")
            self.check_latents(z, y)
            outs = []
            for i in range(0, z.shape[0], batch_size):
                yb = None if y is None else y[i:i + batch_size].to(dev)
                outs.append(net(z[i:i + batch_size].to(dev), yb).float().cpu())
            return torch.cat(outs)
        if image is None:
            raise GanforgeError(f"a {self.kind} model needs an input image")
        self.check_image(image)
        return torch.cat([net(image[i:i + batch_size].to(dev)).float().cpu()
                          for i in range(0, image.shape[0], batch_size)])


THRESHOLD_MIN = 0.04  # the smallest threshold of the BigGAN paper's truncation curves (figure 17)


def check_threshold(threshold: Any) -> float:
    """A truncation threshold as a float >= THRESHOLD_MIN, else a GanforgeError."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise GanforgeError(f"the truncation threshold must be a number >= {THRESHOLD_MIN}, got {threshold!r}") from None
    if not THRESHOLD_MIN <= value < float("inf"):  # also refuses NaN
        raise GanforgeError(f"the truncation threshold must be a finite number >= {THRESHOLD_MIN}, got {threshold}")
    return value


def truncated_randn(n: int, dim: int, threshold: float, generator: torch.Generator) -> Tensor:
    """z [n, dim] ~ N(0, I) with every entry beyond +-threshold redrawn until none is (Brock et al. 2019, 3.1:
    the truncation trick by resampling). The first draw is exactly torch.randn(n, dim, generator=...)'s, so a
    seed keeps its entries within the threshold at every threshold, and a large one changes nothing."""
    threshold = check_threshold(threshold)
    z = torch.randn(n, dim, generator=generator)
    out = (z.abs() > threshold).nonzero(as_tuple=True)
    while out[0].numel():
        z[out] = torch.randn(out[0].numel(), generator=generator)
        keep = z[out].abs() > threshold
        out = (out[0][keep], out[1][keep])
    return z


def noise_io(image_size: int, channels: int, z_dim: int, num_classes: int = 0, **extra: Any) -> ModelIO:
    """The contract of a z (and label) -> image generator named G."""
    return ModelIO("noise", image_size=image_size, out_channels=channels, z_dim=z_dim, num_classes=num_classes,
                   extra=dict(extra))
