#!/usr/bin/env bash
# The Python peers of the benchmark suite: the Keras venv of scripts/setup-python-venv.sh plus OpenCV, Pillow,
# Flask, PyTorch (CPU) and matplotlib, installed into that venv only (never into the repo or the system).
# Idempotent; prints the venv's python on stdout, everything else goes to stderr.
set -euo pipefail

# The CPU build: a plain `torch` resolves to the CUDA build, whose nvidia-* dependencies are not on every index.
readonly TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0+cpu}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="$(bash "$here/../scripts/setup-python-venv.sh")"
[ -x "$python" ] || { echo "setup-peers: no Python venv (see scripts/setup-python-venv.sh)" >&2; exit 1; }

if ! "$python" -c 'import cv2, PIL, flask, torch, matplotlib' 2>/dev/null; then
  echo "setup-peers: installing opencv-python-headless pillow flask $TORCH_SPEC matplotlib into $(dirname "$(dirname "$python")")" >&2
  # pip's own configuration (index, find-links, constraints) decides where the packages come from; one retry
  # keeps an unreachable default index from costing minutes.
  "$python" -m pip install --quiet --retries 1 opencv-python-headless pillow flask "$TORCH_SPEC" matplotlib >&2
fi
echo "$python"
