// ttmemd end to end: real server process, real client processes (ttmem-emu --step), real sockets; each test
// on its own private socket so tests run in parallel.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "json_client.hpp"
#include "raw_client.hpp"
#include "subprocess.hpp"
#include "ttmem/protocol.hpp"
#include "ttmem/query.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

/// A workload process driven line by line, reporting to `server`.
std::unique_ptr<Child> workload(const ServerProcess& server, Env extra = {}) {
  extra.emplace_back("TTMEM_SOCKET", server.socket());
  auto child =
      std::make_unique<Child>(std::vector<std::string>{bin_dir() + "/ttmem-emu", "--step", "-q"}, extra);
  return child;
}

void expect_ok(Child& c, const std::string& line) {
  EXPECT_EQ(c.command(line), "ok") << line;
}

/// Rows of the stats' process table for one pid.
std::vector<json> rows_for(const json& stats, pid_t pid) {
  std::vector<json> out;
  for (const auto& row : stats["processes"]) {
    if (row["pid"] == pid) out.push_back(row);
  }
  return out;
}

std::uint64_t used(const json& stats, int device, const char* slot) {
  for (const auto& d : stats["devices"]) {
    if (d["id"] == device) return d["memory"][slot]["used"];
  }
  return 0;
}

void raw_send(int fd, const std::vector<std::uint8_t>& bytes) {
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
}

/// Reads frames until EOF (or 5 s); returns them.
std::vector<proto::Frame> raw_read_until_eof(int fd, std::vector<std::vector<std::uint8_t>>& storage) {
  proto::FrameReader reader(proto::kMaxReplyPayload);
  std::vector<proto::Frame> frames;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::uint8_t buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reader.append({buf, static_cast<std::size_t>(n)});
  }
  for (;;) {
    auto next = reader.next();
    if (!std::holds_alternative<proto::Frame>(next)) break;
    const auto& f = std::get<proto::Frame>(next);
    storage.emplace_back(f.payload.begin(), f.payload.end());
    frames.push_back({f.type, storage.back()});
  }
  return frames;
}

TEST(ServerIntegration, TotalsEqualWhatSeveralProcessesAllocated) {
  ServerProcess server;
  auto a = workload(server);
  auto b = workload(server);
  auto c = workload(server);
  // Each on chips of its own: a chip is held by one process at a time.
  expect_ok(*a, "mesh n150 devices=0");
  expect_ok(*b, "mesh n300 devices=1,2");
  expect_ok(*c, "mesh n150 devices=3");
  expect_ok(*a, "alloc x DRAM 1M");
  expect_ok(*b, "alloc x DRAM 2M");
  expect_ok(*b, "alloc y L1 64K");
  expect_ok(*c, "alloc x DRAM 3M");
  expect_ok(*c, "alloc z DRAM 4K");
  expect_ok(*c, "free z");
  for (auto* w : {a.get(), b.get(), c.get()}) expect_ok(*w, "flush");
  test::JsonClient q(server.socket());
  const json stats = q.stats();
  EXPECT_EQ(used(stats, 0, "DRAM"), 1u << 20);
  EXPECT_EQ(used(stats, 1, "DRAM"), 2u << 20);
  EXPECT_EQ(used(stats, 2, "DRAM"), 2u << 20);
  EXPECT_EQ(used(stats, 3, "DRAM"), 3u << 20);
  EXPECT_EQ(used(stats, 0, "L1"), 3 * 4096u);               // a's control buffers
  EXPECT_EQ(used(stats, 1, "L1"), 3 * 4096 + (64u << 10));  // b's (on its first chip) plus y
  EXPECT_EQ(used(stats, 2, "L1"), 64u << 10);
  const auto rows = rows_for(stats, b->pid());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["DRAM"], 2u << 20);
  EXPECT_EQ(rows[1]["buffers"], 2);
  // a: 3 control buffers + x; b: 3 control buffers + x and y on each of 2 devices; c: 3 control buffers + x.
  EXPECT_EQ(stats["active_allocations"], (3 + 1) + (3 + 2 * 2) + (3 + 1));
}

