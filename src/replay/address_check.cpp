// See ttmem/replay/address_check.hpp.
#include "ttmem/replay/address_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"
#include "ttmem/runtime/program.hpp"

namespace ttmem::replay {

namespace {

/// The L1 bank counts an interleaved buffer allows: pages spread round-robin give each bank
/// ceil(pages / banks) pages, which the capture records as max_size_per_bank.
std::optional<std::pair<std::uint64_t, std::uint64_t>> bank_interval(const Node& n) {
  const bridge::BufferInfo& b = n.buffer;
  if (b.num_cores != 0 || b.page_size == 0 || b.max_size_per_bank == 0 || b.max_size_per_bank % b.page_size) {
    return std::nullopt;
  }
  const std::uint64_t pages = (b.size + b.page_size - 1) / b.page_size;
  const std::uint64_t per_bank = b.max_size_per_bank / b.page_size;
  if (pages == 0 || per_bank == 0) return std::nullopt;
  const std::uint64_t lo = (pages + per_bank - 1) / per_bank;
  const std::uint64_t hi = per_bank == 1 ? UINT64_MAX : (pages - 1) / (per_bank - 1);
  if (lo > hi) return std::nullopt;
  return std::pair{lo, hi};
}

void choose_grid(const Capture& capture, const AddressCheckOptions& options, AddressCheck& check) {
  const emu::ArchSpec& spec = emu::arch_spec(options.arch);
  check.grid_x = options.grid_x.value_or(spec.worker_grid_x);
  check.grid_y = options.grid_y.value_or(spec.worker_grid_y);
  if (options.grid_x || options.grid_y) {
    check.grid_source = "given";
    return;
  }
  std::uint64_t lo = 0, hi = UINT64_MAX;
  std::size_t buffers = 0;
  for (const Node& n : capture.nodes) {
    if (n.kind != NodeKind::buffer_allocate || n.buffer.type != BufferType::L1) continue;
    if (auto in = bank_interval(n)) {
      lo = std::max(lo, in->first);
      hi = std::min(hi, in->second);
      ++buffers;
    }
  }
  check.grid_source = "the architecture's";
  if (buffers == 0 || lo > hi) return;
  if (check.grid_x * check.grid_y >= lo && check.grid_x * check.grid_y <= hi) {
    check.grid_source =
        fmt::format("the architecture's (fits {} L1 buffer{})", buffers, buffers == 1 ? "" : "s");
    return;
  }
  // A harvested chip loses whole columns of worker cores.
  for (std::uint32_t x = check.grid_x; x >= 1; --x) {
    if (std::uint64_t{x} * check.grid_y >= lo && std::uint64_t{x} * check.grid_y <= hi) {
      check.grid_source =
          fmt::format("inferred from {} L1 buffer{} ({}..{} banks)", buffers, buffers == 1 ? "" : "s", lo,
                      hi == UINT64_MAX ? std::string("any") : std::to_string(hi));
      check.grid_x = x;
      return;
    }
  }
}

struct PendingProgram {
  std::string name;
  int level = 0;  ///< stacking level of its deallocate-all: the device operation's frame
  std::vector<emu::CircularBufferConfig> cbs;
  std::vector<std::size_t> cb_rows;  ///< rows of the CBs placed, in order
  std::optional<std::size_t> binary_row;
  std::uint64_t binary_size = 0;
};

class Checker {
 public:
  Checker(const Capture& capture, AddressCheck& check) : capture_(capture), check_(check) {}

  void run() {
    emu::MeshDeviceConfig config;
    config.preset = check_.arch == Arch::blackhole ? "p150" : "n150";
    config.arch = check_.arch;
    config.options.worker_grid_x = check_.grid_x;
    config.options.worker_grid_y = check_.grid_y;
    config.options.l1_unreserved_base = check_.l1_base;
    config.hold_chips = false;  // a model of the capture's chip, not a chip of this machine
    mesh_ = emu::MeshDevice::open(config);
    std::vector<std::string> frames;
    for (const Node& n : capture_.nodes) {
      switch (n.kind) {
        case NodeKind::function_start:
          frames.push_back(n.name);
          break;
        case NodeKind::function_end:
          if (pending_ && n.stacking_level <= pending_->level) finish_program();
          if (!frames.empty()) frames.pop_back();
          break;
        case NodeKind::circular_buffer_deallocate_all:
          if (pending_) finish_program();
          if (program_) program_->release();  // the previous program's CBs: gone when the next one runs
          pending_.emplace();
          pending_->name = frames.empty() ? "program" : frames.back();
          pending_->level = n.stacking_level;
          break;
        case NodeKind::circular_buffer_allocate:
        case NodeKind::dataflow_buffer_allocate:
        case NodeKind::scratchpad_allocate:
          program_buffer(n);
          break;
        case NodeKind::buffer_allocate:
          if (pending_ && n.buffer.type == BufferType::DRAM && n.stacking_level == pending_->level) {
            // Allocated by the device operation itself while its program is enqueued: the program's
            // kernel binaries (TT-Metal's mesh_workload.cpp), placed by the program cache.
            pending_->binary_row =
                add_row(n, fmt::format("kernel binary, {} B (DRAM)", n.buffer.size), n.buffer.address);
            pending_->binary_size = n.buffer.size;
          } else {
            allocate(n);
          }
          break;
        case NodeKind::buffer_deallocate: {
          auto it = buffers_.find(n.buffer.unique_id);
          if (it != buffers_.end()) {
            it->second->deallocate();
            buffers_.erase(it);
          }
          break;
        }
        default:
          break;
      }
    }
    if (pending_) finish_program();
    mesh_->close();
  }

