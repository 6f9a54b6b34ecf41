"""The zoo's model families, by name. A new family is one module (a subclass of
:class:`~memlib.zoo.families.base.Family`) plus one line in :data:`FAMILIES`."""
from __future__ import annotations

from .base import Family, TorchFamily
from .diffusion import Diffusion
from .gan import GAN
from .gmm import GMM
from .kde import KDE
from .pixelcnn import PixelCNN
from .vae import VAE

FAMILIES: dict[str, type[Family]] = {
    "kde": KDE,
    "gmm": GMM,
    "vae": VAE,
    "gan": GAN,
    "diffusion": Diffusion,
    "pixelcnn": PixelCNN,
}

__all__ = ["FAMILIES", "Family", "TorchFamily", "KDE", "GMM", "VAE", "GAN", "Diffusion", "PixelCNN"]
