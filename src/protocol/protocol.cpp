// Encoders and validating decoders of every message; see ttmem/protocol.hpp and docs/protocol.md.
#include "ttmem/protocol.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "wire.hpp"

namespace ttmem::proto {

namespace {

// Wire sizes of the fixed-size messages, checked against their field lists.
constexpr std::size_t kHelloFixed = 4 + 2 + 1 + 1 + 4 + 4 + 1;  // + name bytes
constexpr std::size_t kHelloAckSize = 2 + 2 + 4 + 4 + 4 + 8;
constexpr std::size_t kDeviceOpenSize =
    2 + 1 + 1 + 4 + kNumMemorySlots * 8 + kNumMemorySlots * 4 + kNumMemorySlots * 8;
constexpr std::size_t kAllocFailureFixed = 2 + 1 + 1 + 4 + 4 * 8 + 2 + 2 + 2;  // + site, message, scope bytes
constexpr std::size_t kDeviceCloseSize = 2 + 1 + 1;
constexpr std::size_t kSnapshotBeginSize = 8;
constexpr std::size_t kSnapshotEndSize = 16;
constexpr std::size_t kBarrierSize = 8;
constexpr std::size_t kClientStatsSize = 9 * 8;
static_assert(kHelloFixed == 17);
static_assert(kHelloAckSize == 24);
static_assert(kDeviceOpenSize == 108);
static_assert(kAllocFailureFixed == 46);
static_assert(kDeviceCloseSize == 4);
static_assert(kEventRecordSize == 4 * 1 + 2 * 2 + 4 * 4 + 5 * 8, "event record: 4 u8, 2 u16, 4 u32, 5 u64");
static_assert(kMaxEventsPerFrame * kEventRecordSize + 4 <= kMaxRequestPayload);

// Offsets inside an event record.
namespace ev {
constexpr std::size_t op = 0, type = 1, kind = 2, reason = 3, device = 4, flags = 6, site = 8, num_banks = 12,
                      mesh = 16, scope = 20, id = 24, size = 32, address = 40, size_per_bank = 48,
                      timestamp = 56;
static_assert(timestamp + 8 == kEventRecordSize);
}  // namespace ev

/// The record's wire layout is EventRecord's own on a little-endian host: there a record is copied whole,
/// which is what ttmemd does some twenty million times a second (field by field, the copy's narrow stores
/// also stall the wide loads of whoever copies the record next).
constexpr bool wire_is_native() {
  return std::endian::native == std::endian::little && sizeof(EventRecord) == kEventRecordSize &&
         offsetof(EventRecord, op) == ev::op && offsetof(EventRecord, type) == ev::type &&
         offsetof(EventRecord, kind) == ev::kind && offsetof(EventRecord, reason) == ev::reason &&
         offsetof(EventRecord, device) == ev::device && offsetof(EventRecord, flags) == ev::flags &&
         offsetof(EventRecord, site) == ev::site && offsetof(EventRecord, num_banks) == ev::num_banks &&
         offsetof(EventRecord, mesh) == ev::mesh && offsetof(EventRecord, scope) == ev::scope &&
         offsetof(EventRecord, id) == ev::id && offsetof(EventRecord, size) == ev::size &&
         offsetof(EventRecord, address) == ev::address &&
         offsetof(EventRecord, size_per_bank) == ev::size_per_bank &&
         offsetof(EventRecord, timestamp_ns) == ev::timestamp;
}
static_assert(std::is_trivially_copyable_v<EventRecord>);

DecodeError malformed(std::string what) {
  return {ErrorCode::malformed, std::move(what)};
}

template <typename T>
Decoded<T> truncated(std::string_view message) {
  return malformed(format_text("truncated {} message", message));
}

template <typename T>
Decoded<T> trailing(std::string_view message, std::size_t n) {
  return malformed(format_text("{} message has {} unexpected trailing bytes", message, n));
}

std::optional<DecodeError> exact_size(std::string_view message, std::span<const std::uint8_t> p,
                                      std::size_t size) {
  if (p.size() < size)
    return malformed(format_text("truncated {} message ({} of {} bytes)", message, p.size(), size));
  if (p.size() > size) {
    return malformed(format_text("{} message has {} unexpected trailing bytes", message, p.size() - size));
  }
  return std::nullopt;
}

void encode_string_frame(std::vector<std::uint8_t>& out, MessageType type, std::uint32_t id, bool with_id,
                         std::string_view text, std::optional<std::uint8_t> status = std::nullopt) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(type));
  WireWriter w(out);
  if (with_id) w.u32(id);
  if (status) w.u8(*status);
  w.bytes(text);
  finish_frame(out, at);
}

}  // namespace

