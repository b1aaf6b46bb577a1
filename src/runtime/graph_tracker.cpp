// Observer registry; see graph_tracker.hpp.
#include "ttmem/runtime/graph_tracker.hpp"

#include <algorithm>
#include <mutex>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

AllocationFailure failure_of(const AllocationEvent& request, FailureReason reason, std::string_view message) {
  AllocationFailure f;
  f.device = request.device;
  f.mesh = request.mesh;
  f.type = request.type;
  f.reason = reason;
  f.size = request.size;
  f.page_size = request.page_size;
  f.num_banks = request.num_banks;
  f.size_per_bank = request.size_per_bank;
  f.site = request.site;
  f.message = message;
  f.timestamp_ns = monotonic_ns();
  return f;
}

GraphTracker& GraphTracker::instance() {
  static GraphTracker tracker;
  return tracker;
}

void GraphTracker::push_processor(std::shared_ptr<Processor> processor) {
  std::unique_lock lock(mutex_);
  processors_.push_back(std::move(processor));
}

void GraphTracker::pop_processor() {
  std::unique_lock lock(mutex_);
  if (!processors_.empty()) processors_.pop_back();
}

void GraphTracker::remove_processor(const std::shared_ptr<Processor>& processor) {
  std::unique_lock lock(mutex_);
  processors_.erase(std::remove(processors_.begin(), processors_.end(), processor), processors_.end());
}

void GraphTracker::clear_processors() {
  std::unique_lock lock(mutex_);
  processors_.clear();
}

bool GraphTracker::has_processors() const {
  std::shared_lock lock(mutex_);
  return !processors_.empty();
}

void GraphTracker::add_hook(std::shared_ptr<Hook> hook) {
  std::unique_lock lock(mutex_);
  if (hook_) throw Error(ErrorCode::invalid_state, "a GraphTracker hook is already installed");
  hook_ = std::move(hook);
}

void GraphTracker::remove_hook() {
  std::unique_lock lock(mutex_);
  hook_.reset();
}

void GraphTracker::track_allocate(const AllocationEvent& event) const {
  std::shared_lock lock(mutex_);
  for (const auto& p : processors_) p->track_allocate(event);
}

void GraphTracker::track_allocate_failed(const AllocationFailure& failure) const {
  std::shared_lock lock(mutex_);
  for (const auto& p : processors_) p->track_allocate_failed(failure);
}

void GraphTracker::track_deallocate(const AllocationEvent& event) const {
  std::shared_lock lock(mutex_);
  for (const auto& p : processors_) p->track_deallocate(event);
}

void GraphTracker::track_device_open(const DeviceInfo& info) const {
  std::shared_lock lock(mutex_);
  for (const auto& p : processors_) p->track_device_open(info);
}

void GraphTracker::track_device_close(DeviceId device, ClosePhase phase) const {
  std::shared_lock lock(mutex_);
  for (const auto& p : processors_) p->track_device_close(device, phase);
}

bool GraphTracker::hook_allocate(const AllocationEvent& request) const {
  std::shared_lock lock(mutex_);
  return hook_ && hook_->hook_allocate(request);
}

}  // namespace ttmem::emu
