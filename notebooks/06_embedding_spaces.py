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
# # 06 · Is a verdict a property of ViT layers, or of one checkpoint?
#
# The paper's claims are about **the layers of Vision Transformers** in general. Every verdict of
# notebooks 02–04 comes from one embedding space: the profile's encoder (by default a
# saliency-fine-tuned DINOv2-S/14 run at 112 px on Fashion-MNIST upscaled from 28 px; the
# *checkpoint* below). A reader's first objection to any verdict is "that is this checkpoint at
# this resolution". The `+shuffled` and `+random` controls of notebooks 02–03 answer "is it
# learned?", not "is it general?".
#
# No other pretrained weights can be downloaded here, but encoders can be trained here
# (`memlib.trained_encoders`, docs/design.md "Trained encoders"). So every claim is asked again,
# **with its own rule and the same sets**, in four spaces:
#
# | space | what it is | layers |
# |---|---|---|
# | the checkpoint | the profile's `encoder` at the profile's `image_size` | its blocks |
# | `fmnist-vit` | a plain ViT trained here, supervised, at the native 28 px | its blocks |
# | `fmnist-cnn` | a small ResNet trained here, supervised, at 28 px | its residual blocks (pooled over space) |
# | `pixels` | the images themselves | one |
#
# The trained encoders learn from a window of the training split that no generator, reference,
# test or fresh set uses (`memlib.trained_encoders.check_encoder_windows` refuses any overlap).
#
# **Layers on one axis.** The spaces have different depths (12, 6 and 6 blocks by default), so
# layers are compared on a **relative depth** axis: block / number of blocks (1 = the last
# block). The claims' contrasts already are relative: late minus early is the mean over the last
# third of the layers minus the first third, whatever their number.
#
# **Pixels** are one layer: no depth contrast (claims 1a, 1b, 2) and no curve over layers
# (claims 3–4: the "curve" would be one C_T number, the final-layer baseline itself). Their rows
# say `untestable here` and why; pixels remain one of claim 2's two references in every other
# space.

# %% tags=["parameters"]
profile = "default"   # params/<profile>.yaml supplies every default
params_file = None    # or your own YAML with the same keys; single keys: papermill -p KEY VALUE

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from memlib import claims, embedding_spaces, plots, trained_encoders, zoo
from memlib.params import notebook_params
from memlib.study import Study

P = notebook_params(globals())
study = Study(P)
plots.style()
SPACES = embedding_spaces.spaces(P)
SUB = P["embedding_spaces_subset"]
print("spaces:", SPACES)
print("subset:", SUB)

# %% [markdown]
# ## The encoders trained here
# Trained once from a fixed seed and cached by content (the first run trains, later runs load).
# `encoders.csv`: recipe, data windows, parameters, test accuracy on held-out images, training
# wall-clock and CPU seconds, torch threads, the load average while training and the CPU. The
# seconds are this machine's and depend on what else ran on its cores.

# %%
encoders = trained_encoders.write_encoders_table(study.figures_dir / "encoders.csv", P)
encoders[["name", "kind", "n_layers", "dim", "n_params", "test_accuracy", "train_seconds", "train_cpu_seconds", "cpu"]]

# %% [markdown]
# ## The same sets as notebooks 02–04
# The zoo and the memorization gradient are trained (or loaded) exactly as in notebook 03; the
# copies, fresh images and mixtures are rebuilt from the same seeds, so every space scores the
# same images. Features are cached by content: the checkpoint's were embedded by notebooks
# 02–04.

# %%
gradient = zoo.gradient_models(P)
zoo.zoo_sample(P, progress=False)
zoo.zoo_sample(P, models=gradient, n_samples=P["gradient_n_samples"], progress=False)
if zoo.recipe_models(P):
    zoo.zoo_sample(P, models=zoo.recipe_models(P), progress=False)
sets = {k: zoo.zoo_samples(k[0], k[2], k[1], P, progress=False) for k in zoo.zoo_models(P) if k[1] == "standard"}
grad_sets = {k: zoo.zoo_samples(k[0], k[2], k[1], P, n_samples=P["gradient_n_samples"], progress=False)
             for k in gradient}
recipe_sets = {(a, zoo.recipe_of(v), s): zoo.zoo_samples(a, s, v, P, progress=False) for a, v, s in zoo.recipe_models(P)}
print(f"{len(sets)} standard zoo sets, {len(grad_sets)} gradient sets, {len(recipe_sets)} sets of other training recipes")