TEST(ServerIntegration, TypedAnswersAreTheWireAnswersRead) {
  // The query client's views and the JSON on the wire are one answer: each view, written back by the
  // schema, is the JSON the server sent (at rest, so both queries see the same ledger).
  ServerProcess server;
  auto w = workload(server);
  expect_ok(*w, "mesh t3000");
  expect_ok(*w, "alloc x DRAM 1M");
  expect_ok(*w, "alloc y L1 64K");
  expect_ok(*w, "free y");
  expect_ok(*w, "flush");
  query::QueryClient typed(server.socket());
  test::JsonClient wire(server.socket());
  EXPECT_EQ(json::parse(schema::to_json(typed.stats())), wire.stats());
  EXPECT_EQ(json::parse(schema::to_json(typed.devices())), wire.devices());
  EXPECT_EQ(json::parse(schema::to_json(typed.leaks())), wire.leaks());
  EXPECT_EQ(json::parse(schema::to_json(typed.events(1000))),
            wire.query({{"type", "events"}, {"limit", 1000}}));
  views::BufferQuery only_l1;
  only_l1.type = BufferType::L1;
  const views::BufferList l1 = typed.buffers(only_l1);
  ASSERT_FALSE(l1.buffers.empty());
  for (const auto& b : l1.buffers) EXPECT_EQ(b.type, BufferType::L1);
  EXPECT_EQ(l1.total, l1.buffers.size());
  const views::Stats stats = typed.stats();
  ASSERT_EQ(stats.devices.size(), 8u);
  EXPECT_EQ(stats.devices[0].memory[index(Slot::DRAM)].used, 1u << 20);
  const views::EventList events = typed.events(1000);
  const auto freed = std::find_if(events.events.begin(), events.events.end(),
                                  [](const views::EventRow& e) { return e.op == EventOp::free; });
  ASSERT_NE(freed, events.events.end());
  EXPECT_EQ(freed->reason, ReleaseReason::explicit_free);
  const auto allocated =
      std::find_if(events.events.begin(), events.events.end(),
                   [&](const views::EventRow& e) { return e.op == EventOp::alloc && e.id == freed->id; });
  ASSERT_NE(allocated, events.events.end());
  EXPECT_GT(allocated->num_banks, 0u);  // what the runtime knew of the buffer travels with its allocation
  EXPECT_GT(allocated->size_per_bank, 0u);
  const views::ServerInfo info = typed.info();
  EXPECT_EQ(info.pid, server.pid());
  EXPECT_EQ(info.anomalies.protocol_errors, 0u);
}

TEST(ServerIntegration, AKilledProcessIsReclaimedAndLeavesAnOrphanRecord) {
  ServerProcess server;
  test::JsonClient watcher(server.socket());
  watcher.subscribe();
  auto w = workload(server);
  expect_ok(*w, "mesh n150");
  expect_ok(*w, "alloc a L1 4K");
  expect_ok(*w, "alloc b DRAM 1M");
  expect_ok(*w, "flush");
  const pid_t pid = w->pid();
  w->kill(SIGKILL);
  w->wait();
  std::optional<json> orphan;
  while (auto e = watcher.next_event(std::chrono::seconds(10))) {
    if ((*e)["event"] == "orphan") {
      orphan = *e;
      break;
    }
  }
  ASSERT_TRUE(orphan) << server.log();
  EXPECT_EQ((*orphan)["pid"], pid);
  EXPECT_EQ((*orphan)["buffers"], 5);  // three control buffers, a, b
  const auto messages = (*orphan)["messages"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(messages.begin(), messages.end(),
                      "pid " + std::to_string(pid) +
                          " (ttmem-emu) died holding 16384 bytes of L1 on device 0 in 4 buffers"),
            messages.end());
  test::JsonClient q(server.socket());
  EXPECT_EQ(q.stats()["active_allocations"], 0);
  const json leaks = q.leaks();
  ASSERT_EQ(leaks["orphans"].size(), 1u);
  EXPECT_EQ(leaks["orphans"][0]["bytes"], 16384 + (1 << 20));
}

