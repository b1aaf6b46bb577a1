// See ttmem/replay/capture.hpp.
#include "ttmem/replay/capture.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace ttmem::replay {

namespace {

using nlohmann::json;

constexpr std::string_view kNodeKindNames[] = {
#define TTMEM_NODE_KIND_NAME(name, text) text,
    TTMEM_CAPTURE_NODE_KINDS(TTMEM_NODE_KIND_NAME)
#undef TTMEM_NODE_KIND_NAME
};

NodeKind kind_of(std::string_view type) {
  for (std::size_t i = 0; i < std::size(kNodeKindNames); ++i)
    if (kNodeKindNames[i] == type) return static_cast<NodeKind>(i);
  return NodeKind::unknown;
}

/// Ids the reader makes for allocations that name no `buffer` node: far above any node index.
constexpr std::uint64_t kSyntheticIdBase = std::uint64_t{1} << 40;

/// Reads one node's params, saying which node and field is wrong.
class Params {
 public:
  Params(const json* params, const std::string& where, bool& integer_params)
      : params_(params), where_(where), integer_params_(integer_params) {}

  bool has(const char* key) const { return params_ && params_->contains(key) && !params_->at(key).is_null(); }

  [[noreturn]] void fail(const std::string& message) const { throw CaptureError(where_ + message); }

  std::uint64_t number(const char* key) const {
    if (!has(key)) fail(std::string("has no \"") + key + "\"");
    return number_of(params_->at(key), key);
  }
  std::uint64_t number_or(const char* key, std::uint64_t fallback) const {
    return has(key) ? number_of(params_->at(key), key) : fallback;
  }
  std::string text(const char* key) const {
    if (!has(key)) fail(std::string("has no \"") + key + "\"");
    const json& v = params_->at(key);
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
  }
  std::string text_or(const char* key, std::string fallback = {}) const {
    return has(key) ? text(key) : fallback;
  }
  /// "0"/"1" (how ttnn prints bools), true/false, 0/1.
  bool flag(const char* key) const {
    if (!has(key)) return false;
    const json& v = params_->at(key);
    if (v.is_boolean()) return v.get<bool>();
    const std::uint64_t n = number_of(v, key);
    if (n > 1) fail(std::string("\"") + key + "\" is " + v.dump() + ", not 0 or 1");
    return n == 1;
  }
  const json* raw(const char* key) const { return has(key) ? &params_->at(key) : nullptr; }

 private:
  std::uint64_t number_of(const json& v, const char* key) const {
    if (v.is_number_unsigned()) {
      integer_params_ = true;
      return v.get<std::uint64_t>();
    }
    if (v.is_number_integer()) {
      const auto n = v.get<std::int64_t>();
      if (n < 0) fail(std::string("\"") + key + "\" is negative (" + v.dump() + ")");
      integer_params_ = true;
      return static_cast<std::uint64_t>(n);
    }
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec == std::errc{} && end == s.data() + s.size() && !s.empty()) return n;
    }
    fail(std::string("\"") + key + "\" is " + v.dump() + ", not a non-negative whole number");
  }

  const json* params_;
  const std::string& where_;
  bool& integer_params_;
};

/// "BufferType::L1_SMALL", "L1_SMALL", "l1_small".
std::optional<BufferType> buffer_type_named(std::string name) {
  if (const auto colon = name.rfind(':'); colon != std::string::npos) name = name.substr(colon + 1);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::toupper(c); });
  return parse_enum<BufferType>(name);
}

BufferType read_buffer_type(const Params& p) {
  for (const char* key : {"buffer_type_value", "buffer_type"}) {
    if (!p.has(key)) continue;
    const json& v = *p.raw(key);
    if (v.is_string()) {
      if (auto named = buffer_type_named(v.get<std::string>())) return *named;
    }
    const std::uint64_t n = p.number(key);
    if (auto t = n <= 255 ? enum_from<BufferType>(static_cast<std::uint8_t>(n)) : std::nullopt) return *t;
    p.fail(std::string("\"") + key + "\" is " + std::to_string(n) +
           ", not a BufferType (0 DRAM, 1 L1, 2 SYSTEM_MEMORY, "
           "3 L1_SMALL, 4 TRACE)");
  }
  if (p.has("exact_buffer_type")) {
    if (auto named = buffer_type_named(p.text("exact_buffer_type"))) return *named;
  }
  const std::string type = p.text("type");
  if (auto named = buffer_type_named(type)) return *named;
  p.fail("\"type\" is \"" + type + "\", not DRAM or L1");
}

