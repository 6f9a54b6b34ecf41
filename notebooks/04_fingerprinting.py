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
# # 04 · C_T-layer curves as fingerprints of the generative architecture (claims 3 and 4)
#
# **The paper's claims.** (3) How much a generative architecture memorises at each level is an
# inherent property of the architecture, so (4) the C_T-layer curve identifies which model
# generated a set of images: "up to 100 % accuracy on full datasets" and a "30 % enhancement in
# identification accuracy over existing baseline methods", without access to the model's
# training data.
#
# **Protocol (fixed before looking at results).**
# * *Sets:* every standard zoo model (each family × each seed).
# * *Leave one seed out:* for each seed $s$, the references are all models with another seed and
#   the queries are random subsets of size $n$ of each family's seed-$s$ samples. A query is thus
#   always made by a model the references never saw (same architecture, different training run).
# * *Size matching:* C_T is a $z$-score whose magnitude grows with the set sizes, so a query of
#   $n$ samples is compared with reference curves computed from subsets of the same size $n$.
#   Thanks to the fitted reference (PCA, cells, per-point nearest-neighbour distances), any
#   subset's curve costs only a re-count — no new embedding or search.
# * *Attribution:* the family of the nearest reference curve (Euclidean distance over layers:
#   it keeps both the level and the shape of the curve, and with size-matched references the
#   level is comparable).
# * *Baselines:* the final-layer C_T alone; the best single layer (chosen on the references by
#   leave-one-set-out, never on queries); the Fréchet distance to each reference set on
#   final-layer features (in the PCA space fitted on $T$, also size-matched); a k-NN probe on
#   final-layer features trained on the reference sets' samples, majority vote over the query.
# * *Reference data:* the public split $T$ (disjoint from every model's training data: the
#   paper's "no access to training data") and, for comparison, the models' own training subset.
# * Accuracy with 95 % intervals from a cluster bootstrap over query sets; confusion matrices;
#   open-set rejection of a family left out of the references; robustness to JPEG, resizing and
#   noise on the queries; a dendrogram of families by curve distance.

# %% tags=["parameters"]
profile = "default"   # params/<profile>.yaml supplies every default
params_file = None    # or your own YAML with the same keys; single keys: papermill -p KEY VALUE

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy.cluster.hierarchy import dendrogram
from sklearn.decomposition import PCA
from tqdm.auto import tqdm

from memlib import fingerprint as fp
from memlib import plots, zoo
from memlib.data import load_images
from memlib.params import notebook_params
from memlib.study import Study

P = notebook_params(globals())
study = Study(P)
plots.style()
keys = [(f, s) for f, v, s in zoo.zoo_models(P) if v == "standard"]
external = {name: [specs] if isinstance(specs, str) else list(specs) for name, specs in P["external_sets"].items()}
keys += [(name, run) for name, specs in external.items() if len(specs) >= 2 for run in range(len(specs))]
skipped = [name for name, specs in external.items() if len(specs) < 2]
if skipped:
    print(f"external models with a single sample set cannot be held out and are left out: {skipped}")
families = np.array([k[0] for k in keys])
seeds = np.array([k[1] for k in keys])
print(f"{len(keys)} sets: {sorted(set(families))} × seeds {sorted(set(seeds))}")

# %% [markdown]
# ## Per-point distances, once per set and reference
# For every set and every layer: each sample's cell and its distance to the nearest training
# point of that cell. The test set's are fixed per reference.

# %%
def set_images(key):
    family, seed = key
    if family in external:
        return load_images(external[family][seed], seed=P["seed"]).images
    return zoo.zoo_samples(family, seed, "standard", P).images

images = {k: set_images(k) for k in tqdm(keys, desc="samples")}
feats = {k: study.features(images[k], name=f"{k[0]}-s{k[1]}") for k in keys}
references = {"public": study.reference(),
              "own-train": study.reference(train="zoo_train", n_train=P["own_reference_n"], whole_set_used=False)}
