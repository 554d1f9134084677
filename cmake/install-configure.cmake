# install-configure.cmake - make the files that name installed paths
# (parley.pc, the systemd units) for the prefix of the install that is
# running, not the one chosen at configure time.
#
# Included by an install(CODE) rule of the top-level CMakeLists.txt, so it
# runs inside cmake_install.cmake: CMAKE_INSTALL_PREFIX is then the prefix
# of this install (`cmake --install --prefix DIR`, or /usr under cpack),
# and DESTDIR, if set, is only where the files land, never in their text.
#
# Expects (set by the install(CODE) rule):
#   PARLEY_SRC        the source tree
#   PARLEY_OUT        a build-tree directory for the generated files
#   PARLEY_VERSION    the project version
#   PARLEY_DIR_<X>    CMAKE_INSTALL_<X> for BINDIR SBINDIR LIBDIR
#                     INCLUDEDIR SYSCONFDIR DOCDIR, as configured
#                     (relative to the prefix, or absolute)

function(parley_install_configure)
  set(_prefix "${CMAKE_INSTALL_PREFIX}")
  string(REGEX REPLACE "(.)/+$" "\\1" _prefix "${_prefix}")

  # The absolute form of each directory, by the rules of GNUInstallDirs
  # (which computes them once, at configure time, for the configured prefix).
  foreach(_dir BINDIR SBINDIR LIBDIR INCLUDEDIR SYSCONFDIR DOCDIR)
    set(_rel "${PARLEY_DIR_${_dir}}")
    if(IS_ABSOLUTE "${_rel}")
      set(_full "${_rel}")
    elseif(_dir STREQUAL "SYSCONFDIR" AND _prefix MATCHES "^/(usr/?)?$")
      set(_full "/${_rel}")          # /usr and / keep their config in /etc
    elseif(_dir STREQUAL "SYSCONFDIR" AND _prefix MATCHES "^/opt/")
      set(_full "/${_rel}${_prefix}") # /opt/NAME -> /etc/opt/NAME
    elseif(_prefix STREQUAL "/")
      set(_full "/${_rel}")
    else()
      set(_full "${_prefix}/${_rel}")
    endif()
    set(CMAKE_INSTALL_FULL_${_dir} "${_full}")
  endforeach()

  # What the templates use (@ONLY keeps ${...} in them as it is). These are
  # set in this function's scope only: the install rules that follow must
  # see CMAKE_INSTALL_PREFIX as it was.
  set(CMAKE_INSTALL_PREFIX "${_prefix}")
  set(PROJECT_VERSION "${PARLEY_VERSION}")
  foreach(_dir BINDIR SBINDIR LIBDIR INCLUDEDIR SYSCONFDIR DOCDIR)
    set(CMAKE_INSTALL_${_dir} "${PARLEY_DIR_${_dir}}")
  endforeach()

  file(MAKE_DIRECTORY "${PARLEY_OUT}")
  configure_file("${PARLEY_SRC}/cmake/parley.pc.in" "${PARLEY_OUT}/parley.pc"
                 @ONLY)
  configure_file("${PARLEY_SRC}/systemd/parleyd.service.in"
                 "${PARLEY_OUT}/parleyd.service" @ONLY)
  configure_file("${PARLEY_SRC}/systemd/parley-sub@.service.in"
                 "${PARLEY_OUT}/parley-sub@.service" @ONLY)
  configure_file("${PARLEY_SRC}/systemd/parley-gateway.service.in"
                 "${PARLEY_OUT}/parley-gateway.service" @ONLY)
endfunction()

parley_install_configure()
