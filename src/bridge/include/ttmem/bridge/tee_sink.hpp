// Two sinks hearing the same reports: a replay that goes to ttmemd and is analysed at once.
#pragma once

#include "ttmem/bridge/bridge.hpp"

namespace ttmem::bridge {

class TeeSink : public Sink {
 public:
  TeeSink(Sink& first, Sink& second) : first_(first), second_(second) {}
  void chip_added(const ChipInfo& chip) override {
    first_.chip_added(chip);
    second_.chip_added(chip);
  }
  void function_started(std::string_view name, std::string_view op) override {
    first_.function_started(name, op);
    second_.function_started(name, op);
  }
  void function_ended(std::string_view name, std::string_view op) override {
    first_.function_ended(name, op);
    second_.function_ended(name, op);
  }
  void allocated(const Allocation& allocation) override {
    first_.allocated(allocation);
    second_.allocated(allocation);
  }
  void released(const Allocation& allocation, ReleaseReason reason) override {
    first_.released(allocation, reason);
    second_.released(allocation, reason);
  }
  void chip_closing(std::uint16_t chip, ClosePhase phase) override {
    first_.chip_closing(chip, phase);
    second_.chip_closing(chip, phase);
  }

 private:
  Sink& first_;
  Sink& second_;
};

}  // namespace ttmem::bridge