TEST(ServerIntegration, AServerRestartLosesNothing) {
  auto server = std::make_unique<ServerProcess>();
  auto w = workload(*server);
  expect_ok(*w, "mesh n300");
  expect_ok(*w, "alloc a DRAM 1M site=kept_a");
  expect_ok(*w, "alloc b L1 8K");
  expect_ok(*w, "program p cb=4Kx2");
  expect_ok(*w, "run p");
  expect_ok(*w, "flush");
  json before;
  {
    test::JsonClient q(server->socket());
    before = q.stats();
  }
  server->kill9();
  expect_ok(*w, "free b");  // while the server is away
  server->start();
  // The client reconnects on its own and resynchronises.
  json after;
  ASSERT_TRUE(eventually([&] {
    try {
      test::JsonClient q(server->socket());
      after = q.stats();
      return !rows_for(after, w->pid()).empty();
    } catch (const std::exception&) {
      return false;
    }
  })) << server->log();
  EXPECT_EQ(used(after, 0, "DRAM"), used(before, 0, "DRAM"));
  EXPECT_EQ(used(after, 0, "CB"), used(before, 0, "CB"));
  EXPECT_EQ(used(after, 1, "L1"), 0u);  // b was freed while the server was down
  EXPECT_EQ(after["active_allocations"].get<int>(), before["active_allocations"].get<int>() - 2);
  test::JsonClient q(server->socket());
  const auto kept =
      q.query({{"type", "buffers"}, {"pid", w->pid()}, {"buffer_type", "DRAM"}, {"kind", "owning"}});
  ASSERT_EQ(kept["buffers"].size(), 2u);
  EXPECT_EQ(kept["buffers"][0]["site"], "kept_a");
  // And it goes on exactly.
  expect_ok(*w, "free a");
  expect_ok(*w, "flush");
  EXPECT_EQ(used(q.stats(), 0, "DRAM"), 4096u);  // device 0's kernel binary
}

TEST(ServerIntegration, TheSeedScenarioEndsWithNothingTrackedAndNoLeak) {
  ServerProcess server;
  auto w = workload(server);
  for (const char* line : {"mesh t3000", "alloc a DRAM 4M", "alloc b DRAM 4M", "program add cb=4Kx3",
                           "program matmul cb=32Kx2 cb=64K", "run add", "run matmul", "free a", "free b",
                           "clear_program_cache", "close"}) {
    expect_ok(*w, line);
  }
  // The process is still alive.
  test::JsonClient q(server.socket());
  const json stats = q.stats();
  EXPECT_EQ(stats["active_allocations"], 0) << stats.dump(2);
  EXPECT_TRUE(rows_for(stats, w->pid()).empty());
  EXPECT_TRUE(q.query({{"type", "buffers"}, {"pid", w->pid()}})["buffers"].empty());
  EXPECT_TRUE(q.leaks()["leaks"].empty());
}

TEST(ServerIntegration, ABufferNotFreedBeforeCloseIsALeakWithItsSite) {
  ServerProcess server;
  auto w = workload(server);
  for (const char* line : {"mesh t3000", "alloc a DRAM 4M site=test_mesh_allocation.py:31", "alloc b DRAM 4M",
                           "program add cb=4Kx3", "run add", "free b", "clear_program_cache", "close"}) {
    expect_ok(*w, line);
  }
  test::JsonClient q(server.socket());
  EXPECT_EQ(q.stats()["active_allocations"], 0);
  const json leaks = q.leaks()["leaks"];
  ASSERT_EQ(leaks.size(), 8u);  // a, on each of the 8 devices
  std::set<int> devices;
  for (const auto& l : leaks) {
    EXPECT_EQ(l["site"], "test_mesh_allocation.py:31");
    EXPECT_EQ(l["size"], 4 << 20);
    EXPECT_EQ(l["pid"], w->pid());
    EXPECT_EQ(l["name"], "ttmem-emu");
    EXPECT_EQ(l["type"], "DRAM");
    devices.insert(l["device"].get<int>());
  }
  EXPECT_EQ(devices.size(), 8u);
}

