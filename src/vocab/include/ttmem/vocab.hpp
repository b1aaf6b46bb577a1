// The words of ttmem's domain, each defined once: every enum with its wire value, its name, a parser and
// its count, generated from one list so the enum and its table cannot drift apart (a test checks each
// table against its enum's whole value range). Header-only and dependency-free: libttmem, the runtime,
// the server and the tools all use it. ttmem.h mirrors the values for C; c_api.cpp checks the mirror.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ttmem {

template <typename E>
struct EnumEntry {
  E value;
  std::string_view name;
};

/// Specialised for each enum below: `entries` lists every value once, with its name.
template <typename E>
struct EnumTable;

template <typename E>
concept NamedEnum = requires {
  EnumTable<E>::entries;
};

#define TTMEM_ENUM_VALUE(name, value, text) name = value,
#define TTMEM_ENUM_ENTRY(name, value, text) EnumEntry<Type>{Type::name, text},
#define TTMEM_DEFINE_ENUM(Enum, Rep, LIST)                          \
  enum class Enum : Rep { LIST(TTMEM_ENUM_VALUE) };                 \
  template <>                                                       \
  struct EnumTable<Enum> {                                          \
    using Type = Enum;                                              \
    static constexpr std::array entries = {LIST(TTMEM_ENUM_ENTRY)}; \
  };

// One entry per line, as a table; clang-format would reflow the lists.
// clang-format off
// Memory types: TT-Metal's BufferType, with its values (they are on the wire and in TT-Metal's API).
#define TTMEM_BUFFER_TYPES(X) \
  X(DRAM, 0, "DRAM") \
  X(L1, 1, "L1") \
  X(SYSTEM_MEMORY, 2, "SYSTEM_MEMORY") \
  X(L1_SMALL, 3, "L1_SMALL") \
  X(TRACE, 4, "TRACE")
TTMEM_DEFINE_ENUM(BufferType, std::uint8_t, TTMEM_BUFFER_TYPES)

// How a buffer's pages are spread: TT-Metal's TensorMemoryLayout, with its values and the names its graph
// captures print.
#define TTMEM_BUFFER_LAYOUTS(X) \
  X(interleaved, 0, "INTERLEAVED") \
  X(single_bank, 1, "SINGLE_BANK") \
  X(height_sharded, 2, "HEIGHT_SHARDED") \
  X(width_sharded, 3, "WIDTH_SHARDED") \
  X(block_sharded, 4, "BLOCK_SHARDED")
TTMEM_DEFINE_ENUM(BufferLayout, std::uint8_t, TTMEM_BUFFER_LAYOUTS)

// What the figures are counted in: the four memory types the runtime manages, plus circular buffers,
// which live in L1 but are shown apart (the L1 slot leaves them out).
#define TTMEM_SLOTS(X) \
  X(DRAM, 0, "DRAM") \
  X(L1, 1, "L1") \
  X(L1_SMALL, 2, "L1_SMALL") \
  X(TRACE, 3, "TRACE") \
  X(CB, 4, "CB")
TTMEM_DEFINE_ENUM(Slot, std::uint8_t, TTMEM_SLOTS)

#define TTMEM_ALLOC_KINDS(X) \
  X(owning, 0, "owning") \
  X(preallocated, 1, "preallocated") \
  X(circular_buffer, 2, "cb") \
  X(kernel_binary, 3, "kernel_binary") \
  X(trace, 4, "trace")
TTMEM_DEFINE_ENUM(AllocKind, std::uint8_t, TTMEM_ALLOC_KINDS)

#define TTMEM_RELEASE_REASONS(X) \
  X(explicit_free, 0, "explicit") \
  X(close_internal, 1, "close_internal") \
  X(close_leak, 2, "close_leak")
TTMEM_DEFINE_ENUM(ReleaseReason, std::uint8_t, TTMEM_RELEASE_REASONS)

#define TTMEM_EVENT_OPS(X) \
  X(alloc, 1, "alloc") \
  X(free, 2, "free")
TTMEM_DEFINE_ENUM(EventOp, std::uint8_t, TTMEM_EVENT_OPS)

// Why an allocation failed: the runtime's allocator had no room (out of memory), circular buffers would
// run into L1 buffers or past the end of L1 (TT-Metal's CB region check), or the bank count is one the
// runtime cannot interleave over.
#define TTMEM_FAILURE_REASONS(X) \
  X(out_of_memory, 0, "out_of_memory") \
  X(cb_clash, 1, "cb_clash") \
  X(bad_bank_count, 2, "bad_bank_count")
TTMEM_DEFINE_ENUM(FailureReason, std::uint8_t, TTMEM_FAILURE_REASONS)

// What an out-of-memory record concludes (ttmemd's verdict, from the device's free space at the failure):
// the free space is too small (exhausted), large enough but in pieces none of which fits (fragmented), or
// too small only because the runtime's own buffers or other processes hold the difference (reserved).
#define TTMEM_OOM_VERDICTS(X) \
  X(exhausted, 0, "exhausted") \
  X(fragmented, 1, "fragmented") \
  X(reserved, 2, "reserved") \
  X(unknown, 3, "unknown")
TTMEM_DEFINE_ENUM(OomVerdict, std::uint8_t, TTMEM_OOM_VERDICTS)

// What a block of a bank's address map is: free, one buffer, several buffers at once (processes that each
// think they own the device), or a circular buffer (L1; not the allocator's).
#define TTMEM_BLOCK_USES(X) \
  X(free, 0, "free") \
  X(buffer, 1, "buffer") \
  X(overlap, 2, "overlap") \
  X(circular_buffer, 3, "cb")
TTMEM_DEFINE_ENUM(BlockUse, std::uint8_t, TTMEM_BLOCK_USES)

// What `buffers --by` groups live buffers by: the op they were made in, their site, their process, or
// their device.
#define TTMEM_GROUP_KEYS(X) \
  X(op, 0, "op") \
  X(site, 1, "site") \
  X(pid, 2, "pid") \
  X(device, 3, "device")
TTMEM_DEFINE_ENUM(GroupBy, std::uint8_t, TTMEM_GROUP_KEYS)

// A device close has two phases: begin (the runtime's sweep follows) and end (the device is gone).
#define TTMEM_CLOSE_PHASES(X) \
  X(begin, 0, "begin") \
  X(end, 1, "end")
TTMEM_DEFINE_ENUM(ClosePhase, std::uint8_t, TTMEM_CLOSE_PHASES)

#define TTMEM_ARCHS(X) \
  X(wormhole_b0, 0, "wormhole_b0") \
  X(blackhole, 1, "blackhole")
TTMEM_DEFINE_ENUM(Arch, std::uint8_t, TTMEM_ARCHS)

#define TTMEM_ROLES(X) \
  X(tracked_process, 0, "tracked") \
  X(tool, 1, "tool")
TTMEM_DEFINE_ENUM(Role, std::uint8_t, TTMEM_ROLES)

// A process's relation to a device: it allocated there without DEVICE_OPEN (implicit), opened it, is
// closing it (the runtime's sweep runs), or closed it.
#define TTMEM_DEVICE_USE_STATES(X) \
  X(implicit, 0, "implicit") \
  X(open, 1, "open") \
  X(closing, 2, "closing") \
  X(closed, 3, "closed")
TTMEM_DEFINE_ENUM(DeviceUseState, std::uint8_t, TTMEM_DEVICE_USE_STATES)

// What ttmemd's history keeps (docs/history.md): its own starts and stops, processes, device opens and
// closes, leaks, orphans, out-of-memory records, anomalies, and lifetimes it could not keep.
#define TTMEM_HISTORY_KINDS(X) \
  X(server_start, 0, "server_start") \
  X(server_stop, 1, "server_stop") \
  X(process_start, 2, "process_start") \
  X(process_exit, 3, "process_exit") \
  X(device_open, 4, "device_open") \
  X(device_close, 5, "device_close") \
  X(leak, 6, "leak") \
  X(orphan, 7, "orphan") \
  X(oom, 8, "oom") \
  X(anomaly, 9, "anomaly") \
  X(lifetimes_dropped, 10, "lifetimes_dropped")
TTMEM_DEFINE_ENUM(HistoryKind, std::uint8_t, TTMEM_HISTORY_KINDS)

// Wire message types: client to server below 32, server to client from 32.
#define TTMEM_MESSAGE_TYPES(X) \
  X(hello, 1, "HELLO") \
  X(device_open, 2, "DEVICE_OPEN") \
  X(device_close, 3, "DEVICE_CLOSE") \
  X(events, 4, "EVENTS") \
  X(sites, 5, "SITES") \
  X(snapshot_begin, 6, "SNAPSHOT_BEGIN") \
  X(snapshot_end, 7, "SNAPSHOT_END") \
  X(barrier, 8, "BARRIER") \
  X(client_stats, 9, "CLIENT_STATS") \
  X(alloc_failure, 10, "ALLOC_FAILURE") \
  X(query, 16, "QUERY") \
  X(hello_ack, 32, "HELLO_ACK") \
  X(error, 33, "ERROR") \
  X(barrier_ack, 34, "BARRIER_ACK") \
  X(query_reply, 35, "QUERY_REPLY") \
  X(event_notify, 36, "EVENT_NOTIFY")
TTMEM_DEFINE_ENUM(MessageType, std::uint16_t, TTMEM_MESSAGE_TYPES)

// Error codes of ERROR frames, of decoders, and of failed queries.
#define TTMEM_ERROR_CODES(X) \
  X(bad_magic, 1, "bad_magic") \
  X(version_mismatch, 2, "version_mismatch") \
  X(malformed, 3, "malformed") \
  X(unexpected_message, 4, "unexpected_message") \
  X(limit_exceeded, 5, "limit_exceeded") \
  X(bad_query, 6, "bad_query") \
  X(internal, 7, "internal")
TTMEM_DEFINE_ENUM(ErrorCode, std::uint16_t, TTMEM_ERROR_CODES)
// clang-format on

#undef TTMEM_DEFINE_ENUM
#undef TTMEM_ENUM_ENTRY
#undef TTMEM_ENUM_VALUE

/// How many values the enum has.
template <NamedEnum E>
inline constexpr std::size_t kEnumCount = EnumTable<E>::entries.size();

/// Every value, in the table's order.
template <NamedEnum E>
constexpr std::array<E, kEnumCount<E>> enum_values() {
  std::array<E, kEnumCount<E>> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = EnumTable<E>::entries[i].value;
  return out;
}

/// The value's name ("?" for a value outside the enum).
template <NamedEnum E>
constexpr std::string_view to_string(E v) {
  for (const auto& e : EnumTable<E>::entries) {
    if (e.value == v) return e.name;
  }
  return "?";
}

/// The value with this name, if any.
template <NamedEnum E>
constexpr std::optional<E> parse_enum(std::string_view name) {
  for (const auto& e : EnumTable<E>::entries) {
    if (e.name == name) return e.value;
  }
  return std::nullopt;
}

/// "a,b,c" as values, in order. Empty when a name is not the enum's; `bad` then holds that name.
template <NamedEnum E>
std::optional<std::vector<E>> parse_enum_list(std::string_view text, std::string* bad = nullptr) {
  std::vector<E> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view name = text.substr(start, comma - start);
    const auto value = parse_enum<E>(name);
    if (!value) {
      if (bad) *bad = std::string(name);
      return std::nullopt;
    }
    out.push_back(*value);
    start = comma + 1;
  }
  return out;
}

/// The value with this number (a decoder's check), if the enum has it.
template <NamedEnum E>
constexpr std::optional<E> enum_from(std::underlying_type_t<E> raw) {
  for (const auto& e : EnumTable<E>::entries) {
    if (static_cast<std::underlying_type_t<E>>(e.value) == raw) return e.value;
  }
  return std::nullopt;
}

/// "DRAM, L1, L1_SMALL, TRACE" — names, for messages that list the choices.
template <NamedEnum E, std::size_t N>
std::string names_of(const std::array<E, N>& values) {
  std::string out;
  for (E v : values) {
    if (!out.empty()) out += ", ";
    out += to_string(v);
  }
  return out;
}

/// The names as a list (command-line choices).
template <NamedEnum E, std::size_t N>
std::vector<std::string> name_list(const std::array<E, N>& values) {
  std::vector<std::string> out;
  for (E v : values) out.emplace_back(to_string(v));
  return out;
}

inline constexpr std::size_t kSlots = kEnumCount<Slot>;
inline constexpr std::size_t kBufferTypes = kEnumCount<BufferType>;

/// The four memory types that have bank managers (SYSTEM_MEMORY is host memory, never tracked).
inline constexpr std::array kManagedTypes = {BufferType::DRAM, BufferType::L1, BufferType::L1_SMALL,
                                             BufferType::TRACE};

/// The slot an allocation is counted in.
constexpr Slot slot_of(BufferType type, AllocKind kind) {
  if (kind == AllocKind::circular_buffer) return Slot::CB;
  switch (type) {
    case BufferType::L1:
      return Slot::L1;
    case BufferType::L1_SMALL:
      return Slot::L1_SMALL;
    case BufferType::TRACE:
      return Slot::TRACE;
    case BufferType::DRAM:
    case BufferType::SYSTEM_MEMORY:  // never tracked by the runtime; counted with DRAM if reported
      return Slot::DRAM;
  }
  return Slot::DRAM;
}

/// The memory type whose total a slot is a share of (circular buffers share L1's).
constexpr BufferType memory_of(Slot slot) {
  switch (slot) {
    case Slot::L1:
    case Slot::CB:
      return BufferType::L1;
    case Slot::L1_SMALL:
      return BufferType::L1_SMALL;
    case Slot::TRACE:
      return BufferType::TRACE;
    case Slot::DRAM:
      return BufferType::DRAM;
  }
  return BufferType::DRAM;
}

constexpr std::size_t index(Slot s) {
  return static_cast<std::size_t>(s);
}
constexpr std::size_t index(BufferType t) {
  return static_cast<std::size_t>(t);
}

}  // namespace ttmem
