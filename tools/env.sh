# Source me (bash or sh) after tools/bootstrap.sh: activates .venv and the colcon install.
_sam2_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
. "$_sam2_ros_root/.venv/bin/activate"
AMENT_PREFIX_PATH="$_sam2_ros_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export AMENT_PREFIX_PATH
# The wheels' shared libraries (rcl, rmw, type support) live directly under .venv/lib.
LD_LIBRARY_PATH="$_sam2_ros_root/.venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
. "$_sam2_ros_root/install/setup.sh"
# The real launch stack (ros2 launch, launch_ros, ros2cli) where tools/launch_stack.sh
# installed it: the wheels' folder and composition_interfaces' colcon install.
if [ -f "$_sam2_ros_root/.launch-site/.stamp" ]; then
  PYTHONPATH="$_sam2_ros_root/.launch-site/py${PYTHONPATH:+:$PYTHONPATH}"
  PATH="$_sam2_ros_root/.launch-site/py/bin:$PATH"
  AMENT_PREFIX_PATH="$_sam2_ros_root/.launch-site/py:$AMENT_PREFIX_PATH"
  export PYTHONPATH PATH AMENT_PREFIX_PATH
  . "$_sam2_ros_root/.launch-site/install/local_setup.sh"
fi
unset _sam2_ros_root
