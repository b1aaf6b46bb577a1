// Names of the runtime's own enums and the process-wide buffer id counter.
#include "ttmem/runtime/types.hpp"

#include <atomic>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

std::string_view to_string(BufferStatus status) {
  switch (status) {
    case BufferStatus::allocation_requested:
      return "allocation_requested";
    case BufferStatus::allocated:
      return "allocated";
    case BufferStatus::deallocated:
      return "deallocated";
  }
  return "?";
}

BufferId next_buffer_id() {
  static std::atomic<std::uint64_t> next{1};
  return BufferId{next.fetch_add(1, std::memory_order_relaxed)};
}

std::string_view error_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::out_of_memory:
      return "out_of_memory";
    case ErrorCode::cb_clash:
      return "cb_clash";
    case ErrorCode::invalid_argument:
      return "invalid_argument";
    case ErrorCode::invalid_bank_count:
      return "invalid_bank_count";
    case ErrorCode::device_closed:
      return "device_closed";
    case ErrorCode::device_busy:
      return "device_busy";
    case ErrorCode::invalid_state:
      return "invalid_state";
    case ErrorCode::unknown_preset:
      return "unknown_preset";
  }
  return "?";
}

}  // namespace ttmem::emu
