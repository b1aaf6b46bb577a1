// Prometheus text for the views; see metrics_text.hpp.
#include "metrics_text.hpp"

#include <fmt/format.h>

#include <set>

#include "ttmem/utf8.hpp"

namespace ttmem::server {

void append_label_value(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    const std::size_t len = utf8_sequence_length(s, i);
    const bool valid = len != 0;
    if (valid) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += kReplacementCharacter;
      ++i;
    }
  }
}

namespace {

/// Writes one metric family: its HELP and TYPE lines, then samples.
class Family {
 public:
  Family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  /// labels: pairs of name and (unescaped) value.
  template <typename Value>
  void sample(std::initializer_list<std::pair<std::string_view, std::string_view>> labels, Value v) {
    out_ += name_;
    out_ += '{';
    bool first = true;
    for (const auto& [k, value] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      append_label_value(out_, value);
      out_ += '"';
    }
    fmt::format_to(std::back_inserter(out_), "}} {}\n", v);
  }

 private:
  std::string& out_;
  std::string_view name_;
};

std::string arch_name(const std::optional<Arch>& a) {
  return a ? std::string(to_string(*a)) : "unknown";
}

}  // namespace

std::string metrics_text(const MetricsInput& in) {
  std::string out;
  out.reserve(4096 + 600 * in.stats.devices.size() + 400 * in.stats.processes.size());
  const std::string_view host = in.host;
  {
    Family used(out, "ttmem_device_memory_used_bytes", "gauge",
                "Bytes allocated on the device, per memory type (CB: circular buffers, which live in L1).");
    for (const auto& d : in.stats.devices) {
      const std::string id = std::to_string(d.id), arch = arch_name(d.arch);
      for (Slot s : enum_values<Slot>())
        used.sample({{"host", host}, {"device", id}, {"arch", arch}, {"type", to_string(s)}},
                    d.memory[index(s)].used);
    }
  }
  {
    Family total(
        out, "ttmem_device_memory_total_bytes", "gauge",
        "Allocatable bytes of the memory type on the device, all banks (as the runtime announced it).");
    for (const auto& d : in.stats.devices) {
      const std::string id = std::to_string(d.id), arch = arch_name(d.arch);
      for (BufferType t : kManagedTypes) {
        const auto& m = d.memory[index(slot_of(t, AllocKind::owning))];
        if (m.total)
          total.sample({{"host", host}, {"device", id}, {"arch", arch}, {"type", to_string(t)}}, m.total);
      }
    }
  }
  {
    Family free(out, "ttmem_device_memory_free_bytes", "gauge",
                "Bytes the allocator can still place, all banks: from the address map of the device's live "
                "buffers when it announced its banks, else total minus used (L1's minus circular buffers).");
    for (const auto& d : in.stats.devices) {
      const std::string id = std::to_string(d.id), arch = arch_name(d.arch);
      for (BufferType t : kManagedTypes) {
        const Slot s = slot_of(t, AllocKind::owning);
        const auto& m = d.memory[index(s)];
        if (!m.total) continue;
        std::uint64_t in_use = m.used;
        if (s == Slot::L1) in_use += d.memory[index(Slot::CB)].used;  // CBs share L1's space
        const std::uint64_t bytes = m.space ? m.space->free : in_use >= m.total ? 0 : m.total - in_use;
        free.sample({{"host", host}, {"device", id}, {"arch", arch}, {"type", to_string(t)}}, bytes);
      }
    }
  }
  // One family at a time: the exposition format wants each family's samples together, after its header.
  struct SpaceFamily {
    const char* name;
    const char* help;
    double (*value)(const views::FreeSpace&);
  };
  const SpaceFamily space_families[] = {
      {"ttmem_device_memory_largest_free_block_bytes",
       "The largest free block of one bank: the most any one allocation can take per bank.",
       [](const views::FreeSpace& f) { return static_cast<double>(f.largest_free_block); }},
      {"ttmem_device_memory_free_blocks", "Free blocks in one bank's address map.",
       [](const views::FreeSpace& f) { return static_cast<double>(f.free_blocks); }},
      {"ttmem_device_memory_fragmentation_ratio",
       "1 - largest free block / free bytes, per bank: 0 when the free space is one block.",
       [](const views::FreeSpace& f) { return f.fragmentation; }},
  };
  for (const SpaceFamily& sf : space_families) {
    Family family(out, sf.name, "gauge", sf.help);
    for (const auto& d : in.stats.devices) {
      const std::string id = std::to_string(d.id), arch = arch_name(d.arch);
      for (BufferType t : kManagedTypes) {
        const auto& space = d.memory[index(slot_of(t, AllocKind::owning))].space;
        if (space)
          family.sample({{"host", host}, {"device", id}, {"arch", arch}, {"type", to_string(t)}},
                        sf.value(*space));
      }
    }
  }
  {
    Family peak(out, "ttmem_device_memory_peak_bytes", "gauge",
                "The most bytes allocated at once since ttmemd started, per memory type.");
    for (const auto& d : in.stats.devices) {
      const std::string id = std::to_string(d.id), arch = arch_name(d.arch);
      for (Slot s : enum_values<Slot>())
        peak.sample({{"host", host}, {"device", id}, {"arch", arch}, {"type", to_string(s)}},
                    d.memory[index(s)].peak);
    }
  }
  {
    Family buffers(out, "ttmem_device_buffers", "gauge", "Live buffers on the device, per memory type.");
    for (const auto& d : in.stats.devices) {
      const std::string id = std::to_string(d.id), arch = arch_name(d.arch);
      for (Slot s : enum_values<Slot>())
        buffers.sample({{"host", host}, {"device", id}, {"arch", arch}, {"type", to_string(s)}},
                       d.memory[index(s)].buffers);
    }
  }
  {
    Family procs(out, "ttmem_device_processes", "gauge",
                 "Processes holding memory on the device or with it open.");
    for (const auto& d : in.stats.devices)
      procs.sample({{"host", host}, {"device", std::to_string(d.id)}, {"arch", arch_name(d.arch)}},
                   d.processes);
  }
  {
    Family used(out, "ttmem_process_memory_used_bytes", "gauge",
                "Bytes a process holds on a device, per memory type.");
    for (const auto& p : in.stats.processes) {
      const std::string pid = std::to_string(p.pid), dev = std::to_string(p.device);
      for (Slot s : enum_values<Slot>())
        used.sample(
            {{"host", host}, {"pid", pid}, {"process", p.name}, {"device", dev}, {"type", to_string(s)}},
            p.bytes[index(s)]);
    }
  }
  {
    Family buffers(out, "ttmem_process_buffers", "gauge", "Live buffers a process holds on a device.");
    for (const auto& p : in.stats.processes)
      buffers.sample({{"host", host},
                      {"pid", std::to_string(p.pid)},
                      {"process", p.name},
                      {"device", std::to_string(p.device)}},
                     p.buffers);
  }
  {
    Family leaks(out, "ttmem_leaks_total", "counter", "Buffers still held when their device was closed.");
    leaks.sample({{"host", host}}, in.leaks_total);
    Family orphans(out, "ttmem_orphans_total", "counter", "Processes that died holding device memory.");
    orphans.sample({{"host", host}}, in.orphans_total);
    Family ooms(out, "ttmem_oom_records_total", "counter",
                "Allocations the runtime refused (out of memory, CB clash), each kept as a record.");
    ooms.sample({{"host", host}}, in.info.oom_records);
  }
  {
    Family anomalies(out, "ttmem_anomalies_total", "counter",
                     "What ttmemd refused or found odd, by kind (docs/protocol.md, info).");
#define TTMEM_SAMPLE(name) anomalies.sample({{"host", host}, {"kind", #name}}, in.info.anomalies.name);
    TTMEM_LEDGER_ANOMALIES(TTMEM_SAMPLE)
    TTMEM_SERVER_ANOMALIES(TTMEM_SAMPLE)
#undef TTMEM_SAMPLE
  }
  const auto& i = in.info;
  Family(out, "ttmem_events_total", "counter", "Allocation events applied since ttmemd started.")
      .sample({{"host", host}}, i.events_total);
  Family(out, "ttmem_active_allocations", "gauge", "Live buffers, all devices.")
      .sample({{"host", host}}, i.active_allocations);
  Family(out, "ttmem_registry_bytes", "gauge", "Memory ttmemd uses for its table of live buffers.")
      .sample({{"host", host}}, i.registry_bytes);
  Family(out, "ttmem_connections", "gauge", "Connections to ttmemd (tracked processes and tools).")
      .sample({{"host", host}}, i.connections);
  Family(out, "ttmem_uptime_seconds", "gauge", "Seconds since ttmemd started.")
      .sample({{"host", host}}, i.uptime_s);
  Family(out, "ttmem_loop_longest_busy_seconds", "gauge",
         "Longest stretch the event loop spent between two waits since the last reset.")
      .sample({{"host", host}}, i.loop.longest_busy_ms / 1000.0);
  Family(out, "ttmem_build_info", "gauge", "ttmemd's version and protocol, as labels.")
      .sample({{"host", host}, {"version", i.version}, {"protocol", std::to_string(i.protocol)}}, 1);
  // What tracking costs each process (libttmem's own counters).
  struct ClientFamily {
    const char* name;
    const char* help;
    std::uint64_t proto::ClientStats::*field;
    double scale;
  };
  const ClientFamily client_families[] = {
      {"ttmem_client_events_total", "Events a tracked process reported.", &proto::ClientStats::events, 1},
      {"ttmem_client_stall_seconds_total", "Time a tracked process waited for ttmemd (full rings).",
       &proto::ClientStats::stall_ns, 1e-9},
      {"ttmem_client_dropped_events_total", "Events a tracked process could not report (then resynced).",
       &proto::ClientStats::dropped_events, 1},
      {"ttmem_client_reconnects_total", "Times a tracked process reconnected to ttmemd.",
       &proto::ClientStats::reconnects, 1},
  };
  for (const auto& f : client_families) {
    Family family(out, f.name, "counter", f.help);
    std::set<pid_t> shown;  // one series per process, even while it briefly has two connections
    for (const auto& c : i.clients) {
      if (!c.client || !shown.insert(c.pid).second) continue;
      const double v = static_cast<double>((*c.client).*(f.field)) * f.scale;
      family.sample({{"host", host}, {"pid", std::to_string(c.pid)}, {"process", c.name}}, v);
    }
  }
  return out;
}

}  // namespace ttmem::server
