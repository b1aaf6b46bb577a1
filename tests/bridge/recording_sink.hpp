// A bridge sink that writes down what it hears, for tests of the bridge itself.
#pragma once

#include <string>
#include <vector>

#include "ttmem/bridge/bridge.hpp"

namespace ttmem::test {

struct RecordingSink : bridge::Sink {
  struct Event {
    std::string what;  ///< "alloc", "free", "chip", "close-begin", "close-end", "start", "end"
    bridge::Allocation allocation;
    ReleaseReason reason = ReleaseReason::explicit_free;
    std::string site, op;  ///< copied (the allocation's views are the bridge's)
  };
  std::vector<Event> events;
  std::vector<bridge::ChipInfo> chips;

  void chip_added(const bridge::ChipInfo& chip) override { chips.push_back(chip); }
  void function_started(std::string_view name, std::string_view op) override {
    events.push_back({"start", {}, {}, std::string(name), std::string(op)});
  }
  void function_ended(std::string_view name, std::string_view op) override {
    events.push_back({"end", {}, {}, std::string(name), std::string(op)});
  }
  void allocated(const bridge::Allocation& a) override {
    events.push_back({"alloc", a, {}, std::string(a.site), std::string(a.op)});
  }
  void released(const bridge::Allocation& a, ReleaseReason reason) override {
    events.push_back({"free", a, reason, std::string(a.site), std::string(a.op)});
  }
  void chip_closing(std::uint16_t chip, ClosePhase phase) override {
    bridge::Allocation a;
    a.chip = chip;
    events.push_back({phase == ClosePhase::begin ? "close-begin" : "close-end", a, {}, {}, {}});
  }
  std::vector<Event> of(const std::string& what) const {
    std::vector<Event> out;
    for (const Event& e : events)
      if (e.what == what) out.push_back(e);
    return out;
  }
};

}  // namespace ttmem::test