test_feats = study.features(study.images("test"))
dists = {}
for ref_name, ref in references.items():
    test_d, test_c = ref.layer_distances(test_feats)
    for k in tqdm(keys, desc=f"distances ({ref_name})"):
        gd, gc = ref.layer_distances(feats[k])
        dists[ref_name, k] = (gd, gc, test_d, test_c)
m_total = min(len(images[k]) for k in keys)
sizes = sorted({min(n, m_total) for n in P["query_sizes"]})

# %% [markdown]
# ## Curves of random subsets, and final-layer features for the baselines

# %%
subsets = {n: {k: fp.subsample_indices(len(images[k]), n, 1 if n == len(images[k]) else P["n_query_draws"],
                                       seed=P["seed"] + 1000 * i + n)
               for i, k in enumerate(keys)} for n in sizes}
curves = {(r, n, k): fp.subset_curves(*dists[r, k], subsets[n][k])
          for r in references for n in sizes for k in keys}
# At small n a layer may keep no cell (a cell needs more than τ·n = 20 of the n points): its C_T
# is undefined. We count these and set them to 0 ("no evidence either way") for attribution.
undefined = pd.DataFrame([dict(reference=r, query_size=n, undefined_share=float(np.isnan(c).mean()))
                          for (r, n, k), c in curves.items()]).groupby(["reference", "query_size"]).mean()
curves = {key: np.nan_to_num(c, nan=0.0) for key, c in curves.items()}
print("share of undefined (layer, subset) C_T values:\n", undefined.round(4))
pca = PCA(P["pca_dim"], random_state=P["seed"]).fit(study.features(study.images("reference_train"))[-1])
final = {k: pca.transform(feats[k][-1]) for k in keys}

# %%
def fold_tables(ref_name, n, fold):
    """Reference and query curves (with labels and set ids) of one fold at size n."""
    def stack(idx):
        c = [curves[ref_name, n, keys[i]] for i in idx]
        return (np.concatenate(c), np.concatenate([[families[i]] * len(x) for i, x in zip(idx, c)]),
                np.concatenate([[i] * len(x) for i, x in zip(idx, c)]))
    return stack(fold.refs), stack(fold.queries)

rows, confusions, per_query = [], {}, []
folds = fp.seed_folds(families, seeds)
for ref_name in references:
    for n in tqdm(sizes, desc=f"attribution ({ref_name})"):
        results = {}
        for fold in folds:
            (rc, rl, rg), (qc, ql, qg) = fold_tables(ref_name, n, fold)
            preds = {"C_T-layer curve": fp.attribute(qc, rc, rl).labels,
                     "final-layer C_T": fp.attribute(qc, rc, rl, layers=[-1]).labels,
                     "best single layer": fp.best_layer_attribute(qc, rc, rl, groups=rg)[0].labels}
            if ref_name == "public":
                q_sub = [(i, s) for i in fold.queries for s in subsets[n][keys[i]]]
                ref_fd = [final[keys[i]][subsets[n][keys[i]][0]] for i in fold.refs]
                preds["Fréchet distance (final layer)"] = fp.fd_attribute(
                    [final[keys[i]][s] for i, s in q_sub], ref_fd, families[fold.refs]).labels
                knn = {i: fp.probe_sample_labels(final[keys[i]], [final[keys[j]] for j in fold.refs],
                                                 families[fold.refs]) for i in fold.queries}
                preds["k-NN probe (final layer)"] = np.concatenate(
                    [fp.vote(knn[i], subsets[n][keys[i]]) for i in fold.queries])
            for method, pred in preds.items():
                r = results.setdefault(method, {"true": [], "pred": [], "group": []})
                r["true"].append(ql); r["pred"].append(pred); r["group"].append(qg)
        for method, r in results.items():
            true, pred, group = (np.concatenate(r[x]) for x in ("true", "pred", "group"))
            acc, lo, hi = fp.accuracy_ci(true == pred, method="bootstrap", groups=group, seed=P["seed"])
            rows.append(dict(reference=ref_name, method=method, query_size=n, accuracy=acc, acc_lo=lo,
                             acc_hi=hi, n_queries=len(true)))
            if n == sizes[-1]:
                confusions[ref_name, method] = (true, pred)
