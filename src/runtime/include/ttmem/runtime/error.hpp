// The runtime's error table: every error the public API throws carries one of these codes, so callers
// (and the Python module) branch on the code instead of parsing text.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ttmem::emu {

enum class ErrorCode {
  out_of_memory,       ///< An allocator could not place a buffer (message has free / largest free block).
  cb_clash,            ///< Circular buffers would run into the lowest L1 buffer, or past the end of L1.
  invalid_argument,    ///< A size, page size, shard count, core range or option is not valid.
  invalid_bank_count,  ///< A bank manager was configured with an unsupported number of banks.
  device_closed,       ///< The device or mesh is closed (or was never opened).
  device_busy,         ///< The physical devices are already open in this process.
  invalid_state,       ///< The object is not in a state that allows the call (e.g. a released program).
  unknown_preset,      ///< No mesh preset with that name.
};

std::string_view error_name(ErrorCode code);

/// What an out-of-memory error asked for and found, per bank (the figures of its message, as numbers).
struct OutOfMemoryFigures {
  std::uint64_t size = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t needed_per_bank = 0;
  std::uint64_t free_per_bank = 0;
  std::uint64_t largest_free_block = 0;
};

/// Thrown by the runtime's public API.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  /// what() is TT-Metal's text as TT-Metal words it; `detail` is what the emulator adds beside it (kept
  /// apart so a tool matching TT-Metal's messages sees them unchanged).
  Error(const std::string& message, const OutOfMemoryFigures& figures, std::string detail = {})
      : std::runtime_error(message),
        code_(ErrorCode::out_of_memory),
        figures_(figures),
        detail_(std::move(detail)) {}
  ErrorCode code() const noexcept { return code_; }
  /// Out-of-memory errors of an allocator: the figures behind the message.
  const std::optional<OutOfMemoryFigures>& figures() const noexcept { return figures_; }
  /// The emulator's note beside TT-Metal's message (e.g. a mesh's lockstep figures); empty if none.
  const std::string& detail() const noexcept { return detail_; }

 private:
  ErrorCode code_;
  std::optional<OutOfMemoryFigures> figures_;
  std::string detail_;
};

}  // namespace ttmem::emu
