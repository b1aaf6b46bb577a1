# Applies TTMEM_SANITIZE to every target of the project (set by the asan / tsan presets).
if(TTMEM_SANITIZE)
  list(JOIN TTMEM_SANITIZE "," _ttmem_san)
  add_compile_options(-fsanitize=${_ttmem_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_ttmem_san})
  # One test for "built with a sanitizer", whichever compiler (gcc and clang spell their macros apart).
  add_compile_definitions(TTMEM_SANITIZED=1)
endif()