accuracy = pd.DataFrame(rows)
study.save_table(accuracy, "fingerprint_accuracy")
accuracy.pivot_table(index=["reference", "method"], columns="query_size", values="accuracy", sort=False).round(2)

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), sharey=True)
for ax, ref_name in zip(axes, references):
    d = accuracy[accuracy.reference == ref_name]
    for method, g in d.groupby("method", sort=False):
        ax.errorbar(g.query_size, g.accuracy, yerr=[g.accuracy - g.acc_lo, g.acc_hi - g.accuracy],
                    marker="o", capsize=3, label=method, lw=2.2 if method == "C_T-layer curve" else 1.2)
    ax.axhline(1 / len(set(families)), color="0.5", ls=":", label="chance")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("query size n (samples)")
    ax.set_title(f"reference T: {ref_name}" + (" (disjoint from training data)" if ref_name == "public" else " (the models' training subset)"), fontsize=9)
axes[0].set_ylabel("attribution accuracy (95 % CI)")
axes[0].legend(fontsize=8, loc="lower right")   # the public panel has every method
fig.suptitle("Which architecture made this set? Leave-one-seed-out attribution", fontsize=10)
fig.tight_layout()
study.save(fig, accuracy, "fingerprint_accuracy_vs_n")

# %% [markdown]
# ## Confusion matrices at the largest query size

# %%
labels = sorted(set(families))
methods = [m for m in accuracy.method.unique()]
fig, axes = plt.subplots(1, len(methods), figsize=(3.3 * len(methods), 3.3))
conf_rows = []
for ax, method in zip(np.atleast_1d(axes), methods):
    true, pred = confusions["public", method]
    cm = fp.confusion_matrix(true, pred, labels)
    sns.heatmap(cm, annot=True, fmt="d", cbar=False, ax=ax, xticklabels=labels, yticklabels=labels, cmap="Blues")
    ax.set_title(method, fontsize=8)
    ax.set_xlabel("predicted")
    conf_rows += [dict(method=method, true=labels[i], predicted=labels[j], count=int(cm[i, j]))
                  for i in range(len(labels)) for j in range(len(labels))]
np.atleast_1d(axes)[0].set_ylabel("true family")
fig.tight_layout()
study.save(fig, pd.DataFrame(conf_rows), "fingerprint_confusion")

# %% [markdown]
# ## Is the curve a property of the architecture? Distances within and between families
# Claim 3 in numbers: full-set curves of two seeds of the same family should be closer to each
# other than to any other family's. The dendrogram groups families by their mean curves.

# %%
full = np.stack([curves["public", sizes[-1], k][0] for k in keys])
D = fp.curve_distances(full, full)
same = families[:, None] == families[None, :]
off = ~np.eye(len(keys), dtype=bool)
sig_rows = []
for f in labels:
    i = families == f
    sig_rows.append(dict(family=f, within=D[np.ix_(i, i)][off[np.ix_(i, i)]].mean(),
                         nearest_other=D[np.ix_(i, ~i)].min(axis=1).mean()))
signature = pd.DataFrame(sig_rows)
signature["separated"] = signature.within < signature.nearest_other
Z, fam_order = fp.family_linkage(full, families)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1.4, 1]})
for i, k in enumerate(keys):
    axes[0].plot(np.arange(1, full.shape[1] + 1), full[i], color=plt.cm.tab10(labels.index(k[0]) % 10),
                 alpha=0.8, label=k[0] if k[1] == seeds[families == k[0]].min() else None)
