"""A database of C_T-layer curves of known generative models, and attribution against it.

The paper's "database of precomputed C_T-layer curves": which known architecture does a set
of generated images look like? A database is a folder holding two files (no pickle):

- ``curves.csv``, tidy: ``model, family, architecture, seed, n, draw, layer, ct``. One row per
  layer of one *reference curve*: the C_T-layer curve of a random subset of ``n`` samples
  (draw ``draw``) of one model's sample set, for every ``n`` of the profile's
  ``query_sizes`` (``n_query_draws`` draws each; one draw, the whole set, when ``n`` is the
  set's size). ``layer`` counts encoder blocks from 1; ``ct`` is empty where C_T is undefined
  (no cell holds more than 20 of the ``n`` samples), which attribution reads as 0, as
  notebook 04 does. ``model`` names one sample set, ``family`` is what attribution answers,
  ``architecture`` a description, ``seed`` the model's training seed (a label).
- ``manifest.json``: everything that makes two curves comparable (:data:`COMPARED_FIELDS`:
  encoder and weights id, image size, token, final LayerNorm, forward-pass precision, C_T
  cells, PCA dimension and seed, and the content hashes of the reference ``T`` and ``P_n``
  with the specs that load them), the sizes, the memlib version, the open-set thresholds and,
  once measured, ``precision_tolerance`` (below).

Precision. Every compared field but one is refused when it differs: those change the curve.
The forward-pass precision (float32 or bf16 autocast) only moves it slightly, so a query
computed at the other precision is accepted with one line saying so (:func:`precision_note`);
the line gives how far the reference curves moved between the two precisions, as measured by
:func:`measure_precision_tolerance` and stored in the manifest (``bench/precision_tolerance.py``
does it for a built database; docs/api.md#precision). ``fingerprint add`` still requires the
manifest's precision, so a database never mixes the two.

Curves are only comparable at equal set sizes (C_T is a z-score that grows with the sizes;
:mod:`memlib.fingerprint`), so a query of m samples is compared at the largest stored subset
size ``s ≤ m`` (the ``n`` column of ``curves.csv``; n in C_T is the size of P_n):
``n_query_draws`` random subsets of size s of the query (seeded by the query's pixels, never
by its path or name: the same images give the same answer wherever they are), each attributed
to the family of its nearest reference curve (Euclidean over layers, notebook 04's rule). A draw whose nearest
distance is above the open-set threshold of that s votes ``unknown``; the threshold is the 95th
percentile of the leave-one-model-out nearest distances among the reference curves at that s
(notebook 04's open-set rule), recomputed whenever a model is added. A query smaller than every
stored s is compared with the smallest s by curve shape (cosine distance, which removes the
common size factor), with a warning.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import fingerprint as fp
from .ct import MIN_CELL_POINTS
from .errors import InputError
from .store import atomic_path, read_json, write_json

FORMAT_VERSION = 1
CURVE_COLUMNS = ["model", "family", "architecture", "seed", "n", "draw", "layer", "ct"]
# manifest fields that must equal the current settings for curves to be comparable
COMPARED_FIELDS = ("format", "encoder", "weights_id", "image_size", "token", "final_norm",
                   "precision", "n_cells", "pca_dim", "seed", "reference_train_hash",
                   "reference_test_hash")
# the compared field a query may differ in (accepted with a note; module docstring)
TOLERATED_FIELDS = ("precision",)
OPEN_SET_QUANTILE = 0.95     # notebook 04's open-set rule (fingerprint.open_set's quantile)
DISTANCE, RULE = "euclidean", "nearest"   # notebook 04's attribution rule
SHAPE_DISTANCE = "cosine"    # for queries smaller than every stored n (module docstring)
ACCURACY_METHOD = "C_T-layer curve"       # the row of fingerprint_accuracy.csv that applies
UNKNOWN = "unknown"


@dataclass
class ReferenceSet:
    """One known model's sample set: ``images`` uint8 (N, H, W[, C]) and its labels."""

    model: str
    family: str
    architecture: str
    seed: int
    images: np.ndarray


