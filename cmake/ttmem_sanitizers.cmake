# Applies TTMEM_SANITIZE to every target of the project (set by the asan / tsan presets).
if(TTMEM_SANITIZE)
  list(JOIN TTMEM_SANITIZE "," _ttmem_san)
  add_compile_options(-fsanitize=${_ttmem_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_ttmem_san})
endif()
