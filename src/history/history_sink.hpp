// ttmemd's history, the loop's side: a sink (model/sink.hpp) that turns what the ledger hears into records,
// timeline samples and buffer lifetimes, and hands them to the Writer's thread. Records go at once (a leak
// is on disk within a commit); samples and lifetimes go every interval, from tick().
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "history_writer.hpp"
#include "registry.hpp"

namespace ttmem::history {

class HistorySink : public model::Sink {
 public:
  HistorySink(model::Registry& registry, Writer& writer);

  bool wants_events() const override { return true; }
  void on_event(const model::AppliedEvent& e) override;
  void on_leak(const model::LeakRecord& l) override;
  void on_process_died(const model::OrphanRecord& o) override;
  void on_oom(const views::OomRecord& r) override;
  void on_device_open(const model::ProcessState& p, const proto::DeviceOpen& m) override;
  void on_device_close(const model::ProcessState& p, const proto::DeviceClose& m) override;

  /// The server started (with its version and socket) or is stopping.
  void server_started(const std::string& text);
  void server_stopping();
  /// Samples the timeline, hands over what the interval gathered, starts the next interval.
  void tick();

 private:
  /// `site` of a lifetime whose texts are already known (a buffer swept at close): `scope` indexes texts_.
  static constexpr std::uint32_t kTextLabel = UINT32_MAX;
  struct PendingLifetime {
    std::uint64_t free_ns;
    std::uint32_t lifetime_ms;
    std::uint32_t process_slot;
    std::uint32_t site;   ///< the process's site id, or kTextLabel
    std::uint32_t scope;  ///< the process's scope id (0: none), or the index into texts_
    std::uint16_t device;
    std::uint8_t type;
    std::uint8_t kind;
    std::uint64_t id;
    std::uint64_t size;
    std::uint64_t address;
    std::uint64_t size_per_bank;
  };
  struct Written {
    std::uint64_t bytes = 0;
    std::uint64_t peak = 0;
    bool seen = false;
  };
  void keep(views::HistoryRecord&& r);
  void process_seen(const model::ProcessState& p);
  views::HistoryRecord process_record(HistoryKind kind, const model::ProcessState& p) const;
  /// A record about one buffer of a process (a leak, an out-of-memory record).
  views::HistoryRecord buffer_record(HistoryKind kind, std::uint64_t time_ns, pid_t pid,
                                     const std::string& name, std::uint16_t device, const std::string& site,
                                     const std::string& scope, std::uint64_t bytes) const;
  std::uint32_t process_index(Batch& b, std::uint32_t slot,
                              std::unordered_map<std::uint32_t, std::uint32_t>& index);
  void note_anomalies(std::uint64_t now_ns);

  model::Registry& registry_;
  Writer& writer_;
  std::uint64_t min_size_;
  std::uint64_t per_interval_;
  std::vector<PendingLifetime> lifetimes_;
  std::vector<std::pair<std::string, std::string>> texts_;  // (site, scope) of kTextLabel lifetimes
  bool take_lifetime();                                     // false: over the interval's share (counted)
  std::uint64_t dropped_ = 0;                               // lifetimes over the rate this interval
  std::vector<bool> seen_;                                  // by process slot: its process_start is kept
  struct ProcessName {
    pid_t pid;
    std::uint64_t start_time;
    std::string name;
  };
  std::unordered_map<std::uint32_t, ProcessName> names_;  // by slot, for lifetimes of processes now gone
  std::unordered_map<std::uint64_t, Written> written_;    // by (process slot, device, slot): last sample
  model::Anomalies anomalies_;
  std::uint64_t clock_offset_ns_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC at the latest tick
};

}  // namespace ttmem::history
