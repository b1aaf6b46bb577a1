// The C face of libttmem (ttmem/ttmem.h), a thin layer over the process-wide Client.
#include "ttmem/client.hpp"
#include "ttmem/ttmem.h"

using ttmem::client::Client;

struct ttmem_snapshot {
  ttmem::client::SnapshotWriter* writer;
};

namespace {

ttmem::client::AllocationReport to_report(const ttmem_alloc& a) {
  ttmem::client::AllocationReport r;
  r.device = a.device;
  r.type = static_cast<ttmem::proto::BufferType>(a.buffer_type <= 4 ? a.buffer_type : 0);
  r.kind = static_cast<ttmem::proto::AllocKind>(a.kind <= 4 ? a.kind : 0);
  r.id = a.id;
  r.size = a.size;
  r.address = a.address;
  r.site = a.site;
  r.num_banks = a.num_banks;
  r.size_per_bank = a.size_per_bank;
  r.mesh = a.mesh;
  r.internal = a.internal != 0;
  r.timestamp_ns = a.timestamp_ns;
  return r;
}

ttmem::client::DeviceReport to_report(const ttmem_device& d) {
  ttmem::client::DeviceReport r;
  r.device = d.device;
  r.arch = d.arch;
  r.mesh = d.mesh;
  for (int i = 0; i < 5; ++i) {
    r.total_bytes[i] = d.total_bytes[i];
    r.num_banks[i] = d.num_banks[i];
  }
  return r;
}

}  // namespace

extern "C" {

int ttmem_active(void) {
  return Client::instance().active() ? 1 : 0;
}

int ttmem_wait_connected(uint32_t timeout_ms) {
  return Client::instance().wait_for_first_attempt(std::chrono::milliseconds(timeout_ms)) ? 1 : 0;
}

uint32_t ttmem_intern_site(const char* text) {
  return text ? Client::instance().intern_site(text) : 0;
}

void ttmem_report_alloc(const ttmem_alloc* a) {
  if (a) Client::instance().report_alloc(to_report(*a));
}

void ttmem_report_free(uint16_t device, uint64_t id, uint8_t reason) {
  Client::instance().report_free(device, id,
                                 static_cast<ttmem::proto::ReleaseReason>(reason <= 2 ? reason : 0));
}

void ttmem_device_open(const ttmem_device* d) {
  if (d) Client::instance().device_open(to_report(*d));
}

void ttmem_device_close(uint16_t device, uint8_t phase) {
  Client::instance().device_close(device,
                                  phase ? ttmem::proto::ClosePhase::end : ttmem::proto::ClosePhase::begin);
}

int ttmem_flush(uint32_t timeout_ms) {
  return Client::instance().flush(std::chrono::milliseconds(timeout_ms)) ? 1 : 0;
}

void ttmem_get_counters(ttmem_counters* out) {
  if (!out) return;
  const auto c = Client::instance().counters();
  *out = {c.events,         c.bytes,     c.batches,           c.stall_ns,
          c.reconnects,     c.snapshots, c.superseded_events, c.flushes,
          c.dropped_events, c.gaps,      c.connected ? 1 : 0};
}

void ttmem_set_resync_callback(ttmem_resync_fn fn, void* user) {
  if (!fn) {
    Client::instance().set_resync_callback(nullptr);
    return;
  }
  Client::instance().set_resync_callback([fn, user](ttmem::client::SnapshotWriter& w) {
    ttmem_snapshot s{&w};
    fn(&s, user);
  });
}

void ttmem_snapshot_begin(ttmem_snapshot* s) {
  if (s) s->writer->begin();
}

void ttmem_snapshot_device(ttmem_snapshot* s, const ttmem_device* d) {
  if (s && d) s->writer->device(to_report(*d));
}

void ttmem_snapshot_alloc(ttmem_snapshot* s, const ttmem_alloc* a) {
  if (s && a) s->writer->allocation(to_report(*a));
}

}  // extern "C"
