# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: memlib (.venv)
#     language: python
#     name: memlib
# ---

# %% [markdown]
# # 05 · How each verdict moves with the choices a referee would question
#
# Every verdict of notebooks 02–04 rests on analysis choices nobody varied there: the number of
# C_T cells, the PCA dimension, the token, whether the ViT's final LayerNorm is applied, the image
# size, the size and the choice of the public split $T$, and the size $m$ of the generated sets.
# Here each choice is varied **one at a time** around the profile's defaults
# (`memlib.sensitivity_grid.sensitivity_grid`), and at every setting each claim's verdict is
# recomputed by the same rule and the same memlib functions as in its own notebook
# (`memlib.sensitivity_eval`: claims 1a and 1b → `copy_depth.ClaimOneSets` + `copy_depth.run_claim_1`,
# the function notebook 03 calls, claim 2 → `copy_sensitivity` + `claims.copy_levels_claim`,
# claims 3–4 → `fingerprint_study` + `claims.fingerprint_claims`).
#
# **What each choice means.**
# * `n_cells`: C_T's cells (k-means on $T$). Meehan et al. used many more than 3; more cells mean
#   finer locality but fewer test points per cell.
# * `pca_dim`: the PCA the nearest-neighbour distances live in (`none`: the raw 384 dimensions).
# * `token`: the CLS token or the mean of the patch tokens.
# * `final_norm`: the final LayerNorm applied to every block's output (computed from the cached
#   raw CLS features: LayerNorm acts per token). Every zoo curve falls from layer 10 to 11:
#   is that the scale of the raw residual stream?
# * `image_size`: pixels the ViT sees (112 = 8 × 8 tokens); a new size embeds everything again, so
#   at `sensitivity_large_image_size` every claim runs on a smaller stated subset
#   (`sensitivity_large_subset`: only the rows a claim uses are embedded; claim 2 on fewer copy
#   strengths), at any other size claims 3–4 only.
# * `reference_n`, `reference_split`: how many images of $T$, and a second, disjoint public split.
# * `m`: generated samples per set (copies per condition for claim 2, query size for 3–4). C_T is
#   a $z$-score whose size grows with $m$; claims 1–2 are read on effect sizes, which do not.
#
# **Subsets, stated.** To cost minutes, every setting runs on a subset of each claim's inputs
# (`sensitivity_subset`: fewer samples, bootstrap draws, mixtures and seeds), so the row at the
# defaults is the *subset's* verdict, the reference for every flip, and may differ from
# `claims.csv`. Each row's `note` states its subset. Claim 1 scores every set against its
# generator's own training data, never the public $T$, so at another $T$ its rows are the
# defaults' (said in `note`). Settings that would embed tens of thousands of images again do not
# run a claim; the table says which and why (`note`). Where a choice leaves C_T undefined for one of a
# claim's sets (a kept cell with no test point: many cells around a small $T$), or its number
# comes out NaN (every cell holding 20 or fewer generated points: many cells for m points), the
# verdict is `C_T undefined` with the reason in `note`; neither counts as a flip. A verdict that flips under
# a reasonable choice is a finding.

# %% tags=["parameters"]
profile = "default"   # params/<profile>.yaml supplies every default
params_file = None    # or your own YAML with the same keys; single keys: papermill -p KEY VALUE

# %%
from memlib import claims, plots, sensitivity_eval
from memlib.params import notebook_params
from memlib.study import Study

P = notebook_params(globals())
study = Study(P)
plots.style()
print("grid:", {k: v for k, v in P["sensitivity_grid"].items()})
print("subset:", P["sensitivity_subset"], "| at", P["sensitivity_large_image_size"], "px:", P["sensitivity_large_subset"])

# %% [markdown]
# ## Every setting, every claim
# One evaluation per distinct setting (the defaults once); `sensitivity_cost.csv` holds each
# claim's wall-clock seconds at that setting on this machine.

# %%
table = sensitivity_eval.sensitivity_table(P)
cost = table[["claim", "choice", "value", "is_default", "seconds"]]   # wall-clock: kept apart from the numbers
table = table.drop(columns="seconds")
study.save_table(table, "sensitivity")
study.save_table(cost, "sensitivity_cost")
once = ~cost.is_default | (cost.choice == cost.choice.iloc[0])   # the defaults' evaluation is shared by every choice
print(f"{len(table)} rows, {once.sum() // table.claim.nunique()} settings evaluated in {cost.seconds[once].sum() / 60:.1f} min")
table.pivot_table(index=["choice", "value"], columns="claim", values="verdict", aggfunc="first", sort=False)

