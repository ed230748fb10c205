# Removes every file of install_manifest.txt (the last `cmake --install`),
# then the loophole config directory when nothing else is left in it.
# cmake -DMANIFEST=... [-DLAUNCHD_LABEL=... -DLAUNCHD_PLIST=...] -P uninstall.cmake;
# honours DESTDIR. With LAUNCHD_LABEL (macOS) and the LaunchDaemon plist in
# the manifest, the job is first unloaded (`launchctl bootout
# system/<label>`; a job that is not loaded is fine), so launchd does not keep
# running a daemon whose files are gone. Not under DESTDIR: a staged install
# was never loaded.
cmake_minimum_required(VERSION 3.16)
if(NOT EXISTS "${MANIFEST}")
  message(FATAL_ERROR "no ${MANIFEST}: nothing was installed from this build directory")
endif()
file(STRINGS "${MANIFEST}" files)
set(destdir "$ENV{DESTDIR}")
# Before any file goes (the binaries come first in the manifest), so that
# KeepAlive does not restart a daemon whose program is gone.
if(LAUNCHD_LABEL AND NOT destdir AND EXISTS "${LAUNCHD_PLIST}" AND "${LAUNCHD_PLIST}" IN_LIST files)
  message(STATUS "Unloading system/${LAUNCHD_LABEL}")
  execute_process(COMMAND launchctl bootout "system/${LAUNCHD_LABEL}"
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
endif()
set(sysconf_dirs "")
foreach(f IN LISTS files)
  set(path "${f}")
  if(destdir AND NOT path MATCHES "^${destdir}")
    set(path "${destdir}${f}")
  endif()
  # The example config's directory, wherever this install put it.
  if(path MATCHES "/loophole/loophole\\.json\\.example$")
    get_filename_component(dir "${path}" DIRECTORY)
    list(APPEND sysconf_dirs "${dir}")
  endif()
  if(EXISTS "${path}" OR IS_SYMLINK "${path}")
    message(STATUS "Removing ${path}")
    file(REMOVE "${path}")
    if(EXISTS "${path}")
      message(FATAL_ERROR "could not remove ${path}")
    endif()
  else()
    message(STATUS "Already gone: ${path}")
  endif()
endforeach()
foreach(dir IN LISTS sysconf_dirs)
  if(IS_DIRECTORY "${dir}")
    file(GLOB left "${dir}/*")
    if(NOT left)
      file(REMOVE_RECURSE "${dir}")
    else()
      message(STATUS "Keeping ${dir}: it has your settings")
    endif()
  endif()
endforeach()
