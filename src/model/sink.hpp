// Observers of the ledger. Each consumer of what happens (the server's log, its subscribers; history,
// exports and HTTP streams next) is one sink; the registry calls every sink it was given, in order.
#pragma once

#include "ttmem/protocol.hpp"
#include "ttmem/views.hpp"

namespace ttmem::model {

struct AppliedEvent;
struct LeakRecord;
struct OrphanRecord;
struct ProcessState;

class Sink {
 public:
  virtual ~Sink() = default;
  /// Whether on_event is wanted now. It costs a call per event, so the registry skips the event path when
  /// no sink wants it; a sink whose answer changes tells the registry (Registry::sinks_changed).
  virtual bool wants_events() const { return false; }
  /// An allocation or free was applied (frees carry what was freed).
  virtual void on_event(const AppliedEvent&) {}
  /// A buffer was still held when its process closed the device.
  virtual void on_leak(const LeakRecord&) {}
  /// A process is gone and its memory reclaimed; `held` is empty when it held nothing.
  virtual void on_process_died(const OrphanRecord&) {}
  /// An allocation was refused; the record says what the device looked like then.
  virtual void on_oom(const views::OomRecord&) {}
  virtual void on_device_open(const ProcessState&, const proto::DeviceOpen&) {}
  virtual void on_device_close(const ProcessState&, const proto::DeviceClose&) {}
};

}  // namespace ttmem::model