@dataclass
class Database:
    """Reference curves (``curves``, :data:`CURVE_COLUMNS`) and their ``manifest``."""

    curves: pd.DataFrame
    manifest: dict[str, Any]
    folder: Path | None = None

    # -- files ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path) -> "Database":
        """Read ``folder/curves.csv`` and ``folder/manifest.json``."""
        folder = Path(folder)
        for name in ("manifest.json", "curves.csv"):
            if not (folder / name).exists():
                raise InputError(f"fingerprint database {folder}: no {name}; build one with "
                                 f"notebook 04 or name another folder with --db")
        curves = pd.read_csv(folder / "curves.csv", dtype={"model": str, "family": str,
                                                            "architecture": str})
        if list(curves.columns) != CURVE_COLUMNS:
            raise InputError(f"{folder / 'curves.csv'}: columns {list(curves.columns)}, "
                             f"expected {CURVE_COLUMNS}")
        return cls(curves, read_json(folder / "manifest.json"), folder)

    def save(self, folder: str | Path) -> Path:
        """Write both files atomically (each is complete or absent); returns the folder."""
        folder = Path(folder)
        with atomic_path(folder / "curves.csv", suffix=".csv") as tmp:
            self.curves[CURVE_COLUMNS].to_csv(tmp, index=False, float_format="%.6g")
        write_json(folder / "manifest.json", self.manifest)
        self.folder = folder
        return folder

    # -- contents ------------------------------------------------------------------------------

    @property
    def sizes(self) -> list[int]:
        """The stored set sizes n, ascending."""
        return sorted(int(n) for n in self.curves["n"].unique())

    def models(self) -> pd.DataFrame:
        """One row per model: model, family, architecture, seed, sizes stored."""
        g = self.curves.groupby(["model", "family", "architecture", "seed"], sort=True)
        return g["n"].unique().map(lambda v: " ".join(map(str, sorted(v)))).rename(
            "sizes").reset_index()

    def reference_curves(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R, L) curves at size n (undefined C_T read as 0), (R,) family, (R,) model."""
        at = self.curves[self.curves["n"] == n]
        if at.empty:
            raise InputError(f"the database has no curves at subset size s = {n} (sizes: {self.sizes})")
        wide = at.pivot(index=["model", "draw"], columns="layer", values="ct").sort_index()
        family = at.groupby("model")["family"].first()
        models = wide.index.get_level_values("model").to_numpy()
        return (np.nan_to_num(wide.to_numpy(float), nan=0.0),
                family.loc[models].to_numpy(), models)

    def check(self, current: dict[str, Any], *, tolerate: Sequence[str] = ()) -> None:
        """Refuse (one line naming the field) when the manifest differs from ``current`` in a
        field of :data:`COMPARED_FIELDS` other than those in ``tolerate``."""
        for key in COMPARED_FIELDS:
            if key in tolerate:
                continue
            if key in current and self.manifest.get(key) != current[key]:
                where = self.folder or "the database"
                raise InputError(f"fingerprint database {where} does not match the current "
                                 f"settings: {key} is {self.manifest.get(key)!r} there, "
                                 f"{current[key]!r} here; use the settings it was built with "
                                 f"(see its manifest.json) or another --db")

    def set_precision_tolerance(self, tolerance: dict[str, Any]) -> None:
        """Record :func:`measure_precision_tolerance`'s result in the manifest."""
        self.manifest["precision_tolerance"] = dict(tolerance)

    def require_new(self, model: str) -> None:
        """Refuse a model name that the database already holds."""
        if model in set(self.curves["model"]):
            raise InputError(f"model {model!r} is already in the fingerprint database "
                             f"{self.folder or ''}; choose another NAME")

    def add(self, rows: Sequence[dict]) -> None:
        """Append one model's curve rows and recalibrate the open-set thresholds."""
        new = pd.DataFrame(list(rows), columns=CURVE_COLUMNS)
        for model in new["model"].unique():
            self.require_new(model)
        self.curves = pd.concat([self.curves, new], ignore_index=True)
        self.manifest["open_set"] = calibrate_open_set(self)