std::string version_string(std::uint32_t packed) {
  return format_text("{}.{}.{}", packed >> 16, (packed >> 8) & 0xff, packed & 0xff);
}

// ---- encoders ---------------------------------------------------------------------------------------

void encode(std::vector<std::uint8_t>& out, const Hello& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::hello));
  WireWriter w(out);
  w.u32(m.magic);
  w.u16(m.protocol_version);
  w.u8(static_cast<std::uint8_t>(m.role));
  w.u8(0);
  w.u32(m.client_version);
  w.u32(m.claimed_pid);
  const std::string_view name = std::string_view(m.process_name).substr(0, kMaxNameLength);
  w.u8(static_cast<std::uint8_t>(name.size()));
  w.bytes(name);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const HelloAck& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::hello_ack));
  WireWriter w(out);
  w.u16(m.protocol_version);
  w.u16(0);
  w.u32(m.server_version);
  w.u32(m.server_pid);
  w.u32(m.peer_pid);
  w.u64(m.connection_id);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const DeviceOpen& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::device_open));
  WireWriter w(out);
  w.u16(m.device);
  w.u8(m.arch);
  w.u8(0);
  w.u32(m.mesh);
  for (auto v : m.total_bytes) w.u64(v);
  for (auto v : m.num_banks) w.u32(v);
  for (auto v : m.base_address) w.u64(v);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const DeviceClose& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::device_close));
  WireWriter w(out);
  w.u16(m.device);
  w.u8(static_cast<std::uint8_t>(m.phase));
  w.u8(0);
  finish_frame(out, at);
}

void encode_event(std::uint8_t* p, const EventRecord& e) {
  if constexpr (wire_is_native()) {
    std::memcpy(p, &e, kEventRecordSize);
    return;
  }
  p[ev::op] = static_cast<std::uint8_t>(e.op);
  p[ev::type] = static_cast<std::uint8_t>(e.type);
  p[ev::kind] = static_cast<std::uint8_t>(e.kind);
  p[ev::reason] = static_cast<std::uint8_t>(e.reason);
  store_le_word<std::uint16_t>(p + ev::device, e.device);
  store_le_word<std::uint16_t>(p + ev::flags, e.flags);
  store_le_word<std::uint32_t>(p + ev::site, e.site);
  store_le_word<std::uint32_t>(p + ev::num_banks, e.num_banks);
  store_le_word<std::uint32_t>(p + ev::mesh, e.mesh);
  store_le_word<std::uint32_t>(p + ev::scope, e.scope);
  store_le_word<std::uint64_t>(p + ev::id, e.id);
  store_le_word<std::uint64_t>(p + ev::size, e.size);
  store_le_word<std::uint64_t>(p + ev::address, e.address);
  store_le_word<std::uint64_t>(p + ev::size_per_bank, e.size_per_bank);
  store_le_word<std::uint64_t>(p + ev::timestamp, e.timestamp_ns);
}

void EventFrameWriter::add(const EventRecord& e) {
  if (open_ && count_ == per_frame_) close();
  if (!open_) {
    frame_at_ = begin_frame(out_, static_cast<std::uint16_t>(MessageType::events));
    WireWriter(out_).u32(0);  // count, patched by close()
    count_ = 0;
    open_ = true;
  }
  const std::size_t at = out_.size();
  out_.resize(at + kEventRecordSize);
  encode_event(out_.data() + at, e);
  ++count_;
}

void EventFrameWriter::add(const EventRecord* first, std::size_t n, std::size_t stride) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(first);
  auto record = [&] { return *reinterpret_cast<const EventRecord*>(bytes); };
  if (!wire_is_native() || stride != kEventRecordSize) {  // the records are not the wire bytes
    for (; n > 0; --n, bytes += stride) add(record());
    return;
  }
  while (n > 0) {
    if (!open_ || count_ == per_frame_) {  // the record that opens a frame goes the one-record way
      add(record());
      bytes += stride;
      --n;
      continue;
    }
    const std::size_t take = std::min(n, per_frame_ - count_);
    out_.insert(out_.end(), bytes, bytes + take * kEventRecordSize);
    bytes += take * kEventRecordSize;
    count_ += take;
    n -= take;
  }
}

