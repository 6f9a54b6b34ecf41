"""memlib.corruption_eval: confusions of every method under every corruption, a sharpness score,
and the share of corrupted queries that go to the blurriest architectures (synthetic answers)."""
import numpy as np
import pandas as pd
import pytest

from memlib import corruption_eval as ce
from memlib.copies import corrupt
from memlib.errors import InputError

ARCHS = ["diffusion", "gan", "gmm", "vae"]
SHARP = {"diffusion": 0.9, "gan": 0.8, "gmm": 0.1, "vae": 0.2}     # gmm, vae: the two blurriest


def predictions():
    """Clean: every query right. Resize: every query goes to gmm or vae (alternately). Two methods;
    the k-NN probe stays right under resize."""
    rows = []
    for corruption, level in (("none", 0.0), ("resize", 0.5)):
        for method in ("curve", "probe"):
            for set_i, true in enumerate(ARCHS):
                for draw in range(4):
                    pred = true if corruption == "none" or method == "probe" else ("gmm", "vae")[draw % 2]
                    rows.append(dict(grain="architecture", corruption=corruption, level=level, query_size=100,
                                     method=method, set=set_i, draw=draw, true=true, pred=pred))
    return pd.DataFrame(rows)


def test_confusions_have_a_corruption_column_and_every_cell():
    c = ce.corruption_confusions(predictions())
    assert list(c.columns) == ["grain", "corruption", "level", "query_size", "method", "true", "predicted",
                               "count", "share"]
    assert len(c) == 2 * 2 * 4 * 4                       # corruptions x methods x 4 x 4 cells
    assert c.groupby(["corruption", "method"])["count"].sum().tolist() == [16] * 4
    r = c[(c.corruption == "resize") & (c.method == "curve")].set_index(["true", "predicted"])["count"]
    assert r["gan", "gmm"] == 2 and r["gan", "vae"] == 2 and r["gan", "gan"] == 0 and r["gmm", "gmm"] == 2
    clean = c[(c.corruption == "none") & (c.method == "curve")]
    assert (clean[clean.true == clean.predicted]["share"] == 1).all()
    assert np.allclose(c.groupby(["corruption", "method", "true"])["share"].sum(), 1)


def test_queries_go_to_the_blurriest():
    share = ce.blurriest_share(ce.corruption_confusions(predictions()), SHARP, k=2).set_index(["corruption", "method"])
    assert share.loc[("resize", "curve"), "blurriest"] == "gmm, vae"
    assert share.loc[("resize", "curve"), "share"] == 1.0 and share.loc[("resize", "curve"), "share_others"] == 1.0
    assert share.loc[("none", "curve"), "share"] == 0.5 and share.loc[("none", "curve"), "share_others"] == 0.0
    assert share.loc[("resize", "probe"), "share_others"] == 0.0
    assert (share.chance == 0.5).all() and (share.n_others == 8).all() and (share.n_queries == 16).all()
    # with the sharpest named "blurriest" instead, the resize queries are never there
    flipped = {a: -v for a, v in SHARP.items()}
    f = ce.blurriest_share(ce.corruption_confusions(predictions()), flipped, k=2).set_index(["corruption", "method"])
    assert f.loc[("resize", "curve"), "blurriest"] == "diffusion, gan" and f.loc[("resize", "curve"), "share"] == 0.0


def test_blurriest_share_errors():
    c = ce.corruption_confusions(predictions())
    with pytest.raises(InputError, match="no sharpness for"):
        ce.blurriest_share(c, {"gmm": 0.1}, k=1)
    with pytest.raises(InputError, match="k must be"):
        ce.blurriest_share(c, SHARP, k=4)


