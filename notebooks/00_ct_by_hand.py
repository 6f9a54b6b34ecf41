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
# # 00 · C_T by hand: the data-copying score on a toy you can see
#
# Before any ViT, any image or any generative model: a 2-D world small enough to look at, and
# five toy "generators" whose behaviour we know in advance. We compute the data-copying score
# $C_T$ of Meehan, Chaudhuri & Dasgupta (AISTATS 2020) **by hand**, step by step, next to the
# library's `memlib.ct.ct_score`, and check that both agree. Then we look at what the number
# means: its sign, its noise level, its floor, why it depends on the set sizes, why it depends
# on the feature space ("layer"), and what that means for attributing a set to its generator.
# No claims are tested here; this notebook writes figures only. It runs in well under a minute.
#
# **The sets.** $T$: the training set (size $l$). $P_n$: held-out real data, never trained on
# (size $n$). $Q_m$: a generated set (size $m$). $C_T$ asks: *are the generated points closer to
# the training points than fresh real data is?*
#
# **The definition** (the exact recipe, with every choice, is in `docs/design.md`):
#
# 1. PCA of $T$ to `pca_dim` dimensions (64 by default; skipped here: our points have 2);
# 2. k-means with $k$ cells on $T$; every point of every set gets the cell of its nearest centre;
# 3. in each cell $\pi$: $L(x)$ = distance from $x$ to its nearest training point **in the same
#    cell**; $U$ = the number of pairs $(q, p)$ with $L(q) > L(p)$ (ties count ½), a Mann–Whitney
#    statistic; $Z_U(\pi) = \big(U - (n_\pi m_\pi/2 - 0.5)\big) / \sqrt{n_\pi m_\pi (n_\pi + m_\pi + 1)/12}$;
# 4. cells holding $\le \tau = 20/m$ of the generated points are dropped;
# 5. $C_T = \sum_\pi P_n(\pi)\, Z_U(\pi) / \sum_\pi P_n(\pi)$ over the kept cells, with
#    $P_n(\pi) = n_\pi / n$.
#
# **Sign.** $C_T \ll 0$: generated points sit closer to $T$ than fresh data does: **copying**.
# $C_T \gg 0$: farther: **under-fitting**. $C_T \approx 0$: neither.

# %% tags=["parameters"]
profile = "default"   # params/<profile>.yaml supplies every default
params_file = None    # or your own YAML with the same keys; single keys: papermill -p KEY VALUE

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans

from memlib import claims, plots
from memlib import fingerprint as fp
from memlib.ct import ct_curve, ct_score, ct_statistic, fit_reference
from memlib.params import notebook_params
from memlib.study import Study

P = notebook_params(globals())
study = Study(P)
plots.style()
plt.rcParams["figure.dpi"] = 72  # figures shown here stay small (a light executed notebook); saved PNGs: 130 dpi
FLAG = claims.FLAG_THRESHOLD  # C_T below this counts as flagged for copying

# Set sizes follow the profile: m generated points (copy_m), n = 2m held-out, l = 5m training.
m = P["copy_m"]
n, l = 2 * m, 5 * m
k = P["n_cells"]
print(f"profile {P['profile']}: l = {l} training, n = {n} held-out, m = {m} generated points, "
      f"k = {k} cells, seed {P['seed']}")

# %% [markdown]
# ## A toy world and five toy generators
#
# The data distribution is a mixture of four round Gaussians in the plane (standard deviation
# 0.5, centres at $(\pm 2, \pm 1.5)$; coordinates are in arbitrary "toy units"). $T$ and $P_n$
# are independent draws from it. Five generators, each producing $m$ points:
#
# | generator | what it does | what C_T should say |
# |---|---|---|
# | **fresh** | new draws from the true mixture: the ideal generator | ≈ 0 |
# | **copier** | a training point plus tiny noise, $T + \varepsilon$ with $\varepsilon \sim N(0, 0.005^2 I)$ | ≪ 0 |
# | **detail-copier** | a training point with its $y$ coordinate re-drawn noisily ($y + N(0, 0.15^2)$), $x$ kept | depends on what the space sees (below) |
# | **under-fitter** | the right centres but too wide (sd 0.75 instead of 0.5) | ≫ 0 |
# | **mode-dropper** | draws from three of the four Gaussians only | ≈ 0: C_T does not see missing modes |

