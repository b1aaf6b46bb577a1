// The --json report of a ttmem-emu run (schema: docs/emu-scripts.md).
#pragma once

#include <nlohmann/json.hpp>

#include "interpreter.hpp"

namespace ttmem::emu_tool {

nlohmann::json to_json(const RunResult& result);

}  // namespace ttmem::emu_tool
