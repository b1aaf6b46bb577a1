// The ttmem wire protocol: the ONE definition shared by libttmem, ttmemd and the tools.
// Framed, versioned, explicitly little-endian. Every message is encoded field by field (the 64-byte event
// record is copied whole where the host's layout is the wire's) and every decoder validates length, counts
// and enum values. Spec: docs/protocol.md.
//
//   frame := header(8) payload(length)
//   header := u32 length | u16 type | u16 reserved(0)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ttmem/vocab.hpp"

namespace ttmem::proto {

inline constexpr std::uint32_t kMagic = 0x4D4D5454;  // "TTMM" in little-endian byte order
inline constexpr std::uint16_t kProtocolVersion = 5;
inline constexpr std::size_t kFrameHeaderSize = 8;
/// Largest payload a client may send (an EVENTS frame of 16,383 records fits).
inline constexpr std::uint32_t kMaxRequestPayload = 1u << 20;
/// Largest payload a server reply may have (a `buffers` query over millions of live buffers).
inline constexpr std::uint32_t kMaxReplyPayload = 1u << 30;
inline constexpr std::size_t kEventRecordSize = 64;
inline constexpr std::size_t kMaxEventsPerFrame = (kMaxRequestPayload - 4) / kEventRecordSize;
/// What libttmem puts in one EVENTS frame: a frame is applied in one go, so its size bounds how long the
/// server's loop is busy with it (128 KiB: about a millisecond with a million buffers live).
inline constexpr std::size_t kSendEventsPerFrame = 2048;
inline constexpr std::size_t kMaxNameLength = 255;
inline constexpr std::size_t kMaxSiteLength = 1024;
/// Longest runtime error text an ALLOC_FAILURE carries (TT-Metal's messages are a few hundred bytes).
inline constexpr std::size_t kMaxFailureMessageLength = 4096;
inline constexpr std::size_t kNumMemorySlots = kBufferTypes;  // indexed by BufferType value

// The enums of the wire are the vocabulary's (ttmem/vocab.hpp), with their wire values.
using ttmem::AllocKind;
using ttmem::BufferType;
using ttmem::ClosePhase;
using ttmem::ErrorCode;
using ttmem::EventOp;
using ttmem::FailureReason;
using ttmem::MessageType;
using ttmem::ReleaseReason;
using ttmem::Role;
using ttmem::to_string;

// ---- messages ---------------------------------------------------------------------------------------

struct Hello {
  std::uint32_t magic = kMagic;
  std::uint16_t protocol_version = kProtocolVersion;
  Role role = Role::tracked_process;
  std::uint32_t client_version = 0;  ///< major << 16 | minor << 8 | patch
  std::uint32_t claimed_pid = 0;     ///< informational only: the server uses the socket's peer credentials
  std::string process_name;          ///< informational: the server reads /proc
};

struct HelloAck {
  std::uint16_t protocol_version = kProtocolVersion;
  std::uint32_t server_version = 0;
  std::uint32_t server_pid = 0;
  std::uint32_t peer_pid = 0;  ///< the pid the server attributes this connection to
  std::uint64_t connection_id = 0;
};

struct DeviceOpen {
  std::uint16_t device = 0;
  std::uint8_t arch = 0;  ///< 0 wormhole_b0, 1 blackhole
  std::uint32_t mesh = 0;
  std::array<std::uint64_t, kNumMemorySlots> total_bytes{};  ///< indexed by BufferType value
  std::array<std::uint32_t, kNumMemorySlots> num_banks{};
  /// Where each type's managed range starts in every bank (its banks span [base, base + total / banks)).
  std::array<std::uint64_t, kNumMemorySlots> base_address{};
};

struct DeviceClose {
  std::uint16_t device = 0;
  ClosePhase phase = ClosePhase::begin;
};

/// One allocation or release: the fixed-size record of EVENTS frames (64 bytes on the wire).
struct EventRecord {
  EventOp op = EventOp::alloc;
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  ReleaseReason reason = ReleaseReason::explicit_free;
  std::uint16_t device = 0;
  std::uint16_t flags = 0;  ///< bit 0: runtime-internal allocation
  std::uint32_t site = 0;   ///< 0: no site
  std::uint32_t num_banks = 0;
  std::uint32_t mesh = 0;
  /// The op scope it was made in (a site id whose text is the op path, "outer/inner"); 0: none.
  std::uint32_t scope = 0;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::uint64_t size_per_bank = 0;
  std::uint64_t timestamp_ns = 0;  ///< CLOCK_MONOTONIC
};
inline constexpr std::uint16_t kFlagInternal = 1;

/// An allocation the runtime refused, with what it asked for and the runtime's own message. Sent like a
/// device open (after every event reported before it), never on the allocation hot path.
struct AllocFailure {
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  FailureReason reason = FailureReason::out_of_memory;
  std::uint32_t num_banks = 0;
  std::uint64_t size = 0;
  std::uint64_t page_size = 0;
  std::uint64_t size_per_bank = 0;  ///< what each bank needed to hold
  std::uint64_t timestamp_ns = 0;   ///< CLOCK_MONOTONIC
  std::string site;                 ///< who asked (at most kMaxSiteLength)
  std::string message;              ///< the runtime's error text (at most kMaxFailureMessageLength)
  std::string scope;                ///< the op it was asked in, "outer/inner" (at most kMaxSiteLength)
};

struct Site {
  std::uint32_t id = 0;
  std::string text;
};

struct SnapshotBegin {
  std::uint64_t snapshot_id = 0;
};
struct SnapshotEnd {
  std::uint64_t snapshot_id = 0;
  std::uint64_t num_allocations = 0;  ///< checked by the server against what it received
};

struct Barrier {
  std::uint64_t token = 0;
};

// libttmem's own counters, one list: the fields of CLIENT_STATS (u64 each, in this order), of
// client::Counters, of `info`'s "client" object and of Python's client_counters().
//   events             records sent (allocations, frees, device open/close)
//   bytes              bytes written to the socket
//   batches            frames written
//   stall_ns           time reporting threads waited for ring space (backpressure)
//   reconnects         successful connections after the first
//   snapshots          resync snapshots sent
//   superseded_events  recorded while disconnected, replaced by a snapshot
//   dropped_events     not recorded: the server could not keep up for max_stall (see gaps)
//   gaps               times recording stopped so; each ended with a snapshot
// clang-format off
#define TTMEM_CLIENT_STATS(X) \
  X(events) \
  X(bytes) \
  X(batches) \
  X(stall_ns) \
  X(reconnects) \
  X(snapshots) \
  X(superseded_events) \
  X(dropped_events) \
  X(gaps)
// clang-format on

struct ClientStats {
#define TTMEM_CLIENT_STATS_FIELD(name) std::uint64_t name = 0;
  TTMEM_CLIENT_STATS(TTMEM_CLIENT_STATS_FIELD)
#undef TTMEM_CLIENT_STATS_FIELD
  bool operator==(const ClientStats&) const = default;
};

struct Query {
  std::uint32_t query_id = 0;
  std::string json;
};

/// QUERY_REPLY status: an answer comes whole (done) or in pages (partial ... partial, done); error ends it.
inline constexpr std::uint8_t kReplyError = 0;
inline constexpr std::uint8_t kReplyDone = 1;
inline constexpr std::uint8_t kReplyPartial = 2;

struct QueryReply {
  std::uint32_t query_id = 0;
  std::uint8_t status = kReplyDone;
  std::string json;
};

struct ErrorMessage {
  ErrorCode code = ErrorCode::internal;
  std::string text;
};

struct EventNotify {
  std::string json;
};

// ---- encoding ---------------------------------------------------------------------------------------

/// Appends one whole frame (header + payload) to `out`.
void encode(std::vector<std::uint8_t>& out, const Hello& m);
void encode(std::vector<std::uint8_t>& out, const HelloAck& m);
void encode(std::vector<std::uint8_t>& out, const DeviceOpen& m);
void encode(std::vector<std::uint8_t>& out, const DeviceClose& m);
void encode(std::vector<std::uint8_t>& out, std::span<const EventRecord> events);
void encode(std::vector<std::uint8_t>& out, std::span<const Site> sites);
void encode(std::vector<std::uint8_t>& out, const AllocFailure& m);
void encode(std::vector<std::uint8_t>& out, const SnapshotBegin& m);
void encode(std::vector<std::uint8_t>& out, const SnapshotEnd& m);
void encode(std::vector<std::uint8_t>& out, const Barrier& m, MessageType type = MessageType::barrier);
void encode(std::vector<std::uint8_t>& out, const ClientStats& m);
void encode(std::vector<std::uint8_t>& out, const Query& m);
void encode(std::vector<std::uint8_t>& out, const QueryReply& m);
void encode(std::vector<std::uint8_t>& out, const ErrorMessage& m);
void encode(std::vector<std::uint8_t>& out, const EventNotify& m);

/// Writes one event record's 64 wire bytes at `out`.
void encode_event(std::uint8_t* out, const EventRecord& e);

/// Builds EVENTS frames record by record, straight into an output buffer (no intermediate copy).
class EventFrameWriter {
 public:
  explicit EventFrameWriter(std::vector<std::uint8_t>& out, std::size_t per_frame = kSendEventsPerFrame)
      : out_(out), per_frame_(per_frame < kMaxEventsPerFrame ? per_frame : kMaxEventsPerFrame) {}
  ~EventFrameWriter() { close(); }
  void add(const EventRecord& e);
  /// Adds `n` records that lie `stride` bytes apart, each an EventRecord at its start (a ring's records).
  void add(const EventRecord* first, std::size_t n, std::size_t stride);
  /// Ends the frame being built (if any); returns the records it held.
  std::size_t close();
  /// Records and frames written so far (frames are also closed when they reach the per-frame maximum).
  std::size_t records() const { return records_; }
  std::size_t frames() const { return frames_; }