BufferLayout read_layout(const Params& p, std::uint32_t num_cores) {
  std::string text = p.text_or("layout");
  if (const auto colon = text.rfind(':'); colon != std::string::npos) text = text.substr(colon + 1);
  if (auto layout = parse_enum<BufferLayout>(text)) return *layout;
  // "UNKNOWN" (TT-Metal prints it for layouts it has no name for) or absent: the core count decides.
  return num_cores > 0 ? BufferLayout::height_sharded : BufferLayout::interleaved;
}

/// An allocation or release needs every field it is accounted by; a `buffer` node is only the buffer's
/// identity (its bytes count among those allocated before the capture), so it needs only its size.
enum class BufferNode : std::uint8_t { event, identity };

void read_buffer_fields(const Params& p, Node& n, BufferNode node) {
  bridge::BufferInfo& b = n.buffer;
  const bool event = node == BufferNode::event;
  b.device = static_cast<TtDeviceId>(event ? p.number("device_id") : p.number_or("device_id", 0));
  b.size = p.number("size");
  const bool typed =
      p.has("buffer_type_value") || p.has("buffer_type") || p.has("exact_buffer_type") || p.has("type");
  b.type = event || typed ? read_buffer_type(p) : BufferType::DRAM;
  if (event) b.address = p.number("address");
  b.page_size = p.number_or("page_size", 0);
  b.num_cores = static_cast<std::uint32_t>(p.number_or("num_cores", 0));
  n.has_max_size_per_bank = p.has("max_size_per_bank");
  b.max_size_per_bank = p.number_or("max_size_per_bank", 0);
  b.layout = read_layout(p, b.num_cores);
}

void read_program_fields(const Params& p, Node& n) {
  bridge::ProgramBufferInfo& b = n.program;
  b.kind = n.kind == NodeKind::circular_buffer_allocate   ? bridge::ProgramBufferKind::circular_buffer
           : n.kind == NodeKind::dataflow_buffer_allocate ? bridge::ProgramBufferKind::dataflow_buffer
                                                          : bridge::ProgramBufferKind::scratchpad;
  b.device = static_cast<TtDeviceId>(p.number("device_id"));
  b.size = p.number("size");
  b.address = p.number_or("address", 0);
  std::string error;
  auto cores = bridge::parse_core_range_set(p.text("core_range_set"), &error);
  if (!cores) p.fail(error);
  b.cores = std::move(*cores);
  b.tensor_backed = p.flag("globally_allocated") || p.flag("borrows_memory");
}

/// device_tensors: a JSON array, or (as ttnn writes it) a string holding one.
void read_device_tensors(const Params& p, Capture& capture) {
  const json* raw = p.raw("device_tensors");
  if (!raw) return;
  json list;
  if (raw->is_string()) {
    list = json::parse(raw->get<std::string>(), nullptr, false);
    if (list.is_discarded()) p.fail("\"device_tensors\" is not a JSON list");
  } else {
    list = *raw;
  }
  if (!list.is_array()) p.fail("\"device_tensors\" is not a list");
  for (const json& entry : list) {
    if (!entry.is_object() || !entry.contains("device_id") || !entry.contains("mesh_device_id")) continue;
    if (!entry["device_id"].is_number_unsigned() || !entry["mesh_device_id"].is_number_unsigned()) continue;
    const auto chip = entry["device_id"].get<TtDeviceId>();
    const auto mesh = entry["mesh_device_id"].get<TtDeviceId>();
    if (chip == mesh) continue;
    auto& chips = capture.meshes[mesh];
    if (std::find(chips.begin(), chips.end(), chip) == chips.end()) chips.push_back(chip);
  }
}

std::uint64_t json_number(const json& object, const char* key) {
  if (!object.contains(key)) return 0;
  const json& v = object[key];
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  return 0;
}

