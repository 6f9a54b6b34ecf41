"""The zoo's model architectures, by name, and the family each belongs to. A new family is one
module (a subclass of :class:`~memlib.zoo.families.base.Family`) plus one line in
:data:`FAMILIES`; a second architecture of a family is a subclass with its own ``name`` and
``family``."""
from __future__ import annotations

from .base import Family, TorchFamily
from .diffusion import Diffusion, NarrowDiffusion
from .gan import GAN, ShallowGAN
from .gmm import GMM
from .kde import KDE
from .pixelcnn import PixelCNN
from .vae import VAE, VAEMLPDecoder

FAMILIES: dict[str, type[Family]] = {
    "kde": KDE,
    "gmm": GMM,
    "vae": VAE,
    "gan": GAN,
    "diffusion": Diffusion,
    "pixelcnn": PixelCNN,
    "vae-mlp": VAEMLPDecoder,
    "gan-shallow": ShallowGAN,
    "diffusion-narrow": NarrowDiffusion,
}


def family_of(architecture: str) -> str:
    """The family of a registered architecture (``vae-mlp`` -> ``vae``; ``vae`` -> ``vae``)."""
    from ...errors import ParameterError
    if architecture not in FAMILIES:
        raise ParameterError(f"unknown zoo architecture {architecture!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[architecture].family or FAMILIES[architecture].name

__all__ = ["FAMILIES", "Family", "TorchFamily", "KDE", "GMM", "VAE", "GAN", "Diffusion", "PixelCNN",
           "VAEMLPDecoder", "ShallowGAN", "NarrowDiffusion", "family_of"]
