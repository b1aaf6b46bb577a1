// Speaking the wire protocol by hand, as a broken or hostile client would, and watching the server from
// outside (its memory, its CPU time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "ttmem/protocol.hpp"

namespace ttmem::test {

#if defined(TTMEM_SANITIZED)  // cmake/ttmem_sanitizers.cmake
/// A sanitizer's allocator keeps freed memory in quarantine: resident memory says little there, so tests
/// check the server's own accounts (info) in those builds, and resident memory only in the others.
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

/// Sends all of `bytes` (blocking); false when the connection broke.
bool send_bytes(int fd, const std::vector<std::uint8_t>& bytes);
/// Reads until the server closes the connection (or 10 s); returns the frames' types, and the text of the
/// last ERROR in `error_text`.
std::vector<proto::MessageType> frames_until_eof(int fd, std::string* error_text = nullptr);
/// Reads frames until one of `type` arrives (or 10 s); false on EOF or timeout.
bool wait_for_frame(int fd, proto::MessageType type);
/// A whole HELLO frame.
std::vector<std::uint8_t> hello_frame(proto::Role role = proto::Role::tracked_process,
                                      std::uint32_t claimed_pid = 0, const std::string& name = {});
/// An allocation record as libttmem sends it, stamped now.
proto::EventRecord alloc_event(std::uint16_t device, std::uint64_t id, std::uint64_t size,
                               BufferType type = BufferType::DRAM, AllocKind kind = AllocKind::owning,
                               std::uint32_t site = 0);
proto::EventRecord free_event(std::uint16_t device, std::uint64_t id,
                              ReleaseReason reason = ReleaseReason::explicit_free);
/// Resident memory of a process, in KiB (0 when unknown).
std::uint64_t rss_kib(pid_t pid);
/// User plus system CPU time a process has used, in clock ticks.
std::uint64_t cpu_ticks(pid_t pid);

/// Polls `pred` until it holds or the deadline passes (for what the server does asynchronously).
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds within = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace ttmem::test
