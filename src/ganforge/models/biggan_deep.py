"""BigGAN-deep (Brock et al. 2019, appendix B): BigGAN with deeper, bottlenecked residual blocks.

Facts follow the authors' PyTorch reference (ajbrock/BigGAN-PyTorch, BigGANdeep.py, run as
scripts/launch_BigGAN_deep.sh); the code is written anew, in the style of biggan.py, whose channel table
G_ARCH (the same in both reference files), spectral-norm layers, conditional BN, attention and orthogonal
init it reuses. Module and buffer names match the reference's, so state dicts line up key for key.

Generator: z is not split. The full z concatenated with the shared class embedding, [e, z] (embedding first,
as the reference), goes through `linear` to a 4x4x(in_channels[0]) map and is the conditioning vector of
every conditional BatchNorm. Each resolution has `depth` (2) bottleneck blocks:
ccbn-ReLU-conv1x1 (to in/4 channels) - ccbn-ReLU - [up2] - conv3 - ccbn-ReLU-conv3 - ccbn-ReLU-conv1x1 (to
out), with an identity skip that keeps the first `out` channels of x (and is upsampled alongside). Only the
last block of a resolution upsamples and changes the width; every block is its own entry of `blocks`
(blocks.{k}.0), and the attention block follows the last block of resolution `attn` (blocks.{k}.1). The
output is BN-ReLU-conv3-tanh as in BigGAN.

Discriminator: a 3x3 SN conv stem to in_channels[0], then per resolution `depth` bottleneck blocks (all
blocks.{stage}.{j}, the attention block appended as blocks.{stage}.{depth}): ReLU-conv1x1 (to out/4) -
ReLU-conv3 - ReLU-conv3 - ReLU - [avgpool] - conv1x1 (to out); the skip is avg-pooled (first block of a
resolution only) and, where the width grows, extended by out - in new channels from a 1x1 SN conv
(concatenated after x's own channels). Then ReLU, global sum pool, `linear` plus the projection term as in
BigGAN.

The paper's ImageNet 128 BigGAN-deep (biggan config `imagenet128-deep`: ch 128, dim_z 128, shared_dim 128,
attention at 64, depth 2) has 50,244,484 G and 34,590,210 D parameters, equal to the reference's counts for
the same arguments (G_ch=D_ch=128, G_depth=D_depth=2, dim_z=128, shared_dim=128, hier, G_shared,
G_attn=D_attn='64', 1000 classes). A 64 px network with ch 8, 10 classes, attention at 32 has 1,281,716 G
and 76,354 D parameters, as the reference's.

The reference has architectures for 32, 64, 128 and 256 px; all four are here. At 32 px D's three
resolutions are all labelled 16 as in the reference (they really are 16, 8 and 8), so attention at 16 puts
an attention block after each of them, matching the reference's state dict.

Differences from the reference: G takes class labels y and embeds them itself (`synthesize(z, e)` takes an
embedding); the image channel count is `channels` instead of a fixed 3; and G's blocks are wired for any
depth (the first depth - 1 blocks of a resolution keep its input width, the last one upsamples and changes
it): the reference's wiring is consistent only at depth 2, the depth of every launch script, where the two
agree (at depth 1 its blocks never reach the out widths, at depth 3 its third block expects the input width).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError
from ..nn.attention import Attention
from ..nn.conditional_bn import BN, CCBN
from ..nn.spectral import SNConv2d, SNLinear
from .biggan import BOTTOM, G_ARCH, ProjectionDiscriminator, _ortho_init

CHANNEL_RATIO = 4  # bottleneck: the 3x3 convs run at 1/4 of the block's in (G) or out (D) channels
DEPTH = 2  # blocks per resolution (the reference's --G_depth/--D_depth in launch_BigGAN_deep.sh)
DEFAULT_DIM_Z = 128  # the reference's --dim_z at every resolution (z is not split)

# D's channel multipliers of `ch` per resolution (the reference's BigGANdeep D_arch); the stem maps the image
# to cin[0]. `res` labels each resolution for attention placement (at 32 px all 16, as the reference's).
D_ARCH: dict[int, dict[str, list]] = {
    32: dict(cin=[4, 4, 4], cout=[4, 4, 4], down=[True, True, False], res=[16, 16, 16]),
    64: dict(cin=[1, 2, 4, 8], cout=[2, 4, 8, 16], down=[True] * 4, res=[32, 16, 8, 4]),
    128: dict(cin=[1, 2, 4, 8, 16], cout=[2, 4, 8, 16, 16], down=[True] * 5, res=[64, 32, 16, 8, 4]),
    256: dict(cin=[1, 2, 4, 8, 8, 16], cout=[2, 4, 8, 8, 16, 16], down=[True] * 6, res=[128, 64, 32, 16, 8, 4]),
}


def _bottleneck(channels: int) -> int:
    hidden = channels // CHANNEL_RATIO
    if hidden < 1:
        raise GanforgeError(f"biggan deep blocks need at least {CHANNEL_RATIO} channels for their bottleneck "
                            f"(channels // {CHANNEL_RATIO}), got a block of {channels}; raise ch/d_ch")
    return hidden


# ---- blocks --------------------------------------------------------------------------------
class DeepGBlock(nn.Module):
    """BigGAN-deep G block: four ccbn-ReLU-conv steps (1x1 down to in/4, 3x3, 3x3, 1x1 up to out); the skip
    drops x's channels beyond `out`; h (after the second ccbn-ReLU) and x are upsampled if `upsample`."""

    def __init__(self, cin: int, cout: int, cond_dim: int, upsample: bool):
        super().__init__()
        if cout > cin:
            raise GanforgeError(f"biggan deep G blocks only narrow (skip drops channels), got {cin} -> {cout}")
        self.cin, self.cout, self.upsample = cin, cout, upsample
        hidden = _bottleneck(cin)
        self.conv1 = SNConv2d(cin, hidden, 1, padding=0)
        self.conv2 = SNConv2d(hidden, hidden)
        self.conv3 = SNConv2d(hidden, hidden)
        self.conv4 = SNConv2d(hidden, cout, 1, padding=0)
        self.bn1 = CCBN(cin, cond_dim)
        self.bn2 = CCBN(hidden, cond_dim)
        self.bn3 = CCBN(hidden, cond_dim)
        self.bn4 = CCBN(hidden, cond_dim)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = F.relu(self.bn2(self.conv1(F.relu(self.bn1(x, c))), c))
        if self.cout != self.cin:
            x = x[:, :self.cout]
        if self.upsample:
            h, x = F.interpolate(h, scale_factor=2.0), F.interpolate(x, scale_factor=2.0)
        h = self.conv3(F.relu(self.bn3(self.conv2(h), c)))
        h = self.conv4(F.relu(self.bn4(h, c)))
        return h + x