plots.zero_line(axes[0])
axes[0].set_xlabel("ViT layer")
axes[0].set_ylabel("C_T (public reference)")
axes[0].set_title("Full-set C_T-layer curves, every seed", fontsize=9)
axes[0].legend(fontsize=7)
dendrogram(Z, labels=list(fam_order), ax=axes[1], color_threshold=0)
axes[1].set_title("Families by distance of mean curves", fontsize=9)
fig.tight_layout()
study.save(fig, signature, "fingerprint_signature")
signature.round(2)

# %% [markdown]
# ## Open set: a query from an architecture the references do not know
# One family is left out of the references; its sets are queried alongside held-out seeds of the
# known families. A query is rejected as *unknown* when its nearest reference curve is farther
# than the 95th percentile of leave-one-set-out nearest distances among the references.

# %%
open_rows = []
n_open = sizes[-1]
for fold in fp.open_set_folds(families, seeds):
    (rc, rl, rg), _ = fold_tables("public", n_open, fold)
    q_idx = np.concatenate([fold.queries, fold.unknown])
    qc = np.concatenate([curves["public", n_open, keys[i]] for i in q_idx])
    unknown = np.concatenate([[i in set(fold.unknown)] * len(curves["public", n_open, keys[i]]) for i in q_idx])
    res = fp.open_set(qc, unknown, rc, rl, groups=rg)
    open_rows.append(dict(left_out=fold.held_out[0], seed=fold.held_out[1], auroc=res.auroc,
                          reject_unknown=res.reject_unknown, reject_known=res.reject_known))
open_set = pd.DataFrame(open_rows)
fig, ax = plt.subplots(figsize=(7, 3.2))
o = open_set.groupby("left_out")[["auroc", "reject_unknown", "reject_known"]].mean()
o.plot.bar(ax=ax, rot=0)
ax.set_ylim(0, 1.05)
ax.set_title(f"Open-set rejection at n={n_open} (AUROC of the nearest-reference distance)", fontsize=9)
ax.set_xlabel("family left out of the references")
study.save(fig, open_set, "fingerprint_open_set")
o.round(2)

# %% [markdown]
# ## Robustness: JPEG, resizing and noise on the queries
# The query images (the last seed's models, `robust_n` samples) are corrupted, embedded again and
# attributed against the clean references of the other seeds at the same size.

# %%
last = max(seeds)
fold = [f for f in folds if f.held_out == last][0]
n_rob = min(P["robust_n"], m_total)
ref_idx = {k: fp.subsample_indices(len(images[k]), n_rob, P["n_query_draws"], seed=P["seed"] + 7) for k in keys}
ref_curves = np.nan_to_num(np.concatenate([fp.subset_curves(*dists["public", keys[i]], ref_idx[keys[i]])
                                            for i in fold.refs]), nan=0.0)
ref_labels = np.concatenate([[families[i]] * P["n_query_draws"] for i in fold.refs])
rob_rows = []
for kind, level in [("none", 0)] + [(k, l) for k, levels in P["robust_levels"].items() for l in levels]:
    correct = []
    for i in fold.queries:
        if kind == "none":   # the clean queries: rows of the features computed above
            query = study.features(images[keys[i]], name=f"{keys[i][0]}-s{keys[i][1]}", first=n_rob)
        else:
            imgs = fp.corrupt(images[keys[i]][:n_rob], kind, level, seed=P["seed"])
            query = study.features(imgs, name=f"{keys[i][0]}-{kind}{level}")
        gd, gc = references["public"].layer_distances(query)
        c = np.nan_to_num(fp.subset_curves(gd, gc, *dists["public", keys[i]][2:], [np.arange(n_rob)]), nan=0.0)
        correct.append(fp.attribute(c, ref_curves, ref_labels).labels[0] == families[i])
    acc, lo, hi = fp.accuracy_ci(np.array(correct))
    rob_rows.append(dict(corruption=kind, level=level, accuracy=acc, acc_lo=lo, acc_hi=hi, n_queries=len(correct)))