 private:
  std::size_t add_row(const Node& n, std::string what, std::uint64_t recorded) {
    check_.rows.push_back({n.index, std::move(what), recorded, std::nullopt, false, {}});
    return check_.rows.size() - 1;
  }
  void settle(std::size_t row, std::optional<std::uint64_t> emulated, std::string note = {}) {
    AddressRow& r = check_.rows[row];
    r.emulated = emulated;
    r.note = std::move(note);
    r.match = emulated && *emulated == r.recorded;
  }

  void allocate(const Node& n) {
    const bridge::BufferInfo& b = n.buffer;
    std::string what =
        fmt::format("{} buffer, {} B, {} B/bank", to_string(b.type), b.size, b.max_size_per_bank);
    if (b.num_cores) what += fmt::format(", {} cores", b.num_cores);
    const std::size_t row = add_row(n, what, b.address);
    if (b.type == BufferType::L1_SMALL || b.type == BufferType::TRACE) {
      settle(row, std::nullopt, "not placed: the capture does not say the region's size");
      return;
    }
    emu::BufferConfig config;
    config.size = b.size;
    config.page_size = b.page_size ? b.page_size : b.size;
    config.type = b.type;
    if (b.num_cores) config.shard_cores = b.num_cores;
    try {
      auto buffer = mesh_->create_buffer(config);
      settle(row, buffer->address());
      buffers_[b.unique_id] = std::move(buffer);
    } catch (const emu::Error& e) {
      settle(row, std::nullopt, std::string("the emulator refused it: ") + e.what());
    }
  }

  void program_buffer(const Node& n) {
    const bridge::ProgramBufferInfo& p = n.program;
    const std::size_t row =
        add_row(n, fmt::format("{} {} B on {}", bridge::to_string(p.kind), p.size, p.cores.str()), p.address);
    if (p.tensor_backed) {
      settle(row, std::nullopt, "not placed: tensor-backed, at its tensor's address");
      return;
    }
    if (!pending_ || p.kind != bridge::ProgramBufferKind::circular_buffer) {
      settle(row, std::nullopt,
             pending_ ? "not placed: the emulator has no dataflow buffers or scratchpads"
                      : "not placed: no program (no circular_buffer_deallocate_all before it)");
      return;
    }
    emu::CircularBufferConfig cb;
    cb.size = p.size;
    cb.cores = p.cores;  // the capture's rectangles, placed as TT-Metal places them
    pending_->cbs.push_back(cb);
    pending_->cb_rows.push_back(row);
  }

  void finish_program() {
    PendingProgram p = std::move(*pending_);
    pending_.reset();
    if (p.cbs.empty() && !p.binary_row) return;
    emu::ProgramConfig config;
    config.name = p.name;
    config.circular_buffers = p.cbs;
    config.kernel_binary_size = p.binary_size;
    try {
      program_ = mesh_->create_program(config);
      mesh_->run(program_);
    } catch (const emu::Error& e) {
      for (std::size_t row : p.cb_rows)
        settle(row, std::nullopt, std::string("the emulator refused it: ") + e.what());
      if (p.binary_row)
        settle(*p.binary_row, std::nullopt, std::string("the emulator refused it: ") + e.what());
      return;
    }
    const auto placed = program_->circular_buffers();
    for (std::size_t i = 0; i < p.cb_rows.size(); ++i) {
      std::optional<std::uint64_t> address;
      for (const auto& cb : placed)
        if (cb.index == i) address = cb.address;
      settle(p.cb_rows[i], address, check_.rows[p.cb_rows[i]].note);
    }
    if (p.binary_row) {
      std::lock_guard lock(mesh_->mutex());
      const emu::Buffer* binary = mesh_->device(0).program_cache().kernel_binary(p.name);
      settle(*p.binary_row, binary ? std::optional(binary->address()) : std::nullopt,
             binary ? "" : "not placed: the program cache had it already");
    }
  }

