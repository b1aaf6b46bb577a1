// The C face of libttmem (ttmem/ttmem.h), a thin layer over the process-wide Client.
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <mutex>
#include <optional>

#include "ttmem/client.hpp"
#include "ttmem/ttmem.h"
#include "ttmem/vocab.hpp"

using ttmem::client::Client;

// ttmem.h mirrors the vocabulary's values for C; a mirror that drifts does not compile.
// `scope` took the padding before timestamp_ns: a caller built against the older header still passes the
// same layout (with whatever was in the padding: zero it, as the header asks).
static_assert(sizeof(ttmem_alloc) == 64 && offsetof(ttmem_alloc, scope) == 52);
static_assert(TTMEM_DRAM == static_cast<int>(ttmem::BufferType::DRAM));
static_assert(TTMEM_L1 == static_cast<int>(ttmem::BufferType::L1));
static_assert(TTMEM_SYSTEM_MEMORY == static_cast<int>(ttmem::BufferType::SYSTEM_MEMORY));
static_assert(TTMEM_L1_SMALL == static_cast<int>(ttmem::BufferType::L1_SMALL));
static_assert(TTMEM_TRACE == static_cast<int>(ttmem::BufferType::TRACE));
static_assert(ttmem::kEnumCount<ttmem::BufferType> == 5);
static_assert(TTMEM_OWNING == static_cast<int>(ttmem::AllocKind::owning));
static_assert(TTMEM_PREALLOCATED == static_cast<int>(ttmem::AllocKind::preallocated));
static_assert(TTMEM_CIRCULAR_BUFFER == static_cast<int>(ttmem::AllocKind::circular_buffer));
static_assert(TTMEM_KERNEL_BINARY == static_cast<int>(ttmem::AllocKind::kernel_binary));
static_assert(TTMEM_TRACE_BUFFER == static_cast<int>(ttmem::AllocKind::trace));
static_assert(ttmem::kEnumCount<ttmem::AllocKind> == 5);
static_assert(TTMEM_FREE_EXPLICIT == static_cast<int>(ttmem::ReleaseReason::explicit_free));
static_assert(TTMEM_FREE_CLOSE_INTERNAL == static_cast<int>(ttmem::ReleaseReason::close_internal));
static_assert(TTMEM_FREE_CLOSE_LEAK == static_cast<int>(ttmem::ReleaseReason::close_leak));
static_assert(ttmem::kEnumCount<ttmem::ReleaseReason> == 3);
static_assert(TTMEM_CLOSE_BEGIN == static_cast<int>(ttmem::ClosePhase::begin));
static_assert(TTMEM_CLOSE_END == static_cast<int>(ttmem::ClosePhase::end));
static_assert(TTMEM_OUT_OF_MEMORY == static_cast<int>(ttmem::FailureReason::out_of_memory));
static_assert(TTMEM_CB_CLASH == static_cast<int>(ttmem::FailureReason::cb_clash));
static_assert(TTMEM_BAD_BANK_COUNT == static_cast<int>(ttmem::FailureReason::bad_bank_count));
static_assert(ttmem::kEnumCount<ttmem::FailureReason> == 3);

struct ttmem_snapshot {
  ttmem::client::SnapshotWriter* writer;
};

