// Connects the emulated runtime to ttmemd: a GraphTracker processor that forwards every device-scope
// allocation and release to libttmem, plus the resync callback that lists everything live, so a server
// (re)start sees the exact state. This is the reference integration for a real TT-Metal build
// (docs/integrating.md).
#pragma once

#include <chrono>

#include "ttmem/client.hpp"

namespace ttmem::emu {

class ServerTracking {
 public:
  /// Installs the processor and the resync callback on the process-wide client (idempotent). Waits up to
  /// `connect_wait` for the first connection attempt so short runs are tracked from their start.
  /// Returns false when tracking is turned off (TTMEM_TRACKING=0).
  static bool enable(std::chrono::milliseconds connect_wait = std::chrono::milliseconds(1000));
  /// True when connected to a server.
  static bool active();
  /// Barrier with the server (see Client::flush).
  static bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  static client::Counters counters();
};

}  // namespace ttmem::emu
