// Executes ttmem-emu scripts; see interpreter.hpp.
#include "interpreter.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <thread>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu_tool {

using emu::AllocKind;
using emu::BufferType;

// UsageTracker ---------------------------------------------------------------------------------------------

void UsageTracker::track_allocate(const emu::AllocationEvent& e) {
  if (e.scope != emu::EventScope::device) return;  // mesh backing buffers are counted on each device
  std::lock_guard lock(mutex_);
  const std::size_t s = index(slot_of(e.type, e.kind));
  auto& live = live_[e.device.value][s];
  live += e.size;
  auto& peak = peak_[e.device.value][s];
  peak = std::max(peak, live);
}

void UsageTracker::track_deallocate(const emu::AllocationEvent& e) {
  if (e.scope != emu::EventScope::device) return;
  std::lock_guard lock(mutex_);
  live_[e.device.value][index(slot_of(e.type, e.kind))] -= e.size;
}

std::map<std::uint32_t, UsageTracker::Figures> UsageTracker::peaks() const {
  std::lock_guard lock(mutex_);
  return peak_;
}

std::map<std::uint32_t, UsageTracker::Figures> UsageTracker::live() const {
  std::lock_guard lock(mutex_);
  return live_;
}

// Interpreter ----------------------------------------------------------------------------------------------

namespace {

std::uint64_t size_option(const Command& cmd, const char* key, std::uint64_t fallback) {
  auto it = cmd.options.find(key);
  return it == cmd.options.end() ? fallback : *parse_size(it->second);
}

std::uint32_t number_option(const Command& cmd, const char* key, std::uint32_t fallback) {
  auto it = cmd.options.find(key);
  return it == cmd.options.end() ? fallback : static_cast<std::uint32_t>(std::stoul(it->second));
}

BufferType buffer_type(const Command& cmd, const std::string& text) {
  auto type = parse_enum<emu::BufferType>(text);
  if (!type || *type == BufferType::SYSTEM_MEMORY) {
    throw ScriptError(cmd.line,
                      fmt::format("unknown memory type '{}' (use {})", text, names_of(kManagedTypes)));
  }
  return *type;
}

/// TT-Metal tensors use 2048-B pages (a bf16 tile); other sizes are one page.
std::uint64_t default_page_size(std::uint64_t size) {
  constexpr std::uint64_t kTile = 2048;
  return size >= kTile && size % kTile == 0 ? kTile : size;
}

}  // namespace

Interpreter::Interpreter(InterpreterOptions options)
    : options_(std::move(options)), usage_(std::make_shared<UsageTracker>()) {
  emu::GraphTracker::instance().push_processor(usage_);
}

Interpreter::~Interpreter() {
  buffers_.clear();
  programs_.clear();
  mesh_.reset();
  emu::GraphTracker::instance().remove_processor(usage_);
}

template <typename... Args>
void Interpreter::say(fmt::format_string<Args...> format, Args&&... args) {
  // Line by line, also into a pipe: a script that sleeps (examples/serve.ttm) shows what it did so far.
  if (options_.log) *options_.log << fmt::format(format, std::forward<Args>(args)...) << std::endl;
}

RunResult Interpreter::run(const std::vector<Command>& script) {
  step(script);
  return finish();
}

std::optional<RunError> Interpreter::step(const std::vector<Command>& commands) {
  result_.error.reset();
  try {
    execute(commands);
  } catch (const ScriptError& e) {
    if (!result_.error) result_.error = RunError{e.line(), e.what(), {}, exit_status::bad_input};
  }
  return result_.error;
}

RunResult Interpreter::finish() {
  if (mesh_ && mesh_->is_open()) {
    const int last = result_.error ? result_.error->line : 0;
    say("end of script: closing the mesh that is still open");
    close_mesh(last);
  }
  result_.peaks = usage_->peaks();
  return std::move(result_);
}

