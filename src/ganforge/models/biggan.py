"""BigGAN (Brock et al. 2019): class-conditional residual GAN with spectral norm, shared embedding and hierarchical z.

Facts follow the authors' PyTorch reference (ajbrock/BigGAN-PyTorch, BigGAN.py and layers.py); the code is
written anew. Module and buffer names match the reference's, so state dicts line up key for key.

Generator: a shared class embedding (`shared`, a plain nn.Embedding as the reference: SN on it "seems to
cripple G"); z is split into num_slots = (number of G blocks + 1) equal chunks: the first goes through
`linear` to a 4x4x(in_channels[0]) map, chunk i+1 concatenated with the shared embedding conditions block i
(both its conditional BatchNorms: gain = 1 + SNLinear, bias = SNLinear, both bias-free). Each block is
BN-ReLU-up2(nearest)-conv3-BN-ReLU-conv3 plus a 1x1 learnable skip on the upsampled input; a non-local
attention block follows the block at resolution `attn`; the output is BN-ReLU-conv3-tanh.

Discriminator: residual down blocks (the first without pre-activation: conv3-ReLU-conv3-avgpool, skip avgpool
then 1x1; the others ReLU-conv3-ReLU-conv3-avgpool, skip 1x1 then avgpool), attention after the block at
resolution `attn`, ReLU, a global sum pool, `linear` to one logit, plus the projection term
<embed(y), pooled features> with an SN embedding.

Spectral norm (nn/spectral.py; conditional BN and attention are in nn/ too) is the reference's own: one
power iteration per forward (u updated only in training), the weight divided by the estimated top singular
value; buffers u0 (a random unit direction) and sv0 (the last
estimate) are kept in the state dict and are not parameters. eps 1e-6 as the reference's ImageNet launch
scripts (--SN_eps 1e-6), BatchNorm eps 1e-5. Weights are initialised orthogonally (--G_init/--D_init ortho).

The paper's ImageNet 128 network (config `imagenet128`: ch 96, dim_z 120, shared_dim 128, attention at 64)
has 70,433,988 G and 87,982,370 D parameters, equal to the reference's counts for the same arguments (the
paper's "70.4M" and "88.0M").

Differences from the reference: G takes class labels y and embeds them itself (`synthesize(z, e)` takes an
embedding, for class interpolation); dim_z must split evenly into the chunks (the reference silently trims
it); the output/input channel count is `channels` instead of a fixed 3.

BigGAN-deep (the factory's `deep=True`, networks in biggan_deep.py, after the reference's BigGANdeep.py):
two bottlenecked residual blocks per resolution (1x1-3x3-3x3-1x1, the 3x3s at a quarter of the width), G's
skip drops channels and D's concatenates new ones, D starts with a 3x3 stem conv, and z is not split: the
full z concatenated with the shared embedding feeds `linear` and conditions every block (dim_z defaults to
the reference's 128 at every resolution). Config `imagenet128-deep` (the paper's ImageNet 128 BigGAN-deep,
the reference's launch_BigGAN_deep.sh: ch 128, dim_z 128, shared_dim 128, attention at 64) has 50,244,484 G
and 34,590,210 D parameters, equal to the reference's counts for the same arguments.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from ..nn.attention import Attention
from ..nn.conditional_bn import BN, CCBN
from ..nn.spectral import SNConv2d, SNEmbedding, SNLinear
from ..registry import register_model
from .base import GANModels, named_config
from .interface import noise_io

BOTTOM = 4  # G's first feature map is BOTTOM x BOTTOM

# Channel multipliers of `ch` per block (the reference's G_arch / D_arch); D's first input is the image.
G_ARCH: dict[int, dict[str, list[int]]] = {
    32: dict(cin=[4, 4, 4], cout=[4, 4, 4], res=[8, 16, 32]),
    64: dict(cin=[16, 16, 8, 4], cout=[16, 8, 4, 2], res=[8, 16, 32, 64]),
    128: dict(cin=[16, 16, 8, 4, 2], cout=[16, 8, 4, 2, 1], res=[8, 16, 32, 64, 128]),
    256: dict(cin=[16, 16, 8, 8, 4, 2], cout=[16, 8, 8, 4, 2, 1], res=[8, 16, 32, 64, 128, 256]),
}
D_ARCH: dict[int, dict[str, list]] = {
    32: dict(cin=[4, 4, 4], cout=[4, 4, 4, 4], down=[True, True, False, False], res=[16, 16, 16, 16]),
    64: dict(cin=[1, 2, 4, 8], cout=[1, 2, 4, 8, 16], down=[True] * 4 + [False], res=[32, 16, 8, 4, 4]),
    128: dict(cin=[1, 2, 4, 8, 16], cout=[1, 2, 4, 8, 16, 16], down=[True] * 5 + [False],
              res=[64, 32, 16, 8, 4, 4]),
    256: dict(cin=[1, 2, 4, 8, 8, 16], cout=[1, 2, 4, 8, 8, 16, 16], down=[True] * 6 + [False],
              res=[128, 64, 32, 16, 8, 4, 4]),
}
DEFAULT_DIM_Z = {32: 128, 64: 120, 128: 120, 256: 140}  # chunks of 32, 24, 20, 20

CONFIGS: dict[str, dict[str, Any]] = {
    # The paper's ImageNet 128x128 BigGAN (the reference's launch_BigGAN_bs256x8.sh): 70,433,988 G and
    # 87,982,370 D parameters, as the reference implementation counts them.
    "imagenet128": dict(image_size=128, channels=3, num_classes=1000, ch=96, d_ch=96, dim_z=120, shared_dim=128,
                        attn=64),
    # The paper's ImageNet 128x128 BigGAN-deep (the reference's launch_BigGAN_deep.sh, G_depth=D_depth=2):
    # 50,244,484 G and 34,590,210 D parameters, as the reference implementation counts them.
    "imagenet128-deep": dict(image_size=128, channels=3, num_classes=1000, ch=128, d_ch=128, dim_z=128,
                             shared_dim=128, attn=64, deep=True),
}


# ---- blocks --------------------------------------------------------------------------------
class GBlock(nn.Module):
    """BigGAN up block: ccbn-ReLU-up2-conv3-ccbn-ReLU-conv3, plus up2 then 1x1 conv on the skip."""

    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.conv1 = SNConv2d(cin, cout)
        self.conv2 = SNConv2d(cout, cout)
        self.conv_sc = SNConv2d(cin, cout, 1, padding=0)  # always learnable: every block upsamples
        self.bn1 = CCBN(cin, cond_dim)
        self.bn2 = CCBN(cout, cond_dim)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2.0))


class DBlock(nn.Module):
    """BigGAN down block (wide: hidden = out channels); pre-activated except the first block."""

    def __init__(self, cin: int, cout: int, preactivation: bool, downsample: bool):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = SNConv2d(cin, cout)
        self.conv2 = SNConv2d(cout, cout)
        self.learnable_sc = cin != cout or downsample
        if self.learnable_sc:
            self.conv_sc = SNConv2d(cin, cout, 1, padding=0)

    def shortcut(self, x: Tensor) -> Tensor:
        # The reference's order: 1x1 before pooling when pre-activated (cheaper), after it on the image.
        if self.preactivation:
            x = self.conv_sc(x) if self.learnable_sc else x
            return F.avg_pool2d(x, 2) if self.downsample else x
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


def _ortho_init(net: nn.Module) -> None:
    """Orthogonal weights for every conv, linear and embedding (the reference's 'ortho'); skipped on meta."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)) and not m.weight.is_meta:
            nn.init.orthogonal_(m.weight)


# ---- networks -----------------------------------------------------------------------------------------------
class BigGANGenerator(nn.Module):
    """(z [N, dim_z], class labels [N]) -> images [N, channels, S, S] in [-1, 1]."""

    def __init__(self, image_size: int = 128, channels: int = 3, num_classes: int = 1000, ch: int = 96,
                 dim_z: int = 120, shared_dim: int = 128, attn: int = 64, init: bool = True):
        super().__init__()
        arch = G_ARCH[image_size]
        cin, cout = [ch * m for m in arch["cin"]], [ch * m for m in arch["cout"]]
        self.num_slots = len(cin) + 1
        if dim_z % self.num_slots:
            raise GanforgeError(f"biggan dim_z must be a multiple of {self.num_slots} at {image_size} px "
                                f"(one chunk per block plus one), got {dim_z}")
        self.dim_z, self.z_chunk_size, self.shared_dim = dim_z, dim_z // self.num_slots, shared_dim
        self.z_dim = dim_z  # the name the rest of ganforge reads (summary, sampling)
        self.shared = nn.Embedding(num_classes, shared_dim)
        self.linear = SNLinear(self.z_chunk_size, cin[0] * BOTTOM * BOTTOM)
        cond = shared_dim + self.z_chunk_size
        blocks = []
        for i, (a, b) in enumerate(zip(cin, cout)):
            layers: list[nn.Module] = [GBlock(a, b, cond)]
            if arch["res"][i] == attn:
                layers.append(Attention(b))
            blocks.append(nn.ModuleList(layers))
        self.blocks = nn.ModuleList(blocks)
        self.output_layer = nn.Sequential(BN(cout[-1]), nn.ReLU(), SNConv2d(cout[-1], channels))
        if init:
            _ortho_init(self)

    def synthesize(self, z: Tensor, e: Tensor) -> Tensor:
        """Images from latents z and shared class embeddings e [N, shared_dim] (e.g. interpolated ones)."""
        zs = torch.split(z, self.z_chunk_size, 1)
        h = self.linear(zs[0])
        h = h.view(h.size(0), -1, BOTTOM, BOTTOM)
        for blocklist, zi in zip(self.blocks, zs[1:]):
            c = torch.cat([e, zi], 1)
            for block in blocklist:
                h = block(h, c)
        return torch.tanh(self.output_layer(h))

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.synthesize(z, self.shared(y))


class ProjectionDiscriminator(nn.Module):
    """The output of BigGAN's discriminators (and BigGAN-deep's): ReLU, a global sum pool, `linear` to one logit,
    plus the projection <embed(y), pooled features> (Miyato & Koyama 2018). Subclasses build `blocks`, `linear`
    and `embed`, and may map the image first (`stem`)."""

    blocks: nn.ModuleList

    def assemble(self, stages: list[list[nn.Module]], cout: list[int], res: list, attn: int, num_classes: int,
                 init: bool) -> None:
        """Register the stages (an attention block after the stage at resolution `attn`), the output layers, and
        initialise everything orthogonally (the reference's D_init ortho)."""
        self.blocks = nn.ModuleList(nn.ModuleList(layers + ([Attention(c)] if r == attn else []))
                                    for layers, c, r in zip(stages, cout, res))
        self.linear = SNLinear(cout[-1], 1)
        self.embed = SNEmbedding(num_classes, cout[-1])
        if init:
            _ortho_init(self)

    def stem(self, x: Tensor) -> Tensor:
        return x

    def features(self, x: Tensor) -> Tensor:
        """The sum-pooled ReLU features [N, C] that both output terms read."""
        h = self.stem(x)
        for blocklist in self.blocks:
            for block in blocklist:
                h = block(h)
        return F.relu(h).sum([2, 3])

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.features(x)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)


