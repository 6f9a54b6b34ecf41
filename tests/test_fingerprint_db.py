"""memlib.fingerprint_db and the `attribute` / `fingerprint add` commands.

Known answers on hand-made curves (files, thresholds, manifest checks, draws), then the smoke
zoo end to end: a database of seeds 0 and 1 of every family names the family of each
held-out seed-2 set (also from a folder of PNGs through the CLI), says "unknown" for a family
it does not hold, learns that family through `fingerprint add`, and refuses a database built
with other settings, naming the field.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from memlib import fingerprint_db as fdb
from memlib.errors import InputError

REPO = Path(__file__).resolve().parent.parent


# --- hand-made curves ----------------------------------------------------------------------------

def _db(rng, n_layers=4, sizes=(20, 40), draws=3) -> fdb.Database:
    """Models a-s0, a-s1 (family a) and b-s0, b-s1 (family b): curves = family level + noise."""
    rows = []
    for model, family, level in (("a-s0", "a", 0.0), ("a-s1", "a", 0.2), ("b-s0", "b", 5.0),
                                 ("b-s1", "b", 5.3)):
        for n in sizes:
            for d in range(draws):
                for layer in range(1, n_layers + 1):
                    rows.append(dict(model=model, family=family, architecture=family.upper(),
                                     seed=int(model[-1]), n=n, draw=d, layer=layer,
                                     ct=level + 0.1 * layer + 0.05 * rng.normal()))
    db = fdb.Database(pd.DataFrame(rows, columns=fdb.CURVE_COLUMNS),
                      {"format": 1, "encoder": "e", "image_size": 32, "token": "cls", "seed": 0,
                       "n_query_draws": draws, "query_sizes": list(sizes)})
    db.manifest["open_set"] = fdb.calibrate_open_set(db)
    return db


def test_files_round_trip_and_undefined_ct_reads_as_zero(rng, tmp_path):
    db = _db(rng)
    db.curves.loc[3, "ct"] = np.nan                     # a-s0, n=20, draw 0, layer 4
    db.save(tmp_path / "db")
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["curves.csv", "manifest.json"]
    back = fdb.Database.load(tmp_path / "db")
    assert list(back.curves.columns) == fdb.CURVE_COLUMNS
    assert back.manifest == json.loads(json.dumps(db.manifest))
    assert back.sizes == [20, 40]
    curves, families, models = back.reference_curves(20)
    assert curves.shape == (12, 4)
    assert list(models[:3]) == ["a-s0"] * 3 and list(families[-3:]) == ["b"] * 3
    assert curves[0, 3] == 0.0
    np.testing.assert_allclose(curves[1], db.curves.ct[4:8], rtol=1e-5)
    with pytest.raises(InputError, match="no curves at subset size s = 30"):
        back.reference_curves(30)


def test_open_set_threshold_is_the_95th_percentile_of_leave_one_model_out_distances(rng):
    db = _db(rng)
    for n in (20, 40):
        curves, _, models = db.reference_curves(n)
        d = cdist(curves, curves)
        nearest = [d[i, models != models[i]].min() for i in range(len(curves))]
        assert db.manifest["open_set"]["thresholds"][str(n)] == pytest.approx(
            np.quantile(nearest, 0.95))


def test_manifest_check_names_the_mismatched_field(rng):
    db = _db(rng)
    db.check({"encoder": "e", "image_size": 32, "token": "cls"})
    with pytest.raises(InputError, match="image_size is 32 there, 64 here"):
        db.check({"encoder": "e", "image_size": 64})
    with pytest.raises(InputError, match="token is 'cls' there, 'mean' here"):
        db.check({"token": "mean"})


def test_adding_a_model_twice_is_refused(rng):
    db = _db(rng)
    rows = db.curves[db.curves.model == "a-s0"].assign(model="c-s0", family="c")
    db.add(rows.to_dict("records"))
    assert "c" in set(db.reference_curves(20)[1])
    with pytest.raises(InputError, match="'c-s0' is already in"):
        db.add(rows.to_dict("records"))


def test_draws_plan():
    plan = fdb.draws_plan(100, [50, 100, 200], 4, seed=0, name="x")
    assert [n for n, _ in plan] == [50, 100]
    assert len(plan[0][1]) == 4 and all(len(s) == 50 for s in plan[0][1])
    np.testing.assert_array_equal(plan[1][1][0], np.arange(100))   # n = m: the whole set once
    assert len(plan[1][1]) == 1
    again = fdb.draws_plan(100, [50], 4, seed=0, name="x")[0][1]
    other = fdb.draws_plan(100, [50], 4, seed=0, name="y")[0][1]
    assert all((a == b).all() for a, b in zip(plan[0][1], again))
    assert not all((a == b).all() for a, b in zip(plan[0][1], other))


def test_small_query_warning_reads_the_measured_accuracy(tmp_path):
    csv = tmp_path / "fingerprint_accuracy.csv"
    pd.DataFrame([dict(reference="public", method="C_T-layer curve", query_size=50, accuracy=0.62),
                  dict(reference="public", method="C_T-layer curve", query_size=100, accuracy=0.9),
                  dict(reference="own-train", method="C_T-layer curve", query_size=50, accuracy=0.1),
                  dict(reference="public", method="final-layer C_T", query_size=50, accuracy=0.3)]
                 ).to_csv(csv, index=False)
    text = fdb._small_query_warning(30, 50, csv)
    assert "30 samples" in text and "below 0.62" in text and "query size m = 50" in text and "the s = 50 references" in text
    v2 = tmp_path / "v2.csv"     # Study v2's table: the architecture grain on clean queries applies
    pd.DataFrame([dict(grain=g, corruption=c, method="C_T-layer curve", query_size=50, accuracy=a)
                  for g, c, a in [("family", "none", 0.9), ("architecture", "jpeg", 0.2),
                                  ("architecture", "none", 0.55)]]).to_csv(v2, index=False)
    assert "below 0.55" in fdb._small_query_warning(30, 50, v2)
    assert "not measured" in fdb._small_query_warning(30, 50, tmp_path / "none.csv")


def test_load_refuses_a_folder_without_a_database(tmp_path):
    with pytest.raises(InputError, match="no manifest.json"):
        fdb.Database.load(tmp_path)


# --- precision: accepted with a note, measured tolerance --------------------------------------------

def _tolerance(max_by_n):
    return {"between": ["bfloat16-autocast", "float32"], "distance": "euclidean",
            "max_by_n": max_by_n, "median_by_n": {k: v / 2 for k, v in max_by_n.items()},
            "p95_by_n": max_by_n, "votes_changed_by_n": {k: [1, 6] for k in max_by_n},
            "models": ["a-s0", "b-s0"], "n_curves": 12, "cpu": "AMD EPYC test"}


def test_only_the_precision_is_tolerated(rng):
    db = _db(rng)
    db.manifest.update(precision="bfloat16-autocast", n_cells=3)
    db.check({"precision": "float32"}, tolerate=fdb.TOLERATED_FIELDS)      # accepted
    with pytest.raises(InputError, match="precision is 'bfloat16-autocast' there, 'float32' here"):
        db.check({"precision": "float32"})                                 # strict (fingerprint add)
    for key, value in (("image_size", 48), ("token", "mean"), ("n_cells", 5), ("encoder", "x")):
        with pytest.raises(InputError, match=f"{key} is"):
            db.check({"precision": "float32", key: value}, tolerate=fdb.TOLERATED_FIELDS)
    assert fdb.TOLERATED_FIELDS == ("precision",)


def test_precision_note_is_one_line_with_the_measured_tolerance(rng):
    db = _db(rng)
    db.manifest["precision"] = "bfloat16-autocast"
    assert fdb.precision_note(db, "bfloat16-autocast", 20) is None
    unmeasured = fdb.precision_note(db, "float32", 20)
    assert "accepted" in unmeasured and "not measured" in unmeasured and "\n" not in unmeasured
    db.set_precision_tolerance(_tolerance({"20": 0.25, "40": 0.5}))
    threshold = db.manifest["open_set"]["thresholds"]["40"]
    note = fdb.precision_note(db, "float32", 40)
    assert "\n" not in note and "a median of 0.25, at most 0.5 C_T units at s = 40" in note
    assert f"open-set threshold {threshold:.3g}" in note and "AMD EPYC test" in note
    assert "1 of 6 leave-one-model-out votes changed" in note
    assert "at most 0.25" in fdb.precision_note(db, "float32", 20)
    assert "at most 0.5" in fdb.precision_note(db, "float32", None)        # the largest over n


@pytest.mark.parametrize("native, note", [(False, True), (True, False)])
def test_a_cpu_without_native_bf16_is_accepted_with_a_note(monkeypatch, rng, native, note):
    """precision auto on a CPU without avx512_bf16/amx_bf16 (flags forced) computes float32;
    a bf16 database then answers with the note instead of refusing."""
    from memlib import encoders
    from memlib.params import load_params

    monkeypatch.setattr(encoders, "native_bf16_cpu", lambda flags=None: native)
    params = load_params("smoke", overrides={"device": "cpu", "precision": "auto"})
    current = fdb.comparable_settings(params)
    assert current["precision"] == ("bfloat16-autocast" if native else "float32")
    db = _db(rng)
    db.manifest.update({**current, "precision": "bfloat16-autocast"})
    db.set_precision_tolerance(_tolerance({"20": 0.3, "40": 0.4}))
    db.check(current, tolerate=fdb.TOLERATED_FIELDS)
    assert (fdb.precision_note(db, current["precision"], 20) is not None) == note


def test_curve_distances_and_the_measured_tolerance(rng):
    """Recomputed curves = stored ones + a known shift per model: the distances are that shift
    times sqrt(layers), the tolerance their maximum and median per n."""
    db = _db(rng, n_layers=4, sizes=(20, 40), draws=3)
    db.manifest["precision"] = "bfloat16-autocast"
    shift = {"a-s0": 0.1, "b-s0": 0.3}
    db.manifest["open_set"]["thresholds"] = {"20": 10.0, "40": 10.0}   # no vote at the edge

    class Other:     # a scorer at the other precision: the stored curves, shifted
        precision = "float32"

        def set_rows(self, s, sizes, n_draws):
            assert list(sizes) == db.sizes and n_draws == 3
            rows = db.curves[db.curves.model == s.model].to_dict("records")
            return [dict(r, ct=r["ct"] + shift[s.model]) for r in rows]

    sets = [fdb.ReferenceSet(m, m[0], m[0], 0, np.zeros((1, 2, 2), np.uint8)) for m in shift]
    d = fdb.curve_distances(db, Other().set_rows(sets[0], db.sizes, 3))
    np.testing.assert_allclose(d.distance, 0.1 * 2, rtol=1e-5)            # sqrt(4 layers) = 2
    assert (d.undefined_differs == 0).all()
    assert (d.stored_vote == "a").all() and (d.vote == "a").all()        # a-s1 is a's other model
    tol, table = fdb.measure_precision_tolerance(db, Other(), sets)
    assert tol["between"] == ["bfloat16-autocast", "float32"] and tol["n_curves"] == 12
    assert tol["max_by_n"] == pytest.approx({"20": 0.6, "40": 0.6}, rel=1e-5)
    assert tol["median_by_n"] == pytest.approx({"20": 0.4, "40": 0.4}, rel=1e-5)
    assert tol["votes_changed_by_n"] == {"20": [0, 6], "40": [0, 6]}, table
    assert tol["models"] == ["a-s0", "b-s0"] and len(table) == 12
    # a shift that carries b-s0's curves onto family a's: its votes change
    shift["b-s0"] = -5.0
    tol, table = fdb.measure_precision_tolerance(db, Other(), sets)
    assert tol["votes_changed_by_n"] == {"20": [3, 6], "40": [3, 6]}
    assert set(table[table.model == "b-s0"].vote) == {"a"}
    # a layer undefined at one precision only is counted (and read as 0)
    rows = Other().set_rows(sets[0], db.sizes, 3)
    rows[0] = dict(rows[0], ct=float("nan"))
    assert fdb.curve_distances(db, rows).undefined_differs.sum() == 1
    with pytest.raises(InputError, match="do not cover"):
        fdb.curve_distances(db, [dict(r, n=99 if r["n"] == 20 else r["n"])
                                 for r in Other().set_rows(sets[0], db.sizes, 3)])
    Other.precision = "bfloat16-autocast"
    with pytest.raises(InputError, match="the database's own precision"):
        fdb.measure_precision_tolerance(db, Other(), sets)


def test_the_shipped_database_takes_a_float32_query_with_its_tolerance():
    """figures/fingerprint_db (built under bf16 on the AMD EPYC) accepts the default profile at
    float32: only the precision differs, and its manifest holds the tolerance that
    `python -m bench.precision_tolerance --write` measured (bench/amd-epyc/precision-tolerance.txt:
    median curve shift 0.17-0.33 C_T units at every n against thresholds of 2.5-5.5; 2 of 40
    leave-one-model-out votes changed at n = 50 and at n = 100, none from n = 250)."""
    from memlib.params import load_params

    db = fdb.Database.load(REPO / "figures" / "fingerprint_db")
    assert db.manifest["precision"] == "bfloat16-autocast"
    current = fdb.comparable_settings(load_params("default", overrides={"precision": "float32",
                                                                         "device": "cpu"}))
    assert current["precision"] == "float32"
    db.check(current, tolerate=fdb.TOLERATED_FIELDS)
    with pytest.raises(InputError, match="precision"):
        db.check(current)
    tol = db.manifest["precision_tolerance"]
    assert set(tol["between"]) == {"bfloat16-autocast", "float32"}
    assert tol["command"].startswith("python -m bench.precision_tolerance")
    thresholds = db.manifest["open_set"]["thresholds"]
    for key in ("median_by_n", "p95_by_n", "max_by_n", "votes_changed_by_n"):
        assert set(tol[key]) == {str(n) for n in db.sizes}, key
    for n in map(str, db.sizes):
        assert 0 < tol["median_by_n"][n] <= tol["p95_by_n"][n] <= tol["max_by_n"][n]
        assert tol["median_by_n"][n] < 0.1 * thresholds[n]      # the typical curve barely moves
        changed, total = tol["votes_changed_by_n"][n]
        assert changed <= 0.1 * total, (n, changed, total)
    for n in (s for s in map(str, db.sizes) if int(s) >= 500):
        assert tol["max_by_n"][n] < 0.1 * thresholds[n]         # large queries: every curve
    note = fdb.precision_note(db, "float32", 100)
    assert "accepted" in note and f"at most {tol['max_by_n']['100']:.3g}" in note
    assert "\n" not in note


# --- the smoke zoo, end to end ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke(cache_dir, tmp_path_factory):
    """The smoke profile with a third seed; a database of seeds 0-1 written where the CLI
    looks by default (<figures_dir>/fingerprint_db), and one without the vae family.

    The module has a cache of its own (MEMLIB_CACHE, for this module only): its margins
    (MARGIN) were measured with everything computed here, and in the whole suite they failed
    in 1-3 of 4 tests on 2026-12-07 (AMD EPYC, clean clones) while the module alone passed,
    i.e. entries other modules leave in the session cache reach these numbers."""
    from memlib.params import write_params
    from memlib.study import Study
    from memlib import zoo

    root = tmp_path_factory.mktemp("fingerprint-db")
    patch = pytest.MonkeyPatch()
    patch.setenv("MEMLIB_CACHE", str(tmp_path_factory.mktemp("fingerprint-db-cache")))
    params_file = write_params(root / "params.yaml", "smoke", zoo_seeds=[0, 1, 2],
                               figures_dir=str(root / "figures"))
    from memlib.params import load_params
    params = load_params(path=params_file)
    zoo.zoo_sample(params, variants=["standard"], progress=False)   # zoo_workers processes
    study = Study(params)
    sets = {s.model: s for s in fdb.zoo_sets(study)}
    known = [s for s in sets.values() if s.seed != 2]
    db = fdb.build_database(study, known, progress=False)
    db.save(study.figures_dir / "fingerprint_db")
    no_vae = fdb.build_database(study, [s for s in known if zoo.family_of(s.family) != "vae"], progress=False)
    no_vae.save(root / "no-vae")
    yield dict(root=root, params_file=params_file, study=study, sets=sets, db=db,
               no_vae=no_vae, scorer=fdb.Scorer(study))
    patch.undo()


def _cli(smoke, *args, env: dict | None = None):
    env = {**os.environ, "MEMLIB_CACHE": os.environ["MEMLIB_CACHE"], "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "memlib", "--params", str(smoke["params_file"]),
                           *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def _png_folder(images, folder: Path) -> Path:
    from PIL import Image
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(np.asarray(img).squeeze()).save(folder / f"sample_{i:04d}.png")
    return folder


@pytest.mark.slow
def test_database_contents(smoke):
    db = smoke["db"]
    assert sorted(db.curves.model.unique()) == ["gmm-s0", "gmm-s1", "kde-s0", "kde-s1",
                                                "vae-mlp-s0", "vae-mlp-s1", "vae-s0", "vae-s1"]
    assert db.sizes == [50, 100]                        # query_sizes 20 left out: no C_T at n <= 20
    counts = db.curves.groupby(["model", "n"]).size()
    assert (counts == 4 * 12).all()                     # n_query_draws draws × 12 layers
    m = db.manifest
    assert m["encoder"] == "timm:vit_tiny_patch16_224+random" and m["image_size"] == 32
    assert m["reference"]["train_spec"] == "fashion-mnist:train[30000:30600]"
    assert m["reference_train_hash"] == smoke["study"].images("reference_train").content_hash
    assert set(m["open_set"]["thresholds"]) == {"50", "100"}
    assert m["memlib_version"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["kde", "vae"])
def test_a_held_out_seed_is_attributed_to_its_family(smoke, family):
    report = fdb.attribute_set(smoke["db"], smoke["scorer"], smoke["sets"][f"{family}-s2"].images,
                               name=f"{family}-s2")
    assert report.answer == family, report.table
    assert report.n == 100 and report.m == 300 and report.warning is None
    top = report.table.iloc[0]
    assert top.candidate == family and top.votes > 0.5
    assert top.distance < report.threshold


@pytest.mark.slow
def test_the_gmm_seed_sits_between_gmm_and_vae_mlp(smoke):
    """gmm-s2 is not a clean case on the random-init smoke ViT: over 40 draws of 4 subsets
    (2026-12-07, Intel Xeon) the answer was gmm 17 times, vae-mlp 11 and a tie 12, the 160
    subsets voting gmm 89, vae-mlp 71, never unknown. Which draw this test gets decided
    whether it passed when it asked for gmm (the draws were then seeded by the name), so it
    asks for what holds on every draw: the two nearest families are gmm and vae-mlp, well
    inside the open-set threshold (median subset at 0.14-0.31 of it over the 40 draws)."""
    report = fdb.attribute_set(smoke["db"], smoke["scorer"], smoke["sets"]["gmm-s2"].images,
                               name="gmm-s2")
    assert report.answer in {"gmm", "vae-mlp"}, report.table
    ranked = report.table[report.table.candidate != fdb.UNKNOWN].sort_values("distance")
    assert set(ranked.candidate.iloc[:2]) == {"gmm", "vae-mlp"}, report.table
    assert np.median(report.nearest) <= MARGIN * report.threshold


@pytest.mark.slow
def test_a_family_left_out_is_unknown(smoke):
    report = fdb.attribute_set(smoke["no_vae"], smoke["scorer"], smoke["sets"]["vae-s2"].images,
                               name="vae-s2")
    assert report.answer == "unknown", report.table
    assert report.table.set_index("candidate").loc["unknown", "votes"] > 0.5
    known = fdb.attribute_set(smoke["no_vae"], smoke["scorer"], smoke["sets"]["kde-s2"].images,
                              name="kde-s2")
    assert known.answer == "kde", known.table


@pytest.mark.slow
def test_the_report_does_not_depend_on_the_query_name(smoke):
    """The query's subsets are seeded by its pixels, not by its name (the CLI passes the path
    the user typed): the same images under two names give the same draws, distances and
    answer; the same images in another order are another set, with other draws."""
    images = smoke["sets"]["kde-s2"].images
    a = fdb.attribute_set(smoke["db"], smoke["scorer"], images, name="kde-s2")
    b = fdb.attribute_set(smoke["db"], smoke["scorer"], images, name="/somewhere/else/samples.npz")
    np.testing.assert_array_equal(a.query_curves, b.query_curves)
    np.testing.assert_array_equal(a.nearest, b.nearest)
    pd.testing.assert_frame_equal(a.table, b.table)
    shuffled = fdb.attribute_set(smoke["db"], smoke["scorer"], images[::-1].copy(), name="kde-s2")
    assert not np.array_equal(shuffled.nearest, a.nearest)


# The margin of the attribution tests. A subset votes for its nearest family only when its
# distance to the nearest reference curve is below the open-set threshold (else 'unknown'), so
# the answer is the query's family as long as the median subset sits below the threshold. The
# tests ask for the median to sit below MARGIN of it. Where that median falls depends on which
# subsets are drawn: for kde-s2 (smoke database, n = 100, 4 subsets), over 40 draws on the
# Intel Xeon (2026-12-07) it was 0.30 of the threshold at the median draw, 0.50 at the 90th
# percentile, 0.53 at the 95th and 0.67 at most; earlier draws on the AMD EPYC gave 0.29-0.52.
# The margin was 0.5 while the draws were seeded by the query's path: the suite's temporary
# folder then picked a draw, and about one in ten crossed it (CI failed on 2026-12-07 with
# 0.50 and 0.52). The draws are now seeded by the pixels (one draw per CPU kind), and MARGIN
# sits above every measured draw.
MARGIN = 0.75


@pytest.mark.slow
@pytest.mark.parametrize("precision, native, computed", [
    ("float32", None, "float32"), ("bfloat16", None, "bfloat16-autocast"),
    ("auto", "0", "float32")],            # auto on a CPU without avx512_bf16 / amx_bf16
    ids=["float32", "bfloat16", "auto-without-native-bf16"])
def test_cli_attribute_on_a_folder_with_the_default_database(smoke, precision, native, computed):
    """kde-s2 as a folder of PNGs, at each precision: answer kde, inside MARGIN; the precision
    that differs from the database's is accepted with one note line. The CPU flags are forced
    through $MEMLIB_NATIVE_BF16 (memlib.encoders.native_bf16_cpu)."""
    folder = smoke["root"] / "kde-s2"
    if not folder.exists():
        _png_folder(smoke["sets"]["kde-s2"].images, folder)
    out = smoke["root"] / f"attribution-{precision}"
    proc = _cli(smoke, "attribute", folder, "--out", out, "--precision", precision,
                "--device", "cpu", "--json", env=None if native is None else {"MEMLIB_NATIVE_BF16": native})
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["answer"] == "kde" and doc["n"] == 100 and doc["m"] == 300, doc["table"]
    nearest = np.asarray(doc["nearest_per_subset"])
    assert len(nearest) == doc["n_subsets"] == 4
    assert np.median(nearest) <= MARGIN * doc["threshold"], (nearest, doc["threshold"])
    assert doc["table"][0]["candidate"] == "kde" and doc["table"][0]["votes"] > 0.5
    assert doc["provenance"]["precision"] == computed
    notes = [l for l in proc.stderr.splitlines() if l.startswith("memlib: note:")]
    if computed == smoke["db"].manifest["precision"]:
        assert notes == [] and doc["precision_note"] is None
    else:
        assert len(notes) == 1 and "accepted, only the precision differs" in notes[0]
        assert notes[0] == f"memlib: note: {doc['precision_note']}"
    table = pd.read_csv(out / "attribution.csv")
    assert list(table.columns[:3]) == ["candidate", "distance", "votes"]
    assert table.candidate.iloc[0] == "kde" and set(table.candidate) == {"kde", "gmm", "vae", "vae-mlp",
                                                                          "unknown"}
    assert (out / "attribution.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_api_attributes_an_adm_npz(smoke, tmp_path):
    """memlib.attribute on an ADM-style arr_0 .npz (NHWC uint8) and a database folder: the
    same answer as the CLI, with the profile's settings passed as a dict."""
    import memlib
    from memlib.params import load_params

    npz = tmp_path / "samples.npz"
    np.savez(npz, arr_0=smoke["sets"]["kde-s2"].images.reshape(300, 28, 28, 1))
    report = memlib.attribute(npz, smoke["study"].figures_dir / "fingerprint_db",
                              params=load_params(path=smoke["params_file"]))
    assert report.answer == "kde" and report.n == 100 and report.m == 300
    assert np.median(report.nearest) <= MARGIN * report.threshold


