"""Embedding benchmark (issue 6, targets 1 and 4).

Whole process against whole process: ``python -m memlib embed`` on N Fashion-MNIST test images
through ``dinov2-s-offline`` (ViT-S/14, 112 px, all 12 blocks, CLS token, fp16 files) against a
bare timm script (:data:`ANCHOR_SCRIPT`) doing the same forward pass and fp16 ``np.save``: same
images, same converted weights, same resize and normalisation, same batch size and threads, but
plain Python — no memlib loader, cache, prefetch thread or checks. Wall times are medians of
``repeats`` interleaved runs (anchor, memlib, anchor, memlib, ...). Each memlib run gets a fresh
``MEMLIB_CACHE`` temporary folder holding only links to the already converted weights, so the
one-off ONNX → safetensors conversion is not timed (the full run adds one ``cold`` run that
converts them, for information).

Throughput: FLOPs of one ViT-S/14 forward at 112 px (65 tokens) are counted exactly —
``torch.utils.flop_counter`` for the linear layers and patch convolution (its CPU attention
kernel is not counted) plus ``4·T²·D`` per block for QKᵀ and AV — and divided by the time of
memlib's in-process ``embed()`` (pre-built encoder; data resize, forward pass and fp16 cache
writes, no process start). The anchor is the best-of-10 rate of a fp32 2048×2048 ``torch.matmul``
on the same threads, measured in the same run (bf16 8192×8192 on CUDA, where memlib autocasts).

On the CPU the same in-process ``embed()`` also runs with ``precision="bfloat16"`` (bf16
autocast, the profile key ``precision``), timed against the float32 run and a bf16 2048² matmul,
and the two precisions' features are compared (relative error per image and layer).

``run(quick)`` returns rows ``dict(benchmark, metric, value, unit, anchor, ratio, goal, note)``;
``goal`` is ``"ratio <= 1.15"``-style text that ``python -m bench`` checks, or ``""``.
"""
from __future__ import annotations

import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ENCODER = "dinov2-s-offline"
MODEL = "vit_small_patch14_dinov2"
IMAGE_SIZE = 112
BATCH_SIZE = 64
THREADS = 2
N_FULL, N_QUICK = 1024, 128
REPEATS_FULL, REPEATS_QUICK = 3, 1
EMBED_GOAL = 1.15          # memlib embed wall / bare timm wall
GFLOPS_GOAL = 0.70         # achieved GFLOP/s / matmul GFLOP/s
E2E_ANCHORS = {"default": 45 * 60.0, "smoke": 5 * 60.0}   # make figures / make smoke, seconds

# The bare timm script. Arguments: n_images, out_dir, weights.safetensors, images.idx.gz, device,
# batch_size. Everything memlib does to the numbers is repeated here in plain code.
ANCHOR_SCRIPT = r'''
import gzip, sys
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
import timm
from safetensors.torch import load_file

n, out, weights, idx_gz, device, bs = (int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3],
                                       sys.argv[4], torch.device(sys.argv[5]), int(sys.argv[6]))
size = 112
with gzip.open(idx_gz) as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
model = timm.create_model("vit_small_patch14_dinov2", img_size=size, num_classes=0,
                          pretrained=False)
state = load_file(weights)
pos = state["pos_embed"]                       # (1, 1 + 37*37, 384) -> (1, 1 + 8*8, 384)
grid = pos[:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
grid = F.interpolate(grid, size=(size // 14, size // 14), mode="bicubic", align_corners=False)
grid = grid.permute(0, 2, 3, 1).reshape(1, -1, pos.shape[-1])
state["pos_embed"] = torch.cat([pos[:, :1], grid], 1)
model.load_state_dict(state)
model = model.eval().to(device)
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
feats = [np.empty((n, model.embed_dim), np.float16) for _ in model.blocks]
with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16,
                                            enabled=device.type == "cuda"):
    for s in range(0, n, bs):
        x = torch.from_numpy(images[s:s + bs]).float().div_(255.0)[:, None]
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0).expand(-1, 3, -1, -1)
        x = ((x - mean) / std).to(device)
        x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
        for layer, block in enumerate(model.blocks):
            x = block(x)
            feats[layer][s:s + bs] = x[:, 0].float().cpu().numpy()
(out / "cls").mkdir(parents=True, exist_ok=True)
for layer, f in enumerate(feats):
    np.save(out / "cls" / f"layer{layer:02d}.npy", f)
'''


