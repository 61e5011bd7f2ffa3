# Finds pgkit's dependencies, all from the distribution's packages. Shared with the installed
# package configuration (pgkitConfig.cmake), so users find them the same way.
include_guard(GLOBAL)

# libpqxx: upstream CMake installs (7.x built from source) ship a config file; Debian's
# autotools build only ships libpqxx.pc.
find_package(libpqxx CONFIG QUIET)
if(TARGET libpqxx::pqxx)
  set(PGKIT_PQXX_TARGET libpqxx::pqxx)
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET GLOBAL libpqxx>=6.4)
  set(PGKIT_PQXX_TARGET PkgConfig::PQXX)
endif()

find_package(PkgConfig REQUIRED)
if(NOT TARGET PkgConfig::SODIUM)
  pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET GLOBAL libsodium)
endif()
if(NOT TARGET PkgConfig::LIBPQ)
  pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET GLOBAL libpq)
endif()
find_package(fmt REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(Threads REQUIRED)
# prometheus-cpp (Debian's prometheus-cpp-dev): only pgkit::metrics links it (its core part),
# so pgkit::core does not bring it to applications that do not ask for metrics. pgkit's own
# build requires it (lib/CMakeLists.txt); an installed pgkit's users need it only to link
# pgkit::metrics.
find_package(prometheus-cpp CONFIG QUIET)