class DeepDBlock(nn.Module):
    """BigGAN-deep D block: ReLU-conv1x1 (to out/4), ReLU-conv3, ReLU-conv3, ReLU, [avgpool], conv1x1 (to out);
    the skip is [avgpool] then x's channels followed by out - in new ones from a 1x1 conv (if the width grows)."""

    def __init__(self, cin: int, cout: int, downsample: bool):
        super().__init__()
        if cout < cin:
            raise GanforgeError(f"biggan deep D blocks only widen (skip concatenates channels), got {cin} -> {cout}")
        self.downsample = downsample
        hidden = _bottleneck(cout)
        self.conv1 = SNConv2d(cin, hidden, 1, padding=0)
        self.conv2 = SNConv2d(hidden, hidden)
        self.conv3 = SNConv2d(hidden, hidden)
        self.conv4 = SNConv2d(hidden, cout, 1, padding=0)
        self.learnable_sc = cin != cout
        if self.learnable_sc:
            self.conv_sc = SNConv2d(cin, cout - cin, 1, padding=0)

    def shortcut(self, x: Tensor) -> Tensor:
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return torch.cat([x, self.conv_sc(x)], 1) if self.learnable_sc else x

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv3(F.relu(self.conv2(F.relu(self.conv1(F.relu(x))))))
        h = F.relu(h)
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return self.conv4(h) + self.shortcut(x)


def _check_depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise GanforgeError(f"biggan deep depth must be an integer >= 1, got {depth!r}")
    return depth


# ---- networks -----------------------------------------------------------------------------------------------
class BigGANDeepGenerator(nn.Module):
    """(z [N, dim_z], class labels [N]) -> images [N, channels, S, S] in [-1, 1]; z conditions every block whole."""

    def __init__(self, image_size: int = 128, channels: int = 3, num_classes: int = 1000, ch: int = 128,
                 dim_z: int = DEFAULT_DIM_Z, shared_dim: int = 128, attn: int = 64, depth: int = DEPTH,
                 init: bool = True):
        super().__init__()
        arch = G_ARCH[image_size]
        cin, cout = [ch * m for m in arch["cin"]], [ch * m for m in arch["cout"]]
        self.depth = _check_depth(depth)
        self.dim_z, self.shared_dim = dim_z, shared_dim
        self.z_dim = dim_z  # the name the rest of ganforge reads (summary, sampling)
        self.shared = nn.Embedding(num_classes, shared_dim)
        cond = shared_dim + dim_z
        self.linear = SNLinear(cond, cin[0] * BOTTOM * BOTTOM)
        blocks: list[list[nn.Module]] = []
        for i, (a, b) in enumerate(zip(cin, cout)):
            for j in range(depth):
                last = j == depth - 1  # the last block of a resolution upsamples and changes the width
                blocks.append([DeepGBlock(a, b if last else a, cond, upsample=last)])
            if arch["res"][i] == attn:
                blocks[-1].append(Attention(b))
        self.blocks = nn.ModuleList(nn.ModuleList(layers) for layers in blocks)
        self.output_layer = nn.Sequential(BN(cout[-1]), nn.ReLU(), SNConv2d(cout[-1], channels))
        if init:
            _ortho_init(self)

    def synthesize(self, z: Tensor, e: Tensor) -> Tensor:
        """Images from latents z and shared class embeddings e [N, shared_dim] (e.g. interpolated ones)."""
        c = torch.cat([e, z], 1)
        h = self.linear(c)
        h = h.view(h.size(0), -1, BOTTOM, BOTTOM)
        for blocklist in self.blocks:
            for block in blocklist:
                h = block(h, c)
        return torch.tanh(self.output_layer(h))

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.synthesize(z, self.shared(y))


class BigGANDeepDiscriminator(ProjectionDiscriminator):
    """(images [N, channels, S, S], class labels [N]) -> logits [N] (unconditional term + projection)."""

    def __init__(self, image_size: int = 128, channels: int = 3, num_classes: int = 1000, ch: int = 128,
                 attn: int = 64, depth: int = DEPTH, init: bool = True):
        super().__init__()
        arch = D_ARCH[image_size]
        cin, cout = [ch * m for m in arch["cin"]], [ch * m for m in arch["cout"]]
        self.depth = _check_depth(depth)
        self.input_conv = SNConv2d(channels, cin[0])
        stages = [[DeepDBlock(a if j == 0 else b, b, downsample=arch["down"][i] and j == 0) for j in range(depth)]
                  for i, (a, b) in enumerate(zip(cin, cout))]
        self.assemble(stages, cout, arch["res"], attn, num_classes, init)

    def stem(self, x: Tensor) -> Tensor:
        return self.input_conv(x)