std::vector<CaptureDevice> read_devices(const json& list, const std::string& name) {
  std::vector<CaptureDevice> out;
  if (list.is_null()) return out;
  if (!list.is_array()) throw CaptureError(name + ": \"devices\" is not a list");
  for (const json& d : list) {
    if (!d.is_object() || !d.contains("device_id")) continue;
    CaptureDevice dev;
    dev.id = static_cast<TtDeviceId>(json_number(d, "device_id"));
    if (d.contains("arch") && d["arch"].is_string()) {
      std::string arch = d["arch"].get<std::string>();
      if (const auto colon = arch.rfind(':'); colon != std::string::npos) arch = arch.substr(colon + 1);
      std::transform(arch.begin(), arch.end(), arch.begin(), [](unsigned char c) { return std::tolower(c); });
      dev.arch = parse_enum<Arch>(arch);
    }
    dev.l1_num_banks = json_number(d, "l1_num_banks");
    dev.l1_bank_size = json_number(d, "l1_bank_size");
    dev.address_at_first_l1_bank = json_number(d, "address_at_first_l1_bank");
    dev.address_at_first_l1_cb_buffer = json_number(d, "address_at_first_l1_cb_buffer");
    dev.num_dram_channels = json_number(d, "num_dram_channels");
    dev.dram_size_per_channel = json_number(d, "dram_size_per_channel");
    out.push_back(dev);
  }
  return out;
}

/// Reads the numbers of `{"x":N,"y":M}` starting at `pos`; moves past it.
std::optional<bridge::CoreCoord> json_coord(std::string_view text, std::size_t& pos) {
  auto read = [&](std::string_view key) -> std::optional<std::uint32_t> {
    const auto at = text.find(key, pos);
    if (at == std::string_view::npos) return std::nullopt;
    std::size_t p = at + key.size();
    while (p < text.size() && (text[p] == ' ' || text[p] == ':')) ++p;
    std::uint32_t v = 0;
    const auto [end, ec] = std::from_chars(text.data() + p, text.data() + text.size(), v);
    if (ec != std::errc{}) return std::nullopt;
    pos = static_cast<std::size_t>(end - text.data());
    return v;
  };
  const auto x = read("\"x\"");
  if (!x) return std::nullopt;
  const auto y = read("\"y\"");
  if (!y) return std::nullopt;
  return bridge::CoreCoord{*x, *y};
}

}  // namespace

std::string_view to_string(NodeKind kind) {
  const auto i = static_cast<std::size_t>(kind);
  return i < std::size(kNodeKindNames) ? kNodeKindNames[i] : std::string_view("unknown");
}

std::size_t Capture::count(NodeKind kind) const {
  return static_cast<std::size_t>(
      std::count_if(nodes.begin(), nodes.end(), [&](const Node& n) { return n.kind == kind; }));
}

std::vector<const Node*> Capture::buffers_before_capture() const {
  std::set<std::uint64_t> allocated;
  for (const Node& n : nodes)
    if (n.kind == NodeKind::buffer_allocate) allocated.insert(n.buffer.unique_id);
  std::vector<const Node*> out;
  for (const Node& n : nodes)
    if (n.kind == NodeKind::buffer && !allocated.contains(n.buffer.unique_id)) out.push_back(&n);
  return out;
}

std::optional<bridge::CoreRangeSet> shard_grid_of(std::string_view config) {
  // The shard spec's grid (nd_shard_spec prints its own as "grid":[...], never grid=).
  const auto grid = config.find("grid=");
  if (grid == std::string_view::npos) return std::nullopt;
  std::size_t pos = grid + 5;
  if (pos < config.size() && config[pos] == '{') {
    // TT-Metal's CoreRangeSet::str(): up to the matching '}'.
    const auto end = config.find('}', pos);
    if (end == std::string_view::npos) return std::nullopt;
    return bridge::parse_core_range_set(config.substr(pos, end - pos + 1));
  }
  if (pos >= config.size() || config[pos] != '[') return std::nullopt;
  // The JSON spelling: [{"start":{"x":0,"y":0},"end":{"x":7,"y":7}}, ...]
  const auto close = config.find(']', pos);
  if (close == std::string_view::npos) return std::nullopt;
  const std::string_view list = config.substr(0, close);
  bridge::CoreRangeSet set;
  while (true) {
    const auto start = list.find("\"start\"", pos);
    if (start == std::string_view::npos) break;
    pos = start;
    const auto a = json_coord(list, pos);
    const auto end_key = list.find("\"end\"", pos);
    if (!a || end_key == std::string_view::npos) return std::nullopt;
    pos = end_key;
    const auto b = json_coord(list, pos);
    if (!b || b->x < a->x || b->y < a->y) return std::nullopt;
    set.ranges.push_back({*a, *b});
  }
  if (set.ranges.empty()) return std::nullopt;
  return set;
}

