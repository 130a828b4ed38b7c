# Installs libraries, headers and tools, and exports a CMake package so that a
# user's project can `find_package(Hearth)` and link `Hearth::hearth`.
include(CMakePackageConfigHelpers)

add_library(hearth INTERFACE)
target_link_libraries(hearth INTERFACE hearth_runtime hearth_transport)
set_target_properties(hearth PROPERTIES EXPORT_NAME hearth)
add_library(Hearth::hearth ALIAS hearth)

install(TARGETS hearth hearth_runtime hearth_shard hearth_compress hearth_transport
  EXPORT HearthTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT HearthTargets NAMESPACE Hearth:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Hearth)
configure_package_config_file(cmake/HearthConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/HearthConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Hearth)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/HearthConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/HearthConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/HearthConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Hearth)
