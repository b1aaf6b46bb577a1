# `make package`: a Debian package of everything `make install` installs, for /usr (CPack's DEB generator;
# dependencies from dpkg-shlibdeps). docs/install.md.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ttmem)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "ttmem")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Device-memory tracker for Tenstorrent accelerators")
set(CPACK_PACKAGE_DESCRIPTION "ttmemd, the allocation server every process that uses a device reports to; \
libttmem, the client library; the ttmem tools, the emulated TT-Metal runtime (ttmem-emu) and the Python module.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "ttmem developers <ttmem@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libttmem is the package's own: dpkg-shlibdeps finds it in the staged tree.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/lib)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3 (>= 3.11)")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
