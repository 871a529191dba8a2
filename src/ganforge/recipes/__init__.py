"""Training games; importing this package registers every recipe."""
from . import gan  # noqa: F401
from .base import Recipe

__all__ = ["Recipe"]