void Interpreter::execute(const std::vector<Command>& commands) {
  for (const Command& cmd : commands) {
    try {
      execute(cmd);
    } catch (const emu::Error& e) {
      // The runtime said no to a well-formed request: out of memory, a CB clash, a chip held elsewhere.
      const bool memory = e.code() == emu::ErrorCode::out_of_memory || e.code() == emu::ErrorCode::cb_clash ||
                          e.code() == emu::ErrorCode::device_busy;
      result_.error = RunError{cmd.line, e.what(), e.detail(),
                               memory ? exit_status::runtime_refused : exit_status::bad_input};
      throw ScriptError(cmd.line, e.what());
    }
  }
}

emu::MeshDevice& Interpreter::mesh(int line) {
  if (!mesh_ || !mesh_->is_open())
    throw ScriptError(line, "no open mesh: start the script with 'mesh PRESET'");
  return *mesh_;
}

void Interpreter::execute(const Command& cmd) {
  switch (cmd.id) {
    case Verb::mesh:
      return open_mesh(cmd);
    case Verb::alloc:
      return alloc(cmd, false);
    case Verb::alloc_at:
      return alloc(cmd, true);
    case Verb::free:
    case Verb::release_trace:
      return free_buffer(cmd);
    case Verb::program:
      return define_program(cmd);
    case Verb::run:
      return run_program(cmd);
    case Verb::release:
      return release_program(cmd);
    case Verb::clear_program_cache:
      mesh(cmd.line).clear_program_cache();
      return say("clear_program_cache: kernel binaries and cached programs' circular buffers released");
    case Verb::trace:
      return trace(cmd);
    case Verb::close:
      mesh(cmd.line);
      return close_mesh(cmd.line);
    case Verb::sleep:
      return std::this_thread::sleep_for(std::chrono::milliseconds(std::stoull(cmd.args[0])));
    case Verb::flush:
      if (options_.flush) options_.flush();
      return;
    case Verb::abort:
      say("abort: exiting without cleanup (SIGKILL)");
      if (options_.log) options_.log->flush();
      if (options_.flush) options_.flush();
      ::kill(::getpid(), SIGKILL);
      return;
    case Verb::stats:
      return print_stats(cmd.line);
    case Verb::dump:
      return dump(cmd);
    case Verb::repeat:
      return repeat(cmd);
    case Verb::op:
      return op(cmd);
    case Verb::end:
      return;  // the parser closes blocks with it; it never reaches here
  }
}

void Interpreter::repeat(const Command& cmd) {
  // One line for the whole loop, not one per iteration.
  struct Mute {
    std::ostream*& log;
    std::ostream* saved;
    ~Mute() { log = saved; }
  } mute{options_.log, options_.log};
  options_.log = nullptr;
  for (std::uint64_t i = 0; i < cmd.repeat_count; ++i) execute(cmd.body);
  options_.log = mute.saved;
  say("repeat {}: {} command{} per iteration done", cmd.repeat_count, cmd.body.size(),
      cmd.body.size() == 1 ? "" : "s");
}

void Interpreter::op(const Command& cmd) {
  struct Scope {
    const InterpreterOptions& o;
    explicit Scope(const InterpreterOptions& options, const std::string& name) : o(options) {
      if (o.push_op) o.push_op(name);
    }
    ~Scope() {
      if (o.pop_op) o.pop_op();
    }
  } scope(options_, cmd.args[0]);
  execute(cmd.body);
}

