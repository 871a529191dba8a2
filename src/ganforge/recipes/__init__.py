"""Training games; importing this package registers every recipe."""
from . import biggan, cyclegan, gan, pix2pix, stylegan, superres  # noqa: F401
from .base import Recipe

__all__ = ["Recipe"]
