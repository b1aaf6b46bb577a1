// Typed views of the ledger: what a query answers, as plain data. The schema layer turns them into JSON
// (src/server/queries.cpp today); the model never sees JSON.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "registry.hpp"

namespace ttmem::model {

/// One memory slot of a device or of a process on a device.
struct SlotUsage {
  std::uint64_t used = 0;
  std::uint64_t peak = 0;
  std::uint64_t buffers = 0;
  std::uint64_t total = 0;  ///< the device's capacity (0: not announced); unset for processes
};

struct DeviceUsage {
  std::uint16_t id = 0;
  std::optional<Arch> arch;  ///< empty until a process announces the device (DEVICE_OPEN)
  std::array<SlotUsage, kSlots> memory{};
  std::uint64_t buffers = 0;
  std::uint64_t processes = 0;  ///< holding memory there, or with the device open
};

/// A process on one device: shown while it holds memory there or has the device open.
struct ProcessUsage {
  pid_t pid = 0;
  std::string name;
  std::uint16_t device = 0;
  std::array<std::uint64_t, kSlots> bytes{};
  std::uint64_t buffers = 0;
};

struct Stats {
  std::vector<DeviceUsage> devices;
  std::vector<ProcessUsage> processes;
  std::uint64_t active_allocations = 0;
};

struct DeviceUser {
  pid_t pid = 0;
  std::string name;
  DeviceUseState state = DeviceUseState::implicit;
};

struct DeviceInfo {
  std::uint16_t id = 0;
  std::optional<Arch> arch;
  std::array<std::uint64_t, kSlots> total{};
  std::vector<DeviceUser> processes;
};

Stats stats_view(const Registry& registry);
std::vector<DeviceInfo> devices_view(const Registry& registry);

}  // namespace ttmem::model
