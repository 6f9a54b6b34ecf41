#!/usr/bin/env bash
# The GPU run of issue 34, prepared: on a machine with CUDA, from the repository root,
#
#     bash bench/gpu_check.sh [--install-faiss-gpu]
#
# runs, each step timed and allowed to fail without stopping the others:
#   1. the embedding benchmark (python -m bench --only bench_embed: the same table as on CPU);
#   2. faiss-gpu 1-NN parity against faiss's CPU IndexFlatL2 (python -m bench.gpu_parity);
#   3. make smoke on the GPU (device: auto picks CUDA; every notebook on the smoke profile);
#   4. a 1-model slice of the full profile on synthetic images (python -m bench.gpu_slice:
#      DINOv2 ViT-L/14 at 224 px, bf16 autocast, C_T from the full and the projected store);
# and writes ONE results file, bench/gpu-results/gpu_check-<host>-<UTC time>.md, with the
# machine, each step's status, wall time and output tail, and the JSON of steps 2 and 4.
#
# --install-faiss-gpu swaps faiss-cpu for the gpu extra's faiss-gpu-cu12 in .venv first (both
# install the module `faiss`; without it step 2 compares the torch GPU search only).
# Step 4 needs the ViT-L weights: online they download from the Hugging Face hub; offline set
# GPU_SLICE_ENCODER=timm:vit_large_patch14_dinov2.lvd142m@/path/model.safetensors.
# Status (docs/full-profile.md): written, never run — no GPU machine was available.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN=bench/gpu-results/run-$STAMP
OUT=bench/gpu-results/gpu_check-$(hostname -s)-$STAMP.md
mkdir -p "$RUN"
export MEMLIB_CACHE=${MEMLIB_CACHE:-$PWD/.cache/memlib}

[ -x "$PY" ] || make setup || { echo "gpu_check: make setup failed" >&2; exit 1; }
if [ "${1:-}" = "--install-faiss-gpu" ]; then
  "$PY" -m pip uninstall -y faiss-cpu && "$PY" -m pip install -e '.[gpu]'
fi

{
  echo "# GPU check (issue 34): $STAMP"
  echo
  echo "Command: \`bash bench/gpu_check.sh $*\` at commit $(git rev-parse --short HEAD)"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -5
  "$PY" - <<'PYEOF' 2>&1
import torch, faiss, platform
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("faiss", faiss.__version__, "gpus", faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0)
print("python", platform.python_version(), platform.platform(terse=True))
from memlib.machine import cpu_model
print("cpu", cpu_model())
PYEOF
  echo '```'
  echo
  echo "| step | status | wall s |"
  echo "|---|---|---:|"
} > "$OUT"

step() {   # step NAME COMMAND...: run, time, record status and output tail
  local name=$1; shift
  local log="$RUN/$name.log" t0 t1 rc
  echo "[gpu_check] $name: $*"
  t0=$(date +%s.%N)
  "$@" > "$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  printf '| %s | %s | %s |\n' "$name" "$([ $rc -eq 0 ] && echo PASS || echo "FAIL (exit $rc)")" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" >> "$OUT"
  { echo; echo "<details><summary>$name: output tail</summary>"; echo; echo '```';
    tail -n 40 "$log"; echo '```'; echo "</details>"; } >> "$RUN/tails.md"
}

step embed_bench  "$PY" -m bench --only bench_embed --out "$RUN/bench"
step faiss_parity "$PY" -m bench.gpu_parity --out "$RUN/parity.json"
step smoke_gpu    make smoke
step full_slice   "$PY" -m bench.gpu_slice --out "$RUN/slice.json" \
                    ${GPU_SLICE_ENCODER:+--encoder "$GPU_SLICE_ENCODER"}

{
  echo
  for f in "$RUN/bench/results.md" "$RUN/parity.json" "$RUN/slice.json"; do
    [ -f "$f" ] || continue
    echo "## $(basename "$f")"; echo
    case "$f" in *.md) sed -n '/^| benchmark/,/^$/p' "$f" ;; *) echo '```json'; cat "$f"; echo '```' ;; esac
    echo
  done
  cat "$RUN/tails.md"
} >> "$OUT"
echo "[gpu_check] wrote $OUT"
