// ttmemd's log as a sink of the ledger: leaks and dead processes always, every event with --verbose.
#pragma once

#include "ledger.hpp"

namespace ttmem::server {

class LogSink final : public model::Sink {
 public:
  explicit LogSink(bool verbose) : verbose_(verbose) {}
  bool wants_events() const override { return verbose_; }
  void on_event(const model::AppliedEvent& a) override;
  void on_leak(const model::LeakRecord& l) override;
  void on_process_died(const model::OrphanRecord& o) override;
  void on_oom(const views::OomRecord& r) override;
  void on_device_open(const model::ProcessState& p, const proto::DeviceOpen& d) override;
  void on_device_close(const model::ProcessState& p, const proto::DeviceClose& d) override;

 private:
  bool verbose_;
};

}  // namespace ttmem::server
