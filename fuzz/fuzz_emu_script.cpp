// Fuzz target: the ttmem-emu script parser (scripts are files users write: untrusted input).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "script.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    ttmem::emu_tool::parse_script(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const ttmem::emu_tool::ScriptError&) {
  }
  return 0;
}
