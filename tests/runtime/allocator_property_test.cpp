// Properties of the allocator under random use: no overlap in any bank, consistent statistics,
// back to pristine after freeing everything; circular buffers never run into L1 buffers.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>

#include "recording_processor.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

struct Live {
  std::shared_ptr<MeshBuffer> mesh_buffer;
  std::shared_ptr<Buffer> local;  // device-local buffer (on device `device`)
  std::uint32_t device = 0;
  const Buffer& on(std::uint32_t d) const { return local ? *local : *mesh_buffer->device_buffer(d); }
  bool present_on(std::uint32_t d) const { return !local || device == d; }
};

void check_invariants(MeshDevice& mesh, const std::vector<Live>& live) {
  for (std::uint32_t d = 0; d < mesh.num_devices(); ++d) {
    const Allocator& alloc = mesh.device(d).allocator();
    for (BufferType type : kManagedTypes) {
      std::vector<std::pair<DeviceAddr, DeviceAddr>> ranges;
      std::uint64_t expected_allocated = 0;
      for (const Live& l : live) {
        if (!l.present_on(d)) continue;
        const Buffer& b = l.on(d);
        if (b.type() != type || b.size() == 0) continue;
        const std::uint64_t per_bank =
            b.reserved_per_bank();  // size_per_bank rounded to the free list granule
        ranges.emplace_back(b.address(), b.address() + per_bank);
        expected_allocated += per_bank;
        RC_ASSERT(b.address() >= alloc.base_address(type));
        RC_ASSERT(b.address() + per_bank <= alloc.base_address(type) + alloc.bank_size(type));
      }
      std::sort(ranges.begin(), ranges.end());
      for (std::size_t i = 1; i < ranges.size(); ++i) RC_ASSERT(ranges[i - 1].second <= ranges[i].first);
      const Statistics s = alloc.statistics(type);
      RC_ASSERT(s.total_allocated_bytes == expected_allocated);
      RC_ASSERT(s.total_allocated_bytes + s.total_free_bytes == s.total_allocatable_bytes);
      RC_ASSERT(s.largest_free_block_bytes <= s.total_free_bytes);
    }
  }
}

RC_GTEST_PROP(AllocatorProperty, RandomAllocFreeNeverOverlapsAndFreeingAllIsPristine, ()) {
  MeshDeviceConfig config;
  config.preset = *rc::gen::element<std::string>("n150", "n300", "p150");
  config.options.l1_small_size = 64 * 1024;
  config.options.trace_region_size = 1 << 20;
  auto mesh = MeshDevice::open(config);
  std::vector<Live> live;
  const int steps = *rc::gen::inRange(1, 60);
  for (int step = 0; step < steps; ++step) {
    if (!live.empty() && *rc::gen::inRange(0, 3) == 0) {
      const auto k = *rc::gen::inRange<std::size_t>(0, live.size());
      if (live[k].local) live[k].local->deallocate();
      if (live[k].mesh_buffer) live[k].mesh_buffer->deallocate();
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
    } else {
      BufferConfig c;
      c.type = *rc::gen::element(BufferType::DRAM, BufferType::L1, BufferType::L1_SMALL, BufferType::TRACE);
      c.page_size = *rc::gen::element<std::uint64_t>(32, 100, 1024, 2048, 4096);
      c.size = c.page_size * *rc::gen::inRange<std::uint64_t>(0, 300);
      if (c.type == BufferType::L1_SMALL || *rc::gen::inRange(0, 4) == 0) {
        if (c.type != BufferType::DRAM && c.type != BufferType::TRACE)
          c.shard_cores = *rc::gen::inRange(1, 9);
      }
      if (*rc::gen::inRange(0, 3) == 0)
        c.placement = *rc::gen::element(Placement::bottom_up, Placement::top_down);
      Live l;
      try {
        if (mesh->num_devices() > 1 && *rc::gen::inRange(0, 4) == 0) {
          l.device = *rc::gen::inRange<std::uint32_t>(0, static_cast<std::uint32_t>(mesh->num_devices()));
          l.local = mesh->device(l.device).create_buffer(c);
        } else {
          l.mesh_buffer = mesh->create_buffer(c);
        }
        live.push_back(std::move(l));
      } catch (const Error& e) {
        RC_ASSERT(e.code() == ErrorCode::out_of_memory);
      }
    }
    check_invariants(*mesh, live);
  }
  for (Live& l : live) {
    if (l.local) l.local->deallocate();
    if (l.mesh_buffer) l.mesh_buffer->deallocate();
  }
  live.clear();
  for (std::uint32_t d = 0; d < mesh->num_devices(); ++d) {
    for (BufferType type : kManagedTypes) {
      const Statistics s = mesh->device(d).allocator().statistics(type);
      RC_ASSERT(s.total_allocated_bytes == 0u);
      RC_ASSERT(s.largest_free_block_bytes == s.total_allocatable_bytes);
    }
  }
}

RC_GTEST_PROP(AllocatorProperty, CircularBuffersOfARunNeverReachAnL1Buffer, ()) {
  auto mesh = MeshDevice::open({});
  test::ScopedRecorder rec;
  std::vector<std::shared_ptr<MeshBuffer>> l1;
  std::vector<std::shared_ptr<Program>> programs;
  const int steps = *rc::gen::inRange(1, 40);
  for (int step = 0; step < steps; ++step) {
    const int action = *rc::gen::inRange(0, 4);
    if (action == 0 && !l1.empty()) {
      l1.erase(l1.begin() + *rc::gen::inRange<std::ptrdiff_t>(0, static_cast<std::ptrdiff_t>(l1.size())));
    } else if (action == 1) {
      BufferConfig c;
      c.type = BufferType::L1;
      c.page_size = 1024 * *rc::gen::inRange<std::uint64_t>(1, 300);
      c.size = c.page_size * 64;
      try {
        l1.push_back(mesh->create_buffer(c));
      } catch (const Error& e) {
        RC_ASSERT(e.code() == ErrorCode::out_of_memory);
      }
    } else if (action == 2 && !programs.empty()) {
      programs.back()->release();
      programs.pop_back();
    } else {
      ProgramConfig p;
      p.name = "p" + std::to_string(step);
      const int cbs = *rc::gen::inRange(1, 5);
      for (int i = 0; i < cbs; ++i)
        p.circular_buffers.push_back({*rc::gen::inRange<std::uint64_t>(16, 200'000), {}});
      auto prog = mesh->create_program(p);
      const auto lowest = mesh->device(0).allocator().lowest_occupied_l1_address();
      try {
        mesh->run(prog);
        for (const auto& cb : prog->circular_buffers()) {
          RC_ASSERT(!lowest || cb.address + cb.size <= *lowest);
          RC_ASSERT(cb.address >= arch_spec(Arch::wormhole_b0).l1_unreserved_base);
        }
        programs.push_back(prog);
      } catch (const Error& e) {
        RC_ASSERT(e.code() == ErrorCode::cb_clash);
        RC_ASSERT(prog->circular_buffers().empty());
      }
    }
  }
  l1.clear();
  programs.clear();
  mesh->close();
  RC_ASSERT(rec->outstanding().empty());
}

}  // namespace
}  // namespace ttmem::emu
