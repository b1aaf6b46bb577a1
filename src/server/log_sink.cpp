#include "log_sink.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ttmem::server {

void LogSink::on_event(const model::AppliedEvent& a) {
  const auto& e = a.event;
  const bool alloc = e.op == proto::EventOp::alloc;
  spdlog::info("pid {} {} {} bytes of {} on device {} (id {}, site {}{})", a.process->pid,
               alloc ? "allocated" : "freed", e.size, proto::to_string(e.type), e.device, e.id,
               a.site.empty() ? "-" : a.site, alloc ? "" : fmt::format(", {}", proto::to_string(e.reason)));
}

void LogSink::on_leak(const model::LeakRecord& l) {
  spdlog::warn(
      "leak: pid {} ({}) still held {} bytes of {} on device {} when it closed the device (id {}, kind {}, "
      "site {}, age {:.3f} s{})",
      l.pid, l.process_name, l.size, proto::to_string(l.type), l.device, l.id, proto::to_string(l.kind),
      l.site.empty() ? "-" : l.site, static_cast<double>(l.age_ns) / 1e9,
      l.swept_by_close ? "" : "; the close sequence never released it");
}

void LogSink::on_oom(const views::OomRecord& r) {
  spdlog::warn("out of memory (record {}): pid {} ({}) was refused {} bytes of {} on device {}: {}", r.id,
               r.pid, r.name, r.size, proto::to_string(r.type), r.device, r.summary);
}

void LogSink::on_process_died(const model::OrphanRecord& o) {
  if (o.held.empty()) {
    spdlog::info("pid {} ({}) exited holding no device memory", o.pid, o.process_name);
    return;
  }
  for (const auto& line : o.lines()) spdlog::warn("{}", line);
}

void LogSink::on_device_open(const model::ProcessState& p, const proto::DeviceOpen& d) {
  if (!verbose_) return;
  const auto arch = enum_from<Arch>(d.arch);
  spdlog::info("pid {} ({}) opened device {} ({})", p.pid, p.name, d.device, arch ? to_string(*arch) : "?");
}

void LogSink::on_device_close(const model::ProcessState& p, const proto::DeviceClose& d) {
  if (!verbose_) return;
  spdlog::info("pid {} ({}) {} closing device {}", p.pid, p.name,
               d.phase == proto::ClosePhase::begin ? "began" : "finished", d.device);
}

}  // namespace ttmem::server
