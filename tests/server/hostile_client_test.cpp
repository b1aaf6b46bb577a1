// Hostile and broken clients: each gets a clear error or backpressure, and none harms the other clients,
// the server, or its memory bound (limits: docs/protocol.md, guarantees: docs/reliability.md).
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "json_client.hpp"
#include "raw_client.hpp"
#include "subprocess.hpp"
#include "ttmem/protocol.hpp"
#include "ttmem/query.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

std::vector<std::uint8_t> hello(proto::Role role = proto::Role::tracked_process) {
  return hello_frame(role);
}

TEST(HostileClients, AFrameClaimingAHugeLengthIsRefusedBeforeAnythingIsBuffered) {
  ServerProcess server;
  const std::uint64_t before = rss_kib(server.pid());
  const int fd = connect_unix(server.socket());
  auto bytes = hello();
  const std::vector<std::uint8_t> header = {0xff, 0xff, 0xff, 0x7f, 4, 0, 0, 0};  // EVENTS of 2 GiB
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.resize(bytes.size() + 1'000'000, 0xab);  // and a first megabyte of it
  send_bytes(fd, bytes);
  std::string why;
  const auto types = frames_until_eof(fd, &why);
  close(fd);
  ASSERT_EQ(types.size(), 2u);
  EXPECT_EQ(types[1], proto::MessageType::error);
  EXPECT_NE(why.find("exceeds the maximum of 1048576 bytes"), std::string::npos) << why;
  EXPECT_LT(rss_kib(server.pid()), before + 16 * 1024);  // nothing like 2 GiB was reserved
  test::JsonClient q(server.socket());
  EXPECT_EQ(q.info()["anomalies"]["protocol_errors"], 1);
}