namespace {

/// Turns each node into a Node as the parser completes it, so a capture of millions of nodes is never
/// held as a JSON tree.
class NodeReader {
 public:
  explicit NodeReader(Capture& capture) : capture_(capture) {}

  void add(const json& j) {
    const std::size_t i = capture_.nodes.size();
    const std::string where = capture_.name + ": node " + std::to_string(i) + ": ";
    if (!j.is_object()) throw CaptureError(where + "not an object");
    if (!j.contains("counter") || !j["counter"].is_number_integer())
      throw CaptureError(where + "has no numeric \"counter\"");
    if (j["counter"].get<std::int64_t>() != static_cast<std::int64_t>(i))
      throw CaptureError(where + "\"counter\" is " + j["counter"].dump() +
                         "; it must equal the node's index (the list is the execution order)");
    if (!j.contains("node_type") || !j["node_type"].is_string())
      throw CaptureError(where + "has no \"node_type\"");
    Node n;
    n.index = i;
    n.type_name = j["node_type"].get<std::string>();
    n.kind = kind_of(n.type_name);
    if (j.contains("stacking_level") && j["stacking_level"].is_number_integer())
      n.stacking_level = j["stacking_level"].get<int>();
    if (j.contains("connections")) {
      if (!j["connections"].is_array()) throw CaptureError(where + "\"connections\" is not a list");
      for (const json& c : j["connections"]) {
        if (!c.is_number_unsigned())
          throw CaptureError(where + "a connection is " + c.dump() + ", not a node index");
        n.connections.push_back(c.get<std::size_t>());
      }
    }
    const json* params = j.contains("params") && j["params"].is_object() ? &j["params"] : nullptr;
    if (j.contains("params") && !j["params"].is_null() && !j["params"].is_object())
      throw CaptureError(where + "\"params\" is not an object");
    const std::string field_where = where + n.type_name + " ";
    Params p(params, field_where, capture_.integer_params);
    switch (n.kind) {
      case NodeKind::function_start:
        n.name = p.text("name");
        break;
      case NodeKind::function_end:
        n.name = p.text_or("name");
        break;
      case NodeKind::tensor:
        n.tensor_id = p.number_or("tensor_id", 0);
        if (p.has("memory_config")) n.shard_grid = shard_grid_of(p.text("memory_config"));
        read_device_tensors(p, capture_);
        break;
      case NodeKind::buffer:
        read_buffer_fields(p, n, BufferNode::identity);
        n.buffer.unique_id = i;
        break;
      case NodeKind::buffer_allocate:
      case NodeKind::buffer_deallocate:
        read_buffer_fields(p, n, BufferNode::event);
        identify(n);
        break;
      case NodeKind::circular_buffer_allocate:
      case NodeKind::dataflow_buffer_allocate:
      case NodeKind::scratchpad_allocate:
        read_program_fields(p, n);
        break;
      case NodeKind::circular_buffer_deallocate_all:
        n.program.device = static_cast<TtDeviceId>(p.number("device_id"));
        break;
      case NodeKind::capture_start:
      case NodeKind::capture_end:
        break;
      case NodeKind::unknown:
        ++capture_.unknown_types[n.type_name];
        break;
    }
    capture_.nodes.push_back(std::move(n));
  }

