// The HTTP adapter's parts without a network: Prometheus text from views, the --http flag, and the
// mailbox that carries work from the HTTP threads onto the event loop.
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "event_loop.hpp"
#include "http_address.hpp"
#include "loop_mailbox.hpp"
#include "metrics_text.hpp"

namespace ttmem::server {
namespace {

std::string label(std::string_view text) {
  std::string out;
  append_label_value(out, text);
  return out;
}

TEST(MetricsText, LabelValuesAreEscapedAndValidUtf8) {
  EXPECT_EQ(label("python3"), "python3");
  EXPECT_EQ(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(label("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(label("bad\xff"), "bad\xef\xbf\xbd");
  EXPECT_EQ(label("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate is not UTF-8
}

TEST(MetricsText, EveryFamilyHasHelpAndTypeAndEachSampleItsLabels) {
  views::Stats stats;
  auto& d = stats.devices.emplace_back();
  d.id = 2;
  d.arch = Arch::blackhole;
  d.memory[index(Slot::L1)] = {100, 150, 2, 1000, {}};
  d.memory[index(Slot::CB)] = {300, 300, 1, 1000, {}};
  d.memory[index(Slot::DRAM)] = {0, 0, 0, 5000, {}};
  views::FreeSpace space;
  space.free = 4800;
  space.largest_free_block = 300;
  space.free_blocks = 2;
  space.fragmentation = 0.25;
  d.memory[index(Slot::DRAM)].space = space;
  auto second = d;  // a second device: families must not interleave
  second.id = 3;
  stats.devices.push_back(second);
  auto& p = stats.processes.emplace_back();
  p.pid = 77;
  p.name = "odd \"name\"";
  p.device = 2;
  p.bytes[index(Slot::L1)] = 100;
  views::ServerInfo info;
  info.version = "0.2.0";
  info.anomalies.duplicate_id = 4;
  auto& c = info.clients.emplace_back();
  c.pid = 77;
  c.name = "x";
  c.client = proto::ClientStats{};
  c.client->stall_ns = 2'000'000'000;
  info.clients.push_back(c);  // a second connection of the same process: still one series
  const std::string text = metrics_text({stats, info, "node-1", 3, 1});
  EXPECT_NE(text.find("# TYPE ttmem_device_memory_used_bytes gauge\n"), std::string::npos);
  EXPECT_NE(text.find("ttmem_device_memory_used_bytes{host=\"node-1\",device=\"2\",arch=\"blackhole\",type="
                      "\"CB\"} 300\n"),
            std::string::npos);
  // L1's free space leaves out the circular buffers, which share it; CB has no free figure of its own.
  EXPECT_NE(text.find("ttmem_device_memory_free_bytes{host=\"node-1\",device=\"2\",arch=\"blackhole\",type="
                      "\"L1\"} 600\n"),
            std::string::npos);
  EXPECT_EQ(
      text.find(
          "ttmem_device_memory_free_bytes{host=\"node-1\",device=\"2\",arch=\"blackhole\",type=\"CB\"}"),
      std::string::npos);
  // Not announced (total 0): no total, no free.
  EXPECT_EQ(text.find("type=\"TRACE\"} 0\n# HELP ttmem_device_memory_free"), std::string::npos);
  EXPECT_NE(
      text.find("ttmem_process_memory_used_bytes{host=\"node-1\",pid=\"77\",process=\"odd \\\"name\\\"\","
                "device=\"2\",type=\"L1\"} 100\n"),
      std::string::npos);
  EXPECT_NE(text.find("ttmem_leaks_total{host=\"node-1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("ttmem_anomalies_total{host=\"node-1\",kind=\"duplicate_id\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("ttmem_client_stall_seconds_total{host=\"node-1\",pid=\"77\",process=\"x\"} 2\n"),
            std::string::npos);
  const auto first = text.find("ttmem_client_stall_seconds_total{");
  EXPECT_EQ(text.find("ttmem_client_stall_seconds_total{", first + 1), std::string::npos);
  // Free space from the map where the device has one; its figures as their own families.
  EXPECT_NE(text.find("ttmem_device_memory_free_bytes{host=\"node-1\",device=\"2\",arch=\"blackhole\",type="
                      "\"DRAM\"} 4800\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("ttmem_device_memory_fragmentation_ratio{host=\"node-1\",device=\"3\",arch=\"blackhole\","
                "type=\"DRAM\"} 0.25\n"),
      std::string::npos);
  // Every sample line belongs to the family whose TYPE line came last: one header per family, and its
  // samples together right after it (the exposition format's rule).
  std::size_t pos = 0;
  std::string family;
  std::set<std::string> seen;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    if (line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(seen.insert(family).second) << "two headers for " << family;
    } else if (!line.empty() && line[0] != '#') {
      EXPECT_EQ(line.substr(0, line.find('{')), family) << line;
    }
    pos = end + 1;
  }
}

TEST(HttpAddress, PortAloneIsLoopbackAndAddressesAreTakenApart) {
  std::string error;
  auto a = parse_http_address("9464", &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  a = parse_http_address("[::1]:0", &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  a = parse_http_address("0.0.0.0:80", &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "0.0.0.0");
  for (const char* bad : {"", "nine", ":80", "127.0.0.1:", "127.0.0.1:70000", "1.2.3.4:-1", "80x"}) {
    error.clear();
    EXPECT_FALSE(parse_http_address(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("127.3.2.1"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("localhost"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(is_loopback("::"));
  EXPECT_FALSE(is_loopback("10.0.0.1"));
  EXPECT_FALSE(is_loopback("example.com"));
}

TEST(LoopMailbox, WorkFromAnotherThreadRunsOnTheLoopsThread) {
  EventLoop loop;
  LoopMailbox mailbox(loop);
  const auto loop_thread = std::this_thread::get_id();
  auto asked = std::async(std::launch::async, [&] {
    auto first = mailbox.call(
        [&] { return std::string(std::this_thread::get_id() == loop_thread ? "loop" : "other"); },
        std::chrono::seconds(10));
    auto second = mailbox.call([] { return std::string("again"); }, std::chrono::seconds(10));
    auto failing =
        mailbox.call([]() -> std::string { throw std::runtime_error("no"); }, std::chrono::seconds(10));
    mailbox.call(
        [&] {
          loop.stop();  // on the loop's own thread, as everything that touches the loop
          return std::string();
        },
        std::chrono::seconds(10));
    return std::make_tuple(first, second, failing);
  });
  loop.run();
  const auto [first, second, failing] = asked.get();
  EXPECT_EQ(first, "loop");
  EXPECT_EQ(second, "again");
  EXPECT_FALSE(failing);  // a job that throws is answered "unavailable", and the loop goes on
}

TEST(LoopMailbox, AClosedOrSilentLoopAnswersNothingInsteadOfHanging) {
  EventLoop loop;
  LoopMailbox mailbox(loop);
  // The loop never runs: the caller gives up at its timeout.
  EXPECT_FALSE(mailbox.call([] { return std::string("x"); }, std::chrono::milliseconds(50)));
  mailbox.close();
  EXPECT_FALSE(mailbox.call([] { return std::string("x"); }, std::chrono::seconds(10)));  // at once
}

}  // namespace
}  // namespace ttmem::server