# -- building ------------------------------------------------------------------------------------

def comparable_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The manifest fields that a profile's parameters fix (all but the reference hashes)."""
    from .encoders import compute_precision, pick_device, weights_id

    pixels = params["encoder"] == "pixels"
    return dict(format=FORMAT_VERSION, encoder=params["encoder"],
                weights_id="none" if pixels else weights_id(params["encoder"]),
                image_size=None if pixels else int(params["image_size"]),
                token=None if pixels else params["token"],
                final_norm=None if pixels else bool(params["final_norm"]),
                precision=None if pixels else compute_precision(pick_device(params["device"]),
                                                                params["precision"]),
                n_cells=int(params["n_cells"]), pca_dim=int(params["pca_dim"]),
                seed=int(params["seed"]))


def zoo_sets(study) -> list[ReferenceSet]:
    """Every standard zoo model of the study's profile, and each external set that has at
    least two sample sets (runs numbered as seeds), as notebook 04 uses them."""
    from . import zoo
    from .data import load_images

    p = study.params
    out = [ReferenceSet(f"{f}-s{s}", f, zoo.FAMILIES[f].__name__, s,
                        zoo.zoo_samples(f, s, "standard", p, progress=False).images)
           for f, v, s in zoo.zoo_models(p) if v == "standard"]
    for name, specs in p["external_sets"].items():
        specs = [specs] if isinstance(specs, str) else list(specs)
        if len(specs) >= 2:
            out += [ReferenceSet(f"{name}-r{r}", name, name, r,
                                 load_images(spec, seed=p["seed"]).images)
                    for r, spec in enumerate(specs)]
    return out


def build_database(study, sets: Sequence[ReferenceSet], *, progress: bool = True) -> Database:
    """Reference curves of ``sets`` against the study's public reference (``reference_train``
    as T, ``test`` as P_n), at each of ``query_sizes``, and their manifest."""
    from tqdm.auto import tqdm

    scorer = Scorer(study)
    rows = []
    p = study.params
    sizes = [int(n) for n in p["query_sizes"] if n > MIN_CELL_POINTS]   # smaller sets have no C_T
    for s in tqdm(sets, desc="fingerprint database", disable=not progress):
        rows += scorer.set_rows(s, sizes, p["n_query_draws"])
    curves = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    train, test = study.images("reference_train"), study.images("test")
    manifest = {**comparable_settings(p),
                "reference_train_hash": train.content_hash, "reference_test_hash": test.content_hash,
                "reference": {"train_spec": p["reference_train"], "n_train": len(train),
                              "test_spec": p["test"], "n_test": len(test)},
                "query_sizes": sizes,
                "n_query_draws": int(p["n_query_draws"]),
                "memlib_version": _version()}
    db = Database(curves, manifest)
    db.manifest["open_set"] = calibrate_open_set(db)
    return db


def calibrate_open_set(db: Database) -> dict[str, Any]:
    """Open-set thresholds per stored n: the :data:`OPEN_SET_QUANTILE` of the
    leave-one-model-out nearest distances among the reference curves (curve units, C_T)."""
    thresholds = {}
    for n in db.sizes:
        curves, families, models = db.reference_curves(n)
        if len(np.unique(models)) < 2:
            continue
        thresholds[str(n)] = _threshold(curves, families, models, DISTANCE)
    return {"quantile": OPEN_SET_QUANTILE, "distance": DISTANCE, "rule": RULE,
            "thresholds": thresholds}


def _threshold(curves, families, models, distance) -> float:
    return fp.open_set_threshold(curves, families, groups=models, quantile=OPEN_SET_QUANTILE,
                                 distance=distance, rule=RULE, layers=None)


def _version() -> str:
    from .version import memlib_version
    return memlib_version()


# -- scoring against the database's reference ---------------------------------------------------

