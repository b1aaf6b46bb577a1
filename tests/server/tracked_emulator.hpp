// The emulated runtime of the test process reporting to a fresh ttmemd, for the tests that check what the
// server says about this process's own allocations (forensics, ops).
#pragma once

#include <gtest/gtest.h>

#include "subprocess.hpp"
#include "ttmem/client.hpp"
#include "ttmem/query.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/server_tracking.hpp"

namespace ttmem::test {

struct Tracked {
  ServerProcess server;
  Tracked() {
    emu::ServerTracking::enable(std::chrono::milliseconds(0));
    EXPECT_TRUE(client::Client::instance().set_socket_path(server.socket(), std::chrono::seconds(5)));
  }
  query::QueryClient tool() const { return query::QueryClient(server.socket()); }
  void flush() const { ASSERT_TRUE(emu::ServerTracking::flush(std::chrono::seconds(5))); }
};

/// An n150 on chip `chip` of the emulated machine (chips are held one process at a time).
inline std::shared_ptr<emu::MeshDevice> n150(std::uint32_t chip = 0) {
  emu::MeshDeviceConfig config;
  config.preset = "n150";
  config.device_ids = {chip};
  return emu::MeshDevice::open(config);
}

}  // namespace ttmem::test