void Interpreter::open_mesh(const Command& cmd) {
  if (mesh_ && mesh_->is_open()) {
    throw ScriptError(cmd.line, "a mesh is already open; 'close' it before opening another");
  }
  emu::MeshDeviceConfig config;
  config.preset = cmd.args[0];
  if (auto it = cmd.options.find("arch"); it != cmd.options.end()) {
    config.arch = parse_enum<emu::Arch>(it->second);
    if (!config.arch) {
      throw ScriptError(cmd.line,
                        fmt::format("unknown arch '{}' (use wormhole_b0 or blackhole)", it->second));
    }
  }
  if (auto it = cmd.options.find("devices"); it != cmd.options.end()) {
    std::string_view text = it->second;
    while (true) {
      const std::size_t comma = text.find(',');
      const std::string part(text.substr(0, comma));
      std::uint32_t id = 0;
      const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), id);
      if (ec != std::errc{} || end != part.data() + part.size() || part.empty()) {
        throw ScriptError(cmd.line,
                          fmt::format("devices={}: '{}' is not a device number (give numbers joined by "
                                      "',', e.g. devices=2,3)",
                                      it->second, part));
      }
      config.device_ids.push_back(id);
      if (comma == std::string_view::npos) break;
      text.remove_prefix(comma + 1);
    }
  }
  config.options.l1_small_size = size_option(cmd, "l1_small", 0);
  config.options.trace_region_size = size_option(cmd, "trace_region", 0);
  config.options.worker_l1_size = size_option(cmd, "worker_l1", 0);
  config.options.l1_unreserved_base = size_option(cmd, "l1_base", 0);
  if (auto it = cmd.options.find("grid"); it != cmd.options.end()) {
    // A chip's own worker grid (a harvested chip, or the build a capture ran on): XxY worker cores.
    const std::string& g = it->second;
    const auto x = g.find('x');
    unsigned gx = 0, gy = 0;
    const bool ok = x != std::string::npos &&
                    std::from_chars(g.data(), g.data() + x, gx).ptr == g.data() + x &&
                    std::from_chars(g.data() + x + 1, g.data() + g.size(), gy).ptr == g.data() + g.size();
    if (!ok || gx == 0 || gy == 0) {
      throw ScriptError(cmd.line, fmt::format("grid={}: give the worker grid as XxY, e.g. grid=11x10", g));
    }
    config.options.worker_grid_x = gx;
    config.options.worker_grid_y = gy;
  }
  const std::uint64_t granule = size_option(cmd, "allocation_alignment", 0);
  if (granule > 4096) {
    throw ScriptError(cmd.line, fmt::format("allocation_alignment={} is more than 4096 B", granule));
  }
  config.options.allocation_alignment = static_cast<std::uint32_t>(granule);
  buffers_.clear();
  programs_.clear();
  mesh_ = emu::MeshDevice::open(config);
  result_.meshes.push_back(
      {mesh_->preset(), mesh_->arch(), mesh_->rows(), mesh_->cols(), config.options, cmd.line, {}});
  say("mesh {}: {} {} device{} ({}x{}), mesh id {}", mesh_->preset(), mesh_->num_devices(),
      emu::to_string(mesh_->arch()), mesh_->num_devices() == 1 ? "" : "s", mesh_->rows(), mesh_->cols(),
      mesh_->id().value);
}

const std::string& Interpreter::new_buffer_name(const Command& cmd) const {
  const std::string& name = cmd.args[0];
  if (buffers_.contains(name)) {
    throw ScriptError(cmd.line,
                      fmt::format("buffer '{}' is still live; free it before reusing the name", name));
  }
  return name;
}

std::string Interpreter::site_of(const Command& cmd) const {
  auto site = cmd.options.find("site");
  return site != cmd.options.end() ? site->second : fmt::format("{}:{}", options_.script_name, cmd.line);
}

void Interpreter::keep(const std::string& name, LiveBuffer live, BufferRecord record) {
  live.record = result_.buffers.size();
  result_.buffers.push_back(std::move(record));
  buffers_.emplace(name, std::move(live));
}