def scorer_for(db: Database, params: dict[str, Any], *, strict: bool = False) -> "Scorer":
    """A :class:`Scorer` on the database's own reference (its specs, re-embedded through the
    feature cache) with the current ``params``; refuses a database that does not match them.
    A different forward-pass precision is accepted (module docstring) unless ``strict``
    (``fingerprint add``: a database holds curves of one precision)."""
    from .study import Study

    db.check(comparable_settings(params), tolerate=() if strict else TOLERATED_FIELDS)
    ref = db.manifest["reference"]
    study = Study({**params, "reference_train": ref["train_spec"], "test": ref["test_spec"]})
    db.check({"reference_train_hash": study.images("reference_train").content_hash,
              "reference_test_hash": study.images("test").content_hash})
    return Scorer(study)


class Scorer:
    """The study's fitted public reference, with which any set's curves at any subset size
    cost one nearest-neighbour search per layer and a re-count
    (:meth:`memlib.ct.Reference.subset_curves`)."""

    def __init__(self, study):
        from .encoders import compute_precision, pick_device

        self.study = study
        self.reference = study.reference()
        p = study.params
        # what this scorer's features are computed in (None for raw pixels), as in a manifest
        self.precision = (None if p["encoder"] == "pixels"
                          else compute_precision(pick_device(p["device"]), p["precision"]))

    def subset_curves(self, images, subsets: Sequence[np.ndarray], name: str) -> np.ndarray:
        """(S, L) C_T curves of subsets (index arrays) of ``images`` (an ImageSet or uint8
        (m, H, W[, C])); NaN where undefined."""
        return self.reference.subset_curves(self.study.features(images, name=name), subsets)

    def set_rows(self, s: ReferenceSet, sizes: Sequence[int], n_draws: int) -> list[dict]:
        """Curve rows of one reference set: ``n_draws`` subsets at each size n ≤ its size."""
        plan = draws_plan(len(s.images), sizes, n_draws, self.study.params["seed"], s.model)
        if not plan:
            raise InputError(f"model {s.model!r}: {len(s.images)} samples, fewer than the "
                             f"smallest size of the database, {min(sizes)}")
        subsets = [idx for _, draws in plan for idx in draws]
        curves = self.subset_curves(s.images, subsets, s.model)
        rows, k = [], 0
        for n, draws in plan:
            for d in range(len(draws)):
                rows += [dict(model=s.model, family=s.family, architecture=s.architecture,
                              seed=int(s.seed), n=int(n), draw=d, layer=l + 1,
                              ct=float(curves[k, l])) for l in range(curves.shape[1])]
                k += 1
        return rows


def draws_plan(m: int, sizes: Sequence[int], n_draws: int, seed: int,
               name: str) -> list[tuple[int, list[np.ndarray]]]:
    """(n, subsets) for each size n ≤ m: ``n_draws`` random subsets of range(m), or the whole
    set once when n == m. Seeded by ``seed``, n and a checksum of ``name``."""
    salt = zlib.crc32(name.encode()) % 1_000_000
    return [(int(n), fp.subsample_indices(m, int(n), 1 if n == m else n_draws,
                                          seed=seed + 1000 * salt + int(n)))
            for n in sorted(set(int(x) for x in sizes)) if n <= m]


# -- attribution ---------------------------------------------------------------------------------

@dataclass
class AttributionReport:
    """What :func:`attribute_set` found.

    answer: the family with the most votes, or ``"unknown"``.
    table: one row per candidate (families and ``unknown``): ``candidate``, ``distance`` (mean
        over draws of the distance to the family's nearest reference curve, C_T units; empty
        for ``unknown``), ``votes`` (share of draws voting for it), best first.
    n: the reference size used; m: the query's size; distance: ``euclidean`` or ``cosine``.
    threshold: the open-set threshold at n (same units as ``distance``).
    query_curves: (S, L) the query's subset curves (undefined C_T as 0).
    warning: a sentence when the query is smaller than every stored n, else None.
    precision_note: one line when the query's forward-pass precision differs from the
        database's (accepted; :func:`precision_note`), else None.
    nearest: (S,) each subset's distance to its nearest reference curve (same units as
        ``threshold``; above it, the subset votes ``unknown``).
    """

    answer: str
    table: pd.DataFrame
    n: int
    m: int
    distance: str
    threshold: float
    query_curves: np.ndarray
    warning: str | None = None
    reference: tuple = field(default=(), repr=False)   # (curves, families, models) at n
    precision_note: str | None = None
    nearest: np.ndarray | None = field(default=None, repr=False)


