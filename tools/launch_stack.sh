#!/usr/bin/env bash
# Install the real ROS 2 launch stack for the tests, where ../shared/ros2-launch exists.
#
# `launch`, `launch_ros` and `ros2cli` are not on PyPI; CI and this machine kind keep them
# as wheels (plus composition_interfaces' source, which launch_ros imports) in
# ../shared/ros2-launch beside the repository. They go into .launch-site/ (ignored by git,
# never into the venv): the wheels with one `pip install --target` (two would not merge
# bin/ and share/), composition_interfaces built there with colcon. tools/env.sh puts it
# on the paths. A stamp makes a second run with nothing changed a no-op.
#
# Environment: SAM2_ROS_LAUNCH_STACK  the folder (default: ../shared/ros2-launch)
# Usage: tools/launch_stack.sh  (tools/bootstrap.sh calls it after creating .venv)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stack="${SAM2_ROS_LAUNCH_STACK:-$root/../shared/ros2-launch}"
site="$root/.launch-site"
python="$root/.venv/bin/python"
step() { printf '\033[1m[launch-stack]\033[0m %s\n' "$*"; }

if [[ ! -d "$stack/wheels" ]]; then
  step "no launch stack at $stack: tests that need ros2 launch will skip"
  exit 0
fi
stack="$(cd "$stack" && pwd)"
stamp_now="$( (cd "$stack" && find wheels composition_interfaces -type f | sort | xargs sha256sum;
  cat "$root/tools/launch_stack.sh" "$root"/cmake/repoint_*.cmake; "$python" -V) | sha256sum | cut -d' ' -f1)"
if [[ -f "$site/.stamp" && "$(cat "$site/.stamp")" == "$stamp_now" ]]; then
  step "up to date ($site)"
  exit 0
fi
started=$SECONDS
rm -rf "$site"
mkdir -p "$site"
step "installing $(ls "$stack"/wheels/*.whl | wc -l) wheels into $site/py"
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --no-index \
  --target "$site/py" "$stack"/wheels/*.whl
# The ros2 script names the Python of the machine that built the wheels.
sed -i "1s|^#!.*|#!$python|" "$site/py/bin/ros2"

step "building composition_interfaces (colcon, from $stack)"
# shellcheck disable=SC1091
source "$root/.venv/bin/activate"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
(cd "$site" && colcon --log-base log build --base-paths "$stack/composition_interfaces" \
  --build-base build --install-base install --merge-install \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$python" \
  -DCMAKE_PROJECT_INCLUDE="$root/cmake/repoint_deferred.cmake" > build.txt 2>&1) \
  || { cat "$site/build.txt"; step "composition_interfaces failed to build"; exit 1; }
echo "$stamp_now" > "$site/.stamp"
step "ready in $((SECONDS - started)) s"
