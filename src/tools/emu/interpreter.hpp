// Runs a parsed ttmem-emu script on the emulated runtime and records what happened for the report.
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "script.hpp"
#include "ttmem/exit_codes.hpp"
#include "ttmem/runtime/device.hpp"

namespace ttmem::emu_tool {

/// Live and peak bytes per device and slot (ttmem/vocab.hpp: memory types, and circular buffers apart),
/// from tracker events.
class UsageTracker : public emu::Processor {
 public:
  using Figures = std::array<std::uint64_t, kSlots>;  // by Slot
  void track_allocate(const emu::AllocationEvent& e) override;
  void track_deallocate(const emu::AllocationEvent& e) override;
  std::map<std::uint32_t, Figures> peaks() const;
  std::map<std::uint32_t, Figures> live() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint32_t, Figures> live_;
  std::map<std::uint32_t, Figures> peak_;
};

struct BufferRecord {
  std::string name;
  int line = 0;
  emu::BufferType type = emu::BufferType::DRAM;
  emu::AllocKind kind = emu::AllocKind::owning;
  std::uint64_t size = 0;
  std::uint64_t page_size = 0;
  emu::DeviceAddr address = 0;
  std::vector<std::uint32_t> devices;
  std::string site;
  std::optional<int> freed_at_line;
};

struct CbRecord {
  std::uint32_t index = 0;
  emu::DeviceAddr address = 0;
  std::uint64_t size = 0;
  emu::CoreRangeSet cores;
};

struct ProgramRecord {
  std::string name;
  int line = 0;
  std::vector<CbRecord> cbs;
  std::uint64_t kernel_binary_size = 0;
  std::uint32_t runs = 0;
  std::optional<int> released_at_line;
};

struct MeshRecord {
  std::string preset;
  emu::Arch arch = emu::Arch::wormhole_b0;
  std::uint32_t rows = 0, cols = 0;
  emu::DeviceOptions options;
  int line = 0;
  std::optional<int> closed_at_line;
};

struct RunError {
  int line = 0;
  std::string message;  ///< TT-Metal's text
  std::string detail;   ///< the emulator's note beside it (emu::Error::detail), may be empty
  int exit_code = exit_status::bad_input;  ///< ttmem/exit_codes.hpp
};

struct RunResult {
  std::vector<MeshRecord> meshes;
  std::vector<BufferRecord> buffers;
  std::vector<ProgramRecord> programs;
  std::vector<BufferRecord> live_at_close;
  std::map<std::uint32_t, UsageTracker::Figures> peaks;
  std::optional<RunError> error;
};

struct InterpreterOptions {
  std::string script_name = "stdin";  ///< Used for default sites: "<script_name>:<line>".
  std::ostream* log = nullptr;        ///< Human-readable progress (null: silent).
  std::function<void()> flush;        ///< Called by `flush` and before `abort`.
  /// `op NAME ... end`: entered before the block, left after it (tracking's op scope).
  std::function<void(const std::string&)> push_op;
  std::function<void()> pop_op;
};

class Interpreter {
 public:
  explicit Interpreter(InterpreterOptions options);
  ~Interpreter();
  /// Runs the script; errors end the run and are returned in RunResult::error (exit code 2 for a bad
  /// line, 3 for out of memory or a circular-buffer clash). A mesh still open at the end is closed.
  RunResult run(const std::vector<Command>& script);
  /// Runs some commands and keeps the state for more (--step); returns the error that stopped them.
  std::optional<RunError> step(const std::vector<Command>& commands);
  /// Closes a mesh still open and returns the results.
  RunResult finish();

 private:
  void execute(const std::vector<Command>& commands);
  void execute(const Command& cmd);
  void open_mesh(const Command& cmd);
  void alloc(const Command& cmd, bool at_address);
  void free_buffer(const Command& cmd);
  void define_program(const Command& cmd);
  void run_program(const Command& cmd);
  void release_program(const Command& cmd);
  void trace(const Command& cmd);
  void close_mesh(int line);
  void print_stats(int line);
  void dump(const Command& cmd);
  void repeat(const Command& cmd);
  void op(const Command& cmd);
  emu::MeshDevice& mesh(int line);
  template <typename... Args>
  void say(fmt::format_string<Args...> format, Args&&... args);

  struct LiveBuffer {
    std::shared_ptr<emu::MeshBuffer> mesh_buffer;
    std::shared_ptr<emu::Buffer> device_buffer;
    std::size_t record = 0;
  };
  /// The new buffer's name (the command's first argument); throws when a live buffer has it.
  const std::string& new_buffer_name(const Command& cmd) const;
  /// The command's site= option, else "SCRIPT:LINE".
  std::string site_of(const Command& cmd) const;
  void keep(const std::string& name, LiveBuffer live, BufferRecord record);

  struct LiveProgram {
    std::shared_ptr<emu::Program> program;
    std::size_t record = 0;
  };

  InterpreterOptions options_;
  std::shared_ptr<UsageTracker> usage_;
  std::shared_ptr<emu::MeshDevice> mesh_;
  std::map<std::string, LiveBuffer> buffers_;
  std::map<std::string, LiveProgram> programs_;
  RunResult result_;
};

/// Exit status of a ttmem-emu run: 0, 2 (bad line) or 3 (out of memory / CB clash).
int exit_code(const RunResult& result);

}  // namespace ttmem::emu_tool