def attribute_set(db: Database, scorer: Scorer, images: np.ndarray, *, name: str = "query",
                  accuracy_csv: Path | None = None) -> AttributionReport:
    """Attribute one sample set (uint8 images (m, H, W[, C])) to a family of the database.

    The settings of ``scorer.study`` must match the database (:meth:`Database.check`).
    ``name`` labels the query in messages and its feature-cache entry; the random subsets are
    seeded by the pixels (and the database's seed), so the report does not depend on it.
    """
    from .data import ImageSet

    # one ImageSet: its content hash seeds the draws and is the feature cache's key, hashed once
    query = ImageSet(images, np.arange(len(images)).astype(str), name=name)
    m = len(query)
    sizes = db.sizes
    below = [n for n in sizes if n <= m]
    warning = None
    n_draws = int(db.manifest["n_query_draws"])
    seed = int(db.manifest["seed"])
    refs = db.reference_curves(below[-1] if below else sizes[0])
    if below:
        n, distance = below[-1], DISTANCE
        threshold = db.manifest["open_set"]["thresholds"].get(str(n), np.inf)
        # seeded by the pixels, not by name (often the path the user typed): seeded by the
        # path, the draws, and so the distances, moved with the folder the files sat in
        subsets = draws_plan(m, [n], n_draws, seed, query.content_hash)[0][1]
    else:
        n, distance = sizes[0], SHAPE_DISTANCE
        threshold = _threshold(*refs, distance)
        subsets = [np.arange(m)]
        warning = _small_query_warning(m, n, accuracy_csv)
    raw = scorer.subset_curves(query, subsets, name)
    if np.isnan(raw).all():
        raise InputError(f"{name}: {m} samples are too few for C_T at any layer (a cell needs "
                         f"more than 20 samples); use a larger set")
    curves = np.nan_to_num(raw, nan=0.0)
    res = fp.attribute(curves, refs[0], refs[1], distance=distance, rule=RULE)
    nearest = res.distances.min(axis=1)
    votes = np.where(nearest > threshold, UNKNOWN, res.labels.astype(str))
    table = pd.DataFrame({"candidate": [str(f) for f in res.families] + [UNKNOWN],
                          "distance": list(res.distances.mean(axis=0)) + [np.nan]})
    table["votes"] = [float(np.mean(votes == c)) for c in table["candidate"]]
    table = table.sort_values(["votes", "distance"], ascending=[False, True],
                              na_position="last", kind="stable").reset_index(drop=True)
    return AttributionReport(str(table["candidate"].iloc[0]), table, n, m, distance,
                             float(threshold), curves, warning, refs,
                             precision_note(db, scorer.precision, n), nearest)


# -- precision ----------------------------------------------------------------------------------

def precision_note(db: Database, precision: str | None, n: int | None = None) -> str | None:
    """One line when ``precision`` (this run's, e.g. ``"float32"``) differs from the
    database's, else None: the query is accepted, and the line says by how much the reference
    curves moved between the two precisions (the manifest's ``precision_tolerance`` at ``n``,
    or its largest over n) next to the open-set threshold at ``n``."""
    built = db.manifest.get("precision")
    if precision == built:
        return None
    head = (f"the database was built under {built}, this run computes {precision}: accepted, "
            f"only the precision differs")
    tol = db.manifest.get("precision_tolerance")
    if not tol or set(tol.get("between", ())) != {built, precision}:
        return head + ("; how far its curves move between the two precisions was not measured "
                       "(python -m bench.precision_tolerance; docs/api.md#precision)")
    by_n = tol["max_by_n"]
    key = str(n) if n is not None and str(n) in by_n else max(by_n, key=lambda k: by_n[k])
    threshold = db.manifest.get("open_set", {}).get("thresholds", {}).get(key)
    against = f"; open-set threshold {threshold:.3g}" if threshold is not None else ""
    changed = tol.get("votes_changed_by_n", {}).get(key)
    votes = (f"; {changed[0]} of {changed[1]} leave-one-model-out votes changed"
             if changed is not None else "")
    return head + (f"; between the two its reference curves move by a median of "
                   f"{tol['median_by_n'][key]:.2g}, at most {by_n[key]:.3g} C_T units at s = "
                   f"{key}{against}{votes} ({tol['distance']} over layers, "
                   f"{len(tol['models'])} models, {tol['cpu']})")