TEST(HostileClients, AReaderThatNeverReadsIsCutOffAndOthersGoOn) {
  ServerProcess server({"--max-pending-output", "1048576", "--write-timeout-ms", "500"});
  auto w = std::make_unique<Child>(std::vector<std::string>{bin_dir() + "/ttmem-emu", "--step", "-q"},
                                   Env{{"TTMEM_SOCKET", server.socket()}});
  ASSERT_EQ(w->command("mesh t3000"), "ok");
  for (int i = 0; i < 100; ++i) ASSERT_EQ(w->command("alloc a" + std::to_string(i) + " DRAM 4K"), "ok");
  ASSERT_EQ(w->command("flush"), "ok");  // 800 buffers: every `buffers` answer is about 150 KB
  const std::uint64_t before = rss_kib(server.pid());
  const int fd = connect_unix(server.socket());
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  auto bytes = hello(proto::Role::tool);
  for (std::uint32_t i = 0; i < 2000; ++i) proto::encode(bytes, proto::Query{i, R"({"type":"buffers"})"});
  std::thread sender([&] { send_bytes(fd, bytes); });  // and never read a reply
  test::JsonClient bystander(server.socket());
  // The server answers a page at a time and stops while the reader does not read: its memory stays put,
  // the workload and the bystander are served, and the reader is cut off after the write timeout.
  std::uint64_t peak = 0, most_pending = 0;
  for (int i = 0; i < 250; ++i) {
    const json info = bystander.info();
    if (info["connections"] == 2) break;
    for (const auto& c : info["clients"])
      most_pending = std::max<std::uint64_t>(most_pending, c["pending_output_bytes"]);
    peak = std::max(peak, rss_kib(server.pid()));
    EXPECT_GT(bystander.stats()["active_allocations"], 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(bystander.info()["connections"], 2) << server.log();
  EXPECT_NE(server.log().find("does not read its replies"), std::string::npos);
  // The server kept at most a page beyond its 256 KiB pause mark for the reader, never the answers.
  EXPECT_LE(most_pending, 512u * 1024) << "the unread replies were buffered in the server";
  if (!kSanitized) {
    EXPECT_LT(peak, before + 8 * 1024) << "the unread replies were buffered in the server";
  }
  close(fd);
  sender.join();
}

TEST(HostileClients, AFlooderDoesNotStarveOtherClientsAndIsCountedExactly) {
  ServerProcess server;
  constexpr std::uint64_t kEvents = 2'000'000;
  std::atomic<bool> done{false};
  std::thread flooder([&] {
    const int fd = connect_unix(server.socket());
    auto bytes = hello();
    send_bytes(fd, bytes);
    std::vector<proto::EventRecord> batch(proto::kMaxEventsPerFrame);
    std::uint64_t id = 0;
    while (id < kEvents) {
      const std::size_t n = std::min<std::uint64_t>(batch.size(), kEvents - id);
      for (std::size_t i = 0; i < n; ++i) {
        batch[i].op = proto::EventOp::alloc;
        batch[i].id = ++id;
        batch[i].size = 1;
      }
      bytes.clear();
      proto::encode(bytes, std::span<const proto::EventRecord>(batch.data(), n));
      send_bytes(fd, bytes);
    }
    bytes.clear();
    proto::encode(bytes, proto::Barrier{1});
    send_bytes(fd, bytes);
    std::uint8_t ack[16];
    recv(fd, ack, sizeof ack, MSG_WAITALL);  // HELLO_ACK and more: wait for the barrier's turn
    done = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    close(fd);
  });
  // While the flood goes on, another client's queries are answered.
  test::JsonClient other(server.socket());
  int answered = 0;
  while (!done && answered < 1000) {
    other.info();
    ++answered;
  }
  flooder.join();
  EXPECT_GT(answered, 0);
  json stats;
  for (int i = 0; i < 500; ++i) {
    stats = other.stats();
    if (stats["active_allocations"] == kEvents) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stats["active_allocations"], kEvents);
}

TEST(HostileClients, ThousandsOfConnectionsMeetTheConnectionLimit) {
  ServerProcess server({"--max-connections", "50"});
  std::vector<int> fds;
  for (int i = 0; i < 1000; ++i) {
    const int fd = connect_unix(server.socket());
    if (fd >= 0) fds.push_back(fd);  // the listen backlog itself can refuse under such a storm: also fine
  }
  // None of them says HELLO: each new one pushes out the one that waited longest, with an error.
  int limited = 0;
  for (std::size_t i = 0; i < 900 && i < fds.size(); i += 97) {
    std::string why;
    const auto types = frames_until_eof(fds[i], &why);
    if (!types.empty() && types[0] == proto::MessageType::error) {
      ++limited;
      EXPECT_NE(why.find("at most 50 connections"), std::string::npos) << why;
    }
  }
  EXPECT_GT(limited, 0);
  // While the storm's survivors are still connected, a tool is served at once: they never lock it out.
  test::JsonClient q(server.socket());
  EXPECT_GT(q.info()["anomalies"]["refused_connections"].get<int>(), 0);
  for (int fd : fds) close(fd);
}

TEST(HostileClients, IdleConnectionsThatNeverSayHelloAreClosedAndLockNobodyOut) {
  ServerProcess server(
      {"--max-connections", "40", "--max-handshakes", "20", "--handshake-timeout-ms", "200"});
  std::vector<int> idle;
  for (int i = 0; i < 40; ++i) idle.push_back(connect_unix(server.socket()));
  // A real client and a tool are served while the idle ones sit there.
  auto w = std::make_unique<Child>(std::vector<std::string>{bin_dir() + "/ttmem-emu", "--step", "-q"},
                                   Env{{"TTMEM_SOCKET", server.socket()}});
  ASSERT_EQ(w->command("mesh n150"), "ok");
  ASSERT_EQ(w->command("alloc a DRAM 1M"), "ok");
  ASSERT_EQ(w->command("flush"), "ok");
  test::JsonClient q(server.socket());
  EXPECT_EQ(q.stats()["active_allocations"], 4);  // 1 plus the device's own 3
  // And after the handshake timeout every idle one has been closed with a reason.
  for (int fd : idle) {
    std::string why;
    const auto types = frames_until_eof(fd, &why);
    ASSERT_FALSE(types.empty());
    EXPECT_EQ(types[0], proto::MessageType::error);
    EXPECT_TRUE(why.find("no HELLO within 200 ms") != std::string::npos ||
                why.find("waited longest") != std::string::npos)
        << why;
    close(fd);
  }
  EXPECT_EQ(q.info()["connections"], 2);
}

TEST(HostileClients, DeviceIdsNoMachineHasAreRefusedAndCounted) {
  ServerProcess server;
  const int fd = connect_unix(server.socket());
  auto bytes = hello();
  proto::EventRecord e;
  e.device = 60000;
  e.id = 1;
  e.size = 1;
  proto::encode(bytes, std::span<const proto::EventRecord>(&e, 1));
  proto::encode(bytes, proto::Barrier{1});
  send_bytes(fd, bytes);
  std::uint8_t buf[256];
  recv(fd, buf, sizeof buf, 0);
  test::JsonClient q(server.socket());
  for (int i = 0; i < 100 && q.info()["anomalies"]["device_out_of_range"] == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(q.info()["anomalies"]["device_out_of_range"], 1);
  EXPECT_TRUE(q.stats()["devices"].empty());
  close(fd);
}

TEST(HostileClients, NoClientCanFreeAnotherProcesssAllocations) {
  ServerProcess server;
  auto victim = std::make_unique<Child>(std::vector<std::string>{bin_dir() + "/ttmem-emu", "--step", "-q"},
                                        Env{{"TTMEM_SOCKET", server.socket()}});
  ASSERT_EQ(victim->command("mesh n150"), "ok");
  ASSERT_EQ(victim->command("alloc a DRAM 1M"), "ok");
  ASSERT_EQ(victim->command("flush"), "ok");
  test::JsonClient q(server.socket());
  const json before = q.stats();
  // An attacker frees ids 1..100 on device 0 (the victim's ids) and claims the victim's pid.
  const int fd = connect_unix(server.socket());
  std::vector<std::uint8_t> bytes;
  proto::Hello h;
  h.claimed_pid = static_cast<std::uint32_t>(victim->pid());
  proto::encode(bytes, h);
  std::vector<proto::EventRecord> frees(100);
  for (std::size_t i = 0; i < frees.size(); ++i) {
    frees[i].op = proto::EventOp::free;
    frees[i].id = i + 1;
  }
  proto::encode(bytes, std::span<const proto::EventRecord>(frees));
  proto::encode(bytes, proto::Barrier{1});
  send_bytes(fd, bytes);
  proto::FrameReader reader(proto::kMaxReplyPayload);
  bool acked = false;
  std::uint8_t buf[512];
  while (!acked) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    reader.append({buf, static_cast<std::size_t>(n)});
    for (auto next = reader.next(); std::holds_alternative<proto::Frame>(next); next = reader.next()) {
      acked |= std::get<proto::Frame>(next).type == proto::MessageType::barrier_ack;
    }
  }
  const json after = q.stats();
  EXPECT_EQ(after["active_allocations"], before["active_allocations"]);
  EXPECT_EQ(after["devices"][0]["memory"]["DRAM"]["used"], before["devices"][0]["memory"]["DRAM"]["used"]);
  const json info = q.info();
  EXPECT_EQ(info["anomalies"]["pid_mismatch"], 1);
  EXPECT_EQ(info["anomalies"]["free_unknown_id"], 100);  // counted against the attacker, at its barrier
  close(fd);
}

TEST(HostileClients, OtherUsersNeedTheSocketsGroup) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  constexpr uid_t kNobody = 65534;
  const group* nogroup = getgrgid(65534);
  if (!nogroup) GTEST_SKIP() << "no group 65534";
  auto try_as_nobody = [](const std::string& socket) {
    const pid_t pid = fork();
    if (pid == 0) {
      if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(kNobody) != 0) _exit(3);
      try {
        test::JsonClient q(socket);
        const auto info = q.info();
        _exit(info.contains("version") ? 0 : 4);
      } catch (const query::ConnectError&) {
        _exit(1);
      }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  {
    ServerProcess server;  // mode 0660, root's group: nobody may not connect
    const std::string dir = server.socket().substr(0, server.socket().rfind('/'));
    chmod(dir.c_str(), 0755);  // let it reach the socket file; the socket's own mode decides
    EXPECT_EQ(try_as_nobody(server.socket()), 1);
  }
  {
    ServerProcess server({"--group", "65534"});
    const std::string dir = server.socket().substr(0, server.socket().rfind('/'));
    chmod(dir.c_str(), 0755);
    EXPECT_EQ(try_as_nobody(server.socket()), 0);  // in the socket's group: it may connect and look
  }
}

}  // namespace
}  // namespace ttmem::test

