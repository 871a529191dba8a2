"""W space of a StyleGAN run: seeds, truncation, per-layer styles and the style-mixing grid.

Works for every generator with `mapping(z, y, psi, cutoff)` -> ws [N, num_ws, w_dim] and
`synthesis(ws, noise_mode)` (models `stylegan` and `stylegan2`). A seed's latent is exactly
`io.latents(1, seed)`'s z, so seed s here is the first image of `ganforge sample --seed s`.

Layers and resolutions (both models): style layer l drives resolution 4 * 2^(l // 2) (v1: two AdaIN
layers per resolution; v2: conv1 of a block and the ToRGB + conv0 pair it shares with the next block),
so a model of size S has num_ws = 2 log2(S) - 2 layers. The papers' levels are by resolution:

    coarse 4^2-8^2, middle 16^2-32^2, fine 64^2 to full resolution   (models of 64 px and more)

Below 64 px that would leave no fine styles, so the levels are: fine = the full resolution alone,
coarse = resolutions up to max(4, S/4), middle = those between (32 px: coarse 4-8 = layers 0-3,
middle 16 = layers 4-5, fine 32 = layers 6-7; 16 px: 0-1, 2-3, 4-5; 8 px: coarse 0-1, no middle,
fine 2-3). `style_layers` returns them; "A-B" names layers A..B (inclusive) directly.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..errors import GanforgeError

STYLE_MODELS = ("stylegan", "stylegan2")
LEVELS = ("coarse", "middle", "fine")
MAX_SEEDS = 10000  # a typo like 0-1000000 should be an error, not an hour of sampling
PSI_RANGE = (0.0, 2.0)


def model_name(gen) -> str:
    """The model name a loaded generator was built as."""
    return str((gen.config.get("model") or {}).get("name", "?"))


def is_style(gen) -> bool:
    """Whether a loaded generator has a StyleGAN mapping and synthesis network (and so a W space)."""
    return gen.io.kind == "noise" and bool(gen.io.extra.get("mixing")) and hasattr(gen.net, "mapping") \
        and hasattr(gen.net, "synthesis")


def require_style(gen, what: str) -> None:
    """Raise one clear error unless `gen` is a StyleGAN generator; `what` names the operation."""
    if not is_style(gen):
        raise GanforgeError(f"{what} needs a StyleGAN run ({' or '.join(STYLE_MODELS)}); {gen.path} holds a "
                            f"{model_name(gen)} model")


def check_psi(psi: float) -> float:
    """psi as a float if it lies in [0, 2], else a GanforgeError."""
    lo, hi = PSI_RANGE
    try:
        value = float(psi)
    except (TypeError, ValueError):
        raise GanforgeError(f"truncation psi must be a number in [{lo:g}, {hi:g}], got {psi!r}") from None
    if not lo <= value <= hi:  # also refuses NaN
        raise GanforgeError(f"truncation psi must lie in [{lo:g}, {hi:g}], got {psi}")
    return value


def parse_seeds(text: str) -> list[int]:
    """Seeds from "0-63", "1,5,9" or a mix ("0-3,10"); ranges are inclusive."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        lo_hi = part.split("-")
        try:
            if len(lo_hi) == 1:
                values = [int(lo_hi[0])]
            elif len(lo_hi) == 2:
                a, b = int(lo_hi[0]), int(lo_hi[1])
                if b < a:
                    raise GanforgeError(f"seed range {part!r} runs backwards (write {b}-{a})")
                if b - a + 1 > MAX_SEEDS:
                    raise GanforgeError(f"seed range {part!r} has more than {MAX_SEEDS} seeds")
                values = list(range(a, b + 1))
            else:
                raise ValueError
        except ValueError:
            raise GanforgeError(f"bad seeds {text!r}: use ranges and lists of integers >= 0 like 0-63 or "
                                f"1,5,9") from None
        if any(v < 0 or v >= 2**63 for v in values):
            raise GanforgeError(f"seeds must lie in [0, 2**63), got {part!r}")
        seeds += values
        if len(seeds) > MAX_SEEDS:
            raise GanforgeError(f"at most {MAX_SEEDS} seeds, got more in {text!r}")
    return seeds


