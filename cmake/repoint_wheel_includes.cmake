# Repoint include directories of imported targets that name missing paths.
#
# Why: the ROS 2 wheels on PyPI ship CMake exports whose INTERFACE_INCLUDE_DIRECTORIES
# carry the build machine's Python and NumPy include folders; CMake refuses to generate
# when an imported target names a path that does not exist. A missing Python or NumPy
# include folder is swapped for this machine's; any other missing path is dropped.
# On a normal ROS 2 install every path exists, so this function changes nothing.
function(sam2_ros_repoint_wheel_includes)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c
      "import sysconfig; print(sysconfig.get_paths()['include'])"
    OUTPUT_VARIABLE _py_inc OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import numpy; print(numpy.get_include())"
    OUTPUT_VARIABLE _np_inc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  get_property(_targets DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_incs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _incs)
      continue()
    endif()
    set(_fixed "")
    set(_changed FALSE)
    foreach(_inc IN LISTS _incs)
      if(_inc MATCHES "^\\$<" OR EXISTS "${_inc}")
        list(APPEND _fixed "${_inc}")
      elseif(_inc MATCHES "numpy" AND _np_inc)
        list(APPEND _fixed "${_np_inc}")
        set(_changed TRUE)
      elseif(_inc MATCHES "[Pp]ython")
        list(APPEND _fixed "${_py_inc}")
        set(_changed TRUE)
      else()
        set(_changed TRUE)
      endif()
    endforeach()
    if(_changed)
      list(REMOVE_DUPLICATES _fixed)
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
      message(STATUS "sam2_ros: repointed missing include paths of ${_target}")
    endif()
  endforeach()

  # With the environment inside the source tree (.venv), our own generated targets carry
  # NumPy's include folder from under the source directory, which CMake will not export.
  # Such a path is only needed while building here, so keep it for the build alone.
  get_property(_own DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
  foreach(_target IN LISTS _own)
    get_target_property(_incs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _incs)
      continue()
    endif()
    set(_fixed "")
    foreach(_inc IN LISTS _incs)
      string(FIND "${_inc}" "${CMAKE_CURRENT_SOURCE_DIR}/" _pos)
      if(_pos EQUAL 0)
        list(APPEND _fixed "$<BUILD_INTERFACE:${_inc}>")
      else()
        list(APPEND _fixed "${_inc}")
      endif()
    endforeach()
    set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
  endforeach()
endfunction()
