// See ttmem/bridge/client_sink.hpp.
#include "ttmem/bridge/client_sink.hpp"

namespace ttmem::bridge {

client::SiteId ClientSink::intern(std::string_view text) {
  if (text.empty()) return 0;
  if (auto it = ids_.find(text); it != ids_.end()) return it->second;
  const client::SiteId id = client_.intern_site(text);
  ids_.emplace(text, id);
  return id;
}

client::AllocationReport ClientSink::to_report(const Allocation& a, client::SiteId site, client::SiteId op) {
  client::AllocationReport r;
  r.device = a.chip;
  r.type = a.type;
  r.kind = a.kind;
  r.id = a.id;
  r.size = a.size;
  r.address = a.address;
  r.site = site;
  r.num_banks = a.num_banks;
  r.size_per_bank = a.size_per_bank;
  r.mesh = a.mesh;
  r.scope = op;
  r.timestamp_ns = a.timestamp_ns;
  return r;
}

client::DeviceReport ClientSink::to_report(const ChipInfo& chip) {
  client::DeviceReport d;
  d.device = static_cast<std::uint16_t>(chip.id);
  d.arch = static_cast<std::uint8_t>(chip.arch);
  d.mesh = chip.mesh;
  d.total_bytes = chip.total_bytes;
  d.num_banks = chip.num_banks;
  d.base_address = chip.base_address;
  return d;
}

void ClientSink::attach(const Bridge& bridge) {
  client_.set_resync_callback([this, &bridge](client::SnapshotWriter& writer) {
    bridge.snapshot([&] { writer.begin(); },
                    [&](const ChipInfo& chip) {
                      if (chip.has_geometry) writer.device(to_report(chip));
                    },
                    [&](const Allocation& a) {
                      if (!a.tensor_backed) writer.allocation(to_report(a, intern(a.site), intern(a.op)));
                    });
  });
}

void ClientSink::chip_added(const ChipInfo& chip) {
  if (chip.has_geometry) client_.device_open(to_report(chip));
}

void ClientSink::allocated(const Allocation& a) {
  if (a.tensor_backed) return;
  client_.report_alloc(to_report(a, intern(a.site), intern(a.op)));
}

void ClientSink::released(const Allocation& a, ReleaseReason reason) {
  if (a.tensor_backed) return;
  client_.report_free(a.chip, a.id, reason);
}

void ClientSink::chip_closing(std::uint16_t chip, ClosePhase phase) {
  client_.device_close(chip, phase);
}

}  // namespace ttmem::bridge
