// The offline report of a replayed capture: a table of ops with their peaks, the capture's peak and what
// it is made of, TT-Metal's own figures beside them, and what the bridge could not attribute; or all of
// it as JSON (docs/replay.md gives the schema).
#pragma once

#include <iosfwd>
#include <string>

#include "ttmem/bridge/bridge.hpp"
#include "ttmem/replay/address_check.hpp"
#include "ttmem/replay/capture.hpp"
#include "ttmem/replay/op_analysis.hpp"
#include "ttmem/replay/replay.hpp"

namespace ttmem::replay {

struct ReportInput {
  const Capture& capture;
  const ReplaySetup& setup;
  const bridge::BridgeStats& stats;
  const CaptureFigures& figures;
  const AddressCheck* address_check = nullptr;  ///< with `--check`
};

struct TextOptions {
  std::size_t limit = 200;  ///< op rows shown (the JSON has all)
  std::string op;           ///< also list the peak parts of ops whose path contains this
};

void write_text(std::ostream& out, const ReportInput& in, const TextOptions& options);
std::string to_json(const ReportInput& in);

/// The whole offline report of a capture, as `ttmem replay --offline --json` prints it (with the address
/// check when `check` is given). Throws CaptureError as check_addresses does.
std::string offline_report_json(const Capture& capture, const ReplayOptions& options = {},
                                const std::optional<AddressCheckOptions>& check = std::nullopt);

}  // namespace ttmem::replay
