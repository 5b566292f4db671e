# Sourced by scripts/demo and scripts/test: create .venv and install the project into it (idempotent).
# torch is pinned first, on its own: a looser request would pull a multi-GB CUDA build on CPU machines.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${JAMBATALK_TORCH_SPEC:-torch==2.13.0}"
EXTRAS="${JAMBATALK_EXTRAS:-test,corpus}"
VENV="$ROOT/.venv"
want="$(cat pyproject.toml scripts/_setup_env.sh scripts/_venv.sh | sha256sum | cut -d' ' -f1) $TORCH_SPEC $EXTRAS"
source "$ROOT/scripts/_venv.sh"

install_project() {
  echo "[setup] installing dependencies into .venv (first run takes a few minutes)"
  "$1/bin/python" -m pip install -q --upgrade pip
  "$1/bin/python" -m pip install -q "$TORCH_SPEC"
  "$1/bin/python" -m pip install -q -e ".[$EXTRAS]"
}
ensure_venv "$VENV" "$want" install_project
export PATH="$VENV/bin:$PATH"
