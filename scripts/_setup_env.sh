# Sourced by scripts/demo and scripts/test: create .venv and install the project into it (idempotent).
# torch is pinned first, on its own: a looser request would pull a multi-GB CUDA build on CPU machines.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${JAMBATALK_TORCH_SPEC:-torch==2.13.0}"
EXTRAS="${JAMBATALK_EXTRAS:-test,corpus}"
VENV="$ROOT/.venv"
STAMP="$VENV/.jambatalk-installed"
want="$(cat pyproject.toml scripts/_setup_env.sh | sha256sum | cut -d' ' -f1) $TORCH_SPEC $EXTRAS"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "[setup] installing dependencies into .venv (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
  echo "$want" > "$STAMP"
else
  echo "[setup] .venv is up to date"
fi
export PATH="$VENV/bin:$PATH"
