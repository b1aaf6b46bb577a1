// `ttmem ops`: per op, what it holds now and the most it held at once, per device and memory type.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "output.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::cli {

int run_ops(const Common& common, const OpsOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  views::OpsQuery q;
  q.pid = o.origin.pid;
  if (o.origin.device) q.device = static_cast<std::uint16_t>(*o.origin.device);
  q.scope = o.origin.op;
  q.limit = o.limit;
  const views::OpList answer = client.ops(q);
  if (common.json) {
    print_json(schema::to_json(answer));
    return 0;
  }
  const Style style = Style::detect();
  if (answer.ops.empty()) {
    std::cout << (o.origin.any() ? "No op matches." : "No allocations were made inside an op.")
              << style.dim(
                     " (ops: libttmem's push_op/OpScope, Python's `with ttmem.op(NAME)`, a script's op)")
              << '\n';
    return 0;
  }
  Table t;
  for (const char* c : {"PID", "NAME", "DEV", "TYPE", "OP", "PEAK", "NOW", "BUFFERS"}) {
    const std::string_view v(c);
    const bool right = v == "PID" || v == "DEV" || v == "PEAK" || v == "NOW" || v == "BUFFERS";
    t.column(c, right ? Table::Align::right : Table::Align::left);
  }
  for (const auto& u : answer.ops) {
    t.row({std::to_string(u.pid), u.name, std::to_string(u.device), std::string(to_string(u.slot)), u.scope,
           human_bytes(u.peak), human_bytes(u.bytes), std::to_string(u.buffers)});
  }
  t.print(std::cout, style);
  std::cout << style.dim(answer.total > answer.ops.size()
                             ? fmt::format("the {} largest peaks of {}; -n N shows more", answer.ops.size(),
                                           answer.total)
                             : fmt::format("{} op figure{}, largest peak first; an op holds what was "
                                           "allocated inside it (its own path, not the ops it calls)",
                                           answer.total, answer.total == 1 ? "" : "s"))
            << '\n';
  return 0;
}

}  // namespace ttmem::cli