std::size_t EventFrameWriter::close() {
  if (!open_) return 0;
  store_le(out_.data() + frame_at_ + kFrameHeaderSize, count_, 4);
  finish_frame(out_, frame_at_);
  open_ = false;
  records_ += count_;
  ++frames_;
  return count_;
}

void encode(std::vector<std::uint8_t>& out, std::span<const EventRecord> events) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::events));
  WireWriter w(out);
  w.u32(static_cast<std::uint32_t>(events.size()));
  const std::size_t base = out.size();
  out.resize(base + events.size() * kEventRecordSize);
  for (std::size_t i = 0; i < events.size(); ++i)
    encode_event(out.data() + base + i * kEventRecordSize, events[i]);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, std::span<const Site> sites) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::sites));
  WireWriter w(out);
  w.u32(static_cast<std::uint32_t>(sites.size()));
  for (const Site& s : sites) {
    const std::string_view text = std::string_view(s.text).substr(0, kMaxSiteLength);
    w.u32(s.id);
    w.u16(static_cast<std::uint16_t>(text.size()));
    w.bytes(text);
  }
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const AllocFailure& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::alloc_failure));
  WireWriter w(out);
  const std::string_view site = std::string_view(m.site).substr(0, kMaxSiteLength);
  const std::string_view message = std::string_view(m.message).substr(0, kMaxFailureMessageLength);
  const std::string_view scope = std::string_view(m.scope).substr(0, kMaxSiteLength);
  w.u16(m.device);
  w.u8(static_cast<std::uint8_t>(m.type));
  w.u8(static_cast<std::uint8_t>(m.reason));
  w.u32(m.num_banks);
  w.u64(m.size);
  w.u64(m.page_size);
  w.u64(m.size_per_bank);
  w.u64(m.timestamp_ns);
  w.u16(static_cast<std::uint16_t>(site.size()));
  w.u16(static_cast<std::uint16_t>(message.size()));
  w.u16(static_cast<std::uint16_t>(scope.size()));
  w.bytes(site);
  w.bytes(message);
  w.bytes(scope);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const SnapshotBegin& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::snapshot_begin));
  WireWriter(out).u64(m.snapshot_id);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const SnapshotEnd& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::snapshot_end));
  WireWriter w(out);
  w.u64(m.snapshot_id);
  w.u64(m.num_allocations);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const Barrier& m, MessageType type) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(type));
  WireWriter(out).u64(m.token);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const ClientStats& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::client_stats));
  WireWriter w(out);
#define TTMEM_WRITE(name) w.u64(m.name);
  TTMEM_CLIENT_STATS(TTMEM_WRITE)
#undef TTMEM_WRITE
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const Query& m) {
  encode_string_frame(out, MessageType::query, m.query_id, true, m.json);
}

void encode(std::vector<std::uint8_t>& out, const QueryReply& m) {
  encode_string_frame(out, MessageType::query_reply, m.query_id, true, m.json, m.status);
}

void encode(std::vector<std::uint8_t>& out, const ErrorMessage& m) {
  const std::size_t at = begin_frame(out, static_cast<std::uint16_t>(MessageType::error));
  WireWriter w(out);
  w.u16(static_cast<std::uint16_t>(m.code));
  w.bytes(m.text);
  finish_frame(out, at);
}

void encode(std::vector<std::uint8_t>& out, const EventNotify& m) {
  encode_string_frame(out, MessageType::event_notify, 0, false, m.json);
}

// ---- decoders ---------------------------------------------------------------------------------------

Decoded<FrameHeader> decode_header(std::span<const std::uint8_t> bytes, std::uint32_t max_payload) {
  WireReader r(bytes);
  std::uint32_t length = 0;
  std::uint16_t type = 0, reserved = 0;
  if (!r.u32(length) || !r.u16(type) || !r.u16(reserved)) return truncated<FrameHeader>("frame header");
  if (!enum_from<MessageType>(type)) return malformed(format_text("unknown message type {}", type));
  if (reserved != 0) return malformed(format_text("frame header reserved field is {} (must be 0)", reserved));
  if (length > max_payload) {
    return malformed(format_text("{} frame of {} bytes exceeds the maximum of {} bytes",
                                 to_string(static_cast<MessageType>(type)), length, max_payload));
  }
  return FrameHeader{length, static_cast<MessageType>(type)};
}