def curve_distances(db: Database, rows: Sequence[dict]) -> pd.DataFrame:
    """Each recomputed curve in ``rows`` (:data:`CURVE_COLUMNS`, as :meth:`Scorer.set_rows`
    returns them) against the database's stored curve of the same model, n and draw.

    Columns: model, n, draw; ``distance`` (:data:`DISTANCE` over layers, undefined C_T as 0,
    C_T units); ``undefined_differs`` (layers where C_T is undefined in one curve only: a cell
    crossing the 20-point rule); ``stored_vote`` and ``vote``, what each curve votes for among
    the *other* models' reference curves at n (a family, or ``unknown`` beyond the open-set
    threshold: attribution's rule with the curve's own model left out).
    """
    new = pd.DataFrame(list(rows), columns=CURVE_COLUMNS)
    keys = ["model", "n", "draw"]
    stored = db.curves[db.curves["model"].isin(new["model"].unique())]
    a = new.pivot(index=keys, columns="layer", values="ct").sort_index()
    b = stored.pivot(index=keys, columns="layer", values="ct").sort_index()
    if not a.index.equals(b.index) or list(a.columns) != list(b.columns):
        raise InputError("recomputed curves do not cover the stored ones (other models, sizes, "
                         "draws or layers); recompute with the database's query_sizes and "
                         "n_query_draws")
    ours, theirs = a.to_numpy(float), b.to_numpy(float)
    x, y = np.nan_to_num(ours, nan=0.0), np.nan_to_num(theirs, nan=0.0)
    out = a.index.to_frame(index=False).assign(
        distance=np.sqrt(((x - y) ** 2).sum(axis=1)),
        undefined_differs=(np.isnan(ours) != np.isnan(theirs)).sum(axis=1))
    out["stored_vote"], out["vote"] = _left_out_votes(db, out, y), _left_out_votes(db, out, x)
    return out


def _left_out_votes(db: Database, index: pd.DataFrame, curves: np.ndarray) -> list[str]:
    """Each curve's vote among the other models' reference curves at its n (rows of index)."""
    thresholds = db.manifest.get("open_set", {}).get("thresholds", {})
    votes = []
    for (model, n), rows in index.groupby(["model", "n"], sort=False).groups.items():
        refs, families, models = db.reference_curves(int(n))
        keep = models != model
        res = fp.attribute(curves[np.asarray(rows)], refs[keep], families[keep],
                           distance=DISTANCE, rule=RULE)
        far = res.distances.min(axis=1) > thresholds.get(str(int(n)), np.inf)
        votes += [(pos, UNKNOWN if f else str(label))
                  for pos, f, label in zip(rows, far, res.labels)]
    return [v for _, v in sorted(votes)]


