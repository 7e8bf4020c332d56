# Repoint include directories of imported targets that name missing paths.
#
# Why: the ROS 2 wheels on PyPI ship CMake exports whose INTERFACE_INCLUDE_DIRECTORIES
# carry the build machine's Python and NumPy include folders; CMake refuses to generate
# when an imported target names a path that does not exist. A missing Python or NumPy
# include folder is swapped for this machine's; any other missing path is dropped.
# On a normal ROS 2 install every path exists, so this function changes nothing.

# Rewrite INTERFACE_INCLUDE_DIRECTORIES of every target the directory property TARGETS lists
# (IMPORTED_TARGETS or BUILDSYSTEM_TARGETS): FIX is a function(path out_var) that sets out_var
# to the path's replacement (empty: drop it).
function(_sam2_ros_rewrite_includes targets fix)
  get_property(_targets DIRECTORY PROPERTY ${targets})
  foreach(_target IN LISTS _targets)
    get_target_property(_incs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _incs)
      continue()
    endif()
    set(_fixed "")
    foreach(_inc IN LISTS _incs)
      cmake_language(CALL ${fix} "${_inc}" _new)
      list(APPEND _fixed ${_new})
    endforeach()
    list(REMOVE_DUPLICATES _fixed)
    if(NOT "${_fixed}" STREQUAL "${_incs}")
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
      message(STATUS "sam2_ros: repointed include paths of ${_target}")
    endif()
  endforeach()
endfunction()

# A wheel's missing Python or NumPy include folder: this machine's; another missing path: none.
function(_sam2_ros_local_include path out)
  if(path MATCHES "^\\$<" OR EXISTS "${path}")
    set(${out} "${path}" PARENT_SCOPE)
  elseif(path MATCHES "numpy" AND _np_inc)
    set(${out} "${_np_inc}" PARENT_SCOPE)
  elseif(path MATCHES "[Pp]ython")
    set(${out} "${_py_inc}" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# With the environment inside the source tree (.venv), our own generated targets carry
# NumPy's include folder from under the source directory, which CMake will not export.
# Such a path is only needed while building here, so keep it for the build alone.
function(_sam2_ros_build_only_include path out)
  string(FIND "${path}" "${CMAKE_CURRENT_SOURCE_DIR}/" _pos)
  if(_pos EQUAL 0)
    set(${out} "$<BUILD_INTERFACE:${path}>" PARENT_SCOPE)
  else()
    set(${out} "${path}" PARENT_SCOPE)
  endif()
endfunction()

function(sam2_ros_repoint_wheel_includes)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c
      "import sysconfig; print(sysconfig.get_paths()['include'])"
    OUTPUT_VARIABLE _py_inc OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import numpy; print(numpy.get_include())"
    OUTPUT_VARIABLE _np_inc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  _sam2_ros_rewrite_includes(IMPORTED_TARGETS _sam2_ros_local_include)
  _sam2_ros_rewrite_includes(BUILDSYSTEM_TARGETS _sam2_ros_build_only_include)
endfunction()