void FrameReader::reserve_tail(std::size_t n) {
  if (consumed_ == size_) {
    size_ = consumed_ = 0;
  }
  if (size_ + n <= capacity_) return;
  // Move what is pending to the front, then grow if that is not enough.
  const std::size_t pending = size_ - consumed_;
  if (pending + n <= capacity_ && consumed_ > 0) {
    std::memmove(data_.get(), data_.get() + consumed_, pending);
  } else {
    const std::size_t capacity = std::max<std::size_t>({pending + n, capacity_ * 2, 64 * 1024});
    auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(capacity);
    if (pending) std::memcpy(bigger.get(), data_.get() + consumed_, pending);
    data_ = std::move(bigger);
    capacity_ = capacity;
  }
  size_ = pending;
  consumed_ = 0;
}

void FrameReader::append(std::span<const std::uint8_t> bytes) {
  reserve_tail(bytes.size());
  if (!bytes.empty()) std::memcpy(data_.get() + size_, bytes.data(), bytes.size());
  size_ += bytes.size();
}

std::span<std::uint8_t> FrameReader::prepare(std::size_t n) {
  reserve_tail(n);
  return {data_.get() + size_, n};
}

std::variant<std::nullopt_t, Frame, DecodeError> next_frame(std::span<const std::uint8_t>& bytes,
                                                            std::uint32_t max_payload) {
  if (bytes.size() < kFrameHeaderSize) return std::nullopt;
  auto header = decode_header(bytes.first(kFrameHeaderSize), max_payload);
  if (auto* e = std::get_if<DecodeError>(&header)) return *e;
  const FrameHeader h = std::get<FrameHeader>(header);
  if (bytes.size() - kFrameHeaderSize < h.length) return std::nullopt;
  const Frame frame{h.type, bytes.subspan(kFrameHeaderSize, h.length)};
  bytes = bytes.subspan(kFrameHeaderSize + h.length);
  return frame;
}

std::variant<std::nullopt_t, Frame, DecodeError> FrameReader::next() {
  std::span<const std::uint8_t> pending(data_.get() + consumed_, size_ - consumed_);
  const std::size_t before = pending.size();
  auto next = next_frame(pending, max_payload_);
  consumed_ += before - pending.size();
  return next;
}

std::size_t FrameReader::missing() const {
  const std::size_t have = size_ - consumed_;
  if (have == 0) return 0;
  if (have < kFrameHeaderSize) return kFrameHeaderSize - have;
  auto header = decode_header({data_.get() + consumed_, kFrameHeaderSize}, max_payload_);
  if (!ok(header)) return 0;
  const std::size_t whole = kFrameHeaderSize + std::get<FrameHeader>(header).length;
  return have >= whole ? 0 : whole - have;
}

void FrameReader::release_if_empty(std::size_t keep) {
  if (size_ != consumed_ || capacity_ <= keep) return;
  data_.reset();
  capacity_ = size_ = consumed_ = 0;
}

Decoded<Hello> decode_hello(std::span<const std::uint8_t> p) {
  WireReader r(p);
  Hello m;
  std::uint8_t role = 0, reserved = 0, name_len = 0;
  if (!r.u32(m.magic)) return truncated<Hello>("HELLO");
  if (m.magic != kMagic) {
    return DecodeError{ErrorCode::bad_magic, [&] {
                         char text[96];
                         std::snprintf(text, sizeof text,
                                       "bad magic 0x%08x (expected 0x%08x): not a ttmem client", m.magic,
                                       kMagic);
                         return std::string(text);
                       }()};
  }
  if (!r.u16(m.protocol_version)) return truncated<Hello>("HELLO");
  if (m.protocol_version != kProtocolVersion) {
    return DecodeError{ErrorCode::version_mismatch,
                       format_text("protocol version {} is not supported (this side speaks version {})",
                                   m.protocol_version, kProtocolVersion)};
  }
  if (!r.u8(role) || !r.u8(reserved) || !r.u32(m.client_version) || !r.u32(m.claimed_pid) ||
      !r.u8(name_len) || !r.bytes(m.process_name, name_len)) {
    return truncated<Hello>("HELLO");
  }
  const auto known_role = enum_from<Role>(role);
  if (!known_role) return malformed(format_text("HELLO role {} is unknown", role));
  m.role = *known_role;
  if (!r.done()) return trailing<Hello>("HELLO", r.remaining());
  return m;
}