# %% [markdown]
# ## Flips: the findings
# Rows whose verdict differs from the one at the defaults (same subset).

# %%
flips = table[table.flips]
print(f"{len(flips)} flips in {len(table)} rows" + ("" if len(flips) else ": every verdict holds under every choice"))
flips[["claim", "choice", "value", "metric", "ci_low", "ci_high", "verdict"]].round(3)

# %% [markdown]
# ## Claim 1 by group: which group decides a flip
# Claims 1a and 1b are means over groups of sets (1a: the standard zoo; 1b: the memorization
# gradient's near copies and the fresh-padded mixtures); 1b's rule also reads every group's
# interval. `sensitivity.csv` keeps each group's late-minus-early contrast and CI
# (`<group>_metric`, `<group>_ci_low`, `<group>_ci_high`, `<group>_n_sets`) beside the pooled
# number, at every setting.

# %%
GROUPS = [c[: -len("_metric")] for c in table.columns if c.endswith("_metric")]
one = table[table.claim.isin([claims.CLAIM_1A, claims.CLAIM_1B])]
cols = ["claim", "choice", "value", "metric", "ci_low", "ci_high", "verdict", "flips"] + [
    f"{g}_{x}" for g in GROUPS for x in ("metric", "ci_low", "ci_high")]
one[~one.is_default | (one.choice == one.choice.iloc[0])][cols].round(3)

# %% [markdown]
# ## One figure per claim
# The claim's number with its CI at every value of every choice (`memlib.plots.sensitivity_figure`;
# filled: the default; red: the verdict flips; grey cross: not run at that setting; orange cross:
# C_T undefined there; the legend says the same). Dashed lines: the thresholds of the claim's rule.
# Each figure states the subset it ran on under its axes (`memlib.plots.subset_note`).

# %%
THRESHOLDS = {claims.CLAIM_1A: [(0, "0: no depth trend")], claims.CLAIM_1B: [(0, "0: no depth trend")],
              "2-memorization-levels": [(0, "0: no level contrast")],
              "3-architecture-signature": [(claims.SIGNATURE_SHARE_PARTLY, "partly ≥ 0.5")],
              "4a-fingerprint-full": [(claims.FULL_ACCURACY_REPRODUCED, "0.95"), (claims.FULL_ACCURACY_CI_LOW, "CI low 0.8")],
              "4b-vs-ct-baselines": [(0, "0"), (claims.BASELINE_GAP_REPRODUCED, "paper +0.30")],
              "4b-vs-feature-baselines": [(0, "0"), (claims.BASELINE_GAP_REPRODUCED, "paper +0.30")]}
METRICS = {claims.CLAIM_1A: "late − early effect size (standard zoo)",
           claims.CLAIM_1B: "late − early effect size (copy rows)", "2-memorization-levels": "weaker direction's contrast",
           "3-architecture-signature": "share of architectures separated", "4a-fingerprint-full": "accuracy",
           "4b-vs-ct-baselines": "curve − best C_T baseline", "4b-vs-feature-baselines": "curve − best feature baseline"}
choices = list(P["sensitivity_grid"])
SUBSET = plots.subset_note(P["sensitivity_subset"], P["sensitivity_large_subset"], P["sensitivity_large_image_size"])
for claim, d in table.groupby("claim", sort=False):
    fig = plots.sensitivity_figure(d, choices, metric_label=METRICS.get(claim, "metric"), thresholds=THRESHOLDS.get(claim, []),
                                   ci_level=P["ci_level"], footnote=SUBSET)
    study.save(fig, d, f"sensitivity_{claim}")

# %% [markdown]
# ## Reading it
# A claim whose verdict holds under every choice is robust to them *on this subset*; a flip
# names the choice that decides it. The README's claims table carries the flips
# ("flips when …"). Cost per setting is in `figures/sensitivity_cost.csv` (`seconds`).

# %%
summary = (table[~sensitivity_eval.not_run_mask(table)].groupby("claim", sort=False)
           .apply(lambda g: ", ".join(f"{c}={v}" for c, v in zip(g[g.flips].choice, g[g.flips].value)) or "robust to every choice run",
                  include_groups=False).rename("flips when"))
summary
