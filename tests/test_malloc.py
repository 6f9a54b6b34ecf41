"""memlib.malloc: glibc thresholds that stop CPU forward passes from page-faulting.

The behaviour checks run in fresh subprocesses: ``mallopt`` is process-global and a test process
that already ran other tests has a heap shaped by them.
"""
import json
import os
import platform
import subprocess
import sys

import pytest

from memlib import malloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Five passes of a random-init ViT-S/14 over one batch of 64 images at 112 px, 2 threads;
# prints the minor page faults of each pass and a checksum of the last pass's outputs.
_VIT_PASSES = r"""
import json, os, resource, sys
import torch
torch.set_num_threads(2)
from memlib.encoders import build_encoder
enc = build_encoder("timm:vit_small_patch14_dinov2+random", 112, "cpu")
x = torch.randn(64, 3, 112, 112, generator=torch.Generator().manual_seed(0))
faults = []
with torch.inference_mode():
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        out = enc.block_outputs(x)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        checksum = float(sum(o.double().sum() for o in out))
        del out
from memlib import malloc
print(json.dumps({"faults": faults, "checksum": checksum, "state": malloc.keep_freed_memory()}))
"""


def _run_passes(extra_env: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in malloc._USER_SETTINGS and k not in (malloc.OPT_OUT_VARIABLE, "GLIBC_TUNABLES")}
    env.update(extra_env, OMP_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", _VIT_PASSES], env=env, capture_output=True,
                          text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_vit_steady_state_passes_do_not_page_fault_and_results_are_unchanged():
    tuned = _run_passes({})
    default = _run_passes({"MEMLIB_MALLOC": "default"})
    assert tuned["state"] == "tuned"
    assert default["state"] == "skipped: MEMLIB_MALLOC=default"
    # Measured (4 pairs of processes, two CPU kinds): default 43-193 k faults in every pass;
    # tuned 43-85 k in the first pass, then 0 in most later passes, with an occasional pass of
    # 3-55 k when the heap grows once more (a CI run saw [46170, 0, 54600, 0, 0]). One pass of
    # activations is ~0.3 M pages. So the behaviour asserted is the count of fault-free passes:
    # most steady passes of the tuned process, none of the default process. A total-faults ratio
    # is not asserted: one late heap growth can cost as much as a default pass.
    steady_tuned, steady_default = tuned["faults"][1:], default["faults"][1:]
    assert sum(f < 1_000 for f in steady_tuned) >= 2, tuned["faults"]
    assert sum(f < 1_000 for f in steady_default) == 0, default["faults"]
    # The allocator decides where numbers live, never what they are.
    assert tuned["checksum"] == default["checksum"]


def test_opt_out_and_user_settings_leave_malloc_alone():
    assert malloc._why_not({"MEMLIB_MALLOC": "default"}) == "MEMLIB_MALLOC=default"
    assert malloc._why_not({"MEMLIB_MALLOC": " Default "}) == "MEMLIB_MALLOC=default"
    for name in malloc._USER_SETTINGS:
        assert malloc._why_not({name: "65536"}) == f"the user set {name}"
    tunables = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}
    assert malloc._why_not(tunables) == "the user set glibc.malloc tunables"
    assert malloc._why_not({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}) == (
        None if GLIBC else "not glibc")
    assert malloc._why_not({"MEMLIB_MALLOC": "tuned"}) == (None if GLIBC else "not glibc")


def test_keep_freed_memory_is_idempotent_and_reports_why(monkeypatch):
    monkeypatch.setattr(malloc, "_state", {})
    monkeypatch.setenv("MEMLIB_MALLOC", "default")
    first = malloc.keep_freed_memory()
    assert first == "skipped: MEMLIB_MALLOC=default"
    monkeypatch.delenv("MEMLIB_MALLOC")
    assert malloc.keep_freed_memory() == first  # decided once per process


def test_cpu_encoders_and_zoo_families_tune_malloc(monkeypatch):
    import torch
    from memlib import encoders, zoo
    from memlib.zoo.families import base as zoo_base
    calls = []
    monkeypatch.setattr(encoders, "keep_freed_memory", lambda: calls.append("encoder"))
    monkeypatch.setattr(zoo_base, "keep_freed_memory", lambda: calls.append("zoo"))
    encoders.build_encoder("timm:vit_tiny_patch16_224+random", 32, "cpu")
    zoo.FAMILIES["gan"]({}, torch.device("cpu"))
    zoo.FAMILIES["gan"]({}, torch.device("meta"))  # not a CPU: left alone
    assert calls == ["encoder", "zoo"]
