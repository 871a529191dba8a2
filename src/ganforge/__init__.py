"""ganforge: train, evaluate, sample, translate, upscale, edit and serve classic GANs."""
__version__ = "0.1.0"

from .api import create_model, list_models, list_recipes, load, sample, train  # noqa: E402

__all__ = ["__version__", "create_model", "list_models", "list_recipes", "load", "sample", "train"]
