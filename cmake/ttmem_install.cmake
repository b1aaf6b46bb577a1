# What `cmake --install` (make install) puts under the prefix: libttmem with its SONAME, its public headers,
# a CMake package (find_package(ttmem) -> ttmem::ttmem) and a pkg-config file; unless TTMEM_CLIENT_ONLY,
# also the binaries and the Python module. docs/install.md says what goes where.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Installed binaries find libttmem beside them (bin/ -> lib/), wherever the prefix is.
set_target_properties(ttmem_client PROPERTIES EXPORT_NAME ttmem
                      INSTALL_RPATH "$ORIGIN")
install(TARGETS ttmem_client EXPORT ttmemTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# client.hpp includes client_ring.hpp (its inline hot path) and protocol.hpp, which includes vocab.hpp: all
# four are the C++ API's; ttmem.h is C's.
install(FILES ${PROJECT_SOURCE_DIR}/src/client/include/ttmem/client.hpp
              ${PROJECT_SOURCE_DIR}/src/client/include/ttmem/client_ring.hpp
              ${PROJECT_SOURCE_DIR}/src/client/include/ttmem/ttmem.h
              ${PROJECT_SOURCE_DIR}/src/protocol/include/ttmem/protocol.hpp
              ${PROJECT_SOURCE_DIR}/src/vocab/include/ttmem/vocab.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ttmem)
set(ttmem_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/ttmem)
install(EXPORT ttmemTargets NAMESPACE ttmem:: DESTINATION ${ttmem_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ttmemConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/ttmemConfig.cmake INSTALL_DESTINATION ${ttmem_cmake_dir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ttmemConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ttmemConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/ttmemConfigVersion.cmake
        DESTINATION ${ttmem_cmake_dir})
# Relative to the .pc file, so that `cmake --install --prefix DIR` (or a DESTDIR staging) stays right.
file(RELATIVE_PATH TTMEM_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" TTMEM_PC_TO_PREFIX "${TTMEM_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/ttmem.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ttmem.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ttmem.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(TTMEM_CLIENT_ONLY)
  return()
endif()

foreach(tool ttmemd ttmem ttmem-emu)
  set_target_properties(${tool} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
endforeach()
install(TARGETS ttmemd ttmem ttmem-emu RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# lib/systemd/system, not the multiarch libdir: where systemd looks for units of packages. The service
# names the ttmemd of the prefix installed to (`--prefix` may differ from the configured one), so it is
# written at install time.
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/ttmemd.socket DESTINATION lib/systemd/system)
install(CODE "
  file(READ \"${PROJECT_SOURCE_DIR}/deploy/systemd/ttmemd.service.in\" unit)
  string(REPLACE \"@CMAKE_INSTALL_FULL_BINDIR@\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\" unit \"\${unit}\")
  file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/ttmemd.service\" \"\${unit}\")
  message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/ttmemd.service\")")

# The Python module where /usr/bin/python3 looks (see below).
if(TARGET _ttmem)
  find_package(Python COMPONENTS Interpreter REQUIRED)  # the version of the python3 the module is for
  set(versioned_python_dir lib/python${Python_VERSION_MAJOR}.${Python_VERSION_MINOR}/dist-packages)
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(default_python_dir lib/python3/dist-packages)
  else()
    set(default_python_dir ${versioned_python_dir})
  endif()
  set(TTMEM_PYTHON_INSTALL_DIR ${default_python_dir} CACHE STRING "Where the Python module goes, under the prefix")
  # ttmem/ is four levels below the prefix's lib/: the module finds libttmem there.
  set_target_properties(_ttmem PROPERTIES INSTALL_RPATH "$ORIGIN/../../../../${CMAKE_INSTALL_LIBDIR}")
  install(TARGETS _ttmem LIBRARY DESTINATION ${TTMEM_PYTHON_INSTALL_DIR}/ttmem)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/ttmem/ DESTINATION ${TTMEM_PYTHON_INSTALL_DIR}/ttmem
          FILES_MATCHING PATTERN "*.py" PATTERN "*.pyi" PATTERN "py.typed" PATTERN "__pycache__" EXCLUDE)
  install(DIRECTORY ${CMAKE_BINARY_DIR}/python/ttmem-${PROJECT_VERSION}.dist-info
          DESTINATION ${TTMEM_PYTHON_INSTALL_DIR})
  # Debian's python3 reads /usr/lib/python3/dist-packages (its packages') and
  # /usr/local/lib/python3.X/dist-packages: a package built for /usr (make package) takes the first. Then the
  # module starts the ttmemd installed beside it (the build tree's _paths.py names the build's).
  install(CODE "
    set(py \"${TTMEM_PYTHON_INSTALL_DIR}\")
    if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\" AND py STREQUAL \"${versioned_python_dir}\")
      set(py lib/python3/dist-packages)
      file(MAKE_DIRECTORY \"\$ENV{DESTDIR}/usr/\${py}\")
      foreach(d ttmem ttmem-${PROJECT_VERSION}.dist-info)
        file(REMOVE_RECURSE \"\$ENV{DESTDIR}/usr/\${py}/\${d}\")
        file(RENAME \"\$ENV{DESTDIR}/usr/${TTMEM_PYTHON_INSTALL_DIR}/\${d}\" \"\$ENV{DESTDIR}/usr/\${py}/\${d}\")
      endforeach()
      # The directories the move left, only if now empty (never anything of someone else's).
      foreach(d ${TTMEM_PYTHON_INSTALL_DIR} lib/python${Python_VERSION_MAJOR}.${Python_VERSION_MINOR})
        file(GLOB left \"\$ENV{DESTDIR}/usr/\${d}/*\")
        if(NOT left AND IS_DIRECTORY \"\$ENV{DESTDIR}/usr/\${d}\")
          file(REMOVE_RECURSE \"\$ENV{DESTDIR}/usr/\${d}\")
        endif()
      endforeach()
    endif()
    file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${py}/ttmem/_paths.py\"
         \"BIN_DIR = \\\"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\\\"\\n\")")
endif()
