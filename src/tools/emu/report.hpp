// The --json report of a ttmem-emu run (schema: docs/emu-scripts.md).
#pragma once

#include <string>

#include "interpreter.hpp"

namespace ttmem::emu_tool {

/// The report as indented JSON text.
std::string report_json(const RunResult& result);

}  // namespace ttmem::emu_tool
