# Apply sam2_ros_repoint_wheel_includes() to a package whose sources we must not edit.
#
# Use as -DCMAKE_PROJECT_INCLUDE=<this file>: it runs right after the package's project(),
# before any find_package(), so the repointing is deferred to the end of its CMakeLists.txt,
# when the wheels' imported targets exist and before CMake generates.
include("${CMAKE_CURRENT_LIST_DIR}/repoint_wheel_includes.cmake")
cmake_language(DEFER CALL sam2_ros_repoint_wheel_includes)
