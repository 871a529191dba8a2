"""Model families; importing this package registers every one of them."""
from . import dcgan, mlp  # noqa: F401
from .base import GANModels, count_parameters

__all__ = ["GANModels", "count_parameters"]
