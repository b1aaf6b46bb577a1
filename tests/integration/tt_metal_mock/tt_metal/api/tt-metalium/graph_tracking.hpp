// Mock (see core_coord.hpp): IGraphProcessor with the newest sources' signatures, and a GraphTracker that
// fans out as TT-Metal's does: thread-local processors get everything; background ones (internal/) get
// buffers only, on every thread.
#pragma once

#include <any>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tt-metalium/buffer.hpp"
#include "tt-metalium/core_coord.hpp"
#include "tt-metalium/device.hpp"

namespace tt::tt_metal {

struct TrackedArgument {
  std::any value;
  std::string (*to_string_fn)(const std::any&);
};

class IGraphProcessor {
 public:
  virtual ~IGraphProcessor() = default;
  virtual bool is_capture_processor() const { return true; }
  virtual void track_allocate(const Buffer*) {}
  virtual void track_deallocate(Buffer*) {}
  virtual void track_allocate_cb(const CoreRangeSet&, std::uint64_t, std::uint64_t, bool, const IDevice*) {}
  virtual void track_allocate_dataflow_buffer(const CoreRangeSet&, std::uint64_t, std::uint64_t, bool,
                                              const IDevice*) {}
  virtual void track_allocate_scratchpad(const CoreRangeSet&, std::uint64_t, std::uint64_t, const IDevice*) {}
  virtual void track_deallocate_cb(const IDevice*) {}
  virtual void track_function_start(std::string_view, std::span<TrackedArgument>) {}
  virtual void track_function_end() {}
  virtual void track_function_end(const std::any&) {}
};

class GraphTracker {
 public:
  static GraphTracker& instance() {
    static GraphTracker tracker;
    return tracker;
  }
  bool is_enabled() const {
    for (const auto& p : processors())
      if (p->is_capture_processor()) return true;
    return false;
  }
  void push_processor(const std::shared_ptr<IGraphProcessor>& p) { processors().push_back(p); }
  void track_allocate(const Buffer* b) {
    for (auto& p : processors()) p->track_allocate(b);
    std::shared_lock lock(background_mutex);
    for (auto& p : background) p->track_allocate(b);
  }
  void track_deallocate(Buffer* b) {
    for (auto& p : processors()) p->track_deallocate(b);
    std::shared_lock lock(background_mutex);
    for (auto& p : background) p->track_deallocate(b);
  }
  void track_allocate_cb(const CoreRangeSet& c, std::uint64_t a, std::uint64_t s, bool g, const IDevice* d) {
    for (auto& p : processors()) p->track_allocate_cb(c, a, s, g, d);
  }
  void track_deallocate_cb(const IDevice* d) {
    for (auto& p : processors()) p->track_deallocate_cb(d);
  }
  void track_function_start(std::string_view name) {
    for (auto& p : processors()) p->track_function_start(name, {});
  }
  void track_function_end() {
    for (auto& p : processors()) p->track_function_end();
  }

  std::shared_mutex background_mutex;
  std::vector<std::shared_ptr<IGraphProcessor>> background;

 private:
  static std::vector<std::shared_ptr<IGraphProcessor>>& processors() {
    thread_local std::vector<std::shared_ptr<IGraphProcessor>> list;
    return list;
  }
};

}  // namespace tt::tt_metal