void Interpreter::alloc(const Command& cmd, bool at_address) {
  emu::MeshDevice& m = mesh(cmd.line);
  const std::string& name = new_buffer_name(cmd);
  emu::BufferConfig config;
  config.type = buffer_type(cmd, cmd.args[1]);
  config.size = *parse_size(cmd.args[2]);
  config.page_size = size_option(cmd, "page", default_page_size(config.size));
  if (cmd.options.contains("shard_cores")) config.shard_cores = number_option(cmd, "shard_cores", 0);
  config.site = site_of(cmd);

  BufferRecord record{name, cmd.line,    config.type, AllocKind::owning, config.size, config.page_size, 0,
                      {},   config.site, {}};
  LiveBuffer live;
  if (at_address) {
    const std::uint32_t device = number_option(cmd, "device", 0);
    if (device >= m.num_devices()) {
      throw ScriptError(cmd.line, fmt::format("device {} is not in this mesh (devices 0..{})", device,
                                              m.num_devices() - 1));
    }
    live.device_buffer = m.device(device).create_buffer_at(*parse_size(cmd.args[3]), config);
    record.kind = live.device_buffer->kind();
    record.address = live.device_buffer->address();
    record.devices = {m.device(device).id().value};
  } else {
    live.mesh_buffer = m.create_buffer(config);
    record.kind = live.mesh_buffer->kind();
    record.address = live.mesh_buffer->address();
    for (std::uint32_t d = 0; d < m.num_devices(); ++d) record.devices.push_back(m.device(d).id().value);
  }
  say("{} {}: {} {} B (page {} B) at {} on {} device{} [{}]", cmd.verb, name, cmd.args[1], record.size,
      record.page_size, record.address, record.devices.size(), record.devices.size() == 1 ? "" : "s",
      record.site);
  keep(name, std::move(live), std::move(record));
}

void Interpreter::trace(const Command& cmd) {
  emu::MeshDevice& m = mesh(cmd.line);
  const std::string& name = new_buffer_name(cmd);
  emu::BufferConfig config;
  config.type = BufferType::TRACE;
  config.size = *parse_size(cmd.args[1]);
  config.page_size = default_page_size(config.size);
  config.site = site_of(cmd);
  LiveBuffer live;
  live.mesh_buffer = m.create_buffer(config);
  BufferRecord record{name,
                      cmd.line,
                      BufferType::TRACE,
                      AllocKind::trace,
                      config.size,
                      config.page_size,
                      live.mesh_buffer->address(),
                      {},
                      config.site,
                      {}};
  for (std::uint32_t d = 0; d < m.num_devices(); ++d) record.devices.push_back(m.device(d).id().value);
  say("trace {}: {} B in the trace region at {} on {} device(s)", name, record.size, record.address,
      record.devices.size());
  keep(name, std::move(live), std::move(record));
}

void Interpreter::free_buffer(const Command& cmd) {
  mesh(cmd.line);
  auto it = buffers_.find(cmd.args[0]);
  if (it == buffers_.end())
    throw ScriptError(cmd.line, fmt::format("no live buffer named '{}'", cmd.args[0]));
  if (it->second.mesh_buffer) it->second.mesh_buffer->deallocate();
  if (it->second.device_buffer) it->second.device_buffer->deallocate();
  result_.buffers[it->second.record].freed_at_line = cmd.line;
  buffers_.erase(it);
  say("{} {}", cmd.verb, cmd.args[0]);
}

void Interpreter::define_program(const Command& cmd) {
  emu::MeshDevice& m = mesh(cmd.line);
  const std::string& name = cmd.args[0];
  if (programs_.contains(name)) throw ScriptError(cmd.line, fmt::format("program '{}' already exists", name));
  emu::ProgramConfig config;
  config.name = name;
  config.kernel_binary_size = size_option(cmd, "kernel", config.kernel_binary_size);
  const emu::ArchSpec& spec = m.device(0).spec();
  auto cores_of = [&](std::string_view text) {
    std::string error;
    const auto parsed = parse_cores(text, &error);
    if (!parsed) throw ScriptError(cmd.line, error);
    return parsed->count ? ttmem::first_cores(*parsed->count, spec.worker_grid_x) : parsed->ranges;
  };
  const auto all = cmd.options.find("cores");
  const emu::CoreRangeSet program_cores =
      all == cmd.options.end() ? emu::CoreRangeSet{} : cores_of(all->second);
  for (const std::string& cb : cmd.cbs) {
    const auto at = cb.find('@');
    const std::string head = cb.substr(0, at);
    const auto x = head.find('x');
    const std::uint64_t size = *parse_size(head.substr(0, x));
    const std::uint64_t count = x == std::string::npos ? 1 : std::stoull(head.substr(x + 1));
    const emu::CoreRangeSet cores = at == std::string::npos ? program_cores : cores_of(cb.substr(at + 1));
    for (std::uint64_t i = 0; i < count; ++i) config.circular_buffers.push_back({size, cores});
  }
  LiveProgram live{m.create_program(config), result_.programs.size()};
  result_.programs.push_back({name, cmd.line, {}, config.kernel_binary_size, 0, {}});
  programs_.emplace(name, std::move(live));
  say("program {}: {} circular buffer{}{}", name, config.circular_buffers.size(),
      config.circular_buffers.size() == 1 ? "" : "s",
      program_cores.ranges.empty() && all == cmd.options.end()
          ? fmt::format(" on {} cores", spec.num_worker_cores())
          : "");
}

