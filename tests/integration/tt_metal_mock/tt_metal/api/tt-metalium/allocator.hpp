// Mock (see core_coord.hpp): a device's allocator, as far as its bank counts and sizes.
#pragma once

#include <array>
#include <cstdint>

#include "tt-metalium/buffer_types.hpp"

namespace tt::tt_metal {

class Allocator {
 public:
  std::array<std::uint32_t, 5> banks{};
  std::array<std::uint64_t, 5> bank_size{};
  std::uint32_t get_num_banks(const BufferType& t) const { return banks[static_cast<int>(t)]; }
  std::uint64_t get_bank_size(const BufferType& t) const { return bank_size[static_cast<int>(t)]; }
};

}  // namespace tt::tt_metal