def row(metric: str, value, unit: str, anchor=None, goal: str = "", note: str = "",
        benchmark: str = "embed") -> dict:
    ratio = None
    if anchor not in (None, 0) and value is not None:
        ratio = round(float(value) / float(anchor), 4)
    return dict(benchmark=benchmark, metric=metric, value=_round(value), unit=unit,
                anchor=_round(anchor), ratio=ratio, goal=goal, note=note)


def _round(x):
    return None if x is None else round(float(x), 4)


def run(quick: bool = False, device: str | None = None, threads: int = THREADS) -> list[dict]:
    """Benchmark rows; ``quick``: 128 images, one repeat, no cold run."""
    import torch

    torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    n = N_QUICK if quick else N_FULL
    repeats = REPEATS_QUICK if quick else REPEATS_FULL
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="memlib-bench-") as tmp:
        tmp = Path(tmp)
        weights = _converted_weights()
        idx_gz = _fmnist_test_images()
        anchor_py = tmp / "bare_timm_embed.py"
        anchor_py.write_text(ANCHOR_SCRIPT)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "PYTHONPATH": str(REPO)}
        spec = f"fashion-mnist:test[:{n}]"

        def memlib_cmd(out: Path) -> list[str]:
            return [sys.executable, "-m", "memlib", "embed", spec, "--encoder", ENCODER,
                    "--image-size", str(IMAGE_SIZE), "--batch-size", str(BATCH_SIZE),
                    "--device", device, "--token", "cls", "--out", str(out)]

        anchor_cmd = lambda out: [sys.executable, str(anchor_py), str(n), str(out), str(weights),
                                  str(idx_gz), device, str(BATCH_SIZE)]
        t_memlib, t_anchor, rss_memlib, rss_anchor, cpu_memlib, cpu_anchor = ([] for _ in "123456")
        for r in range(repeats):
            out_a, out_m, cache = tmp / f"anchor{r}", tmp / f"memlib{r}", tmp / f"cache{r}"
            seconds, rss, cpu = _timed(anchor_cmd(out_a), env)
            t_anchor.append(seconds)
            cpu_anchor.append(cpu)
            rss_anchor.append(rss)
            (cache / "weights").mkdir(parents=True)
            for f in (weights, weights.with_suffix(".sha256")):
                os.symlink(f, cache / "weights" / f.name)
            seconds, rss, cpu = _timed(memlib_cmd(out_m), {**env, "MEMLIB_CACHE": str(cache)})
            t_memlib.append(seconds)
            cpu_memlib.append(cpu)
            rss_memlib.append(rss)
        diff = _max_abs_diff(out_a / "cls", out_m / "cls")
        med_m, med_a = statistics.median(t_memlib), statistics.median(t_anchor)
        rep = f"median of {repeats}" if repeats > 1 else "1 run"
        rows.append(row(f"memlib embed CLI, {n} imgs (whole process)", med_m, "s", med_a,
                        f"ratio <= {EMBED_GOAL}",
                        f"{rep}; anchor = bare timm script, same forward + fp16 save; "
                        f"weights pre-converted; memlib runs {_fmt(t_memlib)}, anchor runs "
                        f"{_fmt(t_anchor)}; CPU time memlib {_fmt(cpu_memlib)}, anchor "
                        f"{_fmt(cpu_anchor)}; features agree to max |Δ| {diff:.2g} (fp16)"))
        rows.append(row("memlib embed CLI peak RSS", max(rss_memlib), "MB", max(rss_anchor),
                        note="anchor = bare timm script's peak RSS"))
        if not quick:
            cache = tmp / "cache-cold"
            seconds, _, _ = _timed(memlib_cmd(tmp / "memlib-cold"),
                                   {**env, "MEMLIB_CACHE": str(cache)})
            rows.append(row(f"memlib embed CLI, {n} imgs, cold (converts weights)", seconds, "s",
                            med_a, note="1 run, empty MEMLIB_CACHE: includes ONNX → safetensors"))

        flops_img = vit_flops_per_image()
        total_gflop = flops_img * n / 1e9
        mm_before, mm_label = matmul_gflops(device)
        t_inproc = _inprocess_embed(n, device, tmp, repeats)
        t_fwd = _inprocess_forward(n, device, repeats)
        mm_after, _ = matmul_gflops(device)
        mm_rate = max(mm_before, mm_after)
        rows.append(row(f"matmul {mm_label} ({threads} threads)", mm_rate, "GFLOP/s",
                        note=f"best of 10, before ({mm_before:.0f}) and after ({mm_after:.0f}) "
                        f"the in-process runs; the anchor of every GFLOP/s row"))
        rows.append(row("memlib embed() achieved GFLOP/s", total_gflop / t_inproc, "GFLOP/s",
                        mm_rate, f"ratio >= {GFLOPS_GOAL}",
                        f"{flops_img / 1e9:.3f} GFLOP/img × {n} imgs in {t_inproc:.2f} s "
                        f"({rep}); in-process, encoder built: resize + forward + fp16 cache write"))
        rows.append(row("bare forward pass GFLOP/s", total_gflop / t_fwd, "GFLOP/s", mm_rate,
                        note=f"block loop only on pre-resized batches, {t_fwd:.2f} s ({rep})"))
        rows.append(row("memlib embed() time vs bare forward pass", t_inproc, "s", t_fwd,
                        note="≈ 1: resizing, token pooling and fp16 writes hide behind the "
                        "forward pass (overlapped)"))
        rows.append(row("memlib embed CLI effective GFLOP/s (whole process)",
                        total_gflop / med_m, "GFLOP/s", mm_rate,
                        note="includes interpreter start, imports, model build, data load"))
        if device == "cpu":
            rows.extend(bf16_rows(n, tmp, repeats, t_inproc, total_gflop, rep))
    rows.extend(e2e_rows())
    if not quick:
        rows.append(smoke_cold_row())
    return rows