void Interpreter::run_program(const Command& cmd) {
  emu::MeshDevice& m = mesh(cmd.line);
  auto it = programs_.find(cmd.args[0]);
  if (it == programs_.end()) throw ScriptError(cmd.line, fmt::format("no program named '{}'", cmd.args[0]));
  m.run(it->second.program);
  ProgramRecord& record = result_.programs[it->second.record];
  ++record.runs;
  if (record.cbs.empty()) {
    for (const auto& cb : it->second.program->circular_buffers()) {
      if (cb.device != m.device(0).id()) continue;
      record.cbs.push_back({cb.index, cb.address, cb.size, cb.cores});
    }
    std::string where;
    for (const CbRecord& cb : record.cbs) where += fmt::format("{}{}", where.empty() ? "" : ", ", cb.address);
    say("run {}: circular buffers at {}", cmd.args[0], where.empty() ? "(none)" : where);
  } else {
    say("run {}", cmd.args[0]);
  }
}

void Interpreter::release_program(const Command& cmd) {
  mesh(cmd.line);
  auto it = programs_.find(cmd.args[0]);
  if (it == programs_.end()) throw ScriptError(cmd.line, fmt::format("no program named '{}'", cmd.args[0]));
  it->second.program->release();
  result_.programs[it->second.record].released_at_line = cmd.line;
  result_.programs[it->second.record].cbs.clear();
  programs_.erase(it);
  say("release {}", cmd.args[0]);
}

void Interpreter::close_mesh(int line) {
  for (const auto& [name, live] : buffers_) result_.live_at_close.push_back(result_.buffers[live.record]);
  mesh_->close();
  if (!result_.meshes.empty()) result_.meshes.back().closed_at_line = line;
  if (buffers_.empty()) {
    say("close: every buffer was freed before close");
  } else {
    say("close: {} buffer{} still held when close began (swept and reported as leaks):", buffers_.size(),
        buffers_.size() == 1 ? " was" : "s were");
    for (const auto& [name, live] : buffers_) {
      const BufferRecord& r = result_.buffers[live.record];
      say("  {} {} {} B at {} on {} device(s) [{}]", name, emu::to_string(r.type), r.size, r.address,
          r.devices.size(), r.site);
    }
  }
  // Handles outlive close, as Python tensors do; dropping them now must change nothing.
  buffers_.clear();
  programs_.clear();
}

void Interpreter::print_stats(int line) {
  emu::MeshDevice& m = mesh(line);
  for (std::size_t d = 0; d < m.num_devices(); ++d) {
    const emu::Allocator& a = m.device(d).allocator();
    std::string text = fmt::format("device {}:", d);
    for (BufferType type : emu::kManagedTypes) {
      const emu::Statistics s = a.statistics(type);
      text += fmt::format("  {} {}/{} B per bank (largest free {})", emu::to_string(type),
                          s.total_allocated_bytes, s.total_allocatable_bytes, s.largest_free_block_bytes);
    }
    say("{}", text);
  }
}

void Interpreter::dump(const Command& cmd) {
  emu::MeshDevice& m = mesh(cmd.line);
  const std::uint32_t device = number_option(cmd, "device", 0);
  if (device >= m.num_devices())
    throw ScriptError(cmd.line, fmt::format("device {} is not in this mesh", device));
  if (options_.log) m.device(device).allocator().dump_memory_blocks(*options_.log);
}

int exit_code(const RunResult& result) {
  return result.error ? result.error->exit_code : 0;
}

}  // namespace ttmem::emu_tool