namespace ttmem::test {
namespace {

// Found by fuzz_query and fuzz_connection: invalid UTF-8 in a query (or a site) made the JSON answer throw
// and took the server down.
TEST(HostileClients, InvalidUtf8InQueriesAndSitesIsAnsweredNotFatal) {
  ServerProcess server;
  const int fd = connect_unix(server.socket());
  auto bytes = hello();
  proto::encode(bytes, std::vector<proto::Site>{{1, std::string("bad\xfa\x9b site")}});
  proto::EventRecord e;
  e.id = 1;
  e.size = 4096;
  e.site = 1;
  proto::encode(bytes, std::span<const proto::EventRecord>(&e, 1));
  proto::encode(bytes, proto::Query{7,
                                    "{\"type\":\"i\x9b"
                                    "fo\"}"});
  proto::encode(bytes, proto::Query{8, R"({"type":"buffers"})"});
  send_bytes(fd, bytes);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  proto::FrameReader reader(proto::kMaxReplyPayload);
  std::vector<proto::QueryReply> replies;
  std::uint8_t buf[65536];
  while (replies.size() < 2) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << server.log();
    reader.append({buf, static_cast<std::size_t>(n)});
    for (auto next = reader.next(); std::holds_alternative<proto::Frame>(next); next = reader.next()) {
      const auto& f = std::get<proto::Frame>(next);
      if (f.type == proto::MessageType::query_reply) {
        replies.push_back(std::get<proto::QueryReply>(proto::decode_query_reply(f.payload)));
      }
    }
  }
  EXPECT_EQ(replies[0].status, 0);
  // The parse error's own message quotes the bad byte: the reply must still be valid JSON.
  const json error = json::parse(replies[0].json);
  EXPECT_NE(error["error"].get<std::string>().find("parse error"), std::string::npos);
  EXPECT_EQ(replies[1].status, 1);
  const json answer = json::parse(replies[1].json);
  EXPECT_EQ(answer["buffers"][0]["site"].get<std::string>().rfind("bad", 0), 0u);  // bad bytes replaced
  close(fd);
  test::JsonClient q(server.socket());  // and the server is still there
  EXPECT_EQ(q.info()["pid"], server.pid());
}

}  // namespace
}  // namespace ttmem::test