 private:
  /// The buffer an allocation or release is of: the `buffer` node it is connected to.
  void identify(Node& n) {
    std::optional<std::size_t> buffer_node;
    for (std::size_t c : n.connections)
      if (c < n.index && capture_.nodes[c].kind == NodeKind::buffer) buffer_node = c;
    if (buffer_node) {
      n.buffer.unique_id = *buffer_node;
      return;
    }
    // No `buffer` node names it: the same device, type, address and size pair an allocation with its
    // release, most recent first.
    auto& ids = synthetic_[{n.buffer.device, n.buffer.type, n.buffer.address, n.buffer.size}];
    if (n.kind == NodeKind::buffer_allocate) {
      n.buffer.unique_id = next_synthetic_++;
      ids.push_back(n.buffer.unique_id);
    } else if (!ids.empty()) {
      n.buffer.unique_id = ids.back();
      ids.pop_back();
    } else {
      n.buffer.unique_id = next_synthetic_++;  // never allocated here: the bridge counts it
    }
  }

  Capture& capture_;
  std::map<std::tuple<TtDeviceId, BufferType, std::uint64_t, std::uint64_t>, std::vector<std::uint64_t>>
      synthetic_;
  std::uint64_t next_synthetic_ = kSyntheticIdBase;
};

}  // namespace

Capture parse_capture(std::string_view text, const std::string& name) {
  Capture capture;
  capture.name = name;
  NodeReader reader(capture);
  const auto first = text.find_first_not_of(" \t\r\n");
  const bool report = first != std::string_view::npos && text[first] == '{';
  // Nodes sit at depth 1 of a node list, at depth 2 under "graph" in a report file.
  const int node_depth = report ? 2 : 1;
  std::string key;  // the report's current top-level key
  bool saw_graph = false;
  json devices;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    if (report && depth == 1 && event == json::parse_event_t::key) {
      key = parsed.get<std::string>();
      if (key == "graph") saw_graph = true;
      return true;
    }
    if (depth != node_depth) return true;
    if (report && key != "graph") {
      return true;
    }
    if (event == json::parse_event_t::object_end || event == json::parse_event_t::array_end ||
        event == json::parse_event_t::value) {
      reader.add(parsed);
      return false;  // handled: not kept in the tree
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text, callback);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for any type ("1e999").
    throw CaptureError(name + ": not JSON: " + e.what());
  }
  if (report) {
    if (!saw_graph)
      throw CaptureError(name + ": neither a node list nor a report file (an object without \"graph\")");
    if (doc.contains("graph") && !doc["graph"].is_array() && !doc["graph"].is_null())
      throw CaptureError(name + ": the graph is not a list of nodes");
    if (doc.contains("devices")) capture.devices = read_devices(doc["devices"], name);
  } else if (!doc.is_array()) {
    throw CaptureError(name + ": neither a node list nor a report file");
  }

  // A sharded allocation's grid is printed on the tensors of its buffer node (which may come later).
  for (Node& n : capture.nodes) {
    if (n.kind != NodeKind::buffer_allocate || n.buffer.num_cores == 0) continue;
    if (n.buffer.unique_id >= capture.nodes.size()) continue;
    for (std::size_t t : capture.nodes[n.buffer.unique_id].connections) {
      if (t < capture.nodes.size() && capture.nodes[t].kind == NodeKind::tensor &&
          capture.nodes[t].shard_grid) {
        n.buffer.shard_grid = capture.nodes[t].shard_grid;
        break;
      }
    }
  }
  std::size_t allocations = 0;
  std::size_t at_zero = 0;
  for (const Node& n : capture.nodes) {
    const bool buffer = n.kind == NodeKind::buffer_allocate;
    const bool program = n.kind == NodeKind::circular_buffer_allocate ||
                         n.kind == NodeKind::dataflow_buffer_allocate ||
                         n.kind == NodeKind::scratchpad_allocate;
    if (!buffer && !program) continue;
    ++allocations;
    if ((buffer ? n.buffer.address : n.program.address) == 0) ++at_zero;
  }
  capture.no_dispatch = allocations > 0 && at_zero == allocations;
  return capture;
}

Capture read_capture(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw CaptureError(path + ": is a directory, not a capture (give the JSON file)", true);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CaptureError(path + ": cannot be read (no such file, or no permission)", true);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw CaptureError(path + ": read error", true);
  return parse_capture(text.str(), path);
}

}  // namespace ttmem::replay
