#!/usr/bin/env bash
# Python Keras for the Keras interoperability tests (src/ml/keras): a venv with the exact Keras and TensorFlow
# that the exporter is checked against. Idempotent: a venv that already holds the pinned versions is reused.
# Never fails the caller: without Python or the packages the tests skip, and this script says why.
# Prints the venv's python on stdout; everything else goes to stderr.
set -uo pipefail

readonly KERAS_SPEC='keras==3.15.*'
readonly TENSORFLOW_SPEC='tensorflow-cpu==2.21.0'
venv="${CATDOG_PY_VENV:-$HOME/.cache/catdog/py-venv}"
python="$venv/bin/python"

give_up() {
  echo "setup-python-venv: $1; the Keras interoperability tests will be skipped" >&2
  exit 0
}

# Reads installed metadata instead of importing TensorFlow, which takes many seconds.
has_pinned_packages() {
  "$python" -c '
import sys
from importlib.metadata import version
pinned = version("keras").startswith("3.15.") and version("tensorflow-cpu") == "2.21.0"
sys.exit(0 if pinned and version("h5py") and version("numpy") else 1)
' 2>/dev/null
}

if [ -x "$python" ] && has_pinned_packages; then
  echo "$python"
  exit 0
fi

base_python="$(command -v python3 || command -v python || true)"
[ -n "$base_python" ] || give_up "no python3 on PATH"

if [ ! -x "$python" ]; then
  mkdir -p "$(dirname "$venv")" || give_up "cannot create $(dirname "$venv")"
  "$base_python" -m venv "$venv" || give_up "\`$base_python -m venv $venv\` failed"
fi

echo "setup-python-venv: installing $TENSORFLOW_SPEC and $KERAS_SPEC into $venv" >&2
# pip's own configuration (index, find-links, constraints) decides where the packages come from.
"$python" -m pip install --quiet "$TENSORFLOW_SPEC" "$KERAS_SPEC" h5py numpy >&2 ||
  give_up "pip could not install $TENSORFLOW_SPEC and $KERAS_SPEC into $venv"
has_pinned_packages || give_up "$venv does not hold $KERAS_SPEC with $TENSORFLOW_SPEC after pip install"

echo "$python"
