# Sourced by scripts/_setup_env.sh and scripts/_setup_blender_env.sh: one way to keep a venv in step with what
# it should hold. ensure_venv DIR WANT INSTALL: create DIR with ${PYTHON:-python3} if it has no interpreter, then
# run `INSTALL DIR` and record WANT in DIR's stamp unless the stamp already says WANT. Call it as a plain command
# (not in an `if`), so that `set -e` stops the script when the install fails and nothing is stamped.
ensure_venv() {
  local dir="$1" want="$2" install="$3"
  local stamp="$dir/.jambatalk-installed"
  if [ ! -x "$dir/bin/python" ]; then
    echo "[setup] creating $dir"
    "${PYTHON:-python3}" -m venv "$dir"
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "[setup] $(basename "$dir") is up to date"
    return 0
  fi
  "$install" "$dir"
  echo "$want" > "$stamp"
}
