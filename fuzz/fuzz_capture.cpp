// Fuzz target: a ttnn graph capture, read and replayed through the bridge into the per-op analysis and
// both reports. A capture the reader refuses must be refused with a CaptureError naming the file; one it
// accepts must replay without a crash, and its figures must hold together (a peak's parts never sum to
// more than the peak).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string_view>

#include "ttmem/replay/report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ttmem::replay;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Capture capture;
  try {
    capture = parse_capture(text, "fuzz.json");
  } catch (const CaptureError& e) {
    if (std::string_view(e.what()).rfind("fuzz.json: ", 0) != 0) std::abort();
    return 0;
  }
  OpAnalysis analysis;
  ttmem::bridge::Bridge bridge(analysis);
  const ReplaySetup setup = announce(capture, bridge);
  feed(capture, bridge, analysis);
  const ttmem::bridge::BridgeStats stats = bridge.stats();
  const CaptureFigures figures = analysis.finish();
  std::uint64_t parts = 0;
  for (const PeakPart& p : figures.l1.parts) parts += p.bytes;
  if (parts > figures.l1.per_core) std::abort();
  const ReportInput in{capture, setup, stats, figures};
  std::ostringstream out;
  write_text(out, in, {});
  (void)to_json(in);
  return 0;
}