def seed_latents(gen, seeds: Sequence[int], labels: Tensor | int | None = None,
                 threshold: float | None = None) -> tuple[Tensor, Tensor | None]:
    """z [N, z_dim] (row i = io.latents(1, seeds[i], threshold=threshold)'s z) and labels (cycling through
    classes unless given)."""
    if not len(seeds):
        raise GanforgeError("no seeds given")
    gen.io.check_labels(labels, len(seeds))
    z = torch.cat([gen.io.latents(1, int(s), threshold=threshold)[0] for s in seeds])
    k = gen.io.num_classes
    if k <= 0:
        return z, None
    if labels is None:
        return z, torch.arange(len(seeds)) % k
    if isinstance(labels, int) or torch.as_tensor(labels).dim() == 0:
        return z, torch.full((len(seeds),), int(labels), dtype=torch.long)
    return z, torch.as_tensor(labels).long()


@torch.no_grad()
def mapping(gen, z: Tensor, y: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
            batch_size: int = 256) -> Tensor:
    """ws [N, num_ws, w_dim] of latents z; psi pulls towards the tracked w_avg (cutoff None: the model's own)."""
    require_style(gen, "the W space")
    psi = check_psi(psi)
    kw = {} if cutoff is None else {"cutoff": int(cutoff)}  # v1 truncates 8 layers by default, v2 all
    dev = gen.device
    outs = []
    for i in range(0, z.shape[0], batch_size):
        yb = None if y is None else y[i:i + batch_size].to(dev)
        outs.append(gen.net.mapping(z[i:i + batch_size].to(dev), yb, psi=psi, **kw).float())
    return torch.cat(outs)


@torch.no_grad()
def synthesize(gen, ws: Tensor, noise_mode: str = "const", batch_size: int = 64) -> Tensor:
    """Images [N, C, H, W] (float32 on the CPU, not clamped) of per-layer latents ws [N, num_ws, w_dim]."""
    require_style(gen, "synthesis from W")
    ws = as_ws(gen, ws)
    dev = gen.device
    return torch.cat([gen.net.synthesis(ws[i:i + batch_size].to(dev), noise_mode=noise_mode).float().cpu()
                      for i in range(0, ws.shape[0], batch_size)])


def as_ws(gen, w: Tensor) -> Tensor:
    """w [w_dim], w [N, w_dim] (one w for every layer) or ws [N, num_ws, w_dim], as ws [N, num_ws, w_dim]."""
    num_ws, w_dim = gen.net.num_ws, gen.net.w_dim
    w = torch.as_tensor(w).float()
    if w.dim() == 1:
        w = w[None]
    if w.dim() == 2:
        w = w[:, None].expand(-1, num_ws, -1)
    if w.dim() != 3 or w.shape[1:] != (num_ws, w_dim):
        raise GanforgeError(f"latents must be w [N, {w_dim}] or ws [N, {num_ws}, {w_dim}] for this model, "
                            f"got {list(w.shape)}")
    return w


def seed_ws(gen, seeds: Sequence[int], psi: float = 1.0, labels: Tensor | int | None = None,
            cutoff: int | None = None) -> Tensor:
    """ws [N, num_ws, w_dim] of seeded latents (truncated by psi)."""
    z, y = seed_latents(gen, seeds, labels)
    return mapping(gen, z, y, psi=psi, cutoff=cutoff)


@torch.no_grad()
def seed_images(gen, seeds: Sequence[int], psi: float = 1.0, labels: Tensor | int | None = None,
                threshold: float | None = None) -> Tensor:
    """One image [C, H, W] per seed (truncated by psi on StyleGAN runs, or z by a threshold), stacked [N, C, H, W]."""
    z, y = seed_latents(gen, seeds, labels, threshold)
    if float(psi) == 1.0:  # any noise model; the same images as `sample`
        return gen.io.generate(gen.net, z=z, y=y)
    require_style(gen, "truncation (--trunc)")
    return synthesize(gen, mapping(gen, z, y, psi=psi))


