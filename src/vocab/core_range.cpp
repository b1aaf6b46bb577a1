// See ttmem/core_range.hpp.
#include "ttmem/core_range.hpp"

#include <algorithm>
#include <charconv>
#include <set>

namespace ttmem {

std::uint64_t CoreRangeSet::num_cores() const {
  if (ranges.size() == 1) return ranges.front().num_cores();
  return cores().size();
}

bool CoreRangeSet::contains(CoreCoord c) const {
  for (const CoreRange& r : ranges)
    if (r.contains(c)) return true;
  return false;
}

std::vector<CoreCoord> CoreRangeSet::cores() const {
  std::vector<CoreCoord> out;
  std::set<CoreCoord> seen;
  for (const CoreRange& r : ranges)
    for (std::uint32_t y = r.start.y; y <= r.end.y; ++y)
      for (std::uint32_t x = r.start.x; x <= r.end.x; ++x)
        if (seen.insert({x, y}).second) out.push_back({x, y});
  return out;
}

std::string CoreRange::str() const {
  // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false positive) on the chained operator+.
  std::string out = "[(x=";
  out.append(std::to_string(start.x)).append(",y=").append(std::to_string(start.y));
  out.append(") - (x=").append(std::to_string(end.x)).append(",y=").append(std::to_string(end.y));
  out.append(")]");
  return out;
}

namespace {

/// The rectangle two ranges make together, if they make one.
std::optional<CoreRange> joined(const CoreRange& a, const CoreRange& b) {
  auto inside = [](const CoreRange& in, const CoreRange& out) {
    return in.start.x >= out.start.x && in.end.x <= out.end.x && in.start.y >= out.start.y &&
           in.end.y <= out.end.y;
  };
  if (inside(a, b)) return b;
  if (inside(b, a)) return a;
  if (a.start.x == b.start.x && a.end.x == b.end.x && a.start.y <= b.end.y + 1 && b.start.y <= a.end.y + 1)
    return CoreRange{{a.start.x, std::min(a.start.y, b.start.y)}, {a.end.x, std::max(a.end.y, b.end.y)}};
  if (a.start.y == b.start.y && a.end.y == b.end.y && a.start.x <= b.end.x + 1 && b.start.x <= a.end.x + 1)
    return CoreRange{{std::min(a.start.x, b.start.x), a.start.y}, {std::max(a.end.x, b.end.x), a.end.y}};
  return std::nullopt;
}

}  // namespace

CoreRangeSet CoreRangeSet::merged() const {
  std::vector<CoreRange> out = ranges;
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < out.size() && !changed; ++i) {
      for (std::size_t j = i + 1; j < out.size(); ++j) {
        if (auto r = joined(out[i], out[j])) {
          out[i] = *r;
          out.erase(out.begin() + static_cast<std::ptrdiff_t>(j));
          changed = true;
          break;
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  return CoreRangeSet{out};
}

CoreRangeSet first_cores(std::uint32_t count, std::uint32_t grid_x) {
  CoreRangeSet set;
  if (count == 0 || grid_x == 0) return set;
  const std::uint32_t rows = count / grid_x, rest = count % grid_x;
  if (rows) set.ranges.push_back({{0, 0}, {grid_x - 1, rows - 1}});
  if (rest) set.ranges.push_back({{0, rows}, {rest - 1, rows}});
  return set;
}

std::string CoreRangeSet::str() const {
  std::string out = "{";
  for (const CoreRange& r : ranges) {
    if (out.size() > 1) out += ", ";
    out.append("[").append(std::to_string(r.start.x)).append("-").append(std::to_string(r.start.y));
    out.append(" - ").append(std::to_string(r.end.x)).append("-").append(std::to_string(r.end.y)).append("]");
  }
  out.append("}");
  return out;
}

namespace {

/// A cursor over the text; every reader skips blanks first.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}
  void skip_blanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool eat(char c) {
    skip_blanks();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool eat(std::string_view word) {
    skip_blanks();
    if (text_.substr(pos_).starts_with(word)) {
      pos_ += word.size();
      return true;
    }
    return false;
  }
  std::optional<std::uint32_t> number() {
    skip_blanks();
    std::uint32_t v = 0;
    const char* begin = text_.data() + pos_;
    const auto [end, ec] = std::from_chars(begin, text_.data() + text_.size(), v);
    if (ec != std::errc{} || end == begin) return std::nullopt;
    pos_ += static_cast<std::size_t>(end - begin);
    return v;
  }
  bool at_end() {
    skip_blanks();
    return pos_ == text_.size();
  }
  std::size_t pos() const { return pos_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

/// "3-4" or "(x=3,y=4)".
std::optional<CoreCoord> read_coord(Reader& r) {
  if (r.eat('(')) {
    if (!r.eat("x=")) return std::nullopt;
    const auto x = r.number();
    if (!x || !r.eat(',') || !r.eat("y=")) return std::nullopt;
    const auto y = r.number();
    if (!y || !r.eat(')')) return std::nullopt;
    return CoreCoord{*x, *y};
  }
  const auto x = r.number();
  if (!x || !r.eat('-')) return std::nullopt;
  const auto y = r.number();
  if (!y) return std::nullopt;
  return CoreCoord{*x, *y};
}

}  // namespace

std::optional<CoreRangeSet> parse_core_range_set(std::string_view text, std::string* error) {
  auto fail = [&](std::size_t at, const std::string& why) -> std::optional<CoreRangeSet> {
    if (error)
      *error = "core range set \"" + std::string(text) + "\": " + why + " at character " +
               std::to_string(at + 1) + " (expected {[X-Y - X-Y], ...} or {[(x=X,y=Y) - (x=X,y=Y)], ...})";
    return std::nullopt;
  };
  Reader r(text);
  if (!r.eat('{')) return fail(r.pos(), "no opening '{'");
  CoreRangeSet set;
  if (r.eat('}')) return r.at_end() ? std::optional(set) : fail(r.pos(), "text after the closing '}'");
  do {
    if (!r.eat('[')) return fail(r.pos(), "no '[' opening a range");
    const auto start = read_coord(r);
    if (!start) return fail(r.pos(), "a bad start core");
    if (!r.eat('-')) return fail(r.pos(), "no '-' between the corners");
    const auto end = read_coord(r);
    if (!end) return fail(r.pos(), "a bad end core");
    if (!r.eat(']')) return fail(r.pos(), "no ']' closing the range");
    if (end->x < start->x || end->y < start->y) return fail(r.pos(), "a range that ends before it starts");
    set.ranges.push_back({*start, *end});
  } while (r.eat(','));
  if (!r.eat('}')) return fail(r.pos(), "no closing '}'");
  if (!r.at_end()) return fail(r.pos(), "text after the closing '}'");
  return set;
}

}  // namespace ttmem
