"""The generative zoo: small generative models of different families, trained on CPU.

Every family is a real model fitted to Fashion-MNIST (28×28 grey, uint8) by gradient descent or
by maximum likelihood, each with its own inductive bias. (Any uint8 H×W×C set with H, W multiples
of 4 and C in {1, 3} works too, e.g. CIFAR-10 in the full profile; grey samples come back as
(n, H, W), colour ones as (n, H, W, C).)

================= ============================================================================
architecture      model (one module per family in ``memlib/zoo/families/``, registered in
                  :data:`FAMILIES`; :func:`family_of` gives an architecture's family)
================= ============================================================================
kde               pixel-space Gaussian kernel density: a sample is a random training image plus
                  N(0, σ²) noise per pixel ([0, 1] pixel units), clipped. σ is Meehan et al.'s copying
                  knob; ``sigma: ml`` picks it by held-out log-likelihood (10 % of the training set).
gmm               Gaussian mixture (sklearn, EM) in a PCA space of the pixels; samples are decoded by
                  the inverse PCA (so they are smooth: the PCA drops fine detail).
vae               convolutional VAE (Bernoulli likelihood); a sample is the decoder's mean for z ~ N(0, I).
gan               DCGAN-like generator/discriminator (non-saturating loss, batch norm in G).
diffusion         small UNet (working at 14×14 after a 2×2 pixel-unshuffle), DDPM training with
                  v-prediction on a cosine schedule, EMA weights, deterministic DDIM sampling with few steps.
pixelcnn          shallow PixelCNN: one large causal (type-A masked) convolution + a coarse (4×4-pooled)
                  view of the complete rows above + per-position bias + 1×1 residual layers,
                  discretised-logistic-mixture output over 256 grey levels, exact autoregressive
                  sampling pixel by pixel in raster order (H·W steps, batched).
vae-mlp           family vae: the conv encoder with a 2-hidden-layer MLP decoder (no spatial prior).
gan-shallow       family gan: a generator that up-samples once (linear map to H/2 × W/2, one
                  transposed conv) instead of twice.
diffusion-narrow  family diffusion: the UNet at its own (smaller) width and DDIM step count.
================= ============================================================================

Seeds are independent training runs on disjoint data: seed s of a ``standard`` model trains on
``params["zoo_train"]``'s window shifted by s windows (:func:`seed_train_spec`; e.g.
``train[10000:20000]`` for seed 1), and :func:`check_seed_windows` keeps the public T, the test
set and the fresh images out of every window.

Variants: ``standard`` trains on its seed's window; ``memorize`` trains on the small
``params["zoo_memorize_train"]`` with the overrides in ``params["zoo_memorize_hparams"]``
(longer training, smaller bandwidth, ...) so that the model copies its training images.
The memorization gradient (:func:`gradient_models`, Study v2's claim 1): variants ``n<size>``
train on the first ``size`` images of the seed's window with the overrides in
``params["gradient_hparams"]``; their manifests record the training spec and the copy rate
against those images.

Modules: :mod:`~memlib.zoo.families` (the models), :mod:`~memlib.zoo.train` (fitting one model),
:mod:`~memlib.zoo.cache` (a profile's zoo and its cache entries), :mod:`~memlib.zoo.workers`
(the whole zoo in parallel worker processes).

The one entry the notebooks use is :func:`zoo_samples`, which trains-or-loads and
samples-or-loads one model. Running a whole profile's zoo: :func:`zoo_models` lists its
(family, variant, seed) triples; :func:`zoo_sample` (CLI ``python -m memlib zoo sample``) trains
and samples them in ``params["zoo_workers"]`` processes, so call it once before looping over
:func:`zoo_samples`, which then only loads.

Training recipes (:mod:`~memlib.zoo.recipes`, Study v3 groundwork): ``params["zoo_recipes"]``
names other hyper-parameters for an architecture; :func:`recipe_models` lists their
(architecture, ``recipe-<name>``, seed) triples, which :func:`zoo_sample` (``models=``) trains
and samples like any other. Every manifest records its ``recipe`` (``default`` for the rest).

Cheap quality / copying numbers in every manifest (pixel space, no encoder): ``copy_rate`` and
``nn_ratio`` (:func:`memlib.metrics.copy_metrics`) and ``pixel_fd`` vs ``pixel_fd_ref``
(:func:`memlib.metrics.pixel_fd`).
"""
from __future__ import annotations

from .cache import (VARIANTS, ZOO_VERSION, ZooSamples, cache_folder, check_seed_windows, gradient_models,
                    gradient_size, load_or_train, load_spec_images, loss_summary, seed_train_spec,
                    select_models, train_spec, zoo_hparams, zoo_list, zoo_models, zoo_root, zoo_samples)
from .families import FAMILIES, Family, TorchFamily, family_of
from .recipes import (DEFAULT_RECIPE, is_recipe_variant, recipe_models, recipe_of, recipe_table,
                      recipe_variant)
from .train import TrainedModel, check_hparams, derive_seed, train_model
from .workers import zoo_sample, zoo_train

__all__ = [
    "FAMILIES", "Family", "TorchFamily", "family_of", "VARIANTS", "ZOO_VERSION", "TrainedModel",
    "ZooSamples", "cache_folder", "check_hparams", "check_seed_windows", "seed_train_spec", "derive_seed",
    "gradient_models", "gradient_size",
    "load_or_train", "load_spec_images",
    "loss_summary", "select_models", "train_model", "train_spec", "zoo_hparams", "zoo_list",
    "zoo_models", "zoo_root", "zoo_sample", "zoo_samples", "zoo_train",
    "DEFAULT_RECIPE", "is_recipe_variant", "recipe_models", "recipe_of", "recipe_table", "recipe_variant",
]