# %% [markdown]
# ## The rules, fixed before any number of a trained encoder's space
# **Each claim in each space** is decided by the claim's own rule, the same function as in its
# notebook: 1a and 1b by `memlib.claims.claim_1a_verdict` / `claim_1b_verdict` on the sets of
# notebook 03 (`memlib.copy_depth.run_claim_1`, hierarchical intervals over reference draws,
# architectures, sets and points), claim 2 by `memlib.claims.copy_levels_claim` (the space's
# encoder against *its own* `+shuffled` control and pixels), claims 3, 4a and 4b by
# `memlib.claims.fingerprint_claims` (notebook 04's zoo sets, leave one seed out, clean queries),
# 3-recipe and 3-recipe-family by `memlib.claims.claim_3_recipe_claim` / `claim_3_recipe_family_claim`
# on the same folds across training recipes (`memlib.recipe_eval`; untestable without `zoo_recipes`).
#
# **Generality, one verdict per claim** (`memlib.claims.generality_verdict`, its history in the
# `rule_history` columns): the checkpoint's verdict *holds* in another space when that space
# gives the same verdict word. Then:
#
# * **every space** — it holds in every trained ViT and in the CNN;
# * **every ViT space** — it holds in every trained ViT but not in the CNN (or the CNN could not
#   decide): a property of ViT layers, not of layers in general;
# * **only the checkpoint** — it holds in no other space: a property of this checkpoint (or of
#   its resolution), not of ViT layers;
# * **mixed** — anything else (e.g. the CNN agrees and the trained ViT does not);
# * **untestable beyond the checkpoint** / **in the checkpoint** — no other space, or the
#   checkpoint itself, could decide the claim.
#
# **A stated subset.** To fit the study's time budget, every space (the checkpoint included,
# so that all are compared with the same care) runs with `embedding_spaces_subset`: fewer
# bootstrap replicates for every interval and fewer query draws for claims 3–4, and clean
# queries only (the corrupted ones decide none of the rows). The checkpoint's row here is
# therefore the subset's verdict; its full-size verdict is in `claims.csv`, and the table below
# shows both.

# %%
print(claims.RULE_GENERALITY)

# %% [markdown]
# ## Every claim in every space
# One Study per space (`memlib.embedding_spaces.space_study`): the profile's parameters with
# the encoder replaced; a trained encoder runs at its native 28 px, the checkpoint at the
# profile's `image_size`. The first run embeds every set in the trained encoders (and their
# `+shuffled` controls); `embedding_spaces_cost.csv` holds the seconds of each part.

# %%
run = embedding_spaces.run(P, sets, grad_sets, recipe_sets=recipe_sets, subset=SUB)
table = run.table
study.save_table(table, "embedding_spaces")
study.save_table(run.seconds, "embedding_spaces_cost")
study.save_table(run.excluded, "embedding_spaces_excluded")
print(f"{run.seconds.seconds.sum() / 60:.1f} min in {run.seconds.encoder.nunique()} spaces")
table.pivot_table(index="claim", columns="encoder", values="verdict", aggfunc="first", sort=False)

# %% [markdown]
# The checkpoint on the subset beside its full-size verdict in `claims.csv` (written by
# notebooks 02–04 in the same run; empty when they did not run). A difference here is the
# subset's doing, not the space's.

# %%
claims_csv = study.figures_dir / claims.CLAIMS_TABLE
full = pd.read_csv(claims_csv).set_index("claim") if claims_csv.exists() else pd.DataFrame(columns=["verdict", "value"])
here = table[table.kind == "checkpoint"].set_index("claim")[["value", "ci_low", "ci_high", "verdict"]]
here.join(full[["value", "verdict"]].rename(columns=lambda c: f"{c} (claims.csv)"), how="left").round(3)

# %% [markdown]
# ## Each claim's number per space, with its interval
# One panel per claim: the number its rule reads (1a, 1b: late-minus-early effect contrast;
# 2: the weaker direction's contrast, < 0 = holds; 3: share of architectures separated; 4a:
# accuracy at the largest query size; 4b: curve minus the best baseline; 3-recipe: the largest
# across-recipe / nearest-other-architecture distance ratio, < 1 = separated), its interval
# (`ci_level`), the verdict under each point, and the generality verdict in the title. A grey
# cross: untestable in that space.