class BigGANDiscriminator(ProjectionDiscriminator):
    """(images [N, channels, S, S], class labels [N]) -> logits [N] (unconditional term + projection)."""

    def __init__(self, image_size: int = 128, channels: int = 3, num_classes: int = 1000, ch: int = 96,
                 attn: int = 64, init: bool = True):
        super().__init__()
        arch = D_ARCH[image_size]
        cin, cout = [channels] + [ch * m for m in arch["cin"]], [ch * m for m in arch["cout"]]
        stages = [[DBlock(a, b, preactivation=i > 0, downsample=arch["down"][i])]
                  for i, (a, b) in enumerate(zip(cin, cout))]
        self.assemble(stages, cout, arch["res"], attn, num_classes, init)


# ---- factory ------------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GanforgeError(f"biggan {name} must be an integer >= {minimum}, got {value!r}")
    return value


@register_model("biggan")
def biggan(image_size: int = 32, channels: int = 3, num_classes: int = 10, ch: int = 32, d_ch: int | None = None,
           dim_z: int | None = None, shared_dim: int = 128, attn: int | None = None, config: str = "",
           deep: bool = False) -> GANModels:
    """BigGAN G and D (class-conditional, 32/64/128/256 px); config: 'imagenet128' or 'imagenet128-deep' (the
    paper's). deep: BigGAN-deep's networks (biggan_deep.py) instead, z unsplit.

    d_ch: D's width (None: ch). dim_z: None picks 128/120/120/140 at 32/64/128/256 px (chunks of 32/24/20/20),
    128 everywhere if deep. attn: the resolution of the self-attention blocks, 0 for none; None picks 0 at 32 px
    (the reference's CIFAR script) and 64 otherwise (at 64 px D has no 64x64 block, so only G gets one)."""
    given = dict(image_size=image_size, channels=channels, num_classes=num_classes, ch=ch, d_ch=d_ch, dim_z=dim_z,
                 shared_dim=shared_dim, attn=attn, deep=deep)
    a = named_config("BigGAN", CONFIGS, biggan, config, given)
    if not isinstance(a["deep"], bool):
        raise GanforgeError(f"biggan deep must be True or False, got {a['deep']!r}")
    from . import biggan_deep  # here: biggan_deep imports this module's blocks and tables
    if a["image_size"] not in G_ARCH:
        raise GanforgeError(f"biggan image_size must be one of {', '.join(map(str, G_ARCH))}, got {a['image_size']!r}")
    for name in ("channels", "num_classes", "ch", "shared_dim"):
        _check_int(name, a[name], 1)
    a["d_ch"] = a["ch"] if a["d_ch"] is None else _check_int("d_ch", a["d_ch"], 1)
    if a["dim_z"] is None:
        a["dim_z"] = biggan_deep.DEFAULT_DIM_Z if a["deep"] else DEFAULT_DIM_Z[a["image_size"]]
    _check_int("dim_z", a["dim_z"], 1)
    if a["attn"] is None:
        a["attn"] = 0 if a["image_size"] == 32 else 64
    _check_int("attn", a["attn"], 0)
    resolutions = set(G_ARCH[a["image_size"]]["res"]) | set(D_ARCH[a["image_size"]]["res"])  # deep D's: a subset
    if a["attn"] and a["attn"] not in resolutions:
        raise GanforgeError(f"biggan attn must be 0 or one of {sorted(resolutions)} at {a['image_size']} px, "
                            f"got {a['attn']}")
    if a["deep"]:
        g = biggan_deep.BigGANDeepGenerator(a["image_size"], a["channels"], a["num_classes"], a["ch"], a["dim_z"],
                                            a["shared_dim"], a["attn"])
        d = biggan_deep.BigGANDeepDiscriminator(a["image_size"], a["channels"], a["num_classes"], a["d_ch"],
                                                a["attn"])
    else:
        g = BigGANGenerator(a["image_size"], a["channels"], a["num_classes"], a["ch"], a["dim_z"], a["shared_dim"],
                            a["attn"])
        d = BigGANDiscriminator(a["image_size"], a["channels"], a["num_classes"], a["d_ch"], a["attn"])
    io = noise_io(a["image_size"], a["channels"], a["dim_z"], a["num_classes"],
                  z_chunks=1 if a["deep"] else g.num_slots, shared_dim=a["shared_dim"])
    return GANModels(name="biggan", args={**a, "config": config}, nets={"G": g, "D": d}, io=io)


biggan.configs = CONFIGS  # read by `ganforge models --params`
