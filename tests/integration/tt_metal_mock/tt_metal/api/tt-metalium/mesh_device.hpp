// Mock (see core_coord.hpp): a MeshDevice is an IDevice with chips.
#pragma once

#include <vector>

#include "tt-metalium/device.hpp"

namespace tt::tt_metal::distributed {

class MeshDevice : public IDevice {
 public:
  MeshDevice(int id, tt::ARCH arch, std::vector<IDevice*> chips)
      : IDevice(id, arch), chips_(std::move(chips)) {}
  std::vector<IDevice*> get_devices() const { return chips_; }

 private:
  std::vector<IDevice*> chips_;
};

}  // namespace tt::tt_metal::distributed