robust = pd.DataFrame(rob_rows)
fig, ax = plt.subplots(figsize=(7, 3.2))
lab = robust.corruption + " " + robust.level.astype(str)
ax.bar(lab, robust.accuracy, yerr=[robust.accuracy - robust.acc_lo, robust.acc_hi - robust.accuracy], capsize=3)
ax.set_ylim(0, 1.05)
ax.set_ylabel("accuracy (Wilson 95 %)")
ax.set_title(f"Attribution of corrupted queries (n={n_rob}, held-out seed {last})", fontsize=9)
plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
study.save(fig, robust, "fingerprint_robustness")
robust.round(2)

# %% [markdown]
# ## Verdicts on claims 3 and 4
# Rules fixed before looking: **3** *reproduced* if every family's curves are closer within the
# family than to any other family's (and full-size leave-one-seed-out accuracy ≥ 0.9), *partly* if
# most are, else *not reproduced*. **4a** (100 % on full datasets): *reproduced* if the curve
# method's accuracy at the largest n is ≥ 0.95, *partly* if ≥ 0.6. **4b** (+30 % over baselines):
# the curve method's accuracy minus the best baseline's, at each n; *reproduced* if the gap reaches
# 0.30 at some n, *partly* if it is positive somewhere, else *not reproduced*.

# %%
pub = accuracy[accuracy.reference == "public"]
curve_acc = pub[pub.method == "C_T-layer curve"].set_index("query_size").accuracy
best_base = pub[pub.method != "C_T-layer curve"].groupby("query_size").accuracy.max()
best_base_name = pub[pub.method != "C_T-layer curve"].sort_values("accuracy").groupby("query_size").method.last()
gap = (curve_acc - best_base)
ct_base = pub[pub.method.isin(["final-layer C_T", "best single layer"])].groupby("query_size").accuracy.max()
full_acc = float(curve_acc.iloc[-1])
share_sep = float(signature.separated.mean())
v3 = "reproduced" if share_sep == 1 and full_acc >= 0.9 else "partly" if share_sep >= 0.5 else "not reproduced"
v4a = "reproduced" if full_acc >= 0.95 else "partly" if full_acc >= 0.6 else "not reproduced"
v4b = "reproduced" if gap.max() >= 0.30 else "partly" if gap.max() > 0 else "not reproduced"
own_full = float(accuracy[(accuracy.reference == "own-train") & (accuracy.method == "C_T-layer curve")].accuracy.iloc[-1])
claims = study.claims([
    dict(claim="3-architecture-signature",
         statement="A generative architecture's degree of memorization across levels (its C_T-layer curve) is an inherent property of the architecture",
         metric=f"share of {len(labels)} families whose seeds' curves are closer to each other than to any other family; leave-one-seed-out accuracy at n={sizes[-1]}: {full_acc:.2f}",
         value=share_sep, paper_value="qualitative (unique per architecture)", verdict=v3),
    dict(claim="4a-fingerprint-full",
         statement="The C_T-layer curve identifies the generating model with up to 100% accuracy on full datasets",
         metric=f"leave-one-seed-out accuracy of nearest size-matched reference curve at n={sizes[-1]} (public reference; own-train reference: {own_full:.2f}; chance {1 / len(labels):.2f})",
         value=full_acc, paper_value="1.00", verdict=v4a),
    dict(claim="4b-fingerprint-vs-baselines",
         statement="C_T-layer curves improve identification accuracy by 30% over baseline methods",
         metric="max over n of (curve accuracy - best baseline accuracy); per n: " + "; ".join(
             f"n={n}: {gap[n]:+.2f} vs {best_base_name[n]}" for n in gap.index)
             + "; for comparison, gap to the best C_T-only baseline (final layer or best single layer): " + "; ".join(
             f"n={n}: {curve_acc[n] - ct_base[n]:+.2f}" for n in gap.index),
         value=float(gap.max()), paper_value="+0.30", verdict=v4b),
])
claims
