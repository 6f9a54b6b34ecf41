"""What the notebooks share: one profile's image sets, features, C_T references and outputs.

A :class:`Study` is built from a profile's parameters (``memlib.params``) and memoises what is
expensive: image sets, per-layer features (also cached on disk by content), fitted C_T
references (per encoder, token and training set). It writes every figure as a PNG with the
CSV of its numbers beside it (same stem) and merges each notebook's claim rows (built by the
rules of :mod:`memlib.claims`) into ``claims.csv``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .claims import CLAIM_COLUMNS, CLAIMS_TABLE, VERDICTS, with_rule_history
from .ct import Reference, fit_reference
from .data import ImageSet, load_images
from .encoders import compute_precision, pick_device, shared_encoder
from .errors import InputError, ParameterError
from .features import LayerFeatures, embed, pixel_features
from .machine import apply_torch_threads, cpu_model
from .store import atomic_path

# Where a Study keeps the features of the sets it only scores by C_T against the public
# reference (profile key feature_store; docs/scale.md, "The projected store in the notebooks").
FEATURE_STORES = ("full", "projected")

# Tables of wall-clock seconds (paths under figures_dir): the only outputs that differ between
# two runs of a profile. Every other CSV is byte-identical (tests/test_determinism.py).
TIMING_TABLES = ("zoo_cost.csv", "sensitivity_cost.csv", "executed/timings.csv", "encoders.csv",
                 "embedding_spaces_cost.csv")


def check_feature_store(params: dict[str, Any]) -> None:
    """Refuse, before anything is embedded, a profile that asks for the projected store
    (``feature_store: projected``) with settings it cannot serve: an unknown store or
    ``projected_dtype``, or ``pca_dim: null`` (no PCA, so no basis to project on). Raw pixels
    (``encoder: pixels``) have no feature cache and ignore the key. Raises ParameterError."""
    from .projected import STORE_DTYPES

    store = params.get("feature_store", "full")
    if store not in FEATURE_STORES:
        raise ParameterError(f"feature_store must be one of {FEATURE_STORES}, got {store!r}")
    if store != "projected" or params.get("encoder") == "pixels":
        return
    dtype = params.get("projected_dtype")
    if dtype not in STORE_DTYPES:
        raise ParameterError(f"projected_dtype must be one of {STORE_DTYPES}, got {dtype!r}")
    if params.get("pca_dim") is None:
        raise ParameterError("feature_store: projected keeps each layer's projection on pca_dim "
                             "components of T; pca_dim: null (no PCA) needs feature_store: full")


class Study:
    """Shared state of one notebook run.

    Args:
        params: a resolved parameter dict (``memlib.params.load_params`` / ``notebook_params``).
    """

    def __init__(self, params: dict[str, Any]):
        compute_precision("cpu", params["precision"])  # a typo fails now, not after the zoo trained
        apply_torch_threads(params)
        self.params = params
        # relative to the current folder (the notebook runner runs its kernels in the
        # checkout, so figures/ lands there); an absolute figures_dir is used as is. Created
        # by the first write (store.atomic_path), so a Study that only scores (memlib
        # attribute) leaves the current folder alone.
        self.figures_dir = Path(params["figures_dir"]).absolute()
        self._images: dict[str, ImageSet] = {}
        self._refs: dict[tuple, Reference] = {}
        self._resolved: dict[str, str] = {}
        self._basis = None
        self._projects: bool | None = None
        check_feature_store(params)      # a bad combination fails now, before anything is embedded

    # -- encoders -------------------------------------------------------------------------------

    def encoder_name(self, encoder: str | None = None) -> str:
        """The registry name that embeds for ``encoder`` (default: the profile's): a trained
        encoder of the profile (``fmnist-vit``, ``fmnist-cnn``, with any ``+shuffled`` /
        ``+random`` suffix) becomes its ``<name>@<key>`` (:func:`memlib.trained_encoders.resolve`;
        trained on first use, memoised); every other name is returned as is."""
        name = encoder or self.params["encoder"]
        if name not in self._resolved:
            from .trained_encoders import resolve
            self._resolved[name] = resolve(name, self.params, progress=False)
        return self._resolved[name]

    def image_size_of(self, encoder: str | None = None) -> int:
        """Input side in px of ``encoder`` (default: the profile's): a trained encoder's native
        size (its recipe's ``image_size``, 28 px for Fashion-MNIST), else the profile's
        ``image_size``."""
        from .trained_encoders import native_image_size
        native = native_image_size(encoder or self.params["encoder"], self.params)
        return int(self.params["image_size"] if native is None else native)

    # -- data and features --------------------------------------------------------------------

    def images(self, key: str) -> ImageSet:
        """The image set named by parameter ``key`` (e.g. ``reference_train``, ``test``), or,
        when ``key`` is not a parameter, by the data spec ``key`` itself (e.g. the training set
        of a gradient model, ``fashion-mnist:train[:16]``)."""
        if key not in self._images:
            spec = self.params[key] if key in self.params else key
            self._images[key] = load_images(spec, seed=self.params["seed"], name=key)
        return self._images[key]

    def features(self, images: ImageSet | np.ndarray, *, encoder: str | None = None,
                 token: str | None = None, name: str = "images",
                 first: int | None = None, whole_set_used: bool = True) -> LayerFeatures:
        """Per-layer features (cached) of an image set or a uint8 array (N, H, W[, C]).

        ``encoder='pixels'`` gives raw pixels as a single 'layer'.

        ``first`` keeps only the first rows (the encoder controls run on smaller sets). With
        the profile's own encoder and ``whole_set_used`` (the default: the notebooks embed the
        whole set anyway), those rows are cut from the whole set's features, so no image goes
        through that encoder twice; with ``whole_set_used=False`` (a set of which only the
        first rows are ever used) and with other encoders, only the first rows are embedded.
        The rule depends on the arguments, never on what happens to be cached, so a cold and a
        warm run give the same numbers.
        """
        if not isinstance(images, ImageSet):
            images = ImageSet(images, np.arange(len(images)).astype(str), name=name)
        p = self.params
        encoder = encoder or p["encoder"]
        if first is not None and first < len(images):
            if encoder == p["encoder"] and whole_set_used:
                whole = self.features(images, encoder=encoder, token=token)
                return whole.subset(np.arange(first))
            images = images.subset(slice(0, first))
        if encoder == "pixels":
            return pixel_features(images)
        return embed(images, self.encoder_name(encoder), image_size=self.image_size_of(encoder),
                     token=token or p["token"],
                     final_norm=p["final_norm"], batch_size=p["batch_size"], device=p["device"],
                     precision=p["precision"])

    # -- the projected store (feature_store: projected) -----------------------------------------

    @property
    def projected_store(self) -> bool:
        """Whether the sets scored only by C_T against the public reference are kept projected
        (``feature_store: projected``; raw pixels have no feature cache, so never)."""
        return (self.params.get("feature_store", "full") == "projected"
                and self.params["encoder"] != "pixels")

    def projects(self) -> bool:
        """Whether this study keeps C_T-only sets projected: :attr:`projected_store`, and the
        encoder's features wider than ``pca_dim`` (a narrower encoder, e.g. a small trained one
        of notebook 06, has nothing to project: its full features are already that small).
        Embeds T (or reads it from the cache) the first time; memoised."""
        if self._projects is None:
            self._projects = bool(self.projected_store and self.features(self.images("reference_train")).dim
                                  > int(self.params["pca_dim"]))
        return self._projects

    def basis(self):
        """The per-layer PCA basis (:class:`memlib.projected.Basis`: mean (L, D), components
        (L, D, pca_dim), float32) of the public T (``reference_train``, the profile's encoder
        and token), fit once from T's full entry and cached; memoised."""
        if self._basis is None:
            from .projected import fit_basis
            t = self.features(self.images("reference_train"))
            self._basis = fit_basis(t, pca_dim=int(self.params["pca_dim"]), progress=False)
        return self._basis

    def ct_features(self, images: ImageSet | np.ndarray, *, name: str = "images") -> LayerFeatures:
        """Per-layer features of a set whose only use is C_T (curves, bootstrap, subsets,
        attribution) against the public reference (:meth:`reference` with its defaults).

        ``feature_store: full``: :meth:`features` (L layers of (N, D) float16, memory-mapped).
        ``feature_store: projected``: the set's projected entry keyed by the public T's
        :meth:`basis`, L layers of (N, pca_dim) in ``projected_dtype``, memory-mapped; embedded
        straight into the projected store (no full entry is written), or projected from the
        full entry when one is already cached (the same values,
        :func:`memlib.projected.embed_projected`). Such features fit only the public
        reference: every other analysis (final-layer baselines, other references, tokens or
        encoders) takes :meth:`features`. An encoder no wider than ``pca_dim`` keeps its full
        features under either store (:meth:`projects`).
        """
        if not isinstance(images, ImageSet):
            images = ImageSet(images, np.arange(len(images)).astype(str), name=name)
        if not self.projects():
            return self.features(images, name=name)
        from .projected import embed_projected
        p = self.params
        return embed_projected(images, self.encoder_name(), self.basis(),
                               image_size=self.image_size_of(), final_norm=p["final_norm"],
                               batch_size=p["batch_size"], device=p["device"],
                               precision=p["precision"], dtype=p["projected_dtype"])

    def final_norm_features(self, feats: LayerFeatures) -> LayerFeatures:
        """The last layer of raw-block features (``final_norm: false``) through the encoder's
        final LayerNorm: one layer (N, D), the embedding dgm-eval scores
        (:meth:`memlib.encoders.Encoder.apply_final_norm`)."""
        p = self.params
        if p["final_norm"]:
            raise ParameterError("final_norm_features: the features already went through the final norm")
        enc = shared_encoder(self.encoder_name(), self.image_size_of(), p["device"], p["precision"])
        return LayerFeatures([enc.apply_final_norm(feats[len(feats) - 1])],
                             {**feats.meta, "final_norm_of": feats.meta.get("key")})

    def reference(self, *, encoder: str | None = None, token: str | None = None,
                  train: str = "reference_train", test: str = "test", variant: str = "ct",
                  n_train: int | None = None, n_test: int | None = None,
                  whole_set_used: bool = True) -> Reference:
        """A fitted C_T reference (PCA, cells, test distances per layer), memoised.

        ``train``/``test`` name parameters holding image specs, or are specs themselves
        (:meth:`images`). ``n_train``/``n_test`` keep only the first rows (the encoder controls
        run on smaller sets); ``whole_set_used=False`` embeds only those rows (see
        :meth:`features`).
        """
        key = (encoder or self.params["encoder"], token or self.params["token"], train, test,
               variant, n_train, n_test, whole_set_used)
        public = (key[:4] == (self.params["encoder"], self.params["token"], "reference_train", "test")
                  and not n_train and not n_test)
        if public and self.projected_store and key not in self._refs:
            if variant != "ct":
                raise ParameterError(f"feature_store: projected keeps each set's projection on T's PCA "
                                     f"basis, which fits the ct variant only; {variant} fits its PCA on "
                                     f"another set and needs full features (feature_store: full)")
            if self.projects():
                self._refs[key] = self._projected_reference()
        if key not in self._refs:
            t = self.features(self.images(train), encoder=key[0], token=key[1],
                              first=n_train or None, whole_set_used=whole_set_used)
            p = self.features(self.images(test), encoder=key[0], token=key[1],
                              first=n_test or None, whole_set_used=whole_set_used)
            self._refs[key] = fit_reference(t, p, variant=variant, n_cells=self.params["n_cells"],
                                            pca_dim=self.params["pca_dim"], seed=self.params["seed"],
                                            small_t=self.params["small_t"])
        return self._refs[key]

    def _projected_reference(self):
        """The public reference from the projected store: T projected from its full entry (the
        basis is fit from it), P_n by :meth:`ct_features`; wrapped so that it also scores full
        features (:class:`memlib.projected.ProjectedReference`)."""
        from .projected import ProjectedReference, project
        p = self.params
        t_images = self.images("reference_train")
        if len(t_images) <= int(p["pca_dim"]):
            raise ParameterError(f"feature_store: projected needs a T of more than pca_dim = {p['pca_dim']} "
                                 f"images (got {len(t_images)}): the small-T rule refits the PCA on T "
                                 f"itself; use feature_store: full")
        basis = self.basis()
        t = project(self.features(t_images), basis, dtype=p["projected_dtype"], progress=False)
        test = self.ct_features(self.images("test"), name="test")
        ref = fit_reference(t, test, variant="ct", n_cells=p["n_cells"], pca_dim=p["pca_dim"],
                            seed=p["seed"], small_t=p["small_t"])
        return ProjectedReference(ref, basis, p["projected_dtype"])

    def reference_draws(self, *, train: str = "reference_train", n_train: int | None = None,
                        whole_set_used: bool = True) -> list[Reference]:
        """The ``reference_draws`` references of one T that a re-run could have drawn, memoised:
        disjoint P_n draws of len(test) // R rows of the ``test`` set and k-means seeds
        seed + r (:func:`memlib.hierarchical.reference_draws`; the CIs of claim 1, Study v3).
        ``train``, ``n_train``, ``whole_set_used``: as :meth:`reference`."""
        key = ("draws", train, n_train, whole_set_used)
        if key not in self._refs:
            from .hierarchical import reference_draws

            n = int(self.params["reference_draws"])
            t = self.features(self.images(train), first=n_train or None, whole_set_used=whole_set_used)
            pool = self.features(self.images("test"))
            if n < 1 or pool.n // n < self.params["n_cells"]:
                raise ParameterError(f"reference_draws = {n}: each P_n draw needs at least n_cells = "
                                     f"{self.params['n_cells']} of the {pool.n} test images")
            self._refs[key], _ = reference_draws(t, pool, n_test=pool.n // n, n_draws=n,
                                                 seed=self.params["seed"], n_cells=self.params["n_cells"],
                                                 pca_dim=self.params["pca_dim"], small_t=self.params["small_t"])
        return self._refs[key]

    def final_norm_reference(self) -> Reference:
        """The public C_T reference (``reference_train``, ``test``) on the final-norm embedding
        of the last layer (one layer; :meth:`final_norm_features`), memoised."""
        key = ("final-norm", self.params["encoder"])
        if key not in self._refs:
            t, p = (self.final_norm_features(self.features(self.images(k))) for k in ("reference_train", "test"))
            self._refs[key] = fit_reference(t, p, n_cells=self.params["n_cells"],
                                            pca_dim=self.params["pca_dim"], seed=self.params["seed"],
                                            small_t=self.params["small_t"])
        return self._refs[key]

    def curve_rows(self, reference: Reference, gen: LayerFeatures, /, **labels: Any) -> list[dict]:
        """Tidy rows (labels…, layer, ct, ct_lo, ct_hi, n_gen) of one bootstrapped C_T curve."""
        ct, lo, hi = reference.curve_bootstrap(gen, n_boot=self.params["n_bootstrap"],
                                               seed=self.params["seed"])
        return [dict(labels, layer=l + 1, ct=float(ct[l]), ct_lo=float(lo[l]), ct_hi=float(hi[l]),
                     n_gen=gen.n) for l in range(len(ct))]

    # -- outputs -----------------------------------------------------------------------------

    def compute_label(self) -> str:
        """Where and in what the features were computed, e.g. ``"encoder dinov2-s-offline,
        bfloat16-autocast on cpu (AMD EPYC)"``: the footnote of every saved figure."""
        device = pick_device(self.params["device"])
        where = f"cpu ({cpu_model()})" if device.type == "cpu" else str(device)
        return (f"encoder {self.params['encoder']}, "
                f"{compute_precision(device, self.params['precision'])} on {where}")

    def save(self, fig, table: pd.DataFrame, stem: str, dpi: int = 130, *, footer: str | None = None) -> Path:
        """Write ``<figures_dir>/<stem>.png`` (footnoted with :meth:`compute_label`, or with
        ``footer`` for a figure that used no encoder, e.g. :func:`memlib.plots.toy_footer`) and
        ``<stem>.csv`` (floats to 4 decimals)."""
        png = self.figures_dir / f"{stem}.png"
        box = fig.get_tightbbox(fig.canvas.get_renderer())   # inches, everything drawn so far
        fig.text(box.x1 / fig.get_figwidth(), (box.y0 - 0.04) / fig.get_figheight(),
                 self.compute_label() if footer is None else footer,
                 ha="right", va="top", fontsize=6, color="0.45")   # below all of it, legends included
        with atomic_path(png, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        self.save_table(table, stem)
        return png

    def save_table(self, table: pd.DataFrame, stem: str) -> Path:
        """Write a CSV without a figure (e.g. ``layer_trends.csv``)."""
        path = self.figures_dir / f"{stem}.csv"
        with atomic_path(path, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False, float_format="%.4f")
        return path

    def claims(self, rows: list[dict]) -> pd.DataFrame:
        """Merge rows (columns :data:`memlib.claims.CLAIM_COLUMNS`) into ``claims.csv``, with
        each rule's history (:func:`memlib.claims.with_rule_history`) in the last columns.

        Rows of the same claims already in the file are replaced, others kept (a full
        ``run-notebooks`` starts from an empty file, :func:`memlib.notebooks.run_notebooks`).
        Returns only the given rows, sorted by claim: what this notebook decided.
        """
        for row in rows:
            missing = [c for c in CLAIM_COLUMNS if c not in row]
            if missing:
                raise InputError(f"claim {row.get('claim')!r}: the row lacks {', '.join(missing)}")
            if row["verdict"] not in VERDICTS:
                raise InputError(f"claim {row.get('claim')!r}: verdict must be one of {VERDICTS}, "
                                 f"got {row['verdict']!r}")
        path = self.figures_dir / CLAIMS_TABLE
        new = pd.DataFrame(rows, columns=CLAIM_COLUMNS).sort_values("claim", kind="stable")
        new = new.reset_index(drop=True)
        merged = new
        if path.exists():
            old = pd.read_csv(path)
            old = old[~old["claim"].isin(new["claim"])]
            merged = pd.concat([old, new], ignore_index=True)
        merged = merged.reindex(columns=CLAIM_COLUMNS).sort_values("claim", kind="stable")
        merged = with_rule_history(merged.reset_index(drop=True))   # when each rule was fixed
        with atomic_path(path, suffix=".csv") as tmp:
            merged.to_csv(tmp, index=False, float_format="%.4f")
        return new