TEST(ServerIntegration, LeakRecordsAreNumberedAndAWatcherAsksOnlyForNewerOnes) {
  ServerProcess server;
  auto w = workload(server);
  for (const char* line : {"mesh n300", "alloc a DRAM 4M", "close", "mesh n300", "alloc b DRAM 8M", "close"})
    expect_ok(*w, line);
  test::JsonClient q(server.socket());
  const json all = q.leaks()["leaks"];
  ASSERT_EQ(all.size(), 4u);  // a and b on each of the 2 devices, newest first: seq 4, 3, 2, 1
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i]["seq"], 4 - i);
  const json newer = q.query({{"type", "leaks"}, {"after_leak", 2}})["leaks"];
  ASSERT_EQ(newer.size(), 2u);
  EXPECT_EQ(newer[0]["seq"], 4);
  EXPECT_EQ(newer[1]["seq"], 3);
  EXPECT_EQ(newer[0]["size"], 8 << 20);
  EXPECT_TRUE(q.query({{"type", "leaks"}, {"after_leak", 4}})["leaks"].empty());
  try {
    q.query({{"type", "leaks"}, {"after_leak", -1}});
    ADD_FAILURE() << "a negative bound was answered";
  } catch (const query::QueryError& e) {
    EXPECT_EQ(e.code(), ErrorCode::bad_query);
  }
}

TEST(ServerIntegration, AClaimedPidIsIgnoredInFavourOfThePeerCredentials) {
  ServerProcess server;
  const int fd = connect_unix(server.socket());
  ASSERT_GE(fd, 0);
  std::vector<std::uint8_t> bytes;
  proto::Hello hello;
  hello.claimed_pid = 1;  // claims to be init
  hello.process_name = "liar";
  proto::encode(bytes, hello);
  proto::DeviceOpen d;
  d.device = 0;
  proto::encode(bytes, d);
  proto::EventRecord e;
  e.op = proto::EventOp::alloc;
  e.id = 1;
  e.size = 4096;
  proto::encode(bytes, std::span<const proto::EventRecord>(&e, 1));
  proto::encode(bytes, proto::Barrier{1});
  raw_send(fd, bytes);
  // Wait for the barrier's acknowledgement: everything before it is applied.
  proto::FrameReader reader(proto::kMaxReplyPayload);
  std::uint8_t buf[1024];
  bool acked = false;
  while (!acked) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    reader.append({buf, static_cast<std::size_t>(n)});
    for (auto next = reader.next(); std::holds_alternative<proto::Frame>(next); next = reader.next()) {
      acked |= std::get<proto::Frame>(next).type == proto::MessageType::barrier_ack;
    }
  }
  test::JsonClient q(server.socket());
  const json stats = q.stats();
  ASSERT_EQ(stats["processes"].size(), 1u);
  EXPECT_EQ(stats["processes"][0]["pid"], getpid());
  EXPECT_EQ(q.info()["anomalies"]["pid_mismatch"], 1);
  close(fd);
}

TEST(ServerIntegration, GarbageClosesThatConnectionOnlyWithAnError) {
  ServerProcess server;
  test::JsonClient bystander(server.socket());
  auto w = workload(server);
  expect_ok(*w, "mesh n150");
  expect_ok(*w, "alloc a DRAM 1M");
  for (const auto& garbage : std::vector<std::string>{"GET / HTTP/1.1\r\n\r\n", std::string(64, '\xff')}) {
    const int fd = connect_unix(server.socket());
    ASSERT_GE(fd, 0);
    raw_send(fd, std::vector<std::uint8_t>(garbage.begin(), garbage.end()));
    std::vector<std::vector<std::uint8_t>> storage;
    const auto frames = raw_read_until_eof(fd, storage);  // the server closes it
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].type, proto::MessageType::error);
    const auto err = proto::decode_error(frames[0].payload);
    ASSERT_TRUE(proto::ok(err));
    EXPECT_EQ(std::get<proto::ErrorMessage>(err).code, proto::ErrorCode::malformed);
    close(fd);
  }
  // Everyone else goes on.
  expect_ok(*w, "alloc b DRAM 1M");
  expect_ok(*w, "flush");
  EXPECT_EQ(used(bystander.stats(), 0, "DRAM"), 2u << 20);
  EXPECT_EQ(bystander.info()["anomalies"]["protocol_errors"], 2);
}

