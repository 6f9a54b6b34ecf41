"""A stand-in for :class:`memlib.study.Study` without an encoder, for the fingerprint runners
(:func:`memlib.fingerprint_study.run_fingerprinting`, :func:`memlib.recipe_eval.run_recipe_attribution`):
3 'layers' of 4 pixel features each (layer l = pixels x (l + 1)); a reference whose distances are
the features themselves and whose subset curve is their mean per layer, (S, L)."""
import numpy as np


class FakeReference:
    """Distances = the features themselves; a subset's curve = their mean per layer: (S, L)."""

    def layer_distances(self, feats):
        return np.asarray(feats, float)                      # (L, N, D)

    def subset_curves(self, d, subsets):
        return np.stack([d[:, s].mean(axis=(1, 2)) for s in subsets])


class FakeStudy:
    """What the fingerprint runners use of a Study, without an encoder."""

    params = {"seed": 0, "pca_dim": 2}

    def features(self, images, name="images"):
        x = np.asarray(images, float).reshape(len(images), -1)[:, :4] / 255
        return np.stack([x * (layer + 1) for layer in range(3)])

    def reference(self):
        return FakeReference()

    final_norm_reference = reference

    def final_norm_features(self, feats):
        return feats[-1:]

    def images(self, name):
        return np.random.default_rng(1).integers(0, 255, (40, 4, 4)).astype(np.uint8)