 private:
  std::vector<std::uint8_t>& out_;
  std::size_t per_frame_;
  std::size_t frame_at_ = 0;
  std::size_t count_ = 0;
  std::size_t records_ = 0;
  std::size_t frames_ = 0;
  bool open_ = false;
};

// ---- decoding ---------------------------------------------------------------------------------------

struct DecodeError {
  ErrorCode code = ErrorCode::malformed;
  std::string message;
};

template <typename T>
using Decoded = std::variant<T, DecodeError>;

template <typename T>
bool ok(const Decoded<T>& d) {
  return std::holds_alternative<T>(d);
}

struct FrameHeader {
  std::uint32_t length = 0;
  MessageType type = MessageType::hello;
};

/// A frame's payload, pointing into the reader's buffer (valid until the next call on the reader).
struct Frame {
  MessageType type = MessageType::hello;
  std::span<const std::uint8_t> payload;
};

/// Splits a byte stream into frames. Rejects unknown types, non-zero reserved bits and payloads over
/// `max_payload` before buffering them.
class FrameReader {
 public:
  explicit FrameReader(std::uint32_t max_payload) : max_payload_(max_payload) {}
  FrameReader(FrameReader&&) noexcept = default;
  FrameReader& operator=(FrameReader&&) noexcept = default;
  void append(std::span<const std::uint8_t> bytes);
  /// Room for up to `n` more bytes at the end of the buffer, to read() into directly; then commit(written).
  std::span<std::uint8_t> prepare(std::size_t n);
  void commit(std::size_t written) { size_ += written; }
  /// Next complete frame; std::nullopt when more bytes are needed; DecodeError on a bad header.
  std::variant<std::nullopt_t, Frame, DecodeError> next();
  std::size_t buffered() const { return size_ - consumed_; }
  /// Bytes the reader's buffer holds room for (its memory).
  std::size_t capacity() const { return capacity_; }
  /// Bytes still needed to complete the first buffered frame (its header first); 0 when it is complete
  /// or nothing is buffered. A header that is already known bad needs 0.
  std::size_t missing() const;
  /// Frees the buffer when nothing is buffered and it holds more than `keep` bytes (idle connections
  /// hold no grown buffer).
  void release_if_empty(std::size_t keep);

