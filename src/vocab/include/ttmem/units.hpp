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

/// Size arithmetic that cannot wrap: a result past 2^64 - 1 is 2^64 - 1, a size no memory holds (so an
/// impossible size fails as out of memory instead of wrapping to a small one).
constexpr std::uint64_t saturating_align_up(std::uint64_t value, std::uint64_t alignment) {
  const std::uint64_t rem = alignment ? value % alignment : 0;
  if (rem == 0) return value;
  const std::uint64_t add = alignment - rem;
  return value > UINT64_MAX - add ? UINT64_MAX : value + add;
}
constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
constexpr std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/// "4096", "4K", "4KiB", "16M", "2G" (binary; case-insensitive); nullopt when malformed or past 2^64 - 1.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace ttmem
