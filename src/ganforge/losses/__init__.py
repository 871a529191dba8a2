"""Pure loss functions: adversarial objectives and regularizers."""
from .adversarial import ADVERSARIAL_LOSSES, d_loss, g_loss
from .penalties import gradient_penalty

__all__ = ["ADVERSARIAL_LOSSES", "d_loss", "g_loss", "gradient_penalty"]