Decoded<HelloAck> decode_hello_ack(std::span<const std::uint8_t> p) {
  if (auto e = exact_size("HELLO_ACK", p, kHelloAckSize)) return *e;
  WireReader r(p);
  HelloAck m;
  std::uint16_t reserved = 0;
  r.u16(m.protocol_version);
  r.u16(reserved);
  r.u32(m.server_version);
  r.u32(m.server_pid);
  r.u32(m.peer_pid);
  r.u64(m.connection_id);
  if (m.protocol_version != kProtocolVersion) {
    return DecodeError{ErrorCode::version_mismatch,
                       format_text("server speaks protocol version {}, this client speaks version {}",
                                   m.protocol_version, kProtocolVersion)};
  }
  return m;
}

Decoded<DeviceOpen> decode_device_open(std::span<const std::uint8_t> p) {
  if (auto e = exact_size("DEVICE_OPEN", p, kDeviceOpenSize)) return *e;
  WireReader r(p);
  DeviceOpen m;
  std::uint8_t reserved = 0;
  r.u16(m.device);
  r.u8(m.arch);
  r.u8(reserved);
  r.u32(m.mesh);
  for (auto& v : m.total_bytes) r.u64(v);
  for (auto& v : m.num_banks) r.u32(v);
  for (auto& v : m.base_address) r.u64(v);
  if (!enum_from<Arch>(m.arch)) return malformed(format_text("DEVICE_OPEN arch {} is unknown", m.arch));
  return m;
}

Decoded<DeviceClose> decode_device_close(std::span<const std::uint8_t> p) {
  if (auto e = exact_size("DEVICE_CLOSE", p, kDeviceCloseSize)) return *e;
  WireReader r(p);
  DeviceClose m;
  std::uint8_t phase = 0, reserved = 0;
  r.u16(m.device);
  r.u8(phase);
  r.u8(reserved);
  const auto known_phase = enum_from<ClosePhase>(phase);
  if (!known_phase) return malformed(format_text("DEVICE_CLOSE phase {} is unknown", phase));
  m.phase = *known_phase;
  return m;
}

namespace {

/// Whether the record's four enum bytes are values of their enums. On the ingest path of every record,
/// so a bit set per enum rather than a table walk; the static_asserts tie the sets to the vocabulary.
constexpr std::uint32_t value_set(auto values) {
  std::uint32_t bits = 0;
  for (auto v : values) bits |= 1u << static_cast<unsigned>(v);
  return bits;
}
constexpr std::uint32_t kOps = value_set(enum_values<EventOp>());
constexpr std::uint32_t kTypes = value_set(enum_values<BufferType>());
constexpr std::uint32_t kKinds = value_set(enum_values<AllocKind>());
constexpr std::uint32_t kReasons = value_set(enum_values<ReleaseReason>());
constexpr bool all_below_32(auto values) {
  for (auto v : values) {
    if (static_cast<unsigned>(v) >= 32) return false;
  }
  return true;
}
static_assert(all_below_32(enum_values<EventOp>()) && all_below_32(enum_values<BufferType>()) &&
              all_below_32(enum_values<AllocKind>()) && all_below_32(enum_values<ReleaseReason>()));

inline bool record_enums_valid(const std::uint8_t* rec) {
  return rec[ev::op] < 32 && (kOps >> rec[ev::op] & 1) && rec[ev::type] < 32 &&
         (kTypes >> rec[ev::type] & 1) && rec[ev::kind] < 32 && (kKinds >> rec[ev::kind] & 1) &&
         rec[ev::reason] < 32 && (kReasons >> rec[ev::reason] & 1);
}

/// Reads the fields of a 64-byte record whose enums were checked.
EventRecord read_record(const std::uint8_t* p) {
  EventRecord e;
  if constexpr (wire_is_native()) {
    std::memcpy(&e, p, kEventRecordSize);
    return e;
  }
  e.op = static_cast<EventOp>(p[ev::op]);
  e.type = static_cast<BufferType>(p[ev::type]);
  e.kind = static_cast<AllocKind>(p[ev::kind]);
  e.reason = static_cast<ReleaseReason>(p[ev::reason]);
  e.device = load_le<std::uint16_t>(p + ev::device);
  e.flags = load_le<std::uint16_t>(p + ev::flags);
  e.site = load_le<std::uint32_t>(p + ev::site);
  e.num_banks = load_le<std::uint32_t>(p + ev::num_banks);
  e.mesh = load_le<std::uint32_t>(p + ev::mesh);
  e.scope = load_le<std::uint32_t>(p + ev::scope);
  e.id = load_le<std::uint64_t>(p + ev::id);
  e.size = load_le<std::uint64_t>(p + ev::size);
  e.address = load_le<std::uint64_t>(p + ev::address);
  e.size_per_bank = load_le<std::uint64_t>(p + ev::size_per_bank);
  e.timestamp_ns = load_le<std::uint64_t>(p + ev::timestamp);
  return e;
}

}  // namespace

