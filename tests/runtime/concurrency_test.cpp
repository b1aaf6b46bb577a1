// The runtime is thread-safe: threads allocating, freeing and running programs on one mesh at once leave
// exact statistics and a balanced event stream. Run under TSan by the tsan preset.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "recording_processor.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

TEST(Concurrency, ThreadsSharingAMeshKeepExactStatistics) {
  test::ScopedRecorder rec;
  MeshDeviceConfig config;
  config.preset = "n300";
  auto mesh = MeshDevice::open(config);
  constexpr int kThreads = 4;
  constexpr int kSteps = 400;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::shared_ptr<MeshBuffer>> mine;
      auto prog = mesh->create_program({"p" + std::to_string(t), {{4096, {}}}, 4096});
      for (int i = 0; i < kSteps; ++i) {
        const int action = static_cast<int>(rng() % 4);
        if (action == 0 && !mine.empty()) {
          mine.pop_back();  // freed by the destructor
        } else if (action == 1) {
          mesh->run(prog);
        } else {
          BufferConfig c;
          c.type = rng() % 2 ? BufferType::DRAM : BufferType::L1;
          c.page_size = 1024;
          c.size = 1024 * (1 + rng() % 64);
          mine.push_back(mesh->create_buffer(c));
        }
      }
      mine.clear();
      prog->release();
    });
  }
  for (auto& th : threads) th.join();
  for (std::size_t d = 0; d < mesh->num_devices(); ++d) {
    EXPECT_EQ(mesh->device(d).allocator().statistics(BufferType::L1).total_allocated_bytes, 0u);
    // Only the cached kernel binaries stay in DRAM: 4096 B each, one 2048-B page per bank (statistics are
    // per bank, as TT-Metal's).
    EXPECT_EQ(mesh->device(d).allocator().statistics(BufferType::DRAM).total_allocated_bytes,
              kThreads * 2048u);
  }
  mesh->close();
  EXPECT_TRUE(rec->outstanding().empty());
}

}  // namespace
}  // namespace ttmem::emu
