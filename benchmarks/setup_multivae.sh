#!/usr/bin/env bash
# Creates the benchmark-only environment benchmarks/.venv-multivae (git-ignored).
#
# The project itself never depends on multivae. The benchmarks compare our FusionEngine with
# multivae's Nexus in ONE process on ONE torch build, so the headline ratios compare like with
# like. multivae imports torchvision, and the project's torch (2.13.0) has no matching
# torchvision here, so this environment uses torch 2.14.1 + torchvision 0.29.1 (a matching
# pair; on this machine they install from local disk) and installs our package into it with
# --no-deps.
#
# Usage: bash benchmarks/setup_multivae.sh        (or: make bench-env)
# Re-running is cheap: an existing, complete environment is kept.
# Licence: Apache-2.0.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${MULTIVAE_VENV:-$HERE/.venv-multivae}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.bench-env-complete"

TORCH_PIN="torch==2.14.1"
TORCHVISION_PIN="torchvision==0.29.1"
MULTIVAE_PIN="multivae==1.0.3"

if [[ -f "$STAMP" ]]; then
    echo "benchmark environment ready: $VENV"
    exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --quiet)
echo "== [1/3] $TORCH_PIN $TORCHVISION_PIN (large; several minutes) =="
nice -n 10 "${PIP[@]}" "$TORCH_PIN" "$TORCHVISION_PIN"
echo "== [2/3] $MULTIVAE_PIN and the project's runtime dependencies (minus torch) =="
# The project's pinned requirements, except its torch pin (this env keeps torch 2.14.1).
grep -v -E '^\s*(#|$|torch==)' "$ROOT/requirements.txt" > "$VENV/requirements-no-torch.txt"
nice -n 10 "${PIP[@]}" "$MULTIVAE_PIN" "$TORCH_PIN" "$TORCHVISION_PIN" \
    -r "$VENV/requirements-no-torch.txt"
echo "== [3/3] crossmodal_ros (editable, no deps) =="
nice -n 10 "${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"
"$VENV/bin/python" -c "import torch, multivae, crossmodal_ros; print('torch', torch.__version__, 'multivae', multivae.__version__ if hasattr(multivae, '__version__') else '?')"
touch "$STAMP"
echo "benchmark environment ready: $VENV"
