"""Training games; importing this package registers every recipe."""
from . import cyclegan, gan, pix2pix, stylegan, superres  # noqa: F401
from .base import Recipe

__all__ = ["Recipe"]