def layer_resolution(layer: int) -> int:
    """The resolution (pixels per side) that style layer `layer` drives."""
    return 4 * 2 ** (layer // 2)


def level_resolutions(image_size: int) -> dict[str, list[int]]:
    """Resolutions of each level (coarse, middle, fine) for a model of `image_size` pixels (see the module doc)."""
    res = [2**i for i in range(2, int(image_size).bit_length())]
    if image_size >= 64:  # the papers' bands
        return {"coarse": [r for r in res if r <= 8], "middle": [r for r in res if 16 <= r <= 32],
                "fine": [r for r in res if r >= 64]}
    top = max(4, image_size // 4)
    return {"coarse": [r for r in res if r <= top], "middle": [r for r in res if top < r < image_size],
            "fine": [r for r in res if r == image_size and r > top]}


def style_layers(gen, levels: str | Sequence[int] | range) -> list[int]:
    """Layer indices of a level name (coarse, middle, fine), an "A-B" range (inclusive) or a list of indices."""
    num_ws = gen.net.num_ws
    if not isinstance(levels, str):
        layers = [int(v) for v in levels]
        bad = [v for v in layers if not 0 <= v < num_ws]
        if bad or not layers:
            raise GanforgeError(f"style layers must lie in 0..{num_ws - 1} for this model, got {layers}")
        return sorted(set(layers))
    text = levels.strip().lower()
    if text in LEVELS:
        size = gen.io.image_size
        want = set(level_resolutions(size)[text])
        layers = [i for i in range(num_ws) if layer_resolution(i) in want]
        if not layers:
            raise GanforgeError(f"a {size} px model has no {text} styles; name layers as A-B (0..{num_ws - 1})")
        return layers
    parts = text.split("-")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        a, b = int(parts[0]), int(parts[-1])
    except ValueError:
        raise GanforgeError(f"unknown style levels {levels!r}: use coarse, middle, fine or a layer range A-B "
                            f"within 0..{num_ws - 1}") from None
    if not 0 <= a <= b < num_ws:
        raise GanforgeError(f"layer range {levels!r} must satisfy 0 <= A <= B <= {num_ws - 1} (this model has "
                            f"{num_ws} style layers)")
    return list(range(a, b + 1))


def describe_levels(gen) -> str:
    """One line: which layers (and resolutions) each level takes for this model."""
    out = []
    for name, res in level_resolutions(gen.io.image_size).items():
        layers = [i for i in range(gen.net.num_ws) if layer_resolution(i) in res]
        px = f"{res[0]} px" if len(res) == 1 else f"{res[0]}-{res[-1]} px"
        out.append(f"{name} = " + (f"layers {layers[0]}-{layers[-1]} ({px})" if layers else "none"))
    return ", ".join(out)


def mix_styles(row_ws: Tensor, col_ws: Tensor, layers: Sequence[int]) -> Tensor:
    """row_ws [N, num_ws, w_dim] with the given layers taken from col_ws (same shape or [1, ...])."""
    out = row_ws.clone()
    idx = torch.as_tensor(list(layers), dtype=torch.long)
    out[:, idx] = col_ws.expand_as(row_ws)[:, idx].to(out.dtype)
    return out


@torch.no_grad()
def style_mix_grid(gen, rows: Sequence[int], cols: Sequence[int], layers: str | Sequence[int] = "coarse",
                   psi: float = 1.0, class_label: int | None = None) -> Tensor:
    """The style-mixing figure as [(R+1) * (C+1), C, H, W] images, row by row (grid with C+1 per row).

    Top row: the column seeds' images; left column: the row seeds'; cell (i, j): row seed i's styles with
    `layers` taken from column seed j; the top-left cell is blank (1.0, the grid's padding colour).
    """
    require_style(gen, "style mixing")
    layer_idx = style_layers(gen, layers)
    label = 0 if gen.io.num_classes and class_label is None else class_label  # one class for the whole figure
    row_ws = seed_ws(gen, rows, psi, label)
    col_ws = seed_ws(gen, cols, psi, label)
    row_img, col_img = synthesize(gen, row_ws), synthesize(gen, col_ws)
    blank = torch.ones_like(col_img[:1])
    lines = [torch.cat([blank, col_img])]
    for i in range(len(rows)):
        cells = synthesize(gen, mix_styles(row_ws[i:i + 1].expand(len(cols), -1, -1), col_ws, layer_idx))
        lines.append(torch.cat([row_img[i:i + 1], cells]))
    return torch.cat(lines)
