// Hand-made protocol traffic and outside views of a process; see raw_client.hpp.
#include "raw_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <fstream>
#include <sstream>

#include "ttmem/units.hpp"

namespace ttmem::test {

bool send_bytes(int fd, const std::vector<std::uint8_t>& b) {
  std::size_t sent = 0;
  while (sent < b.size()) {
    const ssize_t n = send(fd, b.data() + sent, b.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

namespace {
/// Reads frames, handing each to `on_frame` until it returns true; false on EOF or after 10 s.
template <typename OnFrame>
bool read_frames(int fd, OnFrame&& on_frame) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  proto::FrameReader reader(proto::kMaxReplyPayload);
  std::uint8_t buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    reader.append({buf, static_cast<std::size_t>(n)});
    for (auto next = reader.next(); std::holds_alternative<proto::Frame>(next); next = reader.next()) {
      if (on_frame(std::get<proto::Frame>(next))) return true;
    }
  }
}
}  // namespace

std::vector<proto::MessageType> frames_until_eof(int fd, std::string* error_text) {
  std::vector<proto::MessageType> types;
  read_frames(fd, [&](const proto::Frame& f) {
    types.push_back(f.type);
    if (f.type == proto::MessageType::error && error_text) {
      auto e = proto::decode_error(f.payload);
      if (proto::ok(e)) *error_text = std::get<proto::ErrorMessage>(e).text;
    }
    return false;
  });
  return types;
}

bool wait_for_frame(int fd, proto::MessageType type) {
  return read_frames(fd, [&](const proto::Frame& f) { return f.type == type; });
}

std::vector<std::uint8_t> hello_frame(proto::Role role, std::uint32_t claimed_pid, const std::string& name) {
  std::vector<std::uint8_t> b;
  proto::Hello h;
  h.role = role;
  h.claimed_pid = claimed_pid;
  h.process_name = name;
  proto::encode(b, h);
  return b;
}

proto::EventRecord alloc_event(std::uint16_t device, std::uint64_t id, std::uint64_t size, BufferType type,
                               AllocKind kind, std::uint32_t site) {
  proto::EventRecord e;
  e.op = proto::EventOp::alloc;
  e.device = device;
  e.id = id;
  e.size = size;
  e.type = type;
  e.kind = kind;
  e.site = site;
  e.timestamp_ns = monotonic_ns();
  return e;
}

proto::EventRecord free_event(std::uint16_t device, std::uint64_t id, ReleaseReason reason) {
  proto::EventRecord e;
  e.op = proto::EventOp::free;
  e.device = device;
  e.id = id;
  e.reason = reason;
  return e;
}

std::uint64_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  std::uint64_t value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
  }
  return 0;
}

std::uint64_t cpu_ticks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::uint64_t ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stoull(field);
  }
  return ticks;
}

}  // namespace ttmem::test
