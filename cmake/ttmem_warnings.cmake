# Warnings are errors for project code only; third-party headers come in as SYSTEM includes.
function(ttmem_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Werror)
endfunction()
