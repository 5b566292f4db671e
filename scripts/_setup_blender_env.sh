# Sourced by scripts/test_blender and scripts/demo: the Blender-side venv (real bpy from PyPI; never torch),
# created or updated idempotently. Env: BPY_SPEC (default bpy==5.0.1; e.g. 'bpy==4.5.*' or 'bpy==4.2.* numpy<2'),
# BLENDER_VENV (default $ROOT/.venv-blender). Needs ROOT set. matplotlib draws the demo's preview.
BPY_SPEC="${BPY_SPEC:-bpy==5.0.1}"
BLENDER_VENV="${BLENDER_VENV:-$ROOT/.venv-blender}"
_bpy_stamp="$BLENDER_VENV/.jambatalk-bpy-installed"
_bpy_want="$BPY_SPEC pytest matplotlib"
if [ ! -x "$BLENDER_VENV/bin/python" ]; then
  echo "[setup] creating $BLENDER_VENV"
  "${PYTHON:-python3}" -m venv "$BLENDER_VENV"
fi
if [ ! -f "$_bpy_stamp" ] || [ "$(cat "$_bpy_stamp")" != "$_bpy_want" ]; then
  echo "[setup] installing $_bpy_want into $BLENDER_VENV"
  # shellcheck disable=SC2086  # BPY_SPEC may hold several requirements
  "$BLENDER_VENV/bin/python" -m pip install -q $_bpy_want
  echo "$_bpy_want" > "$_bpy_stamp"
fi