# %%
CENTRES = np.array([[-2.0, -1.5], [-2.0, 1.5], [2.0, -1.5], [2.0, 1.5]])
SD = 0.5


def mixture(size, rng, sd=SD, components=(0, 1, 2, 3)):
    """size points (size, 2) float32 (like an encoder's features) from some of the components."""
    pick = rng.choice(components, size)
    return (CENTRES[pick] + sd * rng.standard_normal((size, 2))).astype(np.float32)


def generate(name, size, rng, train):
    """size points (size, 2) float32 of one toy generator; copiers copy rows of ``train``."""
    return _generate(name, size, rng, train).astype(np.float32)


def _generate(name, size, rng, train):
    if name == "fresh":
        return mixture(size, rng)
    if name == "copier":
        return train[rng.choice(len(train), size, replace=False)] + 0.005 * rng.standard_normal((size, 2))
    if name == "detail-copier":
        src = train[rng.choice(len(train), size, replace=False)]
        return src + np.c_[np.zeros(size), 0.15 * rng.standard_normal(size)]
    if name == "under-fitter":
        return mixture(size, rng, sd=1.5 * SD)
    if name == "mode-dropper":
        return mixture(size, rng, components=(0, 1, 2))
    raise ValueError(name)


GENERATORS = ["fresh", "copier", "detail-copier", "under-fitter", "mode-dropper"]
rng = np.random.default_rng(P["seed"])
train, test = mixture(l, rng), mixture(n, rng)
gens = {g: generate(g, m, rng, train) for g in GENERATORS}

# %% [markdown]
# ## Steps 1–2: cells
# With 2 dimensions there is nothing for PCA to reduce (the library skips it whenever the
# dimension is ≤ `pca_dim`). k-means with $k$ cells is fitted on $T$ only — with the same
# settings as the library (`n_init=10`, `random_state=seed`, float64), so our cells are its
# cells — and every set is assigned to the nearest centre.

# %%
kmeans = KMeans(n_clusters=k, n_init=10, random_state=P["seed"]).fit(train.astype(np.float64))


def cell_of(x):
    """The cell of each point: the index of its nearest k-means centre (in float64)."""
    d2 = ((x.astype(np.float64)[:, None, :] - kmeans.cluster_centers_[None]) ** 2).sum(axis=-1)
    return d2.argmin(axis=1)


cells = {"train": cell_of(train), "test": cell_of(test)}
cells.update({g: cell_of(x) for g, x in gens.items()})

fig, axes = plt.subplots(1, len(GENERATORS), figsize=(3.2 * len(GENERATORS), 3.6), sharex=True, sharey=True)
palette = plt.cm.tab10(np.arange(k))
shown = min(400, m)   # points of each set drawn (a light figure); the CSV holds exactly these
rows = [dict(set="train", x=x, y=y, cell=c) for (x, y), c in zip(train[:shown], cells["train"][:shown])]
for ax, g in zip(axes, GENERATORS):
    # pale solid colours and no antialiasing: thousands of dots, yet a small PNG
    ax.scatter(*train[:shown].T, s=4, c=0.45 * palette[cells["train"][:shown]] + 0.55, lw=0, antialiased=False)
    ax.scatter(*gens[g][:shown].T, s=4, c="black", lw=0, antialiased=False)
    ax.set_title(g, fontsize=10)
    ax.set_xlabel("x (toy units)")
    rows += [dict(set=g, x=x, y=y, cell=c) for (x, y), c in zip(gens[g][:shown], cells[g][:shown])]
axes[0].set_ylabel("y (toy units)")
for ax in axes:
    ax.set_aspect("equal")
fig.suptitle(f"Toy world: training points coloured by their k-means cell (k={k}) and each generator's points "
             f"(black); {shown} of each set shown (l={l}, m={m})", fontsize=10)
fig.tight_layout()
study.save(fig, pd.DataFrame(rows), "ct_by_hand_data")

# %% [markdown]
# ## Step 3: the distances $L(x)$
# For every held-out and every generated point: the distance to its nearest training point **of
# the same cell** (a k-d tree per cell does the search). Copies sit much closer than held-out
# points do; the under-fitter's points sit farther away.

