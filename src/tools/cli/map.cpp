// `ttmem map`: one bank's address space drawn to the terminal's width, then its blocks.
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

#include "commands.hpp"
#include "output.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::cli {

namespace {

int terminal_width() {
  winsize w{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    const int n = std::atoi(c);
    if (n > 0) return n;
  }
  return 100;
}

/// What one cell of the drawing shows: the use covering most of its bytes (a buffer's owner letter).
class Drawing {
 public:
  Drawing(const views::AddressMap& map, int cells) : map_(map), cells_(cells) {
    for (const auto& b : map.blocks) {
      if (b.use == BlockUse::buffer && !b.internal) letters_.try_emplace(b.pid, 'A' + letters_.size() % 26);
    }
  }
  const std::map<pid_t, char>& letters() const { return letters_; }

  /// One string per cell (a character, coloured or not).
  std::vector<std::string> cells(const Style& style) const {
    const std::uint64_t size = map_.space.bank_size;
    std::vector<std::string> out;
    std::size_t next = 0;
    for (int c = 0; c < cells_; ++c) {
      const std::uint64_t lo =
          map_.base + size * static_cast<std::uint64_t>(c) / static_cast<std::uint64_t>(cells_);
      const std::uint64_t hi =
          map_.base + size * static_cast<std::uint64_t>(c + 1) / static_cast<std::uint64_t>(cells_);
      // Bytes of each kind of use in [lo, hi); blocks are sorted and cover the bank, so a cursor suffices.
      std::uint64_t best = 0;
      const views::MapBlock* winner = nullptr;
      while (next < map_.blocks.size() && map_.blocks[next].address + map_.blocks[next].size <= lo) ++next;
      for (std::size_t i = next; i < map_.blocks.size() && map_.blocks[i].address < hi; ++i) {
        const auto& b = map_.blocks[i];
        const std::uint64_t covered = std::min(hi, b.address + b.size) - std::max(lo, b.address);
        // Anything allocated in a cell shows: a small buffer between free space is not drawn as free.
        const std::uint64_t weight = b.use == BlockUse::free ? covered : covered + size;
        if (weight > best) best = weight, winner = &b;
      }
      out.push_back(cell(winner, lo, hi, style));
    }
    return out;
  }

 private:
  std::string cell(const views::MapBlock* b, std::uint64_t lo, std::uint64_t hi, const Style& style) const {
    if (!b || b->use == BlockUse::free) {
      for (const auto& cb : map_.circular_buffers) {
        if (cb.address < hi && cb.address + cb.size > lo) return style.green("c");
      }
      return style.dim(".");
    }
    if (b->use == BlockUse::overlap) return style.red("!");
    if (b->internal) return style.yellow("#");
    return std::string(1, letters_.at(b->pid));
  }
  const views::AddressMap& map_;
  int cells_;
  std::map<pid_t, char> letters_;
};

}  // namespace

int run_map(const Common& common, const MapOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  const views::AddressMap map =
      client.map(static_cast<std::uint16_t>(o.device), *parse_enum<BufferType>(o.type));
  if (common.json) {
    print_json(schema::to_json(map));
    return 0;
  }
  const Style style = Style::detect();
  const auto& f = map.space;
  std::cout << style.bold(
                   fmt::format("Device {} {}: one bank of {}", map.device, to_string(map.type), f.num_banks))
            << fmt::format(" (lockstep: every bank has this layout), {:#x} .. {:#x}\n", map.base,
                           map.base + f.bank_size);
  std::cout << fmt::format("  free {} per bank in {} block{}, largest {}; fragmentation {:.1f}%\n",
                           exact_bytes(f.free_per_bank), f.free_blocks, f.free_blocks == 1 ? "" : "s",
                           exact_bytes(f.largest_free_block), f.fragmentation * 100);
  if (f.unplaced_buffers) {
    std::cout
        << "  " << f.unplaced_buffers
        << " live buffers are not drawn: reported without a per-bank size, or outside the bank's range\n";
  }
  if (map.overlapping_bytes) {
    std::cout << "  " << style.red(exact_bytes(map.overlapping_bytes))
              << " per bank are held by two or more buffers at once (processes that each think they own the "
                 "device)\n";
  }
  const int width = std::max(20, (o.width ? o.width : terminal_width()) - 4);
  const Drawing drawing(map, width * o.rows);
  const std::vector<std::string> cells = drawing.cells(style);
  std::cout << '\n';
  for (std::size_t i = 0; i < cells.size(); i += static_cast<std::size_t>(width)) {
    std::string line = "  ";
    for (std::size_t k = i; k < std::min(cells.size(), i + static_cast<std::size_t>(width)); ++k)
      line += cells[k];
    std::cout << line << '\n';
  }
  std::cout << "  " << style.dim(".") << " free  " << style.yellow("#") << " runtime's own  "
            << style.red("!") << " overlap";
  if (!map.circular_buffers.empty()) std::cout << "  " << style.green("c") << " circular buffers";
  for (const auto& [pid, letter] : drawing.letters()) std::cout << "  " << letter << " pid " << pid;
  std::cout << "\n\n";

  Table t;
  for (const char* c : {"ADDRESS", "END", "SIZE", "USE", "PID", "ID", "KIND", "SITE"}) {
    t.column(c, std::string_view(c) == "SIZE" ? Table::Align::right : Table::Align::left);
  }
  std::size_t shown = 0, total = map.blocks.size() + map.circular_buffers.size();
  auto add = [&](const views::MapBlock& b) {
    if (!o.all && shown == o.limit) return;
    ++shown;
    const bool owned = b.use == BlockUse::buffer || b.use == BlockUse::circular_buffer;
    std::string use(to_string(b.use));
    if (b.use == BlockUse::overlap) use += fmt::format(" ({} buffers)", b.buffers);
    if (owned && b.internal) use += " (runtime)";
    t.row({fmt::format("{:#x}", b.address), fmt::format("{:#x}", b.address + b.size), human_bytes(b.size),
           use, owned ? std::to_string(b.pid) : "", owned ? std::to_string(b.id) : "",
           owned ? std::string(to_string(b.kind)) : "", owned && !b.site.empty() ? b.site : ""});
  };
  for (const auto& b : map.blocks) add(b);
  for (const auto& b : map.circular_buffers) add(b);
  t.print(std::cout, style, "  ");
  if (shown < total) std::cout << "  ... " << total - shown << " more blocks (--all lists every one)\n";
  return 0;
}

}  // namespace ttmem::cli