@pytest.mark.slow
def test_cli_refuses_a_mismatched_database(smoke, tmp_path):
    from test_cli import assert_one_line_error

    folder = _png_folder(smoke["sets"]["kde-s2"].images[:60], tmp_path / "kde")
    assert_one_line_error(_cli(smoke, "attribute", folder, "--image-size", 48),
                          "image_size is 32 there, 48 here")
    tampered = tmp_path / "db"
    shutil.copytree(smoke["study"].figures_dir / "fingerprint_db", tampered)
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["reference_train_hash"] = "0" * 16
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(_cli(smoke, "attribute", folder, "--db", tampered),
                          "reference_train_hash")


@pytest.mark.slow
def test_cli_fingerprint_add_teaches_a_new_family(smoke, tmp_path):
    from test_cli import assert_one_line_error

    db_dir = tmp_path / "db"
    shutil.copytree(smoke["root"] / "no-vae", db_dir)
    folder = _png_folder(smoke["sets"]["vae-s1"].images, tmp_path / "vae-s1")
    proc = _cli(smoke, "fingerprint", "add", "my-vae", folder, "--family", "vae", "--db", db_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "added my-vae (family vae) at subset sizes s = 50, 100" in proc.stdout
    db = fdb.Database.load(db_dir)
    assert set(db.curves.family) == {"kde", "gmm", "vae"}
    assert db.manifest["open_set"] != smoke["no_vae"].manifest["open_set"]
    report = fdb.attribute_set(db, smoke["scorer"], smoke["sets"]["vae-s2"].images, name="vae-s2")
    assert report.answer == "vae", report.table
    assert_one_line_error(_cli(smoke, "fingerprint", "add", "my-vae", folder, "--db", db_dir),
                          "'my-vae' is already in")


@pytest.mark.slow
def test_a_query_below_the_smallest_size_warns_with_the_expected_accuracy(smoke):
    big = fdb.Database(smoke["db"].curves.query("n == 100"), dict(smoke["db"].manifest))
    csv = smoke["root"] / "fingerprint_accuracy.csv"
    pd.DataFrame([dict(reference="public", method="C_T-layer curve", query_size=100,
                       accuracy=0.75)]).to_csv(csv, index=False)
    kde = smoke["sets"]["kde-s2"].images
    report = fdb.attribute_set(big, smoke["scorer"], kde[:80], name="kde-s2-80", accuracy_csv=csv)
    assert report.distance == "cosine" and report.n == 100 and report.m == 80
    assert "80 samples" in report.warning and "below 0.75" in report.warning
    assert len(report.query_curves) == 1
    dist = report.table.distance.dropna()
    assert ((dist >= 0) & (dist <= 2)).all()            # cosine distances
    with pytest.raises(InputError, match="too few"):
        fdb.attribute_set(big, smoke["scorer"], kde[:15], name="tiny")