# %%
trees = [cKDTree(train[cells["train"] == c]) for c in range(k)]


def nn_distance(x, x_cells):
    """L(x): distance of each point to its nearest training point in its own cell."""
    out = np.empty(len(x))
    for c in range(k):
        sel = x_cells == c
        if sel.any():
            out[sel] = trees[c].query(x[sel])[0]
    return out


L = {name: nn_distance(x, cells[name]) for name, x in [("test", test), *gens.items()]}

fig, axes = plt.subplots(1, len(GENERATORS), figsize=(3.2 * len(GENERATORS), 3.2), sharex=True, sharey=True)
bins = np.geomspace(1e-4, 1.0, 41)
for ax, g in zip(axes, GENERATORS):
    ax.hist(L["test"], bins=bins, weights=np.full(n, 1 / n), color="0.6", alpha=0.7, label=f"held-out P_n (n={n})")
    ax.hist(L[g], bins=bins, weights=np.full(m, 1 / m), histtype="step", lw=1.6, color="crimson",
            label=f"generated (m={m})")
    ax.set_xscale("log")
    ax.set_xlabel("L(x), toy units (log scale)")
    ax.set_title(g, fontsize=10)
axes[0].set_ylabel("share of the set's points per bin")
fig.suptitle("Step 3: L(x) = distance to the nearest training point in the same cell, all cells pooled",
             fontsize=10)
fig.tight_layout()
fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8)
study.save(fig, pd.DataFrame([dict(set=name, cell=int(c), L=d) for name in L for d, c in zip(L[name], cells[name])]),
           "ct_by_hand_distances")

# %% [markdown]
# ## Steps 3–5 by hand: $U$, $Z_U$, $C_T$ — and the library's answer
# $U$ is counted pair by pair (every generated point against every held-out point of its cell),
# the most literal reading of the definition. The continuity term $-0.5$ and the absence of a
# tie correction are as in the reference code.

# %%
def ct_by_hand(L_test, test_cells, L_gen, gen_cells, tau=None):
    """C_T and its per-cell table from per-point distances and cells (steps 3-5)."""
    n_all, m_all = len(L_test), len(L_gen)
    tau = 20 / m_all if tau is None else tau
    table = []
    for c in range(k):
        lp, lq = L_test[test_cells == c], L_gen[gen_cells == c]
        n_c, m_c = len(lp), len(lq)
        u = (lq[:, None] > lp[None, :]).sum() + 0.5 * (lq[:, None] == lp[None, :]).sum()
        z = (u - (n_c * m_c / 2 - 0.5)) / np.sqrt(n_c * m_c * (n_c + m_c + 1) / 12)
        table.append(dict(cell=c, n_cell=n_c, m_cell=m_c, U=u, U_null_mean=n_c * m_c / 2, Z_U=z,
                          kept=m_c / m_all > tau, weight=n_c / n_all))
    table = pd.DataFrame(table)
    kept = table[table.kept]
    return float((kept.weight * kept.Z_U).sum() / kept.weight.sum()), table


rows, per_cell = [], []
for g in GENERATORS:
    by_hand, table = ct_by_hand(L["test"], cells["test"], L[g], cells[g])
    library = ct_score(train, test, gens[g], n_cells=k, pca_dim=P["pca_dim"], seed=P["seed"])
    assert abs(by_hand - library) < 1e-6, (g, by_hand, library)
    rows.append(dict(generator=g, ct_by_hand=by_hand, ct_score=library))
    per_cell.append(table.assign(generator=g))
