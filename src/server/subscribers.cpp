#include "subscribers.hpp"

#include "ledger_views.hpp"

namespace ttmem::server {

Subscribers::Subscribers(model::Registry& registry, Publish publish)
    : registry_(registry), publish_(std::move(publish)) {
  registry_.add_sink(*this);
}

Subscribers::~Subscribers() {
  registry_.remove_sink(*this);
}

void Subscribers::change(int delta, bool each) {
  const bool before = each_ > 0;
  if (delta > 0) {
    ++count_;
    each_ += each;
  } else if (count_ > 0) {
    --count_;
    if (each && each_ > 0) --each_;
  }
  if (before != (each_ > 0)) registry_.sinks_changed();  // the ledger reports each event only while wanted
}

void Subscribers::on_event(const model::AppliedEvent& a) {
  publish_(model::event_view(a));
}

void Subscribers::on_leak(const model::LeakRecord& l) {
  if (count_ == 0) return;
  publish_(model::leak_view(l));
}

void Subscribers::on_process_died(const model::OrphanRecord& o) {
  if (count_ == 0 || o.held.empty()) return;
  publish_(model::orphan_view(o));
}

void Subscribers::on_oom(const views::OomRecord& r) {
  if (count_ == 0) return;
  publish_(r);
}

}  // namespace ttmem::server