TEST(ServerIntegration, AnotherProtocolVersionGetsAClearErrorOnBothSides) {
  ServerProcess server;
  const int fd = connect_unix(server.socket());
  std::vector<std::uint8_t> bytes;
  proto::Hello hello;
  hello.protocol_version = 7;
  proto::encode(bytes, hello);
  raw_send(fd, bytes);
  std::vector<std::vector<std::uint8_t>> storage;
  const auto frames = raw_read_until_eof(fd, storage);
  ASSERT_EQ(frames.size(), 1u);
  const auto err = std::get<proto::ErrorMessage>(proto::decode_error(frames[0].payload));
  EXPECT_EQ(err.code, proto::ErrorCode::version_mismatch);
  EXPECT_NE(err.text.find("protocol version 7 is not supported"), std::string::npos) << err.text;
  close(fd);
  EXPECT_NE(server.log().find("version_mismatch"), std::string::npos);
}

TEST(ServerIntegration, AFailedQuerySaysWhyWithACode) {
  ServerProcess server({"--max-query-rows", "2"});
  auto w = workload(server);
  expect_ok(*w, "mesh n150");  // and its 3 control buffers
  for (const char* name : {"a", "b", "c"}) expect_ok(*w, std::string("alloc ") + name + " DRAM 4K");
  expect_ok(*w, "flush");
  test::JsonClient q(server.socket());
  auto code_of = [&](const json& request) -> std::optional<ErrorCode> {
    try {
      q.query(request);
    } catch (const query::QueryError& e) {
      EXPECT_FALSE(std::string(e.what()).empty());
      return e.code();
    }
    ADD_FAILURE() << request.dump() << " was answered";
    return std::nullopt;
  };
  EXPECT_EQ(code_of({{"type", "nonsense"}}), ErrorCode::bad_query);
  EXPECT_EQ(code_of({{"type", "buffers"}, {"device", "zero"}}), ErrorCode::bad_query);
  EXPECT_EQ(code_of({{"type", "events"}, {"limit", "many"}}), ErrorCode::bad_query);
  EXPECT_EQ(code_of({{"no type", 1}}), ErrorCode::bad_query);
  // Too large an answer: more buffers match than the server lists without a limit.
  EXPECT_EQ(code_of({{"type", "buffers"}}), ErrorCode::limit_exceeded);
  EXPECT_EQ(q.query({{"type", "buffers"}, {"limit", 2}})["buffers"].size(), 2u);
  EXPECT_EQ(q.stats()["active_allocations"], 6);  // the connection is still usable after each error
}

TEST(ServerIntegration, EventsBeforeHelloAreRefused) {
  ServerProcess server;
  const int fd = connect_unix(server.socket());
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, proto::Barrier{1});
  raw_send(fd, bytes);
  std::vector<std::vector<std::uint8_t>> storage;
  const auto frames = raw_read_until_eof(fd, storage);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<proto::ErrorMessage>(proto::decode_error(frames[0].payload)).code,
            proto::ErrorCode::unexpected_message);
  close(fd);
}

TEST(ServerIntegration, ToolsCannotReportAllocations) {
  ServerProcess server;
  const int fd = connect_unix(server.socket());
  std::vector<std::uint8_t> bytes;
  proto::Hello hello;
  hello.role = proto::Role::tool;
  proto::encode(bytes, hello);
  proto::encode(bytes, proto::DeviceClose{0, proto::ClosePhase::end});
  raw_send(fd, bytes);
  std::vector<std::vector<std::uint8_t>> storage;
  const auto frames = raw_read_until_eof(fd, storage);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, proto::MessageType::hello_ack);
  EXPECT_EQ(frames[1].type, proto::MessageType::error);
  close(fd);
}

