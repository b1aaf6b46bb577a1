// Mock (see core_coord.hpp): TT-Metal's BufferType and TensorMemoryLayout with their values.
#pragma once

namespace tt::tt_metal {

enum class BufferType { DRAM = 0, L1 = 1, SYSTEM_MEMORY = 2, L1_SMALL = 3, TRACE = 4 };
enum class TensorMemoryLayout { INTERLEAVED = 0, HEIGHT_SHARDED = 2, WIDTH_SHARDED = 3, BLOCK_SHARDED = 4 };

}  // namespace tt::tt_metal
