# pgkit_warnings: an INTERFACE target that pgkit's own targets link PRIVATE, so that users of
# the installed library never inherit our warning flags.
add_library(pgkit_warnings INTERFACE)
target_compile_options(pgkit_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wnull-dereference -Wdouble-promotion -Wformat=2
  -Wimplicit-fallthrough)
if(PGKIT_WERROR)
  target_compile_options(pgkit_warnings INTERFACE -Werror)
endif()
