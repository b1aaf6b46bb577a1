// Captures written in a test, node by node, with counters filled in: for the cases no shared capture has.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ttmem::test {

class CaptureText {
 public:
  CaptureText& node(const std::string& type, nlohmann::json params = nlohmann::json::object(),
                    nlohmann::json connections = nlohmann::json::array()) {
    nodes_.push_back({{"counter", nodes_.size()},
                      {"node_type", type},
                      {"params", params},
                      {"connections", connections},
                      {"arguments", nlohmann::json::array()},
                      {"input_tensors", nlohmann::json::array()},
                      {"stacking_level", 0}});
    return *this;
  }
  CaptureText& start(const std::string& name) {
    return node("function_start", {{"name", name}, {"inputs", "0"}});
  }
  CaptureText& end(const std::string& name) { return node("function_end", {{"name", name}}); }
  CaptureText& cb(std::uint64_t size, const std::string& cores, std::uint64_t device = 0,
                  const char* global = "0") {
    return node("circular_buffer_allocate", {{"size", size},
                                             {"address", 0},
                                             {"core_range_set", cores},
                                             {"globally_allocated", global},
                                             {"device_id", device}});
  }
  /// An allocation or release of an L1 buffer node `buffer` (the index of its `buffer` node).
  CaptureText& l1(const std::string& type, std::size_t buffer, std::uint64_t per_core,
                  std::uint32_t cores = 0) {
    return node(type,
                {{"size", per_core * 64},
                 {"address", 0},
                 {"type", "L1"},
                 {"buffer_type", 1},
                 {"layout", cores ? "HEIGHT_SHARDED" : "INTERLEAVED"},
                 {"page_size", 2048},
                 {"num_cores", cores},
                 {"max_size_per_bank", per_core},
                 {"device_id", 0}},
                nlohmann::json::array({buffer}));
  }
  CaptureText& buffer(std::uint64_t size) {
    return node(
        "buffer",
        {{"size", size}, {"type", "L1"}, {"buffer_type", 1}, {"layout", "INTERLEAVED"}, {"device_id", 0}});
  }
  std::size_t size() const { return nodes_.size(); }
  std::string text() const { return nodes_.dump(); }
  nlohmann::json& json() { return nodes_; }

 private:
  nlohmann::json nodes_ = nlohmann::json::array();
};

}  // namespace ttmem::test
