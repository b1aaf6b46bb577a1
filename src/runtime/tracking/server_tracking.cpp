// The emulated runtime reporting to ttmemd; see ttmem/runtime/server_tracking.hpp.
#include "ttmem/runtime/server_tracking.hpp"

#include <cstdio>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/graph_tracker.hpp"

namespace ttmem::emu {

namespace {

using client::Client;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// Site ids are interned once per thread and text, without a lock on the way.
client::SiteId site_id(std::string_view site) {
  if (site.empty()) return 0;
  thread_local std::unordered_map<std::string, client::SiteId, StringHash, std::equal_to<>> cache;
  if (auto it = cache.find(site); it != cache.end()) return it->second;
  const client::SiteId id = Client::instance().intern_site(site);
  cache.emplace(std::string(site), id);
  return id;
}

/// The wire names a device in 16 bits; the runtime's ids are 32. A device past that cannot be reported
/// (no machine has one: ttmemd refuses ids above 4095): its events are left out, and said so once.
std::optional<std::uint16_t> wire_device(DeviceId device) {
  if (device.value <= std::numeric_limits<std::uint16_t>::max())
    return static_cast<std::uint16_t>(device.value);
  static std::once_flag warned;
  std::call_once(warned, [&] {
    std::fprintf(stderr,
                 "ttmem: device id %u does not fit the wire protocol's 16 bits; its memory is not tracked\n",
                 device.value);
  });
  return std::nullopt;
}

client::AllocationReport to_report(const AllocationEvent& e, std::uint16_t device) {
  client::AllocationReport r;
  r.device = device;
  r.type = e.type;
  r.kind = e.kind;
  r.id = e.id.value;
  r.size = e.size;
  r.address = e.address;
  r.site = site_id(e.site);
  r.num_banks = e.num_banks;
  r.size_per_bank = e.size_per_bank;
  r.mesh = e.mesh.value;
  r.internal = e.internal;
  r.scope = e.op;
  r.timestamp_ns = e.timestamp_ns;
  return r;
}

client::DeviceReport to_report(const DeviceInfo& info, std::uint16_t device) {
  client::DeviceReport d;
  d.device = device;
  d.arch = static_cast<std::uint8_t>(info.arch);
  d.mesh = info.mesh.value;
  d.total_bytes = info.total_bytes;
  d.num_banks = info.num_banks;
  d.base_address = info.base_address;
  return d;
}

class ForwardingProcessor : public Processor {
 public:
  // Mesh-scope events are the mesh allocator's backing reservations; each device reports its own part.
  void track_allocate(const AllocationEvent& e) override {
    if (e.scope != EventScope::device) return;
    if (auto d = wire_device(e.device)) Client::instance().report_alloc(to_report(e, *d));
  }
  void track_deallocate(const AllocationEvent& e) override {
    if (e.scope != EventScope::device) return;
    if (auto d = wire_device(e.device)) Client::instance().report_free(*d, e.id.value, e.reason);
  }
  void track_allocate_failed(const AllocationFailure& f) override {
    const auto d = wire_device(f.device);
    if (!d) return;
    client::AllocationFailureReport r;
    r.device = *d;
    r.type = f.type;
    r.reason = f.reason;
    r.size = f.size;
    r.page_size = f.page_size;
    r.num_banks = f.num_banks;
    r.size_per_bank = f.size_per_bank;
    r.site = f.site;
    r.message = f.message;
    r.timestamp_ns = f.timestamp_ns;
    Client::instance().report_alloc_failure(r);
  }
  void track_device_open(const DeviceInfo& info) override {
    if (auto d = wire_device(info.device)) Client::instance().device_open(to_report(info, *d));
  }
  void track_device_close(DeviceId device, ClosePhase phase) override {
    const auto d = wire_device(device);
    if (!d) return;
    Client::instance().device_close(*d, phase);
    // The close is not done until the server has seen it: its leak report is then complete.
    if (phase == ClosePhase::end) Client::instance().flush(std::chrono::seconds(5));
  }
};

/// Lists everything live, with every mesh locked so no event is reported meanwhile.
void snapshot(client::SnapshotWriter& writer) {
  MeshDevice::with_meshes([&](const std::vector<std::shared_ptr<MeshDevice>>& meshes) {
    std::vector<std::unique_lock<std::recursive_mutex>> locks;
    for (const auto& m : meshes) locks.emplace_back(m->mutex());
    writer.begin();
    for (const auto& m : meshes) {
      if (!m->is_open()) continue;
      for (std::size_t d = 0; d < m->num_devices(); ++d) {
        Device& device = m->device(d);
        const auto id = wire_device(device.id());
        if (!id) continue;
        writer.device(to_report(device.info(), *id));
        for (const Buffer* b : device.allocator().attached_buffers())
          writer.allocation(to_report(b->event(), *id));
        for (const auto& program : device.program_cache().programs()) {
          for (const auto& cb : program->circular_buffers_locked()) {
            if (cb.device != device.id()) continue;
            const std::string site = program->cb_site(cb.index);
            writer.allocation(to_report(program->cb_event(cb, site), *id));
          }
        }
      }
    }
  });
}

}  // namespace

bool ServerTracking::enable(std::chrono::milliseconds connect_wait) {
  static std::once_flag once;
  Client& client = Client::instance();
  if (!client.enabled()) return false;
  std::call_once(once, [&] {
    client.set_resync_callback(snapshot);
    GraphTracker::instance().set_op_tag_source([] { return Client::instance().current_op(); });
    GraphTracker::instance().push_processor(std::make_shared<ForwardingProcessor>());
  });
  client.wait_for_first_attempt(connect_wait);
  return true;
}

bool ServerTracking::active() {
  return Client::instance().active();
}

bool ServerTracking::flush(std::chrono::milliseconds timeout) {
  return Client::instance().flush(timeout);
}

client::Counters ServerTracking::counters() {
  return Client::instance().counters();
}

}  // namespace ttmem::emu