def measure_precision_tolerance(db: Database, other: "Scorer",
                                sets: Sequence[ReferenceSet]) -> tuple[dict[str, Any], pd.DataFrame]:
    """How far the database's reference curves move at the other forward-pass precision.

    ``other`` scores at the other precision (same encoder and reference: :func:`scorer_for`);
    ``sets`` are some of the database's models (their own sample sets). Each set's curves are
    recomputed at every stored n and draw and compared with the stored ones
    (:func:`curve_distances`). Returns the manifest's ``precision_tolerance`` (per n: the
    median, 95th percentile and largest distance in C_T units, and how many of the curves'
    leave-one-model-out votes changed; the models, the number of curves, the CPU) and the
    per-curve table. Store the first with :meth:`Database.set_precision_tolerance`.
    """
    from .machine import cpu_model

    built = db.manifest.get("precision")
    if other.precision == built:
        raise InputError(f"the scorer computes {other.precision}, the database's own precision; "
                         f"measure against the other one")
    rows = [r for s in sets for r in other.set_rows(s, db.sizes, int(db.manifest["n_query_draws"]))]
    d = curve_distances(db, rows)
    by_n = d.groupby("n")
    per_n = lambda series: {str(n): float(v) for n, v in series.items()}
    changed = by_n.apply(lambda g: [int((g["vote"] != g["stored_vote"]).sum()), int(len(g))],
                         include_groups=False)
    return ({"between": sorted([built, other.precision]), "distance": DISTANCE,
             "median_by_n": per_n(by_n["distance"].median()),
             "p95_by_n": per_n(by_n["distance"].quantile(0.95)),
             "max_by_n": per_n(by_n["distance"].max()),
             "votes_changed_by_n": {str(n): v for n, v in changed.items()},
             "models": sorted(d["model"].unique().tolist()), "n_curves": int(len(d)),
             "cpu": cpu_model(), "memlib_version": _version()}, d)


def _small_query_warning(m: int, n_min: int, accuracy_csv: Path | None) -> str:
    head = (f"the query has {m} samples, fewer than the smallest size the database holds "
            f"({n_min}); comparing curve shapes ({SHAPE_DISTANCE} distance) with the s = "
            f"{n_min} references. ")
    if accuracy_csv is None or not Path(accuracy_csv).exists():
        return head + (f"Expected accuracy at m = {m}: not measured (no "
                       f"fingerprint_accuracy.csv; run notebook 04)")
    acc = pd.read_csv(accuracy_csv)
    for column, value in (("reference", "public"), ("grain", "architecture"), ("corruption", "none")):
        if column in acc.columns:      # the database names models: the architecture grain, clean queries
            acc = acc[acc[column] == value]
    acc = acc[acc["method"] == ACCURACY_METHOD].sort_values("query_size")
    if acc.empty:
        return head + f"Expected accuracy at m = {m}: not in {accuracy_csv}"
    at = acc[acc["query_size"] <= m]
    if not at.empty:
        row = at.iloc[-1]
        return head + (f"Expected accuracy at m = {m}: about {row.accuracy:.2f} (measured at "
                       f"query size m = {int(row.query_size)}, {accuracy_csv})")
    row = acc.iloc[0]
    return head + (f"Expected accuracy at m = {m}: below {row.accuracy:.2f}, the accuracy "
                   f"measured at query size m = {int(row.query_size)} ({accuracy_csv})")


def plot_attribution(report: AttributionReport, *, top: int = 3, title: str = "query"):
    """The query's curve (mean over its subset curves, min–max band) over the reference
    curves of its ``top`` nearest families at the same n (one line per reference model, the
    mean over its draws); returns the figure."""
    import matplotlib.pyplot as plt

    from . import plots

    curves, families, models = report.reference
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    x = np.arange(1, report.query_curves.shape[1] + 1)
    near = [c for c in report.table["candidate"] if c != UNKNOWN][:top]
    for i, fam in enumerate(near):
        color = plt.cm.tab10(i)
        for j, model in enumerate(np.unique(models[families == fam])):
            ax.plot(x, curves[models == model].mean(axis=0), color=color, lw=1, alpha=0.7,
                    label=fam if j == 0 else None)
    q = report.query_curves
    ax.fill_between(x, q.min(axis=0), q.max(axis=0), color="k", alpha=0.15, lw=0,
                    label=f"{title}: range over its {len(q)} subset curve(s)")
    ax.plot(x, q.mean(axis=0), color="k", lw=2.4, marker="o", ms=3,
            label=f"{title} (answer: {report.answer})")
    plots.zero_line(ax, flag=None)
    ax.set_xlabel("encoder layer (block)")
    ax.set_ylabel("C_T (z-score; < 0 copying, > 0 under-fitting)")
    ax.set_title(f"Query curve over its nearest reference curves (subsets of s = {report.n} of its "
                 f"m = {report.m} samples, {report.distance} distance)", fontsize=9)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig
