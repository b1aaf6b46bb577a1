// Units, one definition each: the clocks ttmem stamps with, byte counts for people, sizes people type.
// Header-only and dependency-free (libttmem uses the clocks).
#pragma once

#include <time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ttmem {

/// CLOCK_MONOTONIC in nanoseconds: ages and durations (allocation stamps, timeouts).
inline std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

/// CLOCK_REALTIME in nanoseconds: when something happened, for people and records.
inline std::uint64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

/// "512 B", "4.0 KiB", "1.5 GiB": binary units, one decimal above bytes.
std::string human_bytes(std::uint64_t bytes);
/// "536,870,912 B": exact bytes in groups of three, where rounding would hide a shortfall.
std::string exact_bytes(std::uint64_t bytes);

/// "4096", "4K", "4KiB", "16M", "2G" (binary; case-insensitive); nullopt when malformed or past 2^64 - 1.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace ttmem