Decoded<EventRecord> decode_event(std::span<const std::uint8_t> span) {
  if (span.size() != kEventRecordSize) {
    return malformed(format_text("event record of {} bytes (must be 64)", span.size()));
  }
  const std::uint8_t* p = span.data();
  if (!enum_from<EventOp>(p[ev::op])) return malformed(format_text("event op {} is unknown", p[ev::op]));
  if (!enum_from<BufferType>(p[ev::type]))
    return malformed(format_text("event buffer type {} is unknown", p[ev::type]));
  if (!enum_from<AllocKind>(p[ev::kind]))
    return malformed(format_text("event kind {} is unknown", p[ev::kind]));
  if (!enum_from<ReleaseReason>(p[ev::reason])) {
    return malformed(format_text("event release reason {} is unknown", p[ev::reason]));
  }
  return read_record(p);
}

std::optional<DecodeError> decode_events(std::span<const std::uint8_t> p, std::vector<EventRecord>& out) {
  out.clear();
  if (auto err = validate_events(p)) return err;
  out.resize(load_le<std::uint32_t>(p.data()));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = event_at(p, i);
  return std::nullopt;
}

std::optional<DecodeError> validate_events(std::span<const std::uint8_t> p) {
  WireReader r(p);
  std::uint32_t count = 0;
  if (!r.u32(count)) return malformed("truncated EVENTS message");
  if (count > kMaxEventsPerFrame) {
    return malformed(
        format_text("EVENTS batch of {} records exceeds the maximum of {}", count, kMaxEventsPerFrame));
  }
  if (r.remaining() != static_cast<std::size_t>(count) * kEventRecordSize) {
    return malformed(format_text("EVENTS batch says {} records ({} bytes) but carries {} bytes", count,
                                 static_cast<std::size_t>(count) * kEventRecordSize, r.remaining()));
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* rec = p.data() + 4 + i * kEventRecordSize;
    const bool valid = record_enums_valid(rec);
    if (!valid) {
      auto e = decode_event(std::span<const std::uint8_t>(rec, kEventRecordSize));  // for its message
      return malformed(format_text("record {}: {}", i, std::get<DecodeError>(e).message));
    }
  }
  return std::nullopt;
}

EventRecord event_at(std::span<const std::uint8_t> payload, std::size_t i) {
  return read_record(payload.data() + 4 + i * kEventRecordSize);  // validate_events checked it
}

Decoded<std::vector<Site>> decode_sites(std::span<const std::uint8_t> p) {
  WireReader r(p);
  std::uint32_t count = 0;
  if (!r.u32(count)) return malformed("truncated SITES message");
  // Each entry needs at least 6 bytes; refuse counts the payload cannot hold before reserving memory.
  if (count > r.remaining() / 6)
    return malformed(format_text("SITES message claims {} sites in {} bytes", count, p.size()));
  std::vector<Site> sites(count);
  for (auto& s : sites) {
    std::uint16_t len = 0;
    if (!r.u32(s.id) || !r.u16(len)) return malformed("truncated SITES message");
    if (len > kMaxSiteLength)
      return malformed(format_text("site text of {} bytes exceeds {}", len, kMaxSiteLength));
    if (!r.bytes(s.text, len)) return malformed("truncated SITES message");
    if (s.id == 0) return malformed("site id 0 is reserved for 'no site'");
  }
  if (!r.done())
    return malformed(format_text("SITES message has {} unexpected trailing bytes", r.remaining()));
  return sites;
}

