"""Interrupted runs: SIGKILL (or Ctrl-C) in the middle of zoo training, zoo sampling or
embedding leaves nothing that a re-run would trust, and the re-run reuses every finished piece
and gives the same numbers as an uninterrupted run. (The same for a whole notebook run is in
tests/test_determinism.py.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

# A PixelCNN big enough that training and sampling each take a few seconds on one thread, so a
# kill lands inside the phase the test aims at; everything else as small as the zoo allows.
PARAMS = {
    "zoo_train": "fashion-mnist:train[:256]", "zoo_memorize_train": "fashion-mnist:train[:32]",
    "test": "fashion-mnist:test[:64]", "device": "cpu", "zoo_families": ["pixelcnn"],
    "zoo_seeds": [0], "zoo_n_samples": 4000, "zoo_memorize_families": [],
    "zoo_memorize_seeds": [], "zoo_copy_quantile": 0.01, "zoo_threads": 1, "zoo_workers": 1,
    "zoo_hparams": {"pixelcnn": {"kernel": 5, "width": 24, "depth": 3, "n_mix": 2, "steps": 150,
                                 "batch": 32, "lr": 1e-3}},
    "zoo_memorize_hparams": {},
}

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from memlib import zoo
    params, cache, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    print("ready", flush=True)
    s = zoo.zoo_samples("pixelcnn", 0, "standard", params, cache, progress=False)
    np.save(out, s.images)
""")


def _start(cache: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(PARAMS), str(cache), str(out)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _run(cache: Path, out: Path) -> np.ndarray:
    proc = _start(cache, out)
    assert proc.wait(timeout=600) == 0
    return np.load(out, allow_pickle=False)


def _visible_files(root: Path) -> set[str]:
    """Files a later run could read: everything except hidden temporary files."""
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_zoo_killed_in_training_or_sampling_resumes_to_the_same_samples(tmp_path):
    reference = _run(tmp_path / "clean", tmp_path / "clean.npy")
    (entry,) = (tmp_path / "clean" / "zoo").iterdir()

    # 1. killed while training (one second in; training takes several): no file to trust
    cache = tmp_path / "killed-training"
    proc = _start(cache, tmp_path / "a.npy")
    time.sleep(1.0)
    assert proc.poll() is None, "training finished too fast to be interrupted; make PARAMS bigger"
    _kill_when(proc, lambda: True)
    zoo_dir = cache / "zoo"
    assert not zoo_dir.exists() or not _visible_files(zoo_dir), "a partial model is visible"
    np.testing.assert_array_equal(_run(cache, tmp_path / "a.npy"), reference)

    # 2. killed while sampling, right after the model was stored: the model is kept and reused
    cache = tmp_path / "killed-sampling"
    folder = cache / "zoo" / entry.name
    proc = _start(cache, tmp_path / "b.npy")
    _kill_when(proc, lambda: (folder / "train.json").exists())
    assert (folder / "train.json").exists() and (folder / "model.safetensors").exists()
    assert not (folder / "manifest-n4000.json").exists(), \
        "sampling finished before the kill; make PARAMS' sampling slower"
    stamp = (folder / "train.json").stat().st_mtime_ns, (folder / "model.safetensors").stat().st_mtime_ns
    np.testing.assert_array_equal(_run(cache, tmp_path / "b.npy"), reference)
    assert ((folder / "train.json").stat().st_mtime_ns,
            (folder / "model.safetensors").stat().st_mtime_ns) == stamp, "the finished model was retrained"
    assert _visible_files(cache / "zoo") == _visible_files(tmp_path / "clean" / "zoo")


def _default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_embedding_cleans_up_and_exits_130(tmp_path):
    """SIGINT (Ctrl-C) on the CLI mid-embedding: exit code 130, one line, nothing left but the
    resumable partial entry."""
    out = tmp_path / "feats"
    log = tmp_path / "stderr.txt"   # a file, not a pipe: a full pipe would stall the child
    env = {**os.environ, "MEMLIB_CACHE": str(tmp_path / "cache")}
    features = tmp_path / "cache" / "features"

    def report() -> str:
        listing = sorted(str(p.relative_to(features)) for p in features.rglob("*")) \
            if features.exists() else "no features folder"
        return f"cache: {listing}\nstderr tail:\n{log.read_text()[-2000:]}"

    # 10,000 images take ~50 s here; the signal comes ~0.5 s into the embedding loop.
    # The child gets SIGINT at its default disposition, as a shell gives a foreground command
    # Ctrl-C. Without this, a suite run as a background job of a non-interactive shell (`make
    # test &`, nohup, some CI runners) hands its children SIGINT *ignored*, Python then installs
    # no KeyboardInterrupt handler and the CLI rightly keeps it ignored (see cli.EPILOG).
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "memlib", "embed", "fashion-mnist:test[:10000]",
                                 "--image-size", "56", "--out", str(out)], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                preexec_fn=_default_sigint)
    try:
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline \
                and not any(features.glob(".*.partial/cls/layer11.npy")):
            time.sleep(0.1)
        assert any(features.glob(".*.partial/cls/layer11.npy")), \
            f"no temporary feature entry appeared (exit code {proc.poll()})\n{report()}"
        time.sleep(0.5)
        assert proc.poll() is None, f"the embedding finished before the signal\n{report()}"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = time.monotonic() - sent
    err = log.read_text()
    assert returncode == 130, f"exit code {returncode}, {seconds:.1f} s after SIGINT\n{report()}"
    assert "interrupted" in err and "Traceback" not in err, report()
    # what stays is the unfinished entry's partial folder, which the next run resumes at its first
    # unfinished chunk (memlib.chunked; tests/test_streaming.py); no finished entry, no temp folder
    assert all(p.name.endswith(".partial") and not (p / "meta.json").exists()
               for p in features.iterdir()), f"a finished or temporary entry was left behind\n{report()}"
    assert not out.exists()
