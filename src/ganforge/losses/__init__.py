"""Pure loss functions: adversarial objectives and regularizers."""
from .adversarial import ADVERSARIAL_LOSSES, d_loss, g_loss
from .penalties import add_ortho_grad, gradient_penalty, path_lengths, r1_penalty
from .translation import TRANSLATION_GAN_LOSSES, cycle_loss, gan_loss, halved_d_loss, identity_loss, l1_loss

__all__ = [
    "ADVERSARIAL_LOSSES", "add_ortho_grad", "d_loss", "g_loss", "gradient_penalty", "path_lengths", "r1_penalty",
    "TRANSLATION_GAN_LOSSES", "gan_loss", "halved_d_loss", "l1_loss", "cycle_loss", "identity_loss",
]