  const Capture& capture_;
  AddressCheck& check_;
  std::shared_ptr<emu::MeshDevice> mesh_;
  std::map<std::uint64_t, std::shared_ptr<emu::MeshBuffer>> buffers_;
  std::optional<PendingProgram> pending_;
  std::shared_ptr<emu::Program> program_;
};

}  // namespace

AddressCheck check_addresses(const Capture& capture, const AddressCheckOptions& options) {
  if (capture.no_dispatch) {
    throw CaptureError(
        capture.name +
        ": a NO_DISPATCH capture: every address in it is 0, so there is nothing to check (capture in "
        "NORMAL mode)");
  }
  AddressCheck check;
  check.arch = options.arch;
  choose_grid(capture, options, check);
  const emu::ArchSpec& spec = emu::arch_spec(options.arch);
  check.l1_base = spec.l1_unreserved_base;
  check.l1_base_source = "the architecture's";
  if (options.l1_base) {
    check.l1_base = *options.l1_base;
    check.l1_base_source = "given";
  } else {
    for (const Node& n : capture.nodes) {
      if (n.kind == NodeKind::circular_buffer_allocate && !n.program.tensor_backed && n.program.address) {
        check.l1_base = n.program.address;
        check.l1_base_source = fmt::format("the first CB's address (node {})", n.index);
        break;
      }
    }
  }
  try {
    Checker(capture, check).run();
  } catch (const emu::Error& e) {
    throw CaptureError(capture.name + ": the emulator cannot take this chip's geometry: " + e.what());
  }
  check.buffers_before_capture = capture.buffers_before_capture().size();
  for (const AddressRow& r : check.rows) {
    if (!r.emulated) {
      ++check.skipped;
    } else if (r.match) {
      ++check.matched;
    } else {
      ++check.mismatched;
    }
  }
  return check;
}

void write_text(std::ostream& out, const AddressCheck& c) {
  out << fmt::format("address check against the emulator: {}, {}x{} worker cores ({}), L1 base {} ({})\n",
                     to_string(c.arch), c.grid_x, c.grid_y, c.grid_source, c.l1_base, c.l1_base_source);
  out << fmt::format("{:>6}  {:<48} {:>12} {:>12}  {}\n", "NODE", "WHAT", "RECORDED", "EMULATOR", "");
  for (const AddressRow& r : c.rows) {
    const std::string verdict = !r.emulated ? "skipped" : r.match ? "match" : "DIFFERS";
    out << fmt::format("{:>6}  {:<48} {:>12} {:>12}  {}{}\n", r.node, r.what, r.recorded,
                       r.emulated ? std::to_string(*r.emulated) : "-", verdict,
                       r.note.empty() ? "" : ": " + r.note);
  }
  out << fmt::format("{} of {} match, {} differ, {} not placed\n", c.matched, c.matched + c.mismatched,
                     c.mismatched, c.skipped);
  if (c.buffers_before_capture > 0) {
    out << fmt::format(
        "({} buffer{} allocated before the capture {} not in the emulator: where {} sat, a bottom-up "
        "placement after {} may differ)\n",
        c.buffers_before_capture, c.buffers_before_capture == 1 ? "" : "s",
        c.buffers_before_capture == 1 ? "is" : "are", c.buffers_before_capture == 1 ? "it" : "they",
        c.buffers_before_capture == 1 ? "it" : "them");
  }
}

std::string to_json(const AddressCheck& c) {
  nlohmann::json rows = nlohmann::json::array();
  for (const AddressRow& r : c.rows) {
    rows.push_back({{"node", r.node},
                    {"what", r.what},
                    {"recorded", r.recorded},
                    {"emulated", r.emulated ? nlohmann::json(*r.emulated) : nlohmann::json(nullptr)},
                    {"match", r.match},
                    {"note", r.note}});
  }
  return nlohmann::json{{"arch", to_string(c.arch)},
                        {"grid", {{"x", c.grid_x}, {"y", c.grid_y}, {"source", c.grid_source}}},
                        {"l1_base", {{"address", c.l1_base}, {"source", c.l1_base_source}}},
                        {"rows", rows},
                        {"matched", c.matched},
                        {"mismatched", c.mismatched},
                        {"skipped", c.skipped},
                        {"buffers_before_capture", c.buffers_before_capture}}
      .dump(2);
}

}  // namespace ttmem::replay
