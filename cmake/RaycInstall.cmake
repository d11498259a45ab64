# make install (cmake --install; PREFIX, DESTDIR): what a user of rayc needs under the prefix.
#   bin/                       rayc, rayc-gcs, rayc-raylet, rayc-worker, rayc-market, rayc-dashboard
#   lib/                       librayc.so (shared) and librayc.a (static, self-contained)
#   include/                   rayc.h and rayc_errno.h (the public API, nothing private)
#   lib/pkgconfig/rayc.pc      pkg-config --cflags --libs rayc
#   lib/cmake/rayc/            find_package(rayc): rayc::rayc, rayc::rayc_static
#   lib/python3.X/dist-packages/ray   the Python package (python/CMakeLists.txt)
# librayc finds the daemons in ../bin from itself, so an installed tree needs no setting.
include(CMakePackageConfigHelpers)

set_target_properties(librayc PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})

# librayc.a: the core worker and every internal library it uses, in one archive, so that a
# static link needs only it and the system libraries below.
add_library(librayc_static STATIC
  $<TARGET_OBJECTS:librayc> $<TARGET_OBJECTS:rayc_gcs_client> $<TARGET_OBJECTS:rayc_rpc>
  $<TARGET_OBJECTS:rayc_auth> $<TARGET_OBJECTS:rayc_proto> $<TARGET_OBJECTS:rayc_scheduler>
  $<TARGET_OBJECTS:rayc_sched_proto> $<TARGET_OBJECTS:rayc_common>)
set_target_properties(librayc_static PROPERTIES OUTPUT_NAME rayc LINKER_LANGUAGE C
                      ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)

# The pkg-config modules librayc calls into (a static link needs them).
set(RAYC_PC_REQUIRES_PRIVATE "grpc libprotobuf-c libuv libssl libcrypto")

install(TARGETS rayc rayc-gcs rayc-raylet rayc-worker rayc-market rayc-dashboard RUNTIME DESTINATION bin)
install(TARGETS librayc LIBRARY DESTINATION lib)
install(TARGETS librayc_static ARCHIVE DESTINATION lib)
install(FILES ${PROJECT_SOURCE_DIR}/include/rayc.h ${PROJECT_SOURCE_DIR}/include/rayc_errno.h
        DESTINATION include)

# rayc.pc names the prefix installed to, which is known only at install time (--prefix);
# it is written straight into place, so that installs into several prefixes from one build
# do not share a staging file.
install(CODE "
  get_filename_component(RAYC_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\" ABSOLUTE)
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(RAYC_PC_REQUIRES_PRIVATE \"${RAYC_PC_REQUIRES_PRIVATE}\")
  set(_rayc_pc \"\$ENV{DESTDIR}\${RAYC_PC_PREFIX}/lib/pkgconfig/rayc.pc\")
  message(STATUS \"Installing: \${_rayc_pc}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/cmake/rayc.pc.in\" \"\${_rayc_pc}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_rayc_pc}\")
")

configure_file(${PROJECT_SOURCE_DIR}/cmake/raycConfig.cmake.in ${CMAKE_BINARY_DIR}/cmake/raycConfig.cmake @ONLY)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/raycConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/raycConfig.cmake ${CMAKE_BINARY_DIR}/cmake/raycConfigVersion.cmake
        DESTINATION lib/cmake/rayc)
