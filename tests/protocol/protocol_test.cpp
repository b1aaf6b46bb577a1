// The wire protocol: every message round-trips; every decoder rejects truncated, oversized, inconsistent
// and random input with an error instead of crashing or reading out of bounds.
#include "ttmem/protocol.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace ttmem::proto {
namespace {

/// Splits an encoded frame into (type, payload), checking the header.
Frame single_frame(const std::vector<std::uint8_t>& bytes, std::uint32_t max = kMaxReplyPayload) {
  static FrameReader reader(max);
  reader = FrameReader(max);
  reader.append(bytes);
  auto next = reader.next();
  EXPECT_TRUE(std::holds_alternative<Frame>(next));
  EXPECT_EQ(reader.buffered(), 0u);
  return std::get<Frame>(next);
}

template <typename T, typename Decoder>
T round_trip(const std::vector<std::uint8_t>& bytes, MessageType type, Decoder decode) {
  const Frame f = single_frame(bytes);
  EXPECT_EQ(f.type, type);
  auto d = decode(f.payload);
  EXPECT_TRUE(ok(d)) << (ok(d) ? "" : std::get<DecodeError>(d).message);
  return std::get<T>(d);
}

EventRecord sample_event() {
  EventRecord e;
  e.op = EventOp::alloc;
  e.type = BufferType::L1_SMALL;
  e.kind = AllocKind::circular_buffer;
  e.reason = ReleaseReason::close_leak;
  e.device = 31;
  e.flags = kFlagInternal;
  e.site = 77;
  e.num_banks = 130;
  e.mesh = 9;
  e.scope = 0x0a0b0c0d;
  e.id = 0x0123456789abcdefull;
  e.size = 4'278'190'080ull;
  e.address = 1'497'088;
  e.size_per_bank = 2048;
  e.timestamp_ns = 0xfedcba9876543210ull;
  return e;
}

bool same(const EventRecord& a, const EventRecord& b) {
  return a.op == b.op && a.type == b.type && a.kind == b.kind && a.reason == b.reason &&
         a.device == b.device && a.flags == b.flags && a.site == b.site && a.num_banks == b.num_banks &&
         a.mesh == b.mesh && a.scope == b.scope && a.id == b.id && a.size == b.size &&
         a.address == b.address && a.size_per_bank == b.size_per_bank && a.timestamp_ns == b.timestamp_ns;
}

TEST(Protocol, EventRecordsAreSixtyFourLittleEndianBytes) {
  std::vector<std::uint8_t> bytes;
  const EventRecord e = sample_event();
  encode(bytes, std::span<const EventRecord>(&e, 1));
  ASSERT_EQ(bytes.size(), kFrameHeaderSize + 4 + kEventRecordSize);
  // Header: length 68, type 4, reserved 0 — least significant byte first.
  EXPECT_EQ(bytes[0], 68);
  EXPECT_EQ(bytes[1], 0);
  EXPECT_EQ(bytes[4], 4);
  const std::uint8_t* r = bytes.data() + kFrameHeaderSize + 4;
  EXPECT_EQ(r[0], 1);      // op
  EXPECT_EQ(r[1], 3);      // L1_SMALL
  EXPECT_EQ(r[4], 31);     // device, low byte
  EXPECT_EQ(r[20], 0x0d);  // op scope, low byte first
  EXPECT_EQ(r[23], 0x0a);
  EXPECT_EQ(r[24], 0xef);  // id, low byte first
  EXPECT_EQ(r[31], 0x01);
}

TEST(Protocol, EveryMessageRoundTrips) {
  std::vector<std::uint8_t> b;
  Hello h;
  h.role = Role::tool;
  h.client_version = pack_version(1, 2, 3);
  h.claimed_pid = 4242;
  h.process_name = "python3";
  encode(b, h);
  const Hello h2 = round_trip<Hello>(b, MessageType::hello, decode_hello);
  EXPECT_EQ(h2.role, Role::tool);
  EXPECT_EQ(h2.client_version, h.client_version);
  EXPECT_EQ(h2.claimed_pid, 4242u);
  EXPECT_EQ(h2.process_name, "python3");
  EXPECT_EQ(version_string(h2.client_version), "1.2.3");

  b.clear();
  encode(b, HelloAck{kProtocolVersion, 7, 8, 9, 10});
  const HelloAck a = round_trip<HelloAck>(b, MessageType::hello_ack, decode_hello_ack);
  EXPECT_EQ(a.server_version, 7u);
  EXPECT_EQ(a.peer_pid, 9u);
  EXPECT_EQ(a.connection_id, 10u);

  b.clear();
  DeviceOpen d;
  d.device = 7;
  d.arch = 1;
  d.mesh = 3;
  d.total_bytes = {1, 2, 3, 4, 5};
  d.num_banks = {8, 130, 0, 130, 8};
  encode(b, d);
  const DeviceOpen d2 = round_trip<DeviceOpen>(b, MessageType::device_open, decode_device_open);
  EXPECT_EQ(d2.device, 7);
  EXPECT_EQ(d2.total_bytes, d.total_bytes);
  EXPECT_EQ(d2.num_banks, d.num_banks);

  b.clear();
  encode(b, DeviceClose{5, ClosePhase::end});
  EXPECT_EQ(round_trip<DeviceClose>(b, MessageType::device_close, decode_device_close).phase,
            ClosePhase::end);

  b.clear();
  std::vector<Site> sites = {{1, "dispatch/control"}, {2, ""}, {3, std::string(1024, 'x')}};
  encode(b, std::span<const Site>(sites));
  const auto s2 = round_trip<std::vector<Site>>(b, MessageType::sites, decode_sites);
  ASSERT_EQ(s2.size(), 3u);
  EXPECT_EQ(s2[0].text, "dispatch/control");
  EXPECT_EQ(s2[2].text.size(), 1024u);

  b.clear();
  encode(b, SnapshotBegin{11});
  EXPECT_EQ(round_trip<SnapshotBegin>(b, MessageType::snapshot_begin, decode_snapshot_begin).snapshot_id,
            11u);
  b.clear();
  encode(b, SnapshotEnd{11, 99});
  EXPECT_EQ(round_trip<SnapshotEnd>(b, MessageType::snapshot_end, decode_snapshot_end).num_allocations, 99u);
  b.clear();
  encode(b, Barrier{12});
  EXPECT_EQ(round_trip<Barrier>(b, MessageType::barrier, decode_barrier).token, 12u);
  b.clear();
  encode(b, Barrier{13}, MessageType::barrier_ack);
  EXPECT_EQ(round_trip<Barrier>(b, MessageType::barrier_ack, decode_barrier).token, 13u);
  b.clear();
  encode(b, ClientStats{1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(round_trip<ClientStats>(b, MessageType::client_stats, decode_client_stats).superseded_events, 7u);
  b.clear();
  encode(b, Query{5, R"({"type":"stats"})"});
  EXPECT_EQ(round_trip<Query>(b, MessageType::query, decode_query).json, R"({"type":"stats"})");
  b.clear();
  encode(b, QueryReply{5, 0, R"({"error":"x"})"});
  const QueryReply qr = round_trip<QueryReply>(b, MessageType::query_reply, decode_query_reply);
  EXPECT_EQ(qr.status, 0);
  EXPECT_EQ(qr.query_id, 5u);
  b.clear();
  encode(b, ErrorMessage{ErrorCode::limit_exceeded, "too many"});
  const ErrorMessage em = round_trip<ErrorMessage>(b, MessageType::error, decode_error);
  EXPECT_EQ(em.code, ErrorCode::limit_exceeded);
  EXPECT_EQ(em.text, "too many");

  b.clear();
  const std::vector<EventRecord> events(100, sample_event());
  encode(b, std::span<const EventRecord>(events));
  std::vector<EventRecord> out;
  const Frame f = single_frame(b);
  ASSERT_FALSE(decode_events(f.payload, out).has_value());
  ASSERT_EQ(out.size(), 100u);
  EXPECT_TRUE(same(out[99], events[99]));
}

TEST(Protocol, HandshakeRejectsBadMagicAndOtherVersions) {
  std::vector<std::uint8_t> b;
  Hello h;
  h.magic = 0xdeadbeef;
  encode(b, h);
  auto d = decode_hello(single_frame(b).payload);
  ASSERT_FALSE(ok(d));
  EXPECT_EQ(std::get<DecodeError>(d).code, ErrorCode::bad_magic);
  EXPECT_NE(std::get<DecodeError>(d).message.find("0xdeadbeef"), std::string::npos);
  b.clear();
  h.magic = kMagic;
  h.protocol_version = kProtocolVersion + 1;
  encode(b, h);
  d = decode_hello(single_frame(b).payload);
  ASSERT_FALSE(ok(d));
  EXPECT_EQ(std::get<DecodeError>(d).code, ErrorCode::version_mismatch);
  EXPECT_EQ(std::get<DecodeError>(d).message, "protocol version " + std::to_string(kProtocolVersion + 1) +
                                                  " is not supported (this side speaks version " +
                                                  std::to_string(kProtocolVersion) + ")");
  b.clear();
  encode(b, HelloAck{kProtocolVersion + 1, 0, 0, 0, 0});
  auto a = decode_hello_ack(single_frame(b).payload);
  ASSERT_FALSE(ok(a));
  EXPECT_EQ(std::get<DecodeError>(a).code, ErrorCode::version_mismatch);
}

TEST(Protocol, FrameReaderRejectsOversizedUnknownAndReservedHeaders) {
  FrameReader reader(1024);
  const std::vector<std::uint8_t> huge = {0xff, 0xff, 0xff, 0x7f, 4, 0, 0, 0};  // EVENTS claiming 2 GiB
  reader.append(huge);
  auto next = reader.next();
  ASSERT_TRUE(std::holds_alternative<DecodeError>(next));
  EXPECT_EQ(std::get<DecodeError>(next).message,
            "EVENTS frame of 2147483647 bytes exceeds the maximum of 1024 bytes");
  FrameReader r2(1024);
  r2.append(std::vector<std::uint8_t>{0, 0, 0, 0, 99, 0, 0, 0});
  EXPECT_EQ(std::get<DecodeError>(r2.next()).message, "unknown message type 99");
  FrameReader r3(1024);
  r3.append(std::vector<std::uint8_t>{0, 0, 0, 0, 8, 0, 1, 0});
  EXPECT_TRUE(std::holds_alternative<DecodeError>(r3.next()));
}

TEST(Protocol, FrameReaderReassemblesFramesSplitAnywhere) {
  std::vector<std::uint8_t> stream;
  encode(stream, Barrier{1});
  encode(stream, Query{2, "{}"});
  encode(stream, Barrier{3});
  FrameReader reader(kMaxRequestPayload);
  std::vector<MessageType> seen;
  for (std::uint8_t byte : stream) {
    reader.append(std::span<const std::uint8_t>(&byte, 1));
    for (;;) {
      auto next = reader.next();
      if (std::holds_alternative<std::nullopt_t>(next)) break;
      seen.push_back(std::get<Frame>(next).type);
    }
  }
  EXPECT_EQ(seen, (std::vector<MessageType>{MessageType::barrier, MessageType::query, MessageType::barrier}));
}

TEST(Protocol, EventBatchesMustCarryExactlyTheRecordsTheyAnnounce) {
  std::vector<std::uint8_t> b;
  const std::vector<EventRecord> events(3, sample_event());
  encode(b, std::span<const EventRecord>(events));
  std::vector<std::uint8_t> payload(b.begin() + kFrameHeaderSize, b.end());
  std::vector<EventRecord> out;
  // One byte short, one byte long, count too big for the frame limit.
  auto err = decode_events(std::span(payload).first(payload.size() - 1), out);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message, "EVENTS batch says 3 records (192 bytes) but carries 191 bytes");
  payload.push_back(0);
  EXPECT_TRUE(decode_events(payload, out));
  payload.pop_back();
  payload[0] = 0xff;
  payload[1] = 0xff;
  EXPECT_NE(decode_events(payload, out)->message.find("exceeds the maximum"), std::string::npos);
  EXPECT_TRUE(out.empty());
}

TEST(Protocol, EventRecordsWithUnknownEnumsAreRejected) {
  std::vector<std::uint8_t> b;
  const EventRecord e = sample_event();
  encode(b, std::span<const EventRecord>(&e, 1));
  std::vector<std::uint8_t> payload(b.begin() + kFrameHeaderSize, b.end());
  std::vector<EventRecord> out;
  for (auto [offset, value] :
       std::vector<std::pair<std::size_t, std::uint8_t>>{{0, 3}, {1, 5}, {2, 9}, {3, 3}}) {
    auto copy = payload;
    copy[4 + offset] = value;
    const auto err = decode_events(copy, out);
    ASSERT_TRUE(err) << offset;
    EXPECT_EQ(err->message.rfind("record 0: ", 0), 0u) << err->message;
  }
}

TEST(Protocol, SitesMessagesCannotClaimMoreThanTheyCarry) {
  std::vector<std::uint8_t> payload = {0xff, 0xff, 0xff, 0xff};  // 4 billion sites in 4 bytes
  auto d = decode_sites(payload);
  ASSERT_FALSE(ok(d));
  EXPECT_NE(std::get<DecodeError>(d).message.find("claims 4294967295 sites"), std::string::npos);
  std::vector<std::uint8_t> b;
  std::vector<Site> zero = {{0, "x"}};
  encode(b, std::span<const Site>(zero));
  EXPECT_FALSE(ok(decode_sites(single_frame(b).payload)));
}

TEST(Protocol, EveryTruncationOfEveryFixedMessageIsRejected) {
  std::vector<std::vector<std::uint8_t>> frames(8);
  encode(frames[0], Hello{});
  encode(frames[1], HelloAck{});
  encode(frames[2], DeviceOpen{});
  encode(frames[3], DeviceClose{});
  encode(frames[4], SnapshotBegin{});
  encode(frames[5], SnapshotEnd{});
  encode(frames[6], Barrier{});
  encode(frames[7], ClientStats{});
  for (const auto& f : frames) {
    const std::span<const std::uint8_t> payload(f.data() + kFrameHeaderSize, f.size() - kFrameHeaderSize);
    for (std::size_t n = 0; n < payload.size(); ++n) {
      const auto cut = payload.first(n);
      bool rejected = false;
      switch (static_cast<MessageType>(f[4])) {
        case MessageType::hello:
          rejected = !ok(decode_hello(cut));
          break;
        case MessageType::hello_ack:
          rejected = !ok(decode_hello_ack(cut));
          break;
        case MessageType::device_open:
          rejected = !ok(decode_device_open(cut));
          break;
        case MessageType::device_close:
          rejected = !ok(decode_device_close(cut));
          break;
        case MessageType::snapshot_begin:
          rejected = !ok(decode_snapshot_begin(cut));
          break;
        case MessageType::snapshot_end:
          rejected = !ok(decode_snapshot_end(cut));
          break;
        case MessageType::barrier:
          rejected = !ok(decode_barrier(cut));
          break;
        case MessageType::client_stats:
          rejected = !ok(decode_client_stats(cut));
          break;
        default:
          break;
      }
      EXPECT_TRUE(rejected) << "type " << int(f[4]) << " cut at " << n;
    }
  }
}

RC_GTEST_PROP(ProtocolProperty, RandomBytesNeverCrashAnyDecoder, (const std::vector<std::uint8_t>& bytes)) {
  std::vector<EventRecord> events;
  decode_hello(bytes);
  decode_hello_ack(bytes);
  decode_device_open(bytes);
  decode_device_close(bytes);
  decode_events(bytes, events);
  decode_sites(bytes);
  decode_snapshot_begin(bytes);
  decode_snapshot_end(bytes);
  decode_barrier(bytes);
  decode_client_stats(bytes);
  decode_query(bytes);
  decode_query_reply(bytes);
  decode_error(bytes);
  FrameReader reader(kMaxRequestPayload);
  reader.append(bytes);
  for (int i = 0; i < 64; ++i) {
    auto next = reader.next();
    if (!std::holds_alternative<Frame>(next)) break;
    RC_ASSERT(std::get<Frame>(next).payload.size() <= kMaxRequestPayload);
  }
}

RC_GTEST_PROP(ProtocolProperty, EventRecordsRoundTripExactly, ()) {
  EventRecord e;
  e.op = *rc::gen::element(EventOp::alloc, EventOp::free);
  e.type = static_cast<BufferType>(*rc::gen::inRange(0, 5));
  e.kind = static_cast<AllocKind>(*rc::gen::inRange(0, 5));
  e.reason = static_cast<ReleaseReason>(*rc::gen::inRange(0, 3));
  e.device = *rc::gen::arbitrary<std::uint16_t>();
  e.flags = *rc::gen::arbitrary<std::uint16_t>();
  e.site = *rc::gen::arbitrary<std::uint32_t>();
  e.num_banks = *rc::gen::arbitrary<std::uint32_t>();
  e.mesh = *rc::gen::arbitrary<std::uint32_t>();
  e.scope = *rc::gen::arbitrary<std::uint32_t>();
  e.id = *rc::gen::arbitrary<std::uint64_t>();
  e.size = *rc::gen::arbitrary<std::uint64_t>();
  e.address = *rc::gen::arbitrary<std::uint64_t>();
  e.size_per_bank = *rc::gen::arbitrary<std::uint64_t>();
  e.timestamp_ns = *rc::gen::arbitrary<std::uint64_t>();
  std::uint8_t wire[kEventRecordSize];
  encode_event(wire, e);
  auto d = decode_event(std::span<const std::uint8_t>(wire, kEventRecordSize));
  RC_ASSERT(ok(d));
  RC_ASSERT(same(std::get<EventRecord>(d), e));
}

}  // namespace
}  // namespace ttmem::proto
