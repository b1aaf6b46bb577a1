// Reports a 3 MiB DRAM buffer on device 7 through the installed C++ API and flushes; exits 0 when ttmemd
// applied it.
#include <cstdio>

#include "ttmem/client.hpp"

int main() {
  auto& client = ttmem::client::Client::instance();
  if (!client.wait_for_first_attempt(std::chrono::seconds(5)) || !client.active()) {
    std::fprintf(stderr, "no ttmemd at %s\n", client.socket_path().c_str());
    return 2;
  }
  ttmem::client::DeviceReport device;
  device.device = 7;
  device.total_bytes[0] = 1ull << 30;
  client.device_open(device);
  ttmem::client::AllocationReport a;
  a.device = 7;
  a.id = 1;
  a.size = 3u << 20;
  a.site = client.intern_site("consumer.cpp:19");
  client.report_alloc(a);
  return client.flush() ? 0 : 1;
}