def bf16_rows(n: int, tmp: Path, repeats: int, t_float32: float, total_gflop: float,
              rep: str) -> list[dict]:
    """The opt-in ``precision: bfloat16`` on the CPU: time, GFLOP/s, and how far its features
    are from float32's (per image ‖Δ‖/‖x‖ of the CLS token, every layer, 256 images)."""
    from memlib.data import load_images
    from memlib.encoders import build_encoder

    t_bf16 = _inprocess_embed(n, "cpu", tmp, repeats, precision="bfloat16")
    mm_bf16, label = matmul_gflops("cpu", dtype="bfloat16")
    images = load_images("fashion-mnist:test[:256]").images
    a = build_encoder(ENCODER, IMAGE_SIZE, "cpu", "float32").layer_tokens(images)["cls"]
    b = build_encoder(ENCODER, IMAGE_SIZE, "cpu", "bfloat16").layer_tokens(images)["cls"]
    rel = np.stack([np.linalg.norm(x - y, axis=1) / np.linalg.norm(x, axis=1) for x, y in zip(a, b)])
    worst = int(rel.max(axis=1).argmax())
    return [
        row("memlib embed() under bf16 autocast (precision: bfloat16)", t_bf16, "s", t_float32,
            note=f"{n / t_bf16:.0f} img/s, {t_float32 / t_bf16:.2f}x the float32 run "
            f"({n / t_float32:.0f} img/s), {rep}; opt-in, the default computes in float32"),
        row(f"matmul {label} (bf16 anchor)", mm_bf16, "GFLOP/s",
            note=f"best of 10; this CPU's bf16 instructions: {_bf16_cpu_flags()}"),
        row("bf16 embed() achieved GFLOP/s", total_gflop / t_bf16, "GFLOP/s", mm_bf16),
        row("bf16 vs float32 features, relative error per image (CLS)", float(np.median(rel)),
            "||d||/||x||", note=f"median over 256 images x 12 layers; largest {rel.max():.4f} "
            f"(layer {worst + 1}); largest per-layer median {np.median(rel, axis=1).max():.4f}"),
    ]


