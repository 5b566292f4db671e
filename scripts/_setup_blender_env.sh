# Sourced by scripts/test_blender and scripts/demo: the Blender-side venv (real bpy from PyPI; never torch),
# created or updated idempotently. Env: BPY_SPEC (default bpy==5.0.1; e.g. 'bpy==4.5.*' or 'bpy==4.2.* numpy<2'),
# BLENDER_VENV (default $ROOT/.venv-blender). Needs ROOT set. matplotlib draws the demo's preview.
BPY_SPEC="${BPY_SPEC:-bpy==5.0.1}"
BLENDER_VENV="${BLENDER_VENV:-$ROOT/.venv-blender}"
_bpy_want="$BPY_SPEC pytest matplotlib"
source "$ROOT/scripts/_venv.sh"

install_bpy() {
  echo "[setup] installing $_bpy_want into $1"
  # shellcheck disable=SC2086  # BPY_SPEC may hold several requirements
  "$1/bin/python" -m pip install -q $_bpy_want
}
ensure_venv "$BLENDER_VENV" "$_bpy_want" install_bpy
