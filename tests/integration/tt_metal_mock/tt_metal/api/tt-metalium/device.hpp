// Mock (see core_coord.hpp): IDevice, as far as its id, architecture and allocator.
#pragma once

#include <memory>

#include "tt-metalium/allocator.hpp"

namespace tt {
enum class ARCH { GRAYSKULL = 1, WORMHOLE_B0 = 2, BLACKHOLE = 3 };
}

namespace tt::tt_metal {

class IDevice {
 public:
  IDevice(int id, tt::ARCH arch) : id_(id), arch_(arch), allocator_(std::make_unique<Allocator>()) {}
  virtual ~IDevice() = default;
  int id() const { return id_; }
  tt::ARCH arch() const { return arch_; }
  const std::unique_ptr<Allocator>& allocator() const { return allocator_; }

 private:
  int id_;
  tt::ARCH arch_;
  std::unique_ptr<Allocator> allocator_;
};

}  // namespace tt::tt_metal
