// Mock (see core_coord.hpp): Buffer, as far as GraphTracker's processors read it.
#pragma once

#include <cstdint>
#include <optional>

#include "tt-metalium/buffer_types.hpp"
#include "tt-metalium/core_coord.hpp"
#include "tt-metalium/device.hpp"

namespace tt::tt_metal {

struct ShardSpec {
  CoreRangeSet grid;
};

struct ShardSpecBuffer {
  ShardSpec tensor_shard_spec;
};

class Buffer {
 public:
  IDevice* device_ = nullptr;
  std::size_t unique_id_ = 0;
  std::uint32_t address_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t page_size_ = 0;
  std::uint64_t per_bank_ = 0;
  BufferType type_ = BufferType::DRAM;
  TensorMemoryLayout layout_ = TensorMemoryLayout::INTERLEAVED;
  std::optional<std::uint32_t> cores_;
  std::optional<ShardSpecBuffer> shard_;

  IDevice* device() const { return device_; }
  std::uint64_t size() const { return size_; }
  std::uint32_t address() const { return address_; }
  std::uint64_t page_size() const { return page_size_; }
  BufferType buffer_type() const { return type_; }
  TensorMemoryLayout buffer_layout() const { return layout_; }
  std::uint64_t aligned_size_per_bank() const { return per_bank_; }
  bool has_shard_spec() const { return shard_.has_value(); }
  ShardSpecBuffer shard_spec() const { return *shard_; }
  std::optional<std::uint32_t> num_cores() const { return cores_; }
  std::size_t unique_id() const { return unique_id_; }
};

}  // namespace tt::tt_metal