Decoded<AllocFailure> decode_alloc_failure(std::span<const std::uint8_t> p) {
  WireReader r(p);
  AllocFailure m;
  std::uint8_t type = 0, reason = 0;
  std::uint16_t site_len = 0, message_len = 0, scope_len = 0;
  if (!r.u16(m.device) || !r.u8(type) || !r.u8(reason) || !r.u32(m.num_banks) || !r.u64(m.size) ||
      !r.u64(m.page_size) || !r.u64(m.size_per_bank) || !r.u64(m.timestamp_ns) || !r.u16(site_len) ||
      !r.u16(message_len) || !r.u16(scope_len)) {
    return malformed(format_text("truncated ALLOC_FAILURE message ({} of at least {} bytes)", p.size(),
                                 kAllocFailureFixed));
  }
  const auto t = enum_from<BufferType>(type);
  if (!t) return malformed(format_text("ALLOC_FAILURE buffer type {} is unknown", type));
  const auto why = enum_from<FailureReason>(reason);
  if (!why) return malformed(format_text("ALLOC_FAILURE reason {} is unknown", reason));
  m.type = *t;
  m.reason = *why;
  if (site_len > kMaxSiteLength)
    return malformed(format_text("ALLOC_FAILURE site of {} bytes exceeds {}", site_len, kMaxSiteLength));
  if (message_len > kMaxFailureMessageLength) {
    return malformed(
        format_text("ALLOC_FAILURE message of {} bytes exceeds {}", message_len, kMaxFailureMessageLength));
  }
  if (scope_len > kMaxSiteLength)
    return malformed(format_text("ALLOC_FAILURE op scope of {} bytes exceeds {}", scope_len, kMaxSiteLength));
  if (!r.bytes(m.site, site_len) || !r.bytes(m.message, message_len) || !r.bytes(m.scope, scope_len))
    return malformed("truncated ALLOC_FAILURE message");
  if (!r.done()) {
    return malformed(format_text("ALLOC_FAILURE message has {} unexpected trailing bytes", r.remaining()));
  }
  return m;
}

Decoded<SnapshotBegin> decode_snapshot_begin(std::span<const std::uint8_t> p) {
  if (auto e = exact_size("SNAPSHOT_BEGIN", p, kSnapshotBeginSize)) return *e;
  SnapshotBegin m;
  WireReader(p).u64(m.snapshot_id);
  return m;
}

Decoded<SnapshotEnd> decode_snapshot_end(std::span<const std::uint8_t> p) {
  if (auto e = exact_size("SNAPSHOT_END", p, kSnapshotEndSize)) return *e;
  SnapshotEnd m;
  WireReader r(p);
  r.u64(m.snapshot_id);
  r.u64(m.num_allocations);
  return m;
}

Decoded<Barrier> decode_barrier(std::span<const std::uint8_t> p) {
  if (auto e = exact_size("BARRIER", p, kBarrierSize)) return *e;
  Barrier m;
  WireReader(p).u64(m.token);
  return m;
}

Decoded<ClientStats> decode_client_stats(std::span<const std::uint8_t> p) {
  if (auto e = exact_size("CLIENT_STATS", p, kClientStatsSize)) return *e;
  ClientStats m;
  WireReader r(p);
#define TTMEM_READ(name) r.u64(m.name);
  TTMEM_CLIENT_STATS(TTMEM_READ)
#undef TTMEM_READ
  return m;
}

Decoded<Query> decode_query(std::span<const std::uint8_t> p) {
  WireReader r(p);
  Query m;
  if (!r.u32(m.query_id)) return malformed("truncated QUERY message");
  r.bytes(m.json, r.remaining());
  return m;
}

Decoded<QueryReply> decode_query_reply(std::span<const std::uint8_t> p) {
  WireReader r(p);
  QueryReply m;
  if (!r.u32(m.query_id) || !r.u8(m.status)) return malformed("truncated QUERY_REPLY message");
  if (m.status > kReplyPartial) return malformed(format_text("QUERY_REPLY status {} is unknown", m.status));
  r.bytes(m.json, r.remaining());
  return m;
}

Decoded<ErrorMessage> decode_error(std::span<const std::uint8_t> p) {
  WireReader r(p);
  std::uint16_t code = 0;
  if (!r.u16(code)) return malformed("truncated ERROR message");
  const auto known = enum_from<ErrorCode>(code);
  if (!known) return malformed(format_text("ERROR code {} is unknown", code));
  ErrorMessage m;
  m.code = *known;
  r.bytes(m.text, r.remaining());
  return m;
}

Decoded<EventNotify> decode_event_notify(std::span<const std::uint8_t> p) {
  EventNotify m;
  m.json.assign(reinterpret_cast<const char*>(p.data()), p.size());
  return m;
}

}  // namespace ttmem::proto
