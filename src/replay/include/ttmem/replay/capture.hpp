// A ttnn graph capture, read: the node list `ttnn.graph.end_graph_capture()` returns, or the report file
// `end_graph_capture_to_file()` writes ({version, graph, devices, metadata, ...}), in both schemas: 2024
// (every param a string, no per-bank fields) and 2025+ (ints for size, address, device_id, buffer_type,
// page_size, num_cores, max_size_per_bank; device_tensors; CB core ranges in either spelling).
//
// Reading checks what the accounting relies on and says where it is wrong ("FILE: node N: message"):
// `counter` equals the node's index, params have the fields their node type needs, numbers are numbers.
// Node types it does not know are counted and kept, not fatal.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ttmem/bridge/bridge.hpp"

namespace ttmem::replay {

using bridge::TtDeviceId;

#define TTMEM_CAPTURE_NODE_KINDS(X)                                   \
  X(capture_start, "capture_start")                                   \
  X(capture_end, "capture_end")                                       \
  X(function_start, "function_start")                                 \
  X(function_end, "function_end")                                     \
  X(tensor, "tensor")                                                 \
  X(buffer, "buffer")                                                 \
  X(buffer_allocate, "buffer_allocate")                               \
  X(buffer_deallocate, "buffer_deallocate")                           \
  X(circular_buffer_allocate, "circular_buffer_allocate")             \
  X(circular_buffer_deallocate_all, "circular_buffer_deallocate_all") \
  X(dataflow_buffer_allocate, "dataflow_buffer_allocate")             \
  X(scratchpad_allocate, "scratchpad_allocate")
#define TTMEM_NODE_KIND_VALUE(name, text) name,
enum class NodeKind : std::uint8_t { TTMEM_CAPTURE_NODE_KINDS(TTMEM_NODE_KIND_VALUE) unknown };
#undef TTMEM_NODE_KIND_VALUE
std::string_view to_string(NodeKind kind);

/// One node, with the fields of its kind read (the others left at their defaults).
struct Node {
  std::size_t index = 0;
  NodeKind kind = NodeKind::unknown;
  std::string type_name;  ///< as written (kept for unknown kinds)
  int stacking_level = 0;
  std::vector<std::size_t> connections;
  std::string name;  ///< function_start / function_end
  /// buffer, buffer_allocate, buffer_deallocate: device, address, size, page size, per bank, type,
  /// layout, cores. unique_id: the `buffer` node it is connected to (TT-Metal de-duplicates buffers by
  /// Buffer::unique_id into one such node), or an id of the reader's making when there is none.
  bridge::BufferInfo buffer;
  bool has_max_size_per_bank = false;
  /// circular_buffer_allocate, dataflow_buffer_allocate, scratchpad_allocate; and the device of
  /// circular_buffer_deallocate_all.
  bridge::ProgramBufferInfo program;
  /// tensor: its tensor id and the shard grid its memory config names, if any.
  std::uint64_t tensor_id = 0;
  std::optional<bridge::CoreRangeSet> shard_grid;
};

/// A device as the report file's `devices` section describes it.
struct CaptureDevice {
  TtDeviceId id = 0;
  std::optional<Arch> arch;
  std::uint64_t l1_num_banks = 0;
  std::uint64_t l1_bank_size = 0;
  std::uint64_t address_at_first_l1_bank = 0;
  std::uint64_t address_at_first_l1_cb_buffer = 0;
  std::uint64_t num_dram_channels = 0;
  std::uint64_t dram_size_per_channel = 0;
};

struct Capture {
  std::string name;  ///< the file, as messages name it
  std::vector<Node> nodes;
  std::vector<CaptureDevice> devices;  ///< report file only
  /// MeshDevice id -> its chips, from the tensors' device_tensors (a mesh's buffers carry its id, a
  /// NORMAL-mode capture's CBs the chip's).
  std::map<TtDeviceId, std::vector<TtDeviceId>> meshes;
  bool integer_params = false;  ///< the 2025+ schema
  /// Every allocation made inside the capture is at address 0: NO_DISPATCH mode (or nothing allocated).
  bool no_dispatch = false;
  std::map<std::string, std::size_t> unknown_types;  ///< node types this reader does not know
  std::size_t count(NodeKind kind) const;
  /// The `buffer` nodes no allocation in the capture names: buffers allocated before it began.
  std::vector<const Node*> buffers_before_capture() const;
};

/// A capture that cannot be read; what() is "FILE: node N: message" or "FILE: message".
class CaptureError : public std::runtime_error {
 public:
  explicit CaptureError(const std::string& what, bool unreadable = false)
      : std::runtime_error(what), unreadable_(unreadable) {}
  /// The file could not be opened or read at all (rather than read and found wrong).
  bool unreadable() const { return unreadable_; }

 private:
  bool unreadable_;
};

Capture parse_capture(std::string_view text, const std::string& name);
/// Reads the file; a missing or unreadable file is a CaptureError too.
Capture read_capture(const std::string& path);

/// The shard grid a tensor's printed MemoryConfig names (`grid=[{"start":{"x":0,"y":0},"end":...}]` or
/// `grid={[(x=0,y=0) - (x=7,y=7)]}`), if any.
std::optional<bridge::CoreRangeSet> shard_grid_of(std::string_view memory_config);

}  // namespace ttmem::replay
