"""The SRGAN perceptual content loss: MSE between VGG feature maps of the generated and the real image.

Convention (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a GAN", eq. 5 and
sec. 3.2): l_VGG/i,j is the squared distance between phi_i,j(real) and phi_i,j(fake), here averaged
over every element (batch, channels, height, width, as torch's `mse_loss` does), and the feature maps
are multiplied by 1/12.75 first, "to obtain VGG losses of a scale that is comparable to the MSE loss"
on [-1, 1] images. Scaling the maps scales the loss by (1/12.75)^2 ~= 0.00615. Implementations
differ on both points (sum vs mean over channels; scaling maps vs the loss), so weights tuned
elsewhere may need converting.

The feature network is passed in (see `ganforge.metrics.vgg_net.load_vgg19_features`), so this
module holds no state and loads nothing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import GanforgeError

SRGAN_VGG_RESCALE = 1 / 12.75  # Ledig et al.: brings VGG losses to the scale of the [-1, 1] pixel MSE


def vgg_content_loss(features: nn.Module, fake: Tensor, real: Tensor, rescale: float = SRGAN_VGG_RESCALE) -> Tensor:
    """Mean squared error between rescale * features(fake) and rescale * features(real)."""
    if fake.shape != real.shape:
        # mse_loss would broadcast mismatched feature maps into a meaningless number.
        raise GanforgeError(f"content loss needs images of one shape, got {tuple(fake.shape)} and {tuple(real.shape)}")
    with torch.no_grad():  # the target: no graph through the real branch
        target = features(real) * rescale
    return F.mse_loss(features(fake) * rescale, target)
