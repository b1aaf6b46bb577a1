// The bridge speaks of TT-Metal's core ranges with the one definition in ttmem/core_range.hpp.
#pragma once

#include "ttmem/core_range.hpp"

namespace ttmem::bridge {

using ttmem::CoreCoord;
using ttmem::CoreRange;
using ttmem::CoreRangeSet;
using ttmem::parse_core_range_set;

}  // namespace ttmem::bridge
