# pgkit_sanitizers: an INTERFACE target carrying -fsanitize flags for PGKIT_SANITIZE
# (e.g. "address,undefined" or "thread"); linked PRIVATE by every pgkit target.
add_library(pgkit_sanitizers INTERFACE)
if(PGKIT_SANITIZE)
  set(pgkit_sanitize_flags -fsanitize=${PGKIT_SANITIZE} -fno-omit-frame-pointer)
  if(PGKIT_SANITIZE MATCHES "undefined")
    list(APPEND pgkit_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  target_compile_options(pgkit_sanitizers INTERFACE ${pgkit_sanitize_flags})
  target_link_options(pgkit_sanitizers INTERFACE -fsanitize=${PGKIT_SANITIZE})
endif()
