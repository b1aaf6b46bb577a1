// Mock (see ../core_coord.hpp): the process-wide observer registration of the newest sources.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <typeinfo>

#include "tt-metalium/graph_tracking.hpp"

namespace tt::tt_metal::internal {

inline bool register_background_processor_once(
    const std::type_info& type, const std::function<std::shared_ptr<IGraphProcessor>()>& factory) {
  auto& tracker = GraphTracker::instance();
  std::unique_lock lock(tracker.background_mutex);
  for (const auto& p : tracker.background) {
    const IGraphProcessor& registered = *p;
    if (typeid(registered) == type) return false;
  }
  tracker.background.push_back(factory());
  return true;
}

}  // namespace tt::tt_metal::internal