def _bf16_cpu_flags() -> str:
    """The CPU flags that make bf16 matmuls fast (``amx_bf16``, ``avx512_bf16``), or "none"."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    found = sorted({f for f in flags if f in ("amx_bf16", "avx512_bf16", "avx_ne_convert")})
    return " ".join(found) or "none"


def smoke_cold_row() -> dict:
    """Measure ``make smoke`` now: every notebook on the smoke profile from an empty cache
    (encoder conversion, zoo training, features) into a temporary figures folder."""
    from memlib.params import write_params

    with tempfile.TemporaryDirectory(prefix="memlib-bench-smoke-") as tmp:
        tmp = Path(tmp)
        params = write_params(tmp / "smoke.yaml", "smoke", figures_dir=str(tmp / "figures"))
        env = {**os.environ, "MEMLIB_CACHE": str(tmp / "cache"), "PYTHONPATH": str(REPO)}
        seconds, rss, cpu = _timed([sys.executable, "-m", "memlib", "run-notebooks", "--params",
                                    str(params)], env)
    return row("make smoke (profile smoke) wall, measured now from an empty cache", seconds, "s",
               E2E_ANCHORS["smoke"], "ratio <= 1",
               f"1 run of `python -m memlib run-notebooks` on params/smoke.yaml with an empty "
               f"MEMLIB_CACHE (excludes make setup); CPU time {cpu:.0f} s (process tree), "
               f"largest single-process peak RSS {rss:.0f} MB", benchmark="e2e")


def _fmt(times: list[float]) -> str:
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "] s"


def _timed(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds of one subprocess; raises on failure."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd[:4])} … exited {proc.returncode}:\n{tail}")
    return seconds, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def _max_abs_diff(a: Path, b: Path) -> float:
    return max(float(np.abs(np.load(a / f"layer{l:02d}.npy").astype(np.float32)
                            - np.load(b / f"layer{l:02d}.npy").astype(np.float32)).max())
               for l in range(12))


def _converted_weights() -> Path:
    """The project's converted offline weights (converted now if missing; not timed)."""
    from memlib.encoders import CONVERSION_VERSION, cache_root, offline_state_dict

    offline_state_dict()   # converts once, checks the sha256 otherwise
    path = cache_root() / "weights" / f"{ENCODER}-v{CONVERSION_VERSION}.safetensors"
    return path.resolve()


def _fmnist_test_images() -> Path:
    from memlib.data import fashion_mnist_dir

    return (fashion_mnist_dir() / "t10k-images-idx3-ubyte.gz").resolve()


def vit_flops_per_image(image_size: int = IMAGE_SIZE) -> float:
    """FLOPs (multiply-add = 2) of one forward through every block of ViT-S/14.

    Linear layers and the patch convolution are counted by ``FlopCounterMode`` (on a randomly
    initialised copy: same shapes); attention's two matmuls are added as ``4·T²·D`` per block
    because the CPU attention kernel is not counted. Norms, GELU and softmax are not counted.
    """
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = timm.create_model(MODEL, img_size=image_size, num_classes=0, pretrained=False).eval()
    x = torch.zeros(1, 3, image_size, image_size)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        h = model.norm_pre(model._pos_embed(model.patch_embed(x)))
        for block in model.blocks:
            h = block(h)
    counts = counter.get_flop_counts().get("Global", {})
    counted = sum(v for k, v in counts.items() if "attention" not in str(k))
    tokens, dim = h.shape[1], h.shape[2]
    return float(counted + len(model.blocks) * 4 * tokens * tokens * dim)


def matmul_gflops(device: str = "cpu", repeats: int = 10, dtype: str | None = None
                  ) -> tuple[float, str]:
    """Best-of-``repeats`` rate of one square matmul: fp32 2048² on CPU, bf16 8192² on CUDA,
    or ``dtype`` (``"float32"``/``"bfloat16"``) at that device's size."""
    import torch

    cuda = device.startswith("cuda")
    size = 8192 if cuda else 2048
    dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if cuda else torch.float32)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device, dtype)
    b = torch.randn(size, size, generator=gen).to(device, dtype)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(3):
        torch.matmul(a, b)
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    label = f"{'bf16' if dtype == torch.bfloat16 else 'fp32'} {size}x{size}"
    return 2 * size ** 3 / best / 1e9, label