 private:
  void reserve_tail(std::size_t n);
  std::uint32_t max_payload_;
  std::unique_ptr<std::uint8_t[]> data_;  // not a vector: growing it must not zero what read() overwrites
  std::size_t capacity_ = 0;
  std::size_t size_ = 0;
  std::size_t consumed_ = 0;
};

Decoded<FrameHeader> decode_header(std::span<const std::uint8_t> bytes, std::uint32_t max_payload);
/// The next complete frame at the front of `bytes`, which is advanced past it: frames parsed in place
/// from a caller's buffer. std::nullopt (bytes unchanged) when the frame is incomplete.
std::variant<std::nullopt_t, Frame, DecodeError> next_frame(std::span<const std::uint8_t>& bytes,
                                                            std::uint32_t max_payload);
Decoded<Hello> decode_hello(std::span<const std::uint8_t> payload);
Decoded<HelloAck> decode_hello_ack(std::span<const std::uint8_t> payload);
Decoded<DeviceOpen> decode_device_open(std::span<const std::uint8_t> payload);
Decoded<DeviceClose> decode_device_close(std::span<const std::uint8_t> payload);
/// Appends the batch's records to `out` (cleared first).
std::optional<DecodeError> decode_events(std::span<const std::uint8_t> payload,
                                         std::vector<EventRecord>& out);
/// Checks a whole EVENTS payload (count, size, every record) without keeping the records.
std::optional<DecodeError> validate_events(std::span<const std::uint8_t> payload);
/// Decodes record i of a payload that validate_events accepted.
EventRecord event_at(std::span<const std::uint8_t> payload, std::size_t i);
Decoded<EventRecord> decode_event(std::span<const std::uint8_t> record);
Decoded<std::vector<Site>> decode_sites(std::span<const std::uint8_t> payload);
Decoded<AllocFailure> decode_alloc_failure(std::span<const std::uint8_t> payload);
Decoded<SnapshotBegin> decode_snapshot_begin(std::span<const std::uint8_t> payload);
Decoded<SnapshotEnd> decode_snapshot_end(std::span<const std::uint8_t> payload);
Decoded<Barrier> decode_barrier(std::span<const std::uint8_t> payload);
Decoded<ClientStats> decode_client_stats(std::span<const std::uint8_t> payload);
Decoded<Query> decode_query(std::span<const std::uint8_t> payload);
Decoded<QueryReply> decode_query_reply(std::span<const std::uint8_t> payload);
Decoded<ErrorMessage> decode_error(std::span<const std::uint8_t> payload);
Decoded<EventNotify> decode_event_notify(std::span<const std::uint8_t> payload);

/// "0.1.0" for a packed version.
std::string version_string(std::uint32_t packed);
inline constexpr std::uint32_t pack_version(std::uint32_t major, std::uint32_t minor, std::uint32_t patch) {
  return major << 16 | minor << 8 | patch;
}
/// ttmem's release: libttmem, the tools and ttmemd ship together and carry the same version.
inline constexpr std::uint32_t kTtmemVersion = pack_version(0, 2, 0);

}  // namespace ttmem::proto