scores = pd.DataFrame(rows)
per_cell = pd.concat(per_cell, ignore_index=True)
print("by hand == memlib.ct.ct_score for every generator (|difference| < 1e-6)")
per_cell.round(3)

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.6))
x = np.arange(len(GENERATORS))
ax.bar(x, scores.ct_score, color="0.75", label="memlib.ct.ct_score")
ax.scatter(x, scores.ct_by_hand, color="crimson", zorder=3, marker="x", s=60, label="by hand (this notebook)")
plots.zero_line(ax, FLAG)
ax.set_xticks(x, GENERATORS)
ax.set_ylabel("C_T (dimensionless; a weighted mean of z-scores)")
ax.set_title(f"C_T of each toy generator (l={l}, n={n}, m={m}, k={k}); dashed: flag threshold {FLAG:g}\n"
             f"{plots.SIGN_NOTE}", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
study.save(fig, per_cell.merge(scores, on="generator"), "ct_by_hand_scores")

# %% [markdown]
# ## How big is noise? $C_T$ under the null
# If the generator is the data distribution itself (H0), each cell's $Z_U$ is roughly $N(0,1)$,
# and the cells are independent, so $C_T$ — a weighted mean of about $k$ z-scores — has standard
# deviation $\sqrt{\sum_\pi w_\pi^2}/\sum_\pi w_\pi$: $1/\sqrt{3} \approx 0.58$ for three equal
# cells. That is why $|C_T| \lesssim 2$ is noise and the study flags copying below $-2$.
# Check: redraw $P_n$ and a fresh $Q_m$ many times (the same $T$ and cells) and look at the spread.

# %%
N_NULL = 500  # null replicates: a teaching constant (the spread's own error is ~3 %)
null_rng = np.random.default_rng(P["seed"] + 1)
null = []
for r in range(N_NULL):
    p_r, q_r = mixture(n, null_rng), mixture(m, null_rng)
    pc, qc = cell_of(p_r), cell_of(q_r)
    null.append(ct_by_hand(nn_distance(p_r, pc), pc, nn_distance(q_r, qc), qc)[0])
null = np.array(null)
w = np.bincount(cells["test"], minlength=k) / n
sd_theory = np.sqrt((w ** 2).sum()) / w.sum()
print(f"C_T under H0: mean {null.mean():+.2f}, sd {null.std(ddof=1):.2f}; "
      f"theory sqrt(sum w^2)/sum w = {sd_theory:.2f} (1/sqrt(3) = {1 / np.sqrt(3):.2f})")

fig, ax = plt.subplots(figsize=(7, 3.4))
ax.hist(null, bins=25, density=True, color="0.7", label=f"{N_NULL} fresh draws of P_n and Q_m")
grid = np.linspace(-3, 3, 200)
ax.plot(grid, np.exp(-grid ** 2 / (2 * sd_theory ** 2)) / (sd_theory * np.sqrt(2 * np.pi)), color="black",
        label=f"N(0, {sd_theory:.2f}²): k={k} independent unit z-scores")
ax.axvline(0, color="0.3", lw=0.8)
ax.axvline(FLAG, color="crimson", ls="--", lw=0.8, label=f"flag threshold {FLAG:g}")
ax.set_xlabel("C_T (dimensionless)")
ax.set_ylabel("density")
ax.set_title(f"C_T when the generator is the data distribution (H0), n={n}, m={m}, k={k}", fontsize=10)
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
study.save(fig, pd.DataFrame({"replicate": np.arange(N_NULL), "ct": null, "sd_theory": sd_theory}), "ct_by_hand_null")

# %% [markdown]
# ## The floor: how negative can $C_T$ get?
# When every generated point is an exact copy, $L(q) = 0 < L(p)$ for all pairs, so $U = 0$ in
# every cell and $Z_U = -(n_\pi m_\pi/2 - 0.5)/\sqrt{n_\pi m_\pi(n_\pi + m_\pi + 1)/12}
# \approx -\sqrt{3 n_\pi m_\pi/(n_\pi + m_\pi + 1)}$. The floor therefore **depends on the set
# sizes**: about $-\sqrt{3m/k}$ when $n \gg m$, $-\sqrt{3n/k}$ when $m \gg n$. A C_T of $-10$ is
# "at the floor" for $m = 100$ but mild for $m = 5{,}000$. Compare C_T values only at equal
# $n$, $m$ and $k$. The dots are the library's C_T of exact copies of our toy $T$, with our cells
# (their counts are not exactly equal, so they sit close to, not on, the lines).

# %%
def floor(n_all, m_all, cells_k=k):
    """C_T of exact copies with k equal cells (continuity term included)."""
    nc, mc = n_all / cells_k, m_all / cells_k
    return -(nc * mc / 2 - 0.5) / np.sqrt(nc * mc * (nc + mc + 1) / 12)


ms = np.unique(np.geomspace(60, 20 * m, 40).astype(int))
floor_rows = [dict(n=nn, m=mm, floor=floor(nn, mm), ct_exact_copies=np.nan) for nn in (n // 4, n, 4 * n) for mm in ms]
floor_rng = np.random.default_rng(P["seed"] + 2)
for nn in (n // 4, n):
    for mm in (m // 4, m, min(4 * m, l)):
        p_idx = floor_rng.choice(n, nn, replace=False)
        copies = train[floor_rng.choice(l, mm, replace=False)]
        ct_exact = ct_statistic(test[p_idx], cells["test"][p_idx], copies, cell_of(copies),
                                train, cells["train"])
        floor_rows.append(dict(n=nn, m=mm, floor=floor(nn, mm), ct_exact_copies=ct_exact))
floors = pd.DataFrame(floor_rows)

fig, ax = plt.subplots(figsize=(7, 3.8))
for (nn, d), color in zip(floors.groupby("n"), plt.cm.viridis([0.1, 0.5, 0.85])):
    line = d[d.ct_exact_copies.isna()]
    ax.plot(line.m, line.floor, color=color, label=f"−√(3 n_π m_π/(n_π+m_π+1)), n={nn}, k={k} equal cells")
    dots = d[d.ct_exact_copies.notna()]
    ax.scatter(dots.m, dots.ct_exact_copies, color=color, edgecolor="black", zorder=3)
ax.scatter([], [], color="white", edgecolor="black", label="memlib C_T of exact copies (toy data)")
plots.zero_line(ax, FLAG)
ax.set_xscale("log")
ax.set_xlabel("m: generated points (log scale)")
ax.set_ylabel("C_T floor (dimensionless)")
ax.set_title("The floor of C_T depends on the set sizes n and m (dashed: flag threshold)", fontsize=10)
ax.legend(fontsize=7, loc="lower left")
fig.tight_layout()
study.save(fig, floors, "ct_by_hand_floor")

# %% [markdown]
# ## Two "layers": why the curve depends on the feature space
# An encoder layer is a feature map; C_T is computed in its space. Take two: the **identity**
# ($x$, $y$) and a **projection that drops $y$** (only $x$). The same sets give different
# C_T in each, with bootstrap intervals over the generated points:
#
# * the **copier** ($T$ + tiny noise) is flagged in the identity, but not in the projection:
#   in one dimension the training points are far denser, so fresh held-out points also sit
#   extremely close to some training point and the tiny noise no longer looks like copying;
# * the **detail-copier** (keeps $x$, re-draws $y$) is flagged weakly or not at all in the
#   identity, but sits at the floor in the projection, which cannot see the detail it changed:
#   there it is an exact copy;
# * the **under-fitter** under-fits in both; **fresh** and the **mode-dropper** stay within the
#   noise (|C_T| < 2) in both.
#
# This is the toy version of the paper's claim 2: a layer that is invariant to some change
# flags copies that differ only by that change. Which layer flags what depends on what each
# layer keeps and what it throws away, and on how dense the training data is in its space.

# %%
def layers(x):
    """Two feature spaces of points x (N, 2): the identity and the projection onto x."""
    return [x, x[:, :1]]


LAYER_NAMES = ["identity (x, y)", "projection (x only)"]
reference = fit_reference(layers(train), layers(test), n_cells=k, pca_dim=P["pca_dim"], seed=P["seed"])
layer_rows = []
for g in GENERATORS:
    ct, lo, hi = reference.curve_bootstrap(layers(gens[g]), n_boot=P["n_bootstrap"], seed=P["seed"])
    assert np.allclose(ct, ct_curve(layers(train), layers(test), layers(gens[g]), n_cells=k,
                                    pca_dim=P["pca_dim"], seed=P["seed"]))
    layer_rows += [dict(generator=g, layer=i + 1, space=LAYER_NAMES[i], ct=ct[i], ct_lo=lo[i], ct_hi=hi[i])
                   for i in range(2)]
layer_table = pd.DataFrame(layer_rows)

fig, ax = plt.subplots(figsize=(7, 4))
for g, color in zip(GENERATORS, plt.cm.tab10(np.arange(len(GENERATORS)))):
    d = layer_table[layer_table.generator == g]
    plots.curve(ax, d.ct, d.ct_lo, d.ct_hi, label=g, color=color)
plots.zero_line(ax, FLAG)
ax.set_xticks([1, 2], LAYER_NAMES)
ax.set_xlim(0.7, 2.3)
ax.set_xlabel("feature space ('layer')")
ax.set_ylabel("C_T (dimensionless)")
ax.set_title(f"C_T-layer curves of the toy generators: 95 % bootstrap bands ({P['n_bootstrap']} resamples)\n"
             f"n={n}, m={m}, k={k}; dashed: flag threshold {FLAG:g}; {plots.SIGN_NOTE}", fontsize=9)
ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left", title="generator")
fig.tight_layout()
study.save(fig, layer_table, "ct_by_hand_layers")
layer_table.pivot_table(index="generator", columns="space", values="ct", sort=False).round(2)

# %% [markdown]
# ## Attribution by the nearest curve, with and without size matching
# A curve (here 2 numbers: C_T in each space) can serve as a fingerprint: which generator made
# this set? Each generator gets 3 independent seeds of $m$ points. Leave one seed out: the
# held-out seed's sets are the queries, the other seeds' curves the references, and a query
# is attributed to the generator of the nearest reference curve (`memlib.fingerprint.attribute`,
# Euclidean distance). Queries are random subsets of size $s \le m$.
#
# **Size matters.** With a fixed effect, $|Z_U|$ grows like $\sqrt{n_\pi m_\pi/(n_\pi+m_\pi)}$, so a
# small query's curve is shrunk toward 0 compared with a full-size reference. Compared with
# full-size references ("without size matching") it looks most like the reference closest to 0.
# Computing every reference curve from subsets of the *same* size $s$ ("size-matched") removes
# this. Subset curves cost no new search: each point's cell and $L(x)$ do not depend on the
# other points, so `Reference.subset_curves` re-counts them.

# %%
SEEDS = [0, 1, 2]
keys = [(g, s) for g in GENERATORS for s in SEEDS]
per_point = {}
for g, s in keys:
    set_rng = np.random.default_rng([P["seed"], GENERATORS.index(g), s])
    per_point[g, s] = reference.layer_distances(layers(generate(g, m, set_rng, train)))
sizes = sorted({q for q in P["query_sizes"] if q <= m} | {m})
sizes = [q for q in sizes if q > 20 * k]   # a cell needs > 20 points (tau = 20/s): smaller ones lose cells
draws = P["n_query_draws"]


def curves_of(key, size, n_draws, seed):
    subsets = fp.subsample_indices(m, size, 1 if size == m else n_draws, seed)
    return reference.subset_curves(per_point[key], subsets)


families, seeds_of = np.array([g for g, _ in keys]), np.array([s for _, s in keys])
acc_rows, scatter_rows, pred_rows = [], [], []
for size in sizes:
    for matched in (False, True):
        correct = []
        for fold in fp.seed_folds(families, seeds_of):
            ref_size = size if matched else m
            refs = [(keys[i], c) for i in fold.refs for c in curves_of(keys[i], ref_size, draws, 10 * i + ref_size)]
            ref_curves = np.array([c for _, c in refs])
            ref_labels = np.array([key[0] for key, _ in refs])
            for i in fold.queries:
                queries = curves_of(keys[i], size, draws, 1000 + 10 * i + size)
                pred = fp.attribute(queries, ref_curves, ref_labels).labels
                correct += list(pred == keys[i][0])
                pred_rows += [dict(query_size=size, matched=matched, true=keys[i][0], predicted=p) for p in pred]
                if matched:
                    scatter_rows += [dict(generator=keys[i][0], size=size, ct_identity=c[0], ct_projection=c[1])
                                     for c in queries]
        acc, lo, hi = fp.accuracy_ci(np.array(correct))
        acc_rows.append(dict(query_size=size, references="size-matched" if matched else f"full size (m={m})",
                             accuracy=acc, acc_lo=lo, acc_hi=hi, n_queries=len(correct)))
accuracy = pd.DataFrame(acc_rows)

fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
ax = axes[0]
for (label, d), color in zip(accuracy.groupby("references", sort=False), ["0.5", "crimson"]):
    ax.errorbar(d.query_size, d.accuracy, yerr=[d.accuracy - d.acc_lo, d.acc_hi - d.accuracy], marker="o",
                capsize=3, color=color, label=f"references: {label}")
ax.axhline(1 / len(GENERATORS), color="0.3", ls=":", lw=1, label=f"chance (1/{len(GENERATORS)})")
ax.set_xscale("log")
ax.set_xticks(sizes, [str(q) for q in sizes])
ax.minorticks_off()
ax.set_ylim(0, 1.05)
ax.set_xlabel("query size s (generated points per query, log scale)")
ax.set_ylabel("attribution accuracy (95 % Wilson CI)")
n_q = int(accuracy.n_queries.iloc[0])
ax.set_title(f"Nearest-curve attribution, leave one seed out\n({n_q} queries per point: "
             f"{len(GENERATORS)} generators × 3 seeds × {draws} subsets)", fontsize=10)
ax.legend(fontsize=8, loc="lower right")
ax = axes[1]
pts = pd.DataFrame(scatter_rows)
for g, color in zip(GENERATORS, plt.cm.tab10(np.arange(len(GENERATORS)))):
    for size, marker in zip([sizes[0], sizes[-1]], ["o", "s"]):
        d = pts[(pts.generator == g) & (pts["size"] == size)]
        ax.scatter(d.ct_identity, d.ct_projection, s=14 if size == sizes[-1] else 8, marker=marker, color=color,
                   lw=0, antialiased=False, label=f"{g}, s={size}")
ax.axhline(0, color="0.3", lw=0.8)
ax.axvline(0, color="0.3", lw=0.8)
ax.axhline(FLAG, color="crimson", lw=0.8, ls="--", alpha=0.7)
ax.axvline(FLAG, color="crimson", lw=0.8, ls="--", alpha=0.7)
ax.set_xlabel("C_T in the identity space")
ax.set_ylabel("C_T in the projection (x only)")
ax.set_title("Each query's curve as a point: small queries (o) shrink toward 0", fontsize=10)
ax.legend(fontsize=6, ncol=2, bbox_to_anchor=(1.02, 1), loc="upper left")
fig.tight_layout()
study.save(fig, accuracy, "ct_by_hand_attribution")
preds = pd.DataFrame(pred_rows)
small = preds[(preds.query_size == sizes[0]) & ~preds.matched & ~preds.true.isin(["fresh", "mode-dropper"])]
print(f"s = {sizes[0]} against full-size references: {small.predicted.isin(['fresh', 'mode-dropper']).mean():.0%} "
      f"of the copier, detail-copier and under-fitter queries are attributed to fresh or mode-dropper")
accuracy.round(3)

# %% [markdown]
# **Reading it.** The copier, the detail-copier and the under-fitter have curves of their own and
# are recognised. Fresh and mode-dropper have the same curve (≈ 0 in both spaces, within the
# noise): C_T measures distances to the training set, and a generator that leaves out a mode puts
# its points where real data lies, so no C_T-based fingerprint can tell these two apart; the best
# possible accuracy is therefore about 0.8 (three sure calls and a coin flip, out of five).
# Against full-size references, small queries drift toward the references closest to 0 — fresh
# and mode-dropper — and accuracy falls (printed above); size-matched references keep it at its
# ceiling. The study's fingerprinting (notebook 04) uses size-matched references for this reason.
#
# ## Exercises
# 1. **Sign and scale.** Change the copier's noise from 0.005 to 0.02 and 0.05. At which noise
#    does it stop being flagged in the identity space? Compare with the typical $L(p)$ of
#    held-out points in the histogram above.
# 2. **The floor.** With $n = 2m$ and $k = 3$, what is the smallest $m$ for which exact copies
#    can reach $C_T < -10$? Check it with `floor()` and with `ct_score` on exact copies.
# 3. **Cells and τ.** Set $k = 10$ (`-p n_cells 10`). How many cells survive $\tau = 20/m$ for
#    the mode-dropper? Does its C_T change? Why can C_T not see a missing mode?
# 4. **Noise level.** Re-run the null with $k = 1$ and $k = 10$. Does the spread follow
#    $\sqrt{\sum w^2}/\sum w$?
# 5. **Which layer?** Add a third space, the projection onto $y$. Predict each generator's C_T
#    there before computing it. Which generator's curve changes most?
# 6. **Attribution.** At the smallest query size, which generators are lost without size
#    matching, and to whom? Attribute with `distance="cosine"` (which divides out the overall
#    scale of a curve) against full-size references: how much of the gap does it close, and why
#    is cosine helpless for curves near 0?
