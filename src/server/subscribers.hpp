// `ttmem events --follow` and other subscribers, as a sink of the ledger: what happens is published to
// them as typed stream events, which the server sends as JSON notifications (schemas: docs/protocol.md). The
// server delivers them (and drops what a slow subscriber cannot take).
#pragma once

#include <functional>

#include "ledger.hpp"

namespace ttmem::server {

class Subscribers final : public model::Sink {
 public:
  using Publish = std::function<void(const views::StreamEvent&)>;
  Subscribers(model::Registry& registry, Publish publish);
  ~Subscribers() override;
  Subscribers(const Subscribers&) = delete;
  Subscribers& operator=(const Subscribers&) = delete;

  /// A subscriber comes or goes: `each` ones are sent every applied event; the others only records (leaks,
  /// orphans, OOMs), and the server tells them of changes in bulk.
  void added(bool each = true) { change(+1, each); }
  void removed(bool each = true) { change(-1, each); }
  std::size_t count() const { return count_; }

  bool wants_events() const override { return each_ > 0; }
  void on_event(const model::AppliedEvent& a) override;
  void on_leak(const model::LeakRecord& l) override;
  void on_process_died(const model::OrphanRecord& o) override;
  void on_oom(const views::OomRecord& r) override;

 private:
  void change(int delta, bool each);
  model::Registry& registry_;
  Publish publish_;
  std::size_t count_ = 0;
  std::size_t each_ = 0;  // of count_, those sent every event
};

}  // namespace ttmem::server