def _inprocess_embed(n: int, device: str, tmp: Path, repeats: int, precision: str = "auto") -> float:
    """Median seconds of memlib's ``embed()`` (fresh cache folder each time, encoder built)."""
    from memlib.data import load_images
    from memlib.encoders import build_encoder
    from memlib.features import embed

    images = load_images(f"fashion-mnist:test[:{n}]")
    enc = build_encoder(ENCODER, IMAGE_SIZE, device, precision)
    embed(images.subset(slice(0, BATCH_SIZE)), enc, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
          cache_dir=tmp / "inproc-warmup", progress=False)
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        embed(images, enc, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
              cache_dir=tmp / f"inproc{r}", progress=False)
        times.append(time.perf_counter() - start)
        shutil.rmtree(tmp / f"inproc{r}", ignore_errors=True)
    return statistics.median(times)


def _inprocess_forward(n: int, device: str, repeats: int) -> float:
    """Median seconds of the bare block loop over pre-resized batches (the model's own rate)."""
    import torch

    from memlib.data import load_images
    from memlib.encoders import build_encoder

    images = load_images(f"fashion-mnist:test[:{n}]").images
    enc = build_encoder(ENCODER, IMAGE_SIZE, device)
    batches = [enc.preprocess(images[s:s + BATCH_SIZE]) for s in range(0, n, BATCH_SIZE)]
    sync = torch.cuda.synchronize if enc.device.type == "cuda" else (lambda: None)
    enc.block_outputs(batches[0])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.autocast(enc.device.type, torch.bfloat16, enabled=enc.device.type == "cuda"):
            for x in batches:
                enc.block_outputs(x)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def e2e_rows() -> list[dict]:
    """``make figures`` / ``make smoke`` wall time from the last run's timings.csv, if any."""
    from memlib.params import load_params

    rows = []
    n_notebooks = len(list((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for profile, target in (("default", "make figures"), ("smoke", "make smoke")):
        try:
            folder = load_params(profile)["figures_dir"]
        except Exception:  # a broken profile must not stop the benchmark
            folder = {"default": "figures", "smoke": "smoke-out/figures"}[profile]
        path = REPO / folder / "executed" / "timings.csv"
        anchor = E2E_ANCHORS[profile]
        if not path.exists():
            rows.append(row(f"{target} (profile {profile}) wall", None, "s", anchor,
                            "ratio <= 1", f"no {path.relative_to(REPO)} yet: run {target}",
                            benchmark="e2e"))
            continue
        with open(path, newline="") as f:
            records = list(csv.DictReader(f))
        seconds = sum(float(r["seconds"]) for r in records)
        note = (f"sum of {len(records)} notebook(s) in {path.relative_to(REPO)} "
                f"({_where_and_when(records)}); excludes make setup")
        partial = n_notebooks and len(records) < n_notebooks
        if partial:
            note += f"; PARTIAL: {len(records)} of {n_notebooks} notebooks, goal not judged"
        rows.append(row(f"{target} (profile {profile}) wall", seconds, "s", anchor,
                        "ratio <= 1", note, benchmark="e2e"))
        if partial:
            rows[-1]["status"] = "n/a"
    return rows


def _where_and_when(records: list[dict]) -> str:
    """Which CPU ran the timed notebooks and when the last one finished, as ``timings.csv``
    recorded them; a timing made on another machine than this benchmark's says so."""
    from memlib.machine import cpu_model

    cpus = sorted({r.get("cpu") or "" for r in records})
    finished = sorted(r["finished"] for r in records if r.get("finished"))
    when = f"finished {finished[-1]}" if finished else "date not recorded"
    if cpus == [""]:
        return f"machine not recorded, {when}"
    here = cpu_model()
    where = " + ".join(c or "not recorded" for c in cpus)
    other = "" if cpus == [here] else ", NOT this benchmark's machine"
    return f"ran on {where}{other}, {when}"


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
