#!/usr/bin/env bash
# Set up everything this repository needs, then build the package with colcon.
#
# Creates .venv/ inside the repository (ignored by git) with every Python dependency pinned
# in requirements/lock.txt: CPU torch, Meta's SAM 2 code, the ROS 2 Jazzy wheels from PyPI
# (rclpy with Fast DDS, messages, rosidl build tools), colcon, rosbags, pytest, ruff, and Ray
# (ray core, for `sam2_ros label`).
# A second run with nothing changed only re-runs the (incremental) colcon build: seconds.
#
# Environment:
#   SAM2_ROS_PYTHON  interpreter for the venv (default: python3, 3.10 to 3.14)
#   SAM2_ROS_TORCH   pip requirement for torch (default: torch==2.13.0, the CPU wheel here);
#                    for CUDA, e.g. SAM2_ROS_TORCH="torch==2.13.0 --index-url <pytorch cu index>"
#
# Usage: tools/bootstrap.sh            (then: . tools/env.sh)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
python="${SAM2_ROS_PYTHON:-python3}"
torch_spec="${SAM2_ROS_TORCH:-torch==2.13.0}"
sam2_spec="sam2==1.1.0"

step() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

stamp_now="$( (cat requirements/lock.txt tools/bootstrap.sh; echo "$torch_spec $sam2_spec"; "$python" -V) | sha256sum | cut -d' ' -f1)"
stamp_file="$venv/.sam2_ros_stamp"

if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp_now" ]]; then
  step "environment up to date ($venv)"
else
  started=$SECONDS
  [[ -x "$venv/bin/python" ]] || { step "creating $venv"; "$python" -m venv "$venv"; }
  pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  step "installing $torch_spec"
  # shellcheck disable=SC2086  # torch_spec may carry pip options such as --index-url
  "${pip[@]}" $torch_spec
  step "installing pinned dependencies (requirements/lock.txt)"
  "${pip[@]}" -r requirements/lock.txt
  # sam2's setup.py asks for torch>=2.5.1 in an isolated build (pulling CUDA torch) and
  # for torchvision (which only its image predictor uses): build against the torch above,
  # without its C++/CUDA extension, and without letting pip resolve its requirements.
  step "installing Meta's SAM 2 code ($sam2_spec, no CUDA extension, no torchvision)"
  SAM2_BUILD_CUDA=0 "${pip[@]}" --no-build-isolation --no-deps "$sam2_spec"
  echo "$stamp_now" > "$stamp_file"
  step "environment ready in $((SECONDS - started)) s"
fi

# colcon against the venv: the ROS 2 wheels put share/<pkg>/cmake and lib/*.so at its root.
step "colcon build"
# shellcheck disable=SC1091
source "$venv/bin/activate"
export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# vision_msgs: a ROS 2 install's own package wins; where none is installed (the PyPI wheels
# have none), the test stand-in in test/interfaces/ (hidden from plain crawls by its
# COLCON_IGNORE) is built so the detection paths run over DDS.
base_paths=("$root")
real_vision_msgs=""
IFS=: read -ra prefixes <<< "$AMENT_PREFIX_PATH"
for prefix in "${prefixes[@]}"; do
  [[ -n "$prefix" && "$prefix" != "$root/install"* ]] || continue
  if [[ -e "$prefix/share/ament_index/resource_index/packages/vision_msgs" ]]; then
    real_vision_msgs="$prefix"
    break
  fi
done
if [[ -n "$real_vision_msgs" ]]; then
  step "vision_msgs: installed in $real_vision_msgs"
else
  step "vision_msgs: none installed, building the test stand-in (test/interfaces/vision_msgs)"
  base_paths+=("$root/test/interfaces/vision_msgs")
fi
mkdir -p log
colcon --log-base log build --base-paths "${base_paths[@]}" --symlink-install \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python" > log/last_build.txt 2>&1 \
  || { cat log/last_build.txt; step "colcon build failed"; exit 1; }
step "built: install/ (source tools/env.sh to use it)"
# The real ros2 launch stack for the tests, where ../shared/ros2-launch is beside us.
"$root/tools/launch_stack.sh"