# %%
order = list(SPACES)
gen = table[table.encoder == embedding_spaces.GENERALITY_ENCODER].set_index("claim").verdict
per = table[table.encoder != embedding_spaces.GENERALITY_ENCODER]
colors = {"reproduced": "tab:green", "partly": "tab:orange", "not reproduced": "tab:red", claims.UNTESTABLE: "0.6"}
claim_ids = list(embedding_spaces.CLAIM_IDS)
fig, axes = plt.subplots(2, 5, figsize=(19, 7.4))
for ax, claim in zip(axes.flat, claim_ids):
    d = per[per.claim == claim].set_index("encoder").reindex(order)
    for x, (enc, r) in enumerate(d.iterrows()):
        if r.verdict == claims.UNTESTABLE or not np.isfinite(r.value):
            ax.plot(x, 0, "x", color="0.6", ms=8)
        else:
            ax.errorbar(x, r.value, yerr=[[r.value - r.ci_low], [r.ci_high - r.value]] if np.isfinite(r.ci_low) else None,
                        fmt="o", color=colors[r.verdict], ms=6, capsize=3)
        ax.annotate(r.verdict, (x, 0), xycoords=("data", "axes fraction"), xytext=(0, 3), textcoords="offset points",
                    ha="center", fontsize=6, color=colors.get(r.verdict, "0.3"))
    ax.axhline(0, color="0.3", lw=0.7)
    ax.set_xticks(range(len(order)), [f"{SPACES[e]}\n{e.split(':')[-1][:16]}" for e in order], fontsize=6)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_title(f"{claim}\ngenerality: {gen.get(claim, '')}", fontsize=8)
axes.flat[-1].set_axis_off()
axes.flat[-1].text(0, 0.5, "\n".join(f"{v}: {k}" for k, v in {
    "late − early effect": "1a, 1b", "weaker direction's contrast (< 0 holds)": "2",
    "share of architectures separated": "3", "accuracy, largest query": "4a", "curve − best baseline": "4b",
    "across-recipe / nearest-other ratio (< 1 separated)": "3-recipe, 3-recipe-family"}.items()),
    fontsize=7, va="center")
fig.suptitle("Every claim in every embedding space (own rule, same sets): number and interval per space", fontsize=10)
fig.tight_layout()
FOOT = (f"subset: {SUB['n_bootstrap']} bootstrap replicates per interval, {SUB['n_query_draws']} query draws per set and "
        f"size, clean queries only (every space, the checkpoint included); full-size checkpoint verdicts: claims.csv")
study.save(fig, table, "embedding_spaces", footer=FOOT + " · " + study.compute_label())

# %% [markdown]
# ## The layers on one depth axis
# What the contrasts summarise, layer by layer, at relative depth block / number of blocks:
# claim 1a's mean effect over the standard zoo (against each model's own training data), claim
# 1b's mean effect over the copy rows, and claim 2's copy sensitivity of exact copies and of
# low- and high-level copies (mean over strengths) in each space's own encoder. −1 is the
# exact-copy floor; 0 the null (copies look like fresh images).

# %%
lay = run.layers
quantities = list(dict.fromkeys(lay.quantity))
fig, axes = plt.subplots(1, len(quantities), figsize=(3.4 * len(quantities), 3.6), sharey=True, squeeze=False)
for ax, q in zip(axes[0], quantities):
    for i, (enc, g) in enumerate(lay[lay.quantity == q].groupby("encoder", sort=False)):
        ax.plot(g.depth, g.value, marker="o", ms=3, color=plt.cm.tab10(order.index(enc)),
                label=f"{enc} ({g.n_layers.iloc[0]} layers)")
    ax.axhline(0, color="0.3", lw=0.7)
    ax.set_title(q, fontsize=8)
    ax.set_xlabel("relative depth (block / blocks)")
    ax.set_xlim(0, 1.05)
axes[0, 0].set_ylabel("effect size (−1 = exact-copy floor, 0 = null);\nclaim 2: E(t(copies)) − E(t(fresh))")
axes[0, 0].legend(fontsize=6)
fig.suptitle("Per layer, every space on one relative depth axis", fontsize=10)
fig.tight_layout()
study.save(fig, lay, "embedding_spaces_depth", footer=FOOT + " · " + study.compute_label())

# %% [markdown]
# ## Reading it
# One generality verdict per claim. "every space" or "every ViT space" answer the objection
# "that is this checkpoint"; "only the checkpoint" means the verdict belongs to this checkpoint
# (or its resolution), whatever it says about ViT layers. The spaces differ in more than their
# architecture (training data and objective, width, resolution), so agreement is evidence of
# generality across these encoders, not proof for every ViT.

# %%
table[table.encoder == embedding_spaces.GENERALITY_ENCODER][["claim", "verdict", "note"]]