TEST(ServerIntegration, DeathIsAlsoNoticedByPolling) {
  ServerProcess server({"--poll-deaths"});
  auto w = workload(server);
  expect_ok(*w, "mesh n150");
  expect_ok(*w, "flush");
  w->kill(SIGKILL);
  w->wait();
  test::JsonClient q(server.socket());
  EXPECT_TRUE(eventually([&] { return q.stats()["active_allocations"] == 0; }));
  EXPECT_EQ(q.leaks()["orphans"].size(), 1u);
  EXPECT_EQ(q.info()["death_watch"], "polling");
}

TEST(ServerIntegration, TheSocketIsGroupOnlyAndALiveServerIsNotClobbered) {
  ServerProcess server;
  struct stat st {};
  ASSERT_EQ(stat(server.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  const auto second = run_process({bin_dir() + "/ttmemd", "--socket", server.socket(), "--no-history"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("a ttmemd is already listening on " + server.socket()), std::string::npos)
      << second.err;
  test::JsonClient q(server.socket());  // still serving
  EXPECT_EQ(q.info()["pid"], server.pid());
}

TEST(ServerIntegration, AStaleSocketFileIsReplaced) {
  ServerProcess server;
  const std::string path = server.socket();
  server.kill9();  // leaves the socket file behind
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  server.start();
  test::JsonClient q(path);
  EXPECT_EQ(q.info()["pid"], server.pid());
  EXPECT_NE(server.log().find("replacing stale socket file"), std::string::npos);
}

TEST(ServerIntegration, ANonSocketPathIsRefused) {
  TempDir dir;
  const auto path = dir.write("not-a-socket", "x");
  const auto r = run_process({bin_dir() + "/ttmemd", "--socket", path, "--no-history"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exists and is not a socket"), std::string::npos) << r.err;
}

TEST(ServerIntegration, CleanShutdownRemovesTheSocket) {
  ServerProcess server;
  const std::string path = server.socket();
  EXPECT_EQ(server.stop(), 0);
  struct stat st {};
  EXPECT_NE(stat(path.c_str(), &st), 0);
  EXPECT_NE(server.log().find("ttmemd stopped"), std::string::npos);
}

TEST(ServerIntegration, VerboseLogsEachEventInTheSeedsWords) {
  ServerProcess server({"--verbose"});
  auto w = workload(server);
  expect_ok(*w, "mesh n150");
  expect_ok(*w, "flush");
  const std::string log = server.log();
  EXPECT_NE(log.find("pid " + std::to_string(w->pid()) +
                     " allocated 4096 bytes of L1 on device 0 (id 1, site dispatch/control)"),
            std::string::npos)
      << log;
}

TEST(ServerIntegration, WithoutAServerAWorkloadRunsWithOneWarning) {
  TempDir dir;
  const auto r =
      run_process({bin_dir() + "/ttmem-emu", "-q", "-"}, "mesh n150\nalloc a DRAM 4K\nflush\nclose\n",
                  {{"TTMEM_SOCKET", dir.file("nobody.sock")}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("no allocation server at " + dir.file("nobody.sock")), std::string::npos) << r.err;
  const auto off = run_process({bin_dir() + "/ttmem-emu", "-q", "-"}, "mesh n150\nclose\n",
                               {{"TTMEM_SOCKET", dir.file("nobody.sock")}, {"TTMEM_TRACKING", "0"}});
  EXPECT_EQ(off.exit_code, 0);
  EXPECT_EQ(off.err, "");
}

TEST(ServerIntegration, TheLegacySwitchTurnsTrackingOff) {
  ServerProcess server;
  auto w = workload(server, {{"TT_ALLOC_TRACKING_ENABLED", "0"}});
  expect_ok(*w, "mesh n150");
  expect_ok(*w, "alloc a DRAM 4K");
  test::JsonClient q(server.socket());
  EXPECT_EQ(q.stats()["active_allocations"], 0);
}

}  // namespace
}  // namespace ttmem::test
