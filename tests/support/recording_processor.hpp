// Test processor: records every tracker event and answers "is everything released?" questions.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ttmem/runtime/graph_tracker.hpp"

namespace ttmem::test {

struct RecordedEvent {
  bool allocate = true;
  emu::AllocationEvent event;
  std::string site;  // owned copy: the event's site view dies with the buffer
};

class RecordingProcessor : public emu::Processor {
 public:
  void track_allocate(const emu::AllocationEvent& e) override { record(true, e); }
  void track_deallocate(const emu::AllocationEvent& e) override { record(false, e); }
  void track_device_open(const emu::DeviceInfo& info) override {
    std::lock_guard lock(mutex_);
    opened.push_back(info);
  }
  void track_device_close(emu::DeviceId device, emu::ClosePhase phase) override {
    std::lock_guard lock(mutex_);
    closes.emplace_back(device, phase);
  }

  std::vector<RecordedEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  /// Allocations (by id) with no release yet.
  std::set<std::uint64_t> outstanding() const {
    std::lock_guard lock(mutex_);
    std::set<std::uint64_t> live;
    for (const auto& r : events_) {
      if (r.allocate) {
        live.insert(r.event.id.value);
      } else {
        live.erase(r.event.id.value);
      }
    }
    return live;
  }
  /// Count of allocations and releases per (scope, device, type).
  using Key = std::tuple<emu::EventScope, std::uint32_t, emu::BufferType>;
  std::map<Key, std::pair<int, int>> counts() const {
    std::lock_guard lock(mutex_);
    std::map<Key, std::pair<int, int>> out;
    for (const auto& r : events_) {
      auto& c = out[{r.event.scope, r.event.device.value, r.event.type}];
      (r.allocate ? c.first : c.second)++;
    }
    return out;
  }
  std::vector<RecordedEvent> releases_with(emu::ReleaseReason reason) const {
    std::lock_guard lock(mutex_);
    std::vector<RecordedEvent> out;
    for (const auto& r : events_) {
      if (!r.allocate && r.event.reason == reason) out.push_back(r);
    }
    return out;
  }
  /// Live bytes per device for device-scope events of one type.
  std::uint64_t live_bytes(std::uint32_t device, emu::BufferType type, bool include_cbs = false) const {
    std::lock_guard lock(mutex_);
    std::int64_t bytes = 0;
    for (const auto& r : events_) {
      const auto& e = r.event;
      if (e.scope != emu::EventScope::device || e.device.value != device || e.type != type) continue;
      if (!include_cbs && e.kind == emu::AllocKind::circular_buffer) continue;
      bytes += r.allocate ? static_cast<std::int64_t>(e.size) : -static_cast<std::int64_t>(e.size);
    }
    return static_cast<std::uint64_t>(bytes);
  }

  std::vector<emu::DeviceInfo> opened;
  std::vector<std::pair<emu::DeviceId, emu::ClosePhase>> closes;

 private:
  void record(bool allocate, const emu::AllocationEvent& e) {
    std::lock_guard lock(mutex_);
    events_.push_back({allocate, e, std::string(e.site)});
    events_.back().event.site = {};
  }
  mutable std::mutex mutex_;
  std::vector<RecordedEvent> events_;
};

/// Installs a RecordingProcessor for the lifetime of the scope.
class ScopedRecorder {
 public:
  ScopedRecorder() : processor_(std::make_shared<RecordingProcessor>()) {
    emu::GraphTracker::instance().push_processor(processor_);
  }
  ~ScopedRecorder() { emu::GraphTracker::instance().remove_processor(processor_); }
  RecordingProcessor& operator*() { return *processor_; }
  RecordingProcessor* operator->() { return processor_.get(); }

 private:
  std::shared_ptr<RecordingProcessor> processor_;
};

}  // namespace ttmem::test
