// The history as the snapshot PyTorch's memory_viz reads (torch.cuda.memory._snapshot()): `device_traces`
// (alloc / free_completed / oom actions with frames) and `segments`, one memory_viz device per TT device x
// slot. Addresses and sizes are of one bank: an interleaved buffer takes the same range in every bank, so the
// segment view is the bank's address map (as `ttmem map` draws it).
#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "ttmem/history.hpp"

namespace ttmem::history {

using nlohmann::json;

namespace {

/// "model.py:42" -> {filename model.py, line 42}; the op, when there is one, names the frame.
json frames(const std::string& site, const std::string& scope) {
  std::string file = site.empty() ? "?" : site;
  std::int64_t line = 0;
  if (auto colon = site.rfind(':'); colon != std::string::npos) {
    auto [p, ec] = std::from_chars(site.data() + colon + 1, site.data() + site.size(), line);
    if (ec == std::errc() && p == site.data() + site.size()) {
      file = site.substr(0, colon);
    } else {
      line = 0;
    }
  }
  json out = json::array();
  out.push_back({{"filename", file}, {"line", line}, {"name", scope.empty() ? site : scope}});
  return out;
}

}  // namespace

std::string memory_viz_snapshot(const Reader& reader, const ExportWindow& w) {
  LifetimeQuery lq;
  lq.since_ns = w.since_ns;
  lq.until_ns = w.until_ns;
  lq.device = w.device;
  const auto lifetimes = reader.lifetimes(lq);

  struct Trace {
    std::vector<std::pair<std::uint64_t, json>> events;  // (time, event)
    std::uint64_t low = UINT64_MAX, high = 0;            // the bank range its buffers cover
  };
  std::map<std::pair<std::uint16_t, Slot>, Trace> traces;
  for (const Lifetime& l : lifetimes) {
    Trace& t = traces[{l.device, slot_of(l.type, l.kind)}];
    const std::uint64_t size = l.size_per_bank ? l.size_per_bank : l.size;
    t.low = std::min(t.low, l.address);
    t.high = std::max(t.high, l.address + size);
    const json f = frames(l.site, l.scope);
    if (l.alloc_ns >= w.since_ns)
      t.events.push_back({l.alloc_ns,
                          {{"action", "alloc"},
                           {"addr", l.address},
                           {"size", size},
                           {"stream", 0},
                           {"time_us", l.alloc_ns / 1000},
                           {"frames", f}}});
    // A free is requested and completed at once (TT-Metal has no record_stream): memory_viz joins the pair
    // into one "free"; a lone free_completed would show the block as waiting for its stream.
    if (l.free_ns <= w.until_ns)
      for (const char* action : {"free_requested", "free_completed"})
        t.events.push_back({l.free_ns,
                            {{"action", action},
                             {"addr", l.address},
                             {"size", size},
                             {"stream", 0},
                             {"time_us", l.free_ns / 1000},
                             {"frames", f}}});
  }
  RecordFilter rf;
  rf.since_ns = w.since_ns;
  rf.until_ns = w.until_ns;
  rf.device = w.device;
  rf.kinds = {HistoryKind::oom};
  rf.limit = 100'000;
  for (const auto& r : reader.records(rf).records) {
    if (!r.device) continue;
    const json detail = json::parse(r.detail, nullptr, false);
    BufferType type = BufferType::DRAM;
    std::uint64_t free = 0;
    if (detail.is_object()) {
      if (auto t = parse_enum<BufferType>(detail.value("type", ""))) type = *t;
      if (auto s = detail.find("space"); s != detail.end() && s->is_object()) free = s->value("free", 0ull);
    }
    Trace& t = traces[{*r.device, slot_of(type, AllocKind::owning)}];
    t.events.push_back({r.time_ns,
                        {{"action", "oom"},
                         {"addr", 0},
                         {"size", r.bytes},
                         {"stream", 0},
                         {"device_free", free},
                         {"time_us", r.time_ns / 1000},
                         {"frames", frames(r.site, r.scope)}}});
  }

  json device_traces = json::array(), segments = json::array(), devices = json::array();
  int index = 0;
  for (auto& [key, t] : traces) {
    std::stable_sort(t.events.begin(), t.events.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    json events = json::array();
    for (auto& [time, e] : t.events) events.push_back(std::move(e));
    device_traces.push_back(std::move(events));
    devices.push_back({{"index", index}, {"device", key.first}, {"slot", to_string(key.second)}});
    if (t.low < t.high) {
      // Every buffer is freed by the end of the window (lifetimes are kept when they end): the segment is
      // the covered range, free.
      const std::uint64_t size = t.high - t.low;
      json block = {{"size", size}, {"requested_size", 0}, {"state", "inactive"}, {"frames", json::array()}};
      segments.push_back({{"device", index},
                          {"address", t.low},
                          {"total_size", size},
                          {"allocated_size", 0},
                          {"active_size", 0},
                          {"requested_size", 0},
                          {"stream", 0},
                          {"segment_type", "large"},
                          {"segment_pool_id", json::array({0, 0})},
                          {"is_expandable", false},
                          {"frames", json::array()},
                          {"blocks", json::array({block})}});
    }
    ++index;
  }
  json out = {{"segments", std::move(segments)},
              {"device_traces", std::move(device_traces)},
              {"allocator_settings", json::object()},
              {"ttmem_devices", std::move(devices)}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace ttmem::history
