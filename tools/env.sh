# Source me (bash or sh) after tools/bootstrap.sh: activates .venv and the colcon install.
_sam2_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
. "$_sam2_ros_root/.venv/bin/activate"
AMENT_PREFIX_PATH="$_sam2_ros_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export AMENT_PREFIX_PATH
# The wheels' shared libraries (rcl, rmw, type support) live directly under .venv/lib.
LD_LIBRARY_PATH="$_sam2_ros_root/.venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
. "$_sam2_ros_root/install/setup.sh"
unset _sam2_ros_root
