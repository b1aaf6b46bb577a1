// Vocabulary shared by every layer of the emulated runtime: memory types, allocation kinds,
// strong ids. Values of the enums match TT-Metal (BufferType) and the wire protocol.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "ttmem/units.hpp"
#include "ttmem/vocab.hpp"

namespace ttmem::emu {

using DeviceAddr = std::uint64_t;

// The vocabulary's words (ttmem/vocab.hpp): the runtime reports them as they are.
using ttmem::AllocKind;
using ttmem::Arch;
using ttmem::BufferType;
using ttmem::ClosePhase;
using ttmem::FailureReason;
using ttmem::ReleaseReason;

/// Placement direction in a bank manager's address space.
enum class Placement : std::uint8_t { bottom_up, top_down };

/// TT-Metal's buffer status machine: ALLOCATION_REQUESTED -> ALLOCATED -> DEALLOCATED.
enum class BufferStatus : std::uint8_t { allocation_requested, allocated, deallocated };

/// A small strong id: distinct types for device, mesh, buffer and program ids so they cannot be mixed up
/// (the prototype reported a mesh id as a device id).
template <typename Tag, typename Rep>
struct StrongId {
  Rep value{};
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : value(v) {}
  constexpr auto operator<=>(const StrongId&) const = default;
};

using DeviceId = StrongId<struct DeviceIdTag, std::uint32_t>;  ///< Physical device id, 0..N-1 in a process.
using MeshId = StrongId<struct MeshIdTag, std::uint32_t>;      ///< Process-unique mesh id, never a device id.
using BufferId = StrongId<struct BufferIdTag, std::uint64_t>;  ///< Process-unique allocation id.
using ProgramId = StrongId<struct ProgramIdTag, std::uint64_t>;  ///< Process-unique program id.

using ttmem::kManagedTypes;
using ttmem::parse_enum;
using ttmem::to_string;
std::string_view to_string(BufferStatus status);

/// Next process-unique allocation id (never an address). Thread-safe.
BufferId next_buffer_id();

using ttmem::monotonic_ns;

}  // namespace ttmem::emu

template <typename Tag, typename Rep>
struct std::hash<ttmem::emu::StrongId<Tag, Rep>> {
  std::size_t operator()(const ttmem::emu::StrongId<Tag, Rep>& id) const noexcept {
    return std::hash<Rep>{}(id.value);
  }
};