def test_sharpness_falls_with_the_half_resolution_round_trip():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8, 28, 28), dtype=np.uint8)
    sharp = ce.image_sharpness(images)
    half = ce.image_sharpness(corrupt(images, "resize", 0.5))
    assert half < 0.5 * sharp
    flat = np.full((2, 28, 28), 128, np.uint8)
    assert ce.image_sharpness(flat) == 0.0
    # a single bright pixel at the centre: Laplacian -4 there and 1 at 4 neighbours (units of 1.0)
    dot = np.zeros((1, 5, 5), np.uint8)
    dot[0, 2, 2] = 255
    lap = np.array([0, 1, 0, 1, -4, 1, 0, 1, 0], float)
    assert ce.image_sharpness(dot) == pytest.approx(lap.var())
    colour = np.repeat(images[..., None], 3, axis=-1)
    assert ce.image_sharpness(colour) == pytest.approx(sharp)
    with pytest.raises(InputError, match="uint8"):
        ce.image_sharpness(images.astype(float))


def test_blur_table_holds_sharpness_where_queries_go_and_the_summary():
    c = ce.corruption_confusions(predictions())
    t = ce.blur_table(c, SHARP)                               # 4 labels: k = round(4/3) = 1 (gmm)
    assert list(t.columns) == ["grain", "corruption", "level", "query_size", "method", "label", "sharpness",
                               "sharpness_rank", "blurriest", "attributed", "share", "share_others", "chance",
                               "n_queries", "n_others"]
    assert len(t) == 2 * 2 * 4 and set(t[t.blurriest].label) == {"gmm"}
    assert t.groupby(["corruption", "method"]).attributed.sum().round(6).eq(1).all()
    r = t[(t.corruption == "resize") & (t.method == "curve")].set_index("label")
    assert r.attributed["gmm"] == r.attributed["vae"] == 0.5 and r.attributed["gan"] == 0
    assert r.sharpness_rank.to_dict() == {"gmm": 1, "vae": 2, "gan": 3, "diffusion": 4}
    assert (r.share == 0.5).all() and (r.chance == 0.25).all()
    two = ce.blur_table(c, SHARP, k=2)
    assert set(two[two.blurriest].label) == {"gmm", "vae"}
    assert (two[(two.corruption == "resize") & (two.method == "curve")].share == 1).all()
    assert [ce.blurriest_k(n) for n in (2, 3, 4, 9)] == [1, 1, 1, 3]


def test_sharpness_by_label_averages_a_labels_sets():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (5, 8, 8)).astype(np.uint8)
    flat = np.full((5, 8, 8), 100, np.uint8)
    s = ce.sharpness_by_label({("a", 0): sharp, ("a", 1): flat, ("b", 0): flat}, lambda k: k[0])
    assert s["b"] == 0 and s["a"] == pytest.approx(ce.image_sharpness(sharp) / 2)


def test_confusions_and_blur_table_carry_the_references_column():
    """Corrupted queries against clean references and against references corrupted the same way
    (notebook 04): one confusion per (corruption, references), never pooled."""
    clean_refs = predictions().assign(references="clean")
    matched = clean_refs[clean_refs.corruption == "resize"].assign(references="corrupted", pred=lambda d: d.true)
    c = ce.corruption_confusions(pd.concat([clean_refs, matched], ignore_index=True))
    assert list(c.columns) == ["grain", "corruption", "level", "references", "query_size", "method", "true",
                               "predicted", "count", "share"]
    assert ce.CONFUSION_KEYS == ("grain", "corruption", "level", "references", "query_size")
    assert set(zip(c.corruption, c.references)) == {("none", "clean"), ("resize", "clean"), ("resize", "corrupted")}
    assert c.groupby(["corruption", "references", "method"])["count"].sum().tolist() == [16] * 6
    m = c[(c.references == "corrupted") & (c.method == "curve")]
    assert (m[m.true == m.predicted]["share"] == 1).all()
    r = c[(c.corruption == "resize") & (c.references == "clean") & (c.method == "curve")].set_index(["true", "predicted"])
    assert r["count"]["gan", "gmm"] == 2 and r["count"]["gan", "gan"] == 0      # as without the matched rows
    t = ce.blur_table(c, SHARP, k=2).drop_duplicates(["corruption", "references", "method"]).set_index(
        ["corruption", "references", "method"])
    assert t.share_others["resize", "clean", "curve"] == 1 and t.share_others["resize", "corrupted", "curve"] == 0
