"""memlib.plots: figures that come out the same on every run."""
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from memlib import plots
from memlib.errors import InputError


def test_seeded_global_rng_repeats_draws_and_restores_the_outer_state():
    np.random.seed(123)
    expected_outer = np.random.random(3)
    np.random.seed(123)
    with plots.seeded_global_rng(7):
        first = np.random.random(4)
    after = np.random.random(3)
    with plots.seeded_global_rng(7):
        second = np.random.random(4)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(after, expected_outer)  # the block did not consume outer draws
    with plots.seeded_global_rng(8):
        assert not np.array_equal(np.random.random(4), first)


def _strip_png(seed):
    import seaborn as sns
    frame = pd.DataFrame({"family": list("aabbcc") * 3, "rho": np.linspace(-1, 1, 18)})
    fig, ax = plt.subplots(figsize=(3, 2))
    with plots.seeded_global_rng(seed):
        sns.stripplot(data=frame, x="family", y="rho", ax=ax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def test_strip_plot_png_is_identical_across_runs_with_the_same_seed():
    assert _strip_png(0) == _strip_png(0)
    assert _strip_png(0) != _strip_png(1)  # the jitter is real, and seeded


def test_grid_array_tiles_images_row_by_row():
    images = np.arange(7 * 2 * 3, dtype=np.uint8).reshape(7, 2, 3)
    g = plots.grid_array(images, ncol=3)
    assert g.shape == (3 * 3 + 1, 3 * 4 + 1) and g.dtype == np.uint8
    assert np.array_equal(g[1:3, 1:4], images[0]) and np.array_equal(g[4:6, 5:8], images[4])
    assert np.array_equal(g[7:9, 1:4], images[6]) and (g[7:9, 5:] == 255).all()  # empty cells
    assert (g[0] == 255).all() and (g[:, 4] == 255).all()  # padding between cells
    rgb = plots.grid_array(np.zeros((2, 4, 4, 3), np.uint8), ncol=2)
    assert rgb.shape == (6, 11, 3)
    assert plots.grid_array(images[..., None], ncol=3).shape == g.shape  # (n, H, W, 1) as grey
    with pytest.raises(InputError, match="uint8"):
        plots.grid_array(images.astype(float), ncol=3)


def test_toy_figures_name_what_they_used_not_an_encoder(tmp_path):
    """Notebook 00's figures are footnoted with plots.toy_footer() (no encoder, no images); every
    other figure keeps Study.compute_label() (the encoder and precision)."""
    from memlib.params import load_params
    from memlib.study import Study
    study = Study({**load_params("smoke"), "figures_dir": str(tmp_path)})
    footers = {}
    for name, footer in (("toy", plots.toy_footer()), ("vit", None)):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        study.save(fig, pd.DataFrame({"x": [0.0]}), name, footer=footer)
        footers[name] = fig.texts[-1].get_text()
        plt.close(fig)
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.csv").exists()
    assert footers["vit"] == study.compute_label() and study.params["encoder"] in footers["vit"]
    assert footers["toy"] == plots.toy_footer()
    assert "no encoder" in footers["toy"] and study.params["encoder"] not in footers["toy"]


def test_distinct_colors_never_repeat_and_refuse_too_many_lines():
    import matplotlib.colors as mcolors
    colors = [mcolors.to_hex(c) for c in plots.distinct_colors(19)]
    assert len(set(colors)) == 19
    with pytest.raises(InputError, match="20 lines"):
        plots.distinct_colors(20)


def test_ct_defined_rows_drop_only_ct_methods_at_small_query_sizes():
    from memlib import attribution_eval as ae
    from memlib.ct import MIN_CELL_POINTS
    methods = [ae.CURVE_METHOD, ae.FINAL_LAYER_METHOD, ae.FINAL_NORM_METHOD, ae.BEST_LAYER_METHOD,
               ae.FD_METHOD, ae.KNN_METHOD]
    table = pd.DataFrame([dict(method=m, query_size=s) for m in methods for s in (MIN_CELL_POINTS, MIN_CELL_POINTS + 1)])
    kept = plots.ct_defined_rows(table)
    assert set(kept[kept.query_size == MIN_CELL_POINTS].method) == {ae.FD_METHOD, ae.KNN_METHOD}
    assert set(kept[kept.query_size > MIN_CELL_POINTS].method) == set(methods)
    assert f"m ≤ {MIN_CELL_POINTS}" in plots.ct_undefined_note()


def test_sensitivity_figure_has_a_marker_legend_and_states_its_subset():
    from memlib import sensitivity_eval
    d = pd.DataFrame([
        dict(claim="1-depth-trend", choice="n_cells", value=3, metric=0.05, ci_low=0.04, ci_high=0.06,
             verdict="partly", flips=False, is_default=True),
        dict(claim="1-depth-trend", choice="n_cells", value=50, metric=np.nan, ci_low=np.nan, ci_high=np.nan,
             verdict=sensitivity_eval.UNDEFINED, flips=False, is_default=False),
        dict(claim="1-depth-trend", choice="image_size", value=224, metric=np.nan, ci_low=np.nan, ci_high=np.nan,
             verdict=sensitivity_eval.NOT_RUN, flips=False, is_default=False),
        dict(claim="1-depth-trend", choice="pca_dim", value=16, metric=0.09, ci_low=0.08, ci_high=0.1,
             verdict="reproduced", flips=True, is_default=False)])
    note = plots.subset_note({"n_bootstrap": 20, "mixture_families": ["diffusion"]}, {"m": 60}, 224)
    assert "sensitivity_subset: n_bootstrap=20, mixture_families=diffusion" in note and "image_size 224: m=60" in note
    fig = plots.sensitivity_figure(d, ["n_cells", "pca_dim", "image_size"], metric_label="late − early",
                                   thresholds=[(0, "0")], ci_level=0.95, footnote=note)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:5] == [label for label, *_ in plots.SENSITIVITY_MARKERS]
    assert any("kept" in t for t in legend) and any("flipped" in t for t in legend)
    assert any("not run" in t for t in legend) and any("undefined" in t for t in legend)
    assert note in [t.get_text() for t in fig.texts]
    assert "subset" in fig.axes[0].get_title()
    plt.close(fig)
