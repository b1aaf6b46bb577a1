// Vocabulary shared by every layer of the emulated runtime: memory types, allocation kinds,
// strong ids. Values of the enums match TT-Metal (BufferType) and the wire protocol.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "ttmem/protocol.hpp"

namespace ttmem::emu {

using DeviceAddr = std::uint64_t;

// BufferType (TT-Metal's values), AllocKind and ReleaseReason have one definition, the wire protocol's:
// the runtime reports them as they are.
using proto::AllocKind;
using proto::BufferType;
using proto::ReleaseReason;

/// Placement direction in a bank manager's address space.
enum class Placement : std::uint8_t { bottom_up, top_down };

/// TT-Metal's buffer status machine: ALLOCATION_REQUESTED -> ALLOCATED -> DEALLOCATED.
enum class BufferStatus : std::uint8_t { allocation_requested, allocated, deallocated };

enum class Arch : std::uint8_t { wormhole_b0 = 0, blackhole = 1 };

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

using proto::parse_alloc_kind;
using proto::parse_buffer_type;
using proto::to_string;
std::string_view to_string(Arch arch);
std::string_view to_string(BufferStatus status);

std::optional<Arch> parse_arch(std::string_view text);

/// The four memory types that have bank managers, in a fixed order for tables and loops.
inline constexpr BufferType kManagedTypes[] = {BufferType::DRAM, BufferType::L1, BufferType::L1_SMALL,
                                               BufferType::TRACE};

/// Next process-unique allocation id (never an address). Thread-safe.
BufferId next_buffer_id();

/// CLOCK_MONOTONIC in nanoseconds (the clock ttmemd ages allocations with).
std::uint64_t monotonic_ns();

}  // namespace ttmem::emu

template <typename Tag, typename Rep>
struct std::hash<ttmem::emu::StrongId<Tag, Rep>> {
  std::size_t operator()(const ttmem::emu::StrongId<Tag, Rep>& id) const noexcept {
    return std::hash<Rep>{}(id.value);
  }
};
