"""Model families; importing this package registers every one of them."""
from . import biggan, cgan, cyclegan, dcgan, mlp, pix2pix, srgan, stylegan, stylegan2  # noqa: F401
from .base import GANModels, count_parameters

__all__ = ["GANModels", "count_parameters"]
