// Names of the runtime's enums, their parsers, and the process-wide buffer id counter.
#include "ttmem/runtime/types.hpp"

#include <array>
#include <atomic>
#include <ctime>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

namespace {

template <typename E, std::size_t N>
std::optional<E> parse_enum(std::string_view text, const std::array<E, N>& values) {
  for (E v : values) {
    if (to_string(v) == text) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Arch arch) {
  switch (arch) {
    case Arch::wormhole_b0:
      return "wormhole_b0";
    case Arch::blackhole:
      return "blackhole";
  }
  return "?";
}

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

std::optional<Arch> parse_arch(std::string_view text) {
  return parse_enum(text, std::array{Arch::wormhole_b0, Arch::blackhole});
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
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