namespace {

/// A value C passed that ttmem.h does not define: said once per field, so a caller's bug is visible.
void warn_bad_value(std::once_flag& once, const char* field, unsigned value, const char* what_happens) {
  std::call_once(once, [&] {
    std::fprintf(stderr, "ttmem: %s %u is not one of ttmem.h's values; %s\n", field, value, what_happens);
  });
}

/// Nothing when the allocation names a memory type or kind ttmem does not know: it would be counted in
/// the wrong place.
std::optional<ttmem::client::AllocationReport> to_report(const ttmem_alloc& a) {
  const auto type = ttmem::enum_from<ttmem::BufferType>(a.buffer_type);
  const auto kind = ttmem::enum_from<ttmem::AllocKind>(a.kind);
  if (!type) {
    static std::once_flag once;
    warn_bad_value(once, "buffer_type", a.buffer_type, "such allocations are not reported");
    return std::nullopt;
  }
  if (!kind) {
    static std::once_flag once;
    warn_bad_value(once, "kind", a.kind, "such allocations are not reported");
    return std::nullopt;
  }
  ttmem::client::AllocationReport r;
  r.device = a.device;
  r.type = *type;
  r.kind = *kind;
  r.id = a.id;
  r.size = a.size;
  r.address = a.address;
  r.site = a.site;
  r.num_banks = a.num_banks;
  r.size_per_bank = a.size_per_bank;
  r.mesh = a.mesh;
  r.internal = a.internal != 0;
  r.timestamp_ns = a.timestamp_ns;
  r.scope = a.scope;
  return r;
}

ttmem::client::DeviceReport to_report(const ttmem_device& d) {
  ttmem::client::DeviceReport r;
  r.device = d.device;
  r.arch = d.arch;
  r.mesh = d.mesh;
  static_assert(std::size(ttmem_device{}.total_bytes) == ttmem::kBufferTypes);
  for (std::size_t i = 0; i < ttmem::kBufferTypes; ++i) {
    r.total_bytes[i] = d.total_bytes[i];
    r.num_banks[i] = d.num_banks[i];
    r.base_address[i] = d.base_address[i];
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

uint32_t ttmem_push_op(const char* name) {
  return Client::instance().push_op(name ? name : "");
}

void ttmem_pop_op(void) {
  Client::instance().pop_op();
}

void ttmem_report_alloc(const ttmem_alloc* a) {
  if (!a) return;
  if (auto r = to_report(*a)) Client::instance().report_alloc(*r);
}

void ttmem_report_free(uint16_t device, uint64_t id, uint8_t reason) {
  auto r = ttmem::enum_from<ttmem::ReleaseReason>(reason);
  static std::once_flag once;
  if (!r) warn_bad_value(once, "reason", reason, "the free is reported as an explicit one");
  Client::instance().report_free(device, id, r.value_or(ttmem::ReleaseReason::explicit_free));
}

void ttmem_device_open(const ttmem_device* d) {
  if (d) Client::instance().device_open(to_report(*d));
}

void ttmem_report_alloc_failure(const ttmem_alloc_failure* f) {
  if (!f) return;
  const auto type = ttmem::enum_from<ttmem::BufferType>(f->buffer_type);
  if (!type) {
    static std::once_flag once;
    warn_bad_value(once, "buffer_type", f->buffer_type, "such failures are not reported");
    return;
  }
  const auto reason = ttmem::enum_from<ttmem::FailureReason>(f->reason);
  static std::once_flag once;
  if (!reason) warn_bad_value(once, "reason", f->reason, "the failure is reported as out of memory");
  ttmem::client::AllocationFailureReport r;
  r.device = f->device;
  r.type = *type;
  r.reason = reason.value_or(ttmem::FailureReason::out_of_memory);
  r.size = f->size;
  r.page_size = f->page_size;
  r.num_banks = f->num_banks;
  r.size_per_bank = f->size_per_bank;
  r.timestamp_ns = f->timestamp_ns;
  if (f->site) r.site = f->site;
  if (f->message) r.message = f->message;
  Client::instance().report_alloc_failure(r);
}

void ttmem_device_close(uint16_t device, uint8_t phase) {
  auto p = ttmem::enum_from<ttmem::ClosePhase>(phase);
  static std::once_flag once;
  if (!p) warn_bad_value(once, "phase", phase, "it is taken as the end of the close");
  Client::instance().device_close(device, p.value_or(ttmem::ClosePhase::end));
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
  if (!s || !a) return;
  if (auto r = to_report(*a)) s->writer->allocation(*r);
}

}  // extern "C"
